package authz

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func mustCompile(t testing.TB, src string) *Evaluator {
	t.Helper()
	p, err := Parse([]byte(src), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// summary writes a trace as "rule action matched: op criterion=result ...".
func summary(tr Trace) string {
	var lines []string
	for _, r := range tr.Rules {
		line := []string{r.Action}
		if r.Matched {
			line = append(line, "matched:")
		} else {
			line = append(line, "no:")
		}
		for _, c := range r.Criteria {
			v := "false"
			if c.Matched {
				v = "true"
			}
			line = append(line, c.Operator+" "+c.Criterion+" "+string(c.Data)+"="+v)
		}
		lines = append(lines, strings.Join(line, " "))
	}
	return strings.Join(lines, "\n")
}

func TestExplainListsEveryRuleAndCriterionWithItsResult(t *testing.T) {
	policy := `
- allow:
    or:
      - email:
          is: alice@example.com
      - groups:
          has: admins
- deny:
    or:
      - http_method: DELETE
- allow:
    and:
      - domain: example.org
      - http_method: GET
`
	e := mustCompile(t, policy)
	bob := &User{ID: "u-bob", Email: "bob@example.org", Groups: []string{"eng"}}
	for _, tc := range []struct {
		name     string
		user     *User
		method   string
		path     string
		decision Reason
		want     string
	}{
		{"bob posting: his domain holds but the method does not, so nothing admits him", bob, "POST", "/x", ReasonNotAllowed,
			`allow no: or email {"is":"alice@example.com"}=false or groups {"has":"admins"}=false
deny no: or http_method "DELETE"=false
allow no: and domain "example.org"=true and http_method "GET"=false`},
		{"bob deleting: the deny rule matched", bob, "DELETE", "/", ReasonDenied,
			`allow no: or email {"is":"alice@example.com"}=false or groups {"has":"admins"}=false
deny matched: or http_method "DELETE"=true
allow no: and domain "example.org"=true and http_method "GET"=false`},
		{"an admin is allowed by the first rule", &User{ID: "u-a", Email: "alice@example.com", Groups: []string{"admins"}}, "GET", "/", ReasonAllowed,
			`allow matched: or email {"is":"alice@example.com"}=true or groups {"has":"admins"}=true
deny no: or http_method "DELETE"=false
allow no: and domain "example.org"=false and http_method "GET"=true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{User: tc.user, Request: Request{Method: tc.method, Path: tc.path, Header: http.Header{}}, Now: time.Now()}
			tr := e.Explain(&in)
			if tr.Decision != e.Evaluate(&in) || tr.Decision.Reason != tc.decision {
				t.Errorf("decision %+v, want %s (and Evaluate's)", tr.Decision, tc.decision)
			}
			if got := summary(tr); got != tc.want {
				t.Errorf("trace:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestExplainOfNotNorAndAnEmptyPolicy(t *testing.T) {
	// An action holds when any of its operators does, as in Pomerium: the
	// trace shows an and that holds admitting a request its not refuses.
	both := mustCompile(t, "allow:\n  and:\n    - domain: example.org\n  not:\n    - http_path:\n        starts_with: /admin\n")
	bobIn := Input{User: &User{ID: "u-bob", Email: "bob@example.org"}, Request: Request{Method: "GET", Path: "/admin", Header: http.Header{}}}
	if tr := both.Explain(&bobIn); !tr.Decision.Allow || summary(tr) != `allow matched: and domain "example.org"=true not http_path {"starts_with":"/admin"}=true` {
		t.Errorf("and with not: %+v\n%s", tr.Decision, summary(tr))
	}
	e := mustCompile(t, "allow:\n  nor:\n    - accept: true\n    - http_method: GET\n")
	in := Input{Request: Request{Method: "POST", Header: http.Header{}}}
	if got := summary(e.Explain(&in)); got != `allow matched: nor accept true=true nor http_method "GET"=false` {
		t.Errorf("nor: one criterion failing makes it hold:\n%s", got)
	}
	empty := mustCompile(t, "[]")
	tr := empty.Explain(&in)
	if tr.Decision.Reason != ReasonNoPolicy || len(tr.Rules) != 0 {
		t.Errorf("empty policy: %+v", tr)
	}
	b, _ := json.Marshal(tr)
	if string(b) != `{"rules":[]}` {
		t.Errorf("JSON of an empty trace: %s", b)
	}
}

// BenchmarkTenRulesExplain is the cost of a trace, paid only by a refused
// request on a route with show_error_details.
func BenchmarkTenRulesExplain(b *testing.B) {
	e := mustCompile(b, tenRules)
	in := Input{
		User:    &User{ID: "u-bob", Email: "bob@example.org", Groups: []string{"eng"}, Claim: func(string) (any, bool) { return nil, false }},
		Request: Request{Method: "GET", Path: "/admin/users", Header: http.Header{}},
		Now:     time.Now(),
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Explain(&in)
	}
}
