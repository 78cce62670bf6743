package module

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/authn"
)

// A route to the Kubernetes API: the token and the user to impersonate go
// upstream for a signed-in user only, and nothing the client sent as
// Impersonate-* or Authorization passes.
func TestKubernetesHeaders(t *testing.T) {
	forged := func() http.Header {
		return http.Header{"Impersonate-User": {"system:admin"}, "Impersonate-Group": {"system:masters"},
			"Impersonate-Extra-Scopes": {"x"}, "Impersonate-Uid": {"0"}, "Authorization": {"Bearer client"}}
	}
	alice := &authn.Session{Email: "alice@example.com", Groups: []string{"admins", "eng", "bad\ngroup"}}
	for _, c := range []struct {
		name  string
		token string
		s     *authn.Session
		want  http.Header
	}{
		{"a signed-in user", "sa-token", alice, http.Header{"Authorization": {"Bearer sa-token"},
			"Impersonate-User": {"alice@example.com"}, "Impersonate-Group": {"admins", "eng"}}},
		{"no user: no token, not the service account's rights", "sa-token", nil, http.Header{}},
		{"a user without an email", "sa-token", &authn.Session{Subject: "u"}, http.Header{}},
		{"no token (file unreadable)", "", alice, http.Header{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := forged()
			setKubernetesHeaders(h, c.token, c.s)
			if len(h) != len(c.want) {
				t.Fatalf("headers %v, want %v", h, c.want)
			}
			for k, v := range c.want {
				if !slices.Equal(h[k], v) {
					t.Errorf("%s: %v, want %v", k, h[k], v)
				}
			}
		})
	}
}

// The token file is read again when it changes (projected tokens rotate).
func TestKubernetesTokenFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := newKubernetesToken("", f)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := k.get(); tok != "one" {
		t.Fatalf("token %q", tok)
	}
	if err := os.WriteFile(f, []byte("two-rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(f, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if tok, _ := k.get(); tok != "two-rotated" {
		t.Errorf("after rotation: %q", tok)
	}
	if _, err := newKubernetesToken("a", f); err == nil {
		t.Error("both set: no error")
	}
	if _, err := newKubernetesToken("", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file: no error")
	}
	if k, err := newKubernetesToken("", ""); k != nil || err != nil {
		t.Errorf("none: %v %v", k, err)
	}
}
