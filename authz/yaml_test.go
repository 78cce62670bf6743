package authz

import (
	"strings"
	"testing"
)

// The examples of Pomerium's PPL documentation, as YAML.
func TestParseYAML(t *testing.T) {
	src := `
- allow:
    and:
      - domain:
          is: example.com
      - groups:
          has: admins
    or:
      - email:
          is: boss@example.com
  deny:
    or:
      - email:
          is: user2@example.com
      - http_method:
          is: DELETE
- allow:
    or:
      - claim/department: eng
`
	p, err := Parse([]byte(src), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	in := baseInput()
	if !e.Evaluate(&in).Allow {
		t.Errorf("alice (example.com, admins) should be allowed")
	}
	in.Request.Method = "DELETE"
	if d := e.Evaluate(&in); d.Allow || d.Reason != ReasonDenied {
		t.Errorf("DELETE should be denied, got %+v", d)
	}
	if got := p[0].Allow.And[0].Pos; got != "policy.yaml:4" {
		t.Errorf("criterion position %q, want policy.yaml:4", got)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"allow:\n  or:\n    - emial: x@example.com\n", "policy.yaml:3: unknown criterion \"emial\""},
		{"allow:\n  xor:\n    - accept: true\n", "policy.yaml:2: unknown operator \"xor\""},
		{"permit:\n  or:\n    - accept: true\n", "policy.yaml:1: unknown action \"permit\""},
		{"allow:\n  or:\n    - email: {matches: x}\n", "policy.yaml:3: criterion \"email\": unknown string operator \"matches\""},
		{"allow:\n  or: accept\n", "policy.yaml:2: or takes a list of criteria"},
		{"allow:\n  or:\n    - {email: a, domain: b}\n", "policy.yaml:3: a criterion is a mapping with one key"},
		{"allow: [\n", "policy.yaml: yaml:"},
		{"", "policy.yaml: the policy is empty"},
	} {
		p, err := Parse([]byte(c.src), "policy.yaml")
		if err == nil {
			_, err = Compile(p)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.src, err, c.want)
		}
	}
}

func TestJSONIsYAMLToo(t *testing.T) {
	p, err := Parse([]byte(`[{"allow": {"or": [{"accept": true}]}}]`), "policy.json")
	if err != nil || len(p) != 1 || p[0].Allow.Or[0].Name != "accept" {
		t.Fatalf("%+v %v", p, err)
	}
}
