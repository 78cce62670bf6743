package authz

import (
	"strings"
	"testing"
)

// Pomerium's TestClaim. Its claims are stored flattened into lists; an ID
// token's claim "Smith" is there ["Smith"], and authz takes either.
func TestPomeriumClaim(t *testing.T) {
	const bare = "allow:\n  and:\n    - claim/family_name: Smith\n"
	const has = "allow:\n  and:\n    - claim/family_name:\n        has: Smith\n"
	smith := map[string]any{"family_name": "Smith"}
	runPomeriumCases(t, []pomeriumCase{
		{name: "no session", policy: bare, want: ReasonUnauthenticated},
		{name: "no claim", policy: bare, in: Input{User: session("USER_ID", "", nil)}, want: ReasonNotAllowed},
		{name: "by session claim", policy: bare, in: Input{User: session("USER_ID", "test@example.com", smith)}, want: ReasonAllowed},
		{name: "by session claim, stored as a list", policy: bare,
			in: Input{User: session("USER_ID", "test@example.com", map[string]any{"family_name": []any{"Smith"}})}, want: ReasonAllowed},
		{name: "by session claim via has", policy: has, in: Input{User: session("USER_ID", "test@example.com", smith)}, want: ReasonAllowed},
		{name: "no claim via has", policy: has, in: Input{User: session("USER_ID", "test@example.com", nil)}, want: ReasonNotAllowed},
		{name: "by user claim", policy: bare, in: Input{User: session("USER_ID", "test@example.com", smith)}, want: ReasonAllowed},
		{name: "special keys", policy: "allow:\n  and:\n    - claim/example.com/key: value\n",
			in: Input{User: session("USER_ID", "test@example.com", map[string]any{"example.com/key": "value"})}, want: ReasonAllowed},
	})
}

// How Pomerium reads claims, from its Rego (object_get over claims
// flattened by identity.Claims.Flatten) and its string list matcher: the
// facts authz follows, and the one place it does not.
func TestClaimsAsPomeriumStoresThem(t *testing.T) {
	claims := map[string]any{
		"org":            map[string]any{"team": "blue", "site": map[string]any{"city": "Lyon"}},
		"email_verified": true,
		"level":          float64(3),
		"roles":          []any{"reader", "writer"},
		"nothing":        nil,
		"empty":          []any{},
	}
	user := Input{User: session("u", "u@example.com", claims)}
	runPomeriumCases(t, []pomeriumCase{
		{name: "a member of an object claim is named with dots", policy: "allow: {or: [claim/org.team: blue]}", in: user, want: ReasonAllowed},
		{name: "members of members too", policy: "allow: {or: [claim/org.site.city: Lyon]}", in: user, want: ReasonAllowed},
		{name: "an object claim is no value of its own", policy: "allow: {or: [claim/org: {exclude: blue}]}", in: user, want: ReasonAllowed},
		{name: "a boolean claim matches the boolean", policy: "allow: {or: [claim/email_verified: true]}", in: user, want: ReasonAllowed},
		{name: "a boolean claim does not match the string", policy: "allow: {or: [claim/email_verified: 'true']}", in: user, want: ReasonNotAllowed},
		{name: "a number claim matches the number", policy: "allow: {or: [claim/level: {is: 3}]}", in: user, want: ReasonAllowed},
		{name: "a number claim matches the same number written otherwise", policy: "allow: {or: [claim/level: 3.0]}", in: user, want: ReasonAllowed},
		{name: "a number claim does not match the string", policy: "allow: {or: [claim/level: '3']}", in: user, want: ReasonNotAllowed},
		{name: "a null claim is a list of one null", policy: "allow: {or: [claim/nothing: {is: null}]}", in: user, want: ReasonAllowed},
		{name: "is needs a list of exactly one", policy: "allow: {or: [claim/roles: {is: reader}]}", in: user, want: ReasonNotAllowed},
		{name: "an empty list claim has nothing", policy: "allow: {or: [claim/empty: {exclude: x}]}", in: user, want: ReasonAllowed},
		{name: "a missing claim is an empty list, which exclude matches", policy: "allow: {or: [claim/missing: {exclude: x}]}", in: user, want: ReasonAllowed},
		{name: "an anonymous request's claims are empty: exclude matches", policy: "allow: {or: [claim/roles: {exclude: admin}]}", want: ReasonAllowed},
		{name: "an anonymous request's claims are empty: has fails, so sign in", policy: "allow: {or: [claim/roles: {has: admin}]}", want: ReasonUnauthenticated},
		{name: "{} is no condition", policy: "allow: {or: [claim/anything: {}]}", want: ReasonAllowed},
		// Pomerium finds nothing for claim/org/team: its object_get turns
		// the slash into a path into claims that are flattened already.
		{name: "authz also reads a slash as a dot (Pomerium finds nothing)", policy: "allow: {or: [claim/org/team: blue]}", in: user, want: ReasonAllowed},
	})
}

func TestClaimNamesKeepTheObjectsTooOfDottedNames(t *testing.T) {
	p, err := Parse([]byte("allow: {or: [claim/org.team: x, claim/department: y, email: z]}"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.ClaimNames(), " "); got != "org.team org department" {
		t.Errorf("ClaimNames() = %s", got)
	}
}
