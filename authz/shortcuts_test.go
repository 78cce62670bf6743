package authz

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestShortcutsBecomeOneAllowRule(t *testing.T) {
	p, err := Shortcuts{AllowedUsers: []string{"alice@example.com"}, AllowedDomains: []string{"example.org"},
		AllowedIDPClaims: map[string][]any{"department": {"eng"}, "email_verified": {true}}, CORSAllowPreflight: true}.Policy(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"allow":{"or":[{"user":"alice@example.com"},{"email":"alice@example.com"},{"domain":"example.org"},{"claim/department":"eng"},{"claim/email_verified":true},{"cors_preflight":true}]}}]`
	if got, _ := json.Marshal(p); string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if p, _ := (Shortcuts{}).Policy(nil); len(p) != 0 {
		t.Errorf("no shortcut: %v, want no rule", p)
	}
	if got, _ := json.Marshal(must(Shortcuts{AllowPublicUnauthenticatedAccess: true}.Policy(nil))); string(got) != `[{"allow":{"or":[{"accept":true}]}}]` {
		t.Errorf("public access: %s", got)
	}
}

func must(p Policy, err error) Policy {
	if err != nil {
		panic(err)
	}
	return p
}

// As Pomerium's config.Policy.ToPPL and Validate: public access joins a
// policy and the shortcuts that are not allow-lists; with an allow-list it
// is an error.
func TestPublicAccessCombinesAsInPomerium(t *testing.T) {
	deny, err := Parse([]byte("deny: {or: [http_method: DELETE]}"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		s    Shortcuts
		ok   bool
	}{
		{"public and a policy", Shortcuts{AllowPublicUnauthenticatedAccess: true}, true},
		{"public and CORS preflight", Shortcuts{AllowPublicUnauthenticatedAccess: true, CORSAllowPreflight: true}, true},
		{"public and allowed IdP claims", Shortcuts{AllowPublicUnauthenticatedAccess: true, AllowedIDPClaims: map[string][]any{"x": {"y"}}}, true},
		{"public and any signed-in user", Shortcuts{AllowPublicUnauthenticatedAccess: true, AllowAnyAuthenticatedUser: true}, false},
		{"public and allowed users", Shortcuts{AllowPublicUnauthenticatedAccess: true, AllowedUsers: []string{"a"}}, false},
		{"public and allowed domains, even none", Shortcuts{AllowPublicUnauthenticatedAccess: true, AllowedDomains: []string{}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.s.Policy(deny)
			if !c.ok {
				if err == nil || !strings.Contains(err.Error(), "cannot be combined") {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			if d := e.Evaluate(&Input{Request: Request{Method: "GET"}}); !d.Allow {
				t.Errorf("GET: %+v, want allowed", d)
			}
			if d := e.Evaluate(&Input{Request: Request{Method: "DELETE"}}); d.Reason != ReasonDenied || d.Rule != 1 {
				t.Errorf("DELETE: %+v, want denied by rule 1", d)
			}
		})
	}
}

func TestAllowedIDPClaimsCompareAsClaims(t *testing.T) {
	p := must(Shortcuts{AllowedIDPClaims: map[string][]any{"org.team": {"blue"}, "email_verified": {true}}}.Policy(nil))
	e, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		claims map[string]any
		want   bool
	}{
		{"a nested claim, by its dotted name", map[string]any{"org": map[string]any{"team": "blue"}}, true},
		{"a boolean claim", map[string]any{"email_verified": true}, true},
		{"the string is not the boolean", map[string]any{"email_verified": "true"}, false},
	} {
		if d := e.Evaluate(&Input{User: session("u", "", c.claims)}); d.Allow != c.want {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
}
