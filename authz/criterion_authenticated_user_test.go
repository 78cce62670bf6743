package authz

import "testing"

// Pomerium's TestAuthenticatedUser.
func TestPomeriumAuthenticatedUser(t *testing.T) {
	const policy = "allow:\n  and:\n    - authenticated_user: 1\n"
	runPomeriumCases(t, []pomeriumCase{
		{name: "no session", policy: policy, want: ReasonUnauthenticated},
		{name: "by domain", policy: policy, in: Input{User: session("USER_ID", "", nil)}, want: ReasonAllowed},
	})
}
