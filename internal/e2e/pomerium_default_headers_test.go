package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// A Pomerium config.yaml with certificates of its own and no
// set_response_headers, run unchanged: the upstream's answer reaches the
// browser with Pomerium's default response headers, X-Frame-Options over
// the app's own value, and HSTS. The adapter used to leave them out.
func TestPomeriumDefaultResponseHeadersReachTheBrowser(t *testing.T) {
	dir := t.TempDir()
	serverCA := testpki.NewCA(t, "server root")
	certFile, keyFile := serverCA.Issue(t, testpki.Server("*.pomerium.test")).Write(t, dir, "wildcard")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "ALLOWALL") // the app's own, which Pomerium's default overrides
		fmt.Fprintln(w, "hello")
	}))
	t.Cleanup(up.Close)
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
certificate_file: %s
certificate_key_file: %s
routes:
  - from: https://app.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
  - from: https://framed.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
    set_response_headers:
      X-Frame-Options: DENY
`, httpsPort, testenv.FreePort(t), certFile, keyFile, up.URL, up.URL)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	ua := caddy.NewUserAgent(t, func(cfg *tls.Config) { cfg.RootCAs = roots })
	for host, frame := range map[string]string{"app.pomerium.test": "SAMEORIGIN", "framed.pomerium.test": "DENY"} {
		resp, body := ua.Get(t, ua.URL(host, "/"), nil)
		h := resp.Header
		if resp.StatusCode != 200 || body != "hello\n" {
			t.Fatalf("%s: %d %q", host, resp.StatusCode, body)
		}
		if got := h.Values("X-Frame-Options"); len(got) != 1 || got[0] != frame {
			t.Errorf("%s: X-Frame-Options %q, want %q alone", host, got, frame)
		}
		if h.Get("X-Xss-Protection") != "1; mode=block" || h.Get("Strict-Transport-Security") != "max-age=31536000; includeSubDomains; preload" {
			t.Errorf("%s: %v", host, h)
		}
	}
}
