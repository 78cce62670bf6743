package suggest

import "testing"

func TestClosest(t *testing.T) {
	words := []string{"email", "session-id", "request-id", "max_requests", "max_connections"}
	for _, c := range []struct{ name, want string }{
		{"emial", "email"},
		{"email", "email"},
		{"sesion-id", "session-id"},
		{"max_request", "max_requests"},
		{"max_conections", "max_connections"},
		{"zzz", ""},
		{"", ""},
		{"completely-different", ""},
	} {
		if got := Closest(c.name, words); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	if got := DidYouMean("emial", words); got != ` (did you mean "email"?)` {
		t.Errorf("DidYouMean: %q", got)
	}
	if got := DidYouMean("x", nil); got != "" {
		t.Errorf("DidYouMean with no words: %q", got)
	}
}
