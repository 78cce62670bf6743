package authz

import "testing"

// Pomerium's TestAccept and TestReject: the data is not looked at (1 here).
func TestPomeriumAcceptReject(t *testing.T) {
	runPomeriumCases(t, []pomeriumCase{
		{name: "accept", policy: "allow:\n  and:\n    - accept: 1\n", want: ReasonAllowed},
		{name: "reject", policy: "allow:\n  and:\n    - reject: 1\n", want: ReasonNotAllowed},
	})
}
