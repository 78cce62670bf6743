package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// A Pomerium config.yaml whose routes only guard their paths if the
// adapter matches as Pomerium does (issue 18): the top-level policy before
// routes, regex before prefix, a regex matching the whole path, WebSockets
// off unless a route turns them on, and the health checks answered first,
// without sign-in or a client certificate. No IdP is configured, so a
// guarded route refuses everyone with 403; downstream mTLS under its
// default enforcement refuses requests without a certificate with 495.
func TestPomeriumConfigRouteOrder(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewCA(t, "downstream root")
	caFile := root.WriteCert(t, dir, "rootCA.pem")
	pair, err := tls.LoadX509KeyPair(root.Issue(t, testpki.Client("alice")).Write(t, dir, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	upstream := echoUpstream(t)
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
downstream_mtls:
  ca_file: %s
policy:
  - from: https://app.pomerium.test
    prefix: /admin
    to: %[4]s
    allowed_users: [alice@example.com]
routes:
  - from: https://app.pomerium.test
    regex: /static/.*
    to: %[4]s
    allow_public_unauthenticated_access: true
  - from: https://app.pomerium.test
    prefix: /
    regex: ^/health$
    to: %[4]s
    allow_public_unauthenticated_access: true
  - from: https://app.pomerium.test
    to: %[4]s
    allowed_users: [alice@example.com]
  - from: https://ws.pomerium.test
    to: %[4]s
    allow_public_unauthenticated_access: true
  - from: https://ws-on.pomerium.test
    to: %[4]s
    allow_public_unauthenticated_access: true
    allow_websockets: true
`, httpsPort, testenv.FreePort(t), caFile, upstream)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	caddy.WaitCertificates(t, "app.pomerium.test", "ws.pomerium.test", "ws-on.pomerium.test")
	withCert := caddy.Client(t, func(cfg *tls.Config) { cfg.Certificates = []tls.Certificate{pair} })
	noCert := caddy.Client(t)

	do := func(client *http.Client, method, host, path string, header http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, fmt.Sprintf("https://%s%s", host, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s https://%s%s: %v", method, host, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	for _, c := range []struct {
		what, method, host, path string
		client                   *http.Client
		status                   int
		body                     string
	}{
		{"the policy route guards /admin before the routes let anyone in", "GET", "app.pomerium.test", "/admin/users", withCert, 403, ""},
		{"a public regex route", "GET", "app.pomerium.test", "/static/app.js", withCert, 200, ""},
		{"a public regex matches the whole path, not a part", "GET", "app.pomerium.test", "/private/static/x", withCert, 403, ""},
		{"regex decides over prefix", "GET", "app.pomerium.test", "/health", withCert, 200, ""},
		{"prefix / beside a regex opens nothing", "GET", "app.pomerium.test", "/other", withCert, 403, ""},
		{"a public route without a client certificate", "GET", "app.pomerium.test", "/static/app.js", noCert, 495, ""},
		{"the health check, without a client certificate or sign-in", "GET", "app.pomerium.test", "/healthz", noCert, 200, "OK\n"},
		{"ping, on every host", "GET", "ws.pomerium.test", "/ping", noCert, 200, "OK\n"},
		{"the health check takes only GET and HEAD", "POST", "app.pomerium.test", "/ping", noCert, 405, ""},
	} {
		status, body := do(c.client, c.method, c.host, c.path, nil)
		if status != c.status || c.body != "" && body != c.body {
			t.Errorf("%s: %s %s%s got %d %q, want %d", c.what, c.method, c.host, c.path, status, oneLine(body), c.status)
		}
	}

	// Go's client speaks HTTP/1.1 here (a custom dialer and TLS config),
	// so the Upgrade header goes through as a browser sends it.
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	if status, body := do(withCert, "GET", "ws.pomerium.test", "/", upgrade); status != 400 || !strings.Contains(body, "allow_websockets") {
		t.Errorf("a WebSocket upgrade to a route without allow_websockets: %d %q, want 400", status, oneLine(body))
	}
	if status, body := do(withCert, "GET", "ws-on.pomerium.test", "/", upgrade); status == 400 {
		t.Errorf("a WebSocket upgrade to a route with allow_websockets: true: %d %q", status, oneLine(body))
	}
	if status, _ := do(withCert, "GET", "ws.pomerium.test", "/", nil); status != 200 {
		t.Errorf("a plain request to the route without allow_websockets: %d, want 200", status)
	}
}
