package authz

import (
	"strings"
	"testing"
)

// pomeriumCase is one case of Pomerium's own criteria tests
// (pkg/policy/criteria/*_test.go in pomerium/pomerium), kept as a fact
// about how Pomerium decides: the policy as written there, the request as
// authz sees it, and Pomerium's result, as authz states it:
//
//   - allow [true, ...]                        -> ReasonAllowed
//   - allow [false, {user-unauthenticated}]    -> ReasonUnauthenticated
//   - allow [false, {<criterion>-unauthorized}] -> ReasonNotAllowed
//   - deny [true, ...] (a deny-only policy)    -> ReasonDenied
//   - deny [false, ...] (a deny-only policy)   -> ReasonNoPolicy
//
// wantErr, when set, says the policy is refused, with an error containing
// it.
type pomeriumCase struct {
	name    string
	policy  string
	in      Input
	want    Reason
	wantErr string
}

func runPomeriumCases(t *testing.T, cases []pomeriumCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.policy), "pomerium.yaml")
			var e *Evaluator
			if err == nil {
				e, err = Compile(p)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := e.Evaluate(&c.in); d.Reason != c.want {
				t.Errorf("got %+v, want %s", d, c.want)
			}
		})
	}
}

// session is a signed-in user as Pomerium's tests build one from a session
// record (and a user record for the email). claims are as the ID token has
// them.
func session(id, email string, claims map[string]any, groups ...string) *User {
	u := &User{ID: id, Email: email, Groups: groups}
	if claims != nil {
		u.Claim = func(name string) (any, bool) { v, ok := claims[name]; return v, ok }
	}
	return u
}
