package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// Attack: a client sends its own X-Request-Id, such as the ID of another
// user's request it saw on a refusal page, so that the upstream's logs
// file its request under that ID. Pomerium's Envoy (use_remote_address,
// external request IDs not preserved) replaces the header with its own
// request ID, the one its logs show, and upstreams correlate by it. Under
// --adapter pomerium the upstream must get Caddy's request ID, the
// access log's request_id, never the client's; a route's own
// set_request_headers for the header still wins, as Pomerium's does.
func TestPomeriumUpstreamRequestIDNotForged(t *testing.T) {
	up := echoUpstream(t)
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
routes:
  - from: https://public.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
  - from: https://set.pomerium.test
    to: %[3]s
    allow_public_unauthenticated_access: true
    set_request_headers:
      X-Request-Id: fixed-by-config
`, httpsPort, testenv.FreePort(t), up)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)

	trace := fmt.Sprintf("reqid-%d", httpsPort)
	r := caddy.Get(t, "public.pomerium.test", "/", http.Header{"X-Request-Id": {"forged-id"}, "User-Agent": {trace}})
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	got := echoed(t, r.Body)["X-Request-Id"]
	if len(got) != 1 || !uuidRE.MatchString(got[0]) {
		t.Fatalf("the upstream got X-Request-Id %q, want Caddy's request ID (the client sent forged-id)", got)
	}
	access := findLines(t, caddy.Log, func(l logLine) bool {
		return l.str("logger") == "http.log.access.pomerium" && fmt.Sprint(l.object("request").object("headers")["User-Agent"]) == "["+trace+"]"
	})
	if id := access[0].str("request_id"); id != got[0] {
		t.Errorf("the upstream got X-Request-Id %s, the access log says request_id %s: they should name one request", got[0], id)
	}

	// Without a header from the client, the upstream still gets one.
	r = caddy.Get(t, "public.pomerium.test", "/", nil)
	if got := echoed(t, r.Body)["X-Request-Id"]; r.Status != 200 || len(got) != 1 || !uuidRE.MatchString(got[0]) {
		t.Errorf("%d: the upstream got X-Request-Id %q, want Caddy's request ID", r.Status, got)
	}

	r = caddy.Get(t, "set.pomerium.test", "/", http.Header{"X-Request-Id": {"forged-id"}})
	if got := echoed(t, r.Body)["X-Request-Id"]; r.Status != 200 || len(got) != 1 || got[0] != "fixed-by-config" {
		t.Errorf("%d: the upstream got X-Request-Id %q, want the route's set_request_headers", r.Status, got)
	}
}
