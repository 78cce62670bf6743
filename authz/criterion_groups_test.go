package authz

import "testing"

// Pomerium's TestGroups (its groups are the directory's group IDs; here
// they are the IdP's groups claim).
func TestPomeriumGroups(t *testing.T) {
	const one = "allow:\n  and:\n    - groups:\n        has: group1\n"
	runPomeriumCases(t, []pomeriumCase{
		{name: "no session", policy: "allow:\n  and:\n    - groups:\n        has: group1\n    - groups:\n        has: group2\n", want: ReasonUnauthenticated},
		{name: "by id", policy: one, in: Input{User: session("user1", "", nil, "group1", "group2")}, want: ReasonAllowed},
		{name: "not allowed", policy: one, in: Input{User: session("user1", "", nil, "group2")}, want: ReasonNotAllowed},
		// Without a session Pomerium has no user ID to look the groups up
		// by, so even exclude fails.
		{name: "exclude does not match the anonymous", policy: "allow: {or: [groups: {exclude: admins}]}", want: ReasonUnauthenticated},
	})
}
