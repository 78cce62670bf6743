package module

import (
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestClaimHeaderValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"a string is as it is", "alice@example.com", "alice@example.com"},
		{"a list is joined with commas", []string{"admins", "eng"}, "admins,eng"},
		{"an item with a comma stays one item", []string{"x,admins", "eng"}, `"x,admins",eng`},
		{"an item with a quote is quoted and escaped", []any{`a"b`, "c"}, `"a\"b",c`},
		{"numbers and booleans print as they are", []any{1, true}, "1,true"},
		{"a boolean claim", true, "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := claimString(tc.v); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// Claim values go through httpguts.ValidHeaderFieldValue, net/http's own
// rule, before they are written into a header.
func TestHeaderValuesWithControlCharactersAreRefused(t *testing.T) {
	for v, ok := range map[string]bool{
		"plain":                  true,
		"with\ttab":              true,
		"evil\r\nX-Admin: true":  false,
		"line\nfeed":             false,
		"nul\x00":                false,
		"del\x7f":                false,
		"ünïcode is fine, as is": true,
	} {
		if httpguts.ValidHeaderFieldValue(v) != ok {
			t.Errorf("ValidHeaderFieldValue(%q) = %v, want %v", v, !ok, ok)
		}
	}
}
