package authz

import "testing"

// Pomerium's TestUser, TestEmails and TestDomains. The cases of an
// impersonating session (a Pomerium feature authz does not have) are left
// out; the user is the one the session is for.
func TestPomeriumUserEmailDomain(t *testing.T) {
	const user = "allow:\n  and:\n    - user:\n        is: USER_ID\n"
	const email = "allow:\n  and:\n    - email:\n        is: test@example.com\n"
	const domain = "allow:\n  and:\n    - domain:\n        is: example.com\n"
	runPomeriumCases(t, []pomeriumCase{
		{name: "user: no session", policy: user, want: ReasonUnauthenticated},
		{name: "user: by user id", policy: user, in: Input{User: session("USER_ID", "", nil)}, want: ReasonAllowed},
		{name: "email: no session", policy: email, want: ReasonUnauthenticated},
		{name: "email: by email", policy: email, in: Input{User: session("USER_ID", "test@example.com", nil)}, want: ReasonAllowed},
		{name: "email: by directory user", policy: email, in: Input{User: session("USER_ID", "test@example.com", nil)}, want: ReasonAllowed},
		{name: "domain: no session", policy: domain, want: ReasonUnauthenticated},
		{name: "domain: by domain", policy: domain, in: Input{User: session("USER_ID", "test@example.com", nil)}, want: ReasonAllowed},
		{name: "domain: by impersonate email", policy: domain, in: Input{User: session("USER_ID", "test1@example.com", nil)}, want: ReasonAllowed},
		{name: "domain: by directory user", policy: domain, in: Input{User: session("USER_ID", "user@example.com", nil)}, want: ReasonAllowed},
	})
}

// An anonymous request as Pomerium's Rego sees it: no session, so the
// email is "" (get_user_email's default), there is no user ID, and no
// domain (split("", "@")[1] is undefined). A criterion that does not match
// it gives user-unauthenticated, which not and nor keep when they invert
// the result.
func TestAnonymousUserAsPomerium(t *testing.T) {
	signedIn := Input{User: session("u-1", "bob@example.com", nil)}
	noEmail := Input{User: session("u-2", "", nil)}
	runPomeriumCases(t, []pomeriumCase{
		{name: "email not_in matches the empty email", policy: "allow: {or: [email: {not_in: [alice@example.com]}]}", want: ReasonAllowed},
		{name: "email not matches the empty email", policy: "allow: {or: [email: {not: alice@example.com}]}", want: ReasonAllowed},
		{name: "email is '' matches it too", policy: "allow: {or: [email: '']}", want: ReasonAllowed},
		{name: "email ends_with does not: sign in", policy: "allow: {or: [email: {ends_with: '@example.com'}]}", want: ReasonUnauthenticated},
		{name: "user not does not match: there is no user ID", policy: "allow: {or: [user: {not: u-1}]}", want: ReasonUnauthenticated},
		{name: "domain not does not match: there is no domain", policy: "allow: {or: [domain: {not: example.com}]}", want: ReasonUnauthenticated},
		{name: "domain of a user without an email never matches", policy: "allow: {or: [domain: {not: example.com}]}", in: noEmail, want: ReasonNotAllowed},
		{name: "domain of a user without an email, {}", policy: "allow: {or: [domain: {}]}", in: noEmail, want: ReasonNotAllowed},
		{name: "domain is what follows the @", policy: "allow: {or: [domain: example.com]}", in: signedIn, want: ReasonAllowed},
		{name: "not around email: the anonymous result inverted keeps its reason", policy: "allow: {not: [email: alice@example.com]}", want: ReasonUnauthenticated},
		{name: "not around email, signed in", policy: "allow: {not: [email: alice@example.com]}", in: signedIn, want: ReasonAllowed},
		{name: "nor around user", policy: "allow: {nor: [user: u-1]}", want: ReasonUnauthenticated},
		{name: "not around email not_in: it matched, so no reason", policy: "allow: {not: [email: {not_in: [x@example.com]}]}", want: ReasonNotAllowed},
	})
}
