package authz

import "testing"

func TestListsFollowsPomeriumsCheckRouteAccess(t *testing.T) {
	alice := &User{ID: "u-alice", Email: "alice@example.com", Groups: []string{"admins", "eng"}}
	bob := &User{ID: "u-bob", Email: "bob@example.org", Groups: []string{"eng"}}
	for _, tc := range []struct {
		name                  string
		policy                string
		anonymous, alice, bob bool
	}{
		{"a public route is listed to everyone", "allow:\n  or:\n    - accept: true\n", true, true, true},
		{"any signed-in user", "allow:\n  or:\n    - authenticated_user: true\n", false, true, true},
		{"an email", "allow:\n  or:\n    - email:\n        is: alice@example.com\n", false, true, false},
		{"a user ID", "allow:\n  or:\n    - user: u-bob\n", false, false, true},
		{"a domain", "allow:\n  or:\n    - domain:\n        is: example.org\n", false, false, true},
		{"a group", "allow:\n  or:\n    - groups:\n        has: admins\n", false, true, false},
		{"in, read as the policy reads it", "allow:\n  or:\n    - email:\n        in: [bob@example.org]\n", false, false, true},
		{"an and of one criterion counts", "allow:\n  and:\n    - groups: eng\n", false, true, true},
		{"an and of two criteria is too complex, as in Pomerium", "allow:\n  and:\n    - groups: eng\n    - http_method: GET\n", false, false, false},
		{"a rule with not is too complex", "allow:\n  or:\n    - groups: eng\n  not:\n    - http_method: DELETE\n", false, false, false},
		{"deny rules are not looked at", "- allow:\n    or:\n      - groups: eng\n- deny:\n    or:\n      - email: bob@example.org\n", false, true, true},
		{"other criteria are not looked at", "allow:\n  or:\n    - http_path:\n        starts_with: /\n", false, false, false},
		{"a claim is not looked at, as in Pomerium", "allow:\n  or:\n    - claim/groups: eng\n", false, false, false},
		{"no policy lists nothing", "[]", false, false, false},
		{"a second rule may list it", "- allow:\n    and:\n      - groups: x\n      - groups: y\n- allow:\n    or:\n      - email: bob@example.org\n", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, tc.policy)
			for _, u := range []struct {
				name string
				user *User
				want bool
			}{{"anonymous", nil, tc.anonymous}, {"alice", alice, tc.alice}, {"bob", bob, tc.bob}} {
				if got := e.Lists(u.user); got != u.want {
					t.Errorf("%s: Lists = %v, want %v", u.name, got, u.want)
				}
			}
		})
	}
}
