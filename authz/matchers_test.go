package authz

import "testing"

// Pomerium's TestStringMatcher and TestStringListMatcher, which say what
// Rego each operator becomes, as what each decides: a string matcher on
// the email "test@example.com", a list matcher on a claim.
func TestPomeriumMatchers(t *testing.T) {
	user := Input{User: session("u", "test@example.com", map[string]any{
		"example": []any{"test", "other"}, "flag": []any{true}, "n": []any{float64(1234)}, "null": []any{nil}})}
	email := func(m string) string { return "allow: {or: [email: " + m + "]}" }
	claim := func(m string) string { return "allow: {or: [claim/example: " + m + "]}" }
	runPomeriumCases(t, []pomeriumCase{
		{name: "string contains", policy: email("{contains: test}"), in: user, want: ReasonAllowed},
		{name: "string ends_with", policy: email("{ends_with: example.com}"), in: user, want: ReasonAllowed},
		{name: "string is", policy: email("{is: test@example.com}"), in: user, want: ReasonAllowed},
		{name: "string not", policy: email("{not: test@example.com}"), in: user, want: ReasonNotAllowed},
		{name: "string starts_with", policy: email("{starts_with: test}"), in: user, want: ReasonAllowed},
		{name: "string: a bare string is is", policy: email("test@example.com"), in: user, want: ReasonAllowed},
		{name: "string in", policy: email("{in: [value1, test@example.com, value3]}"), in: user, want: ReasonAllowed},
		{name: "string not_in", policy: email("{not_in: [value1, test@example.com, value3]}"), in: user, want: ReasonNotAllowed},
		{name: "string in with object", policy: email("{in: [admin, user]}"), in: user, want: ReasonNotAllowed},
		{name: "string: every operator must hold", policy: email("{starts_with: test, ends_with: .org}"), in: user, want: ReasonNotAllowed},
		{name: "list has", policy: claim("{has: test}"), in: user, want: ReasonAllowed},
		{name: "list is: needs exactly one value", policy: claim("{is: test}"), in: user, want: ReasonNotAllowed},
		{name: "list exclude", policy: claim("{exclude: test}"), in: user, want: ReasonNotAllowed},
		{name: "list: a bare string is has", policy: claim("test"), in: user, want: ReasonAllowed},
		{name: "list boolean", policy: "allow: {or: [claim/flag: true]}", in: user, want: ReasonAllowed},
		{name: "list number", policy: "allow: {or: [claim/n: 1234]}", in: user, want: ReasonAllowed},
		{name: "list null", policy: "allow: {or: [claim/null: null]}", in: user, want: ReasonAllowed},
		{name: "list: a string is not the number", policy: "allow: {or: [claim/n: '1234']}", in: user, want: ReasonNotAllowed},
		// Pomerium accepts values of any type in a string matcher (they
		// never match a string) and wants a list after in; authz refuses
		// the first and takes one value as a list of one.
		{name: "string boolean (Pomerium: never matches)", policy: email("true"), wantErr: "expected a string"},
		{name: "string number (Pomerium: never matches)", policy: email("{is: 1234}"), wantErr: "is: expected a string, got 1234 (quote it)"},
		{name: "string null (Pomerium: never matches)", policy: email("null"), wantErr: "expected a string"},
		{name: "in with non-array value (Pomerium: an error)", policy: email("{in: test@example.com}"), in: user, want: ReasonAllowed},
		{name: "not_in with non-array value (Pomerium: an error)", policy: email("{not_in: test@example.com}"), in: user, want: ReasonNotAllowed},
	})
}
