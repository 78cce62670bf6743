package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// Pomerium's header options, seen by a real HTTP upstream that echoes the
// request it got.
func TestRequestHeaderOptions(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"host": r.Host, "header": r.Header})
	}))
	defer echo.Close()
	upstream := strings.TrimPrefix(echo.URL, "http://")
	to := "to " + echo.URL

	caddy := testenv.StartCaddy(t, "",
		site("default-host.test", to, "allow_public_unauthenticated_access")+
			site("preserve-host.test", to, "preserve_host_header", "allow_public_unauthenticated_access")+
			site("headers.test", to, "set_request_headers X-Set yes", "remove_request_headers X-Remove", "header_up X-Passthrough kept", "allow_public_unauthenticated_access"))

	get := func(host string, h http.Header) (got struct {
		Host   string
		Header http.Header
	}) {
		t.Helper()
		r := caddy.Get(t, host, "/", h)
		if r.Status != 200 {
			t.Fatalf("%s: status %d: %s", host, r.Status, r.Body)
		}
		if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
			t.Fatalf("%s: %v: %s", host, err, r.Body)
		}
		return got
	}

	t.Run("the upstream gets its own host by default", func(t *testing.T) {
		if got := get("default-host.test", nil); got.Host != upstream {
			t.Errorf("Host = %q, want %q", got.Host, upstream)
		}
	})
	t.Run("preserve_host_header passes the client's host", func(t *testing.T) {
		if got := get("preserve-host.test", nil); got.Host != "preserve-host.test" {
			t.Errorf("Host = %q, want preserve-host.test", got.Host)
		}
	})
	t.Run("set, remove and passthrough headers", func(t *testing.T) {
		got := get("headers.test", http.Header{"X-Remove": {"secret"}, "X-Set": {"client-value"}})
		if v := got.Header.Get("X-Set"); v != "yes" {
			t.Errorf("X-Set = %q, want yes", v)
		}
		if v := got.Header.Get("X-Remove"); v != "" {
			t.Errorf("X-Remove reached the upstream: %q", v)
		}
		if v := got.Header.Get("X-Passthrough"); v != "kept" {
			t.Errorf("reverse_proxy's header_up was lost: X-Passthrough = %q", v)
		}
	})
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
