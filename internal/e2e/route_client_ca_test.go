package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Issue 14 part 2: Pomerium's per-route client CAs
// (tls_downstream_client_ca_file, deprecated but widely used) beside a
// global downstream_mtls that holds only a CRL, through the pomerium
// adapter. Two routes of one host, each with its own CA (Pomerium's
// acceptance case TestMultipleDownstreamClientCAs): a certificate of one
// route's CA must not open the other route, not even on a connection that
// the first route accepted; a certificate in the global CRL is refused.
func TestPomeriumPerRouteClientCAs(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "route one CA"), testpki.NewCA(t, "route two CA")
	ca1File, ca2File := ca1.WriteCert(t, dir, "ca1.pem"), ca2.WriteCert(t, dir, "ca2.pem")
	certs := map[string]*testpki.Cert{
		"cert1":    ca1.Issue(t, testpki.Client("one")),
		"cert2":    ca2.Issue(t, testpki.Client("two")),
		"revoked1": ca1.Issue(t, testpki.Client("revoked one")),
		"revoked2": ca2.Issue(t, testpki.Client("revoked two")),
	}
	crlFile := filepath.Join(dir, "crl.pem")
	crls := append(ca1.CurrentCRL(t, certs["revoked1"].Cert), ca2.CurrentCRL(t, certs["revoked2"].Cert)...)
	if err := os.WriteFile(crlFile, crls, 0o600); err != nil {
		t.Fatal(err)
	}
	serverCA := testpki.NewCA(t, "server root")
	certFile, keyFile := serverCA.Issue(t, testpki.Server("*.pomerium.test")).Write(t, dir, "server")
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)

	up := echoUpstream(t)
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
certificate_file: %s
certificate_key_file: %s
downstream_mtls:
  crl_file: %s
routes:
  - from: https://cas.pomerium.test
    prefix: /ca1
    to: %s
    tls_downstream_client_ca_file: %s
    allow_public_unauthenticated_access: true
  - from: https://cas.pomerium.test
    prefix: /ca2
    to: %s
    tls_downstream_client_ca_file: %s
    allow_public_unauthenticated_access: true
`, httpsPort, testenv.FreePort(t), certFile, keyFile, crlFile, up, ca1File, up, ca2File)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)

	// client presents the certificate named ("" for none) on every
	// connection, whatever CAs the server names, as curl does.
	client := func(name string) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if c := certs[name]; c != nil {
			cf, kf := c.Write(t, dir, name)
			pair, err := tls.LoadX509KeyPair(cf, kf)
			if err != nil {
				t.Fatal(err)
			}
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		c := &http.Client{Transport: &http.Transport{DialContext: caddy.DialContext, TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	get := func(t *testing.T, c *http.Client, path string) testenv.Response {
		t.Helper()
		r, err := caddy.Do(t, c, "cas.pomerium.test", path, http.Header{"Accept": {"application/json"}})
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return r
	}

	for _, c := range []struct {
		name, cert, path string
		status           int
		detail           string // of a 495
	}{
		{"cert1 on route one", "cert1", "/ca1", 200, ""},
		{"cert2 on route two", "cert2", "/ca2", 200, ""},
		{"cert1 on route two", "cert1", "/ca2", 495, "unknown-authority"},
		{"cert2 on route one", "cert2", "/ca1", 495, "unknown-authority"},
		{"no certificate on route one", "", "/ca1", 495, ""},
		{"no certificate on route two", "", "/ca2", 495, ""},
		{"revoked by the global CRL on route one", "revoked1", "/ca1", 495, "revoked"},
		{"revoked by the global CRL on route two", "revoked2", "/ca2", 495, "revoked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, client(c.cert), c.path)
			if r.Status != c.status {
				t.Fatalf("got %d %s, want %d", r.Status, oneLine(r.Body), c.status)
			}
			if c.status != 495 {
				return
			}
			var body struct{ Reason, Detail string }
			want := "invalid-client-certificate"
			if c.detail == "" {
				want = "client-certificate-required"
			}
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body.Reason != want || body.Detail != c.detail {
				t.Errorf("got %s, want the reason %s (%s)", oneLine(r.Body), want, c.detail)
			}
		})
	}

	t.Run("the handshake names both routes' CAs", func(t *testing.T) {
		out := sClient(t, httpsPort, "cas.pomerium.test")
		if !strings.Contains(out, "route one CA") || !strings.Contains(out, "route two CA") {
			t.Errorf("the certificate request does not name both routes' CAs:\n%s", out)
		}
	})

	// A browser offers only certificates whose issuer the handshake
	// names: the handshake for the host must name both routes' CAs, or
	// Chromium never sends cert2 to route two (it did not: 495, none sent).
	t.Run("Chromium with cert2 opens route two", func(t *testing.T) {
		cf, kf := certs["cert2"].Write(t, dir, "chromium")
		p12 := filepath.Join(dir, "chromium.p12")
		if out, err := exec.Command("openssl", "pkcs12", "-export", "-in", cf, "-inkey", kf,
			"-out", p12, "-passout", "pass:changeit", "-name", "two").CombinedOutput(); err != nil {
			t.Fatalf("openssl pkcs12: %v\n%s", err, out)
		}
		browser := testenv.StartChromium(t, testenv.ChromiumClientCertificate(t, p12, "changeit", "[*.]cas.pomerium.test"))
		browser.Navigate(fmt.Sprintf("https://cas.pomerium.test:%d/ca2", httpsPort))
		browser.WaitFor(`document.body && document.body.innerText.length > 0`)
		if body := browser.Eval(`document.body.innerText`); !strings.Contains(body, "User-Agent") {
			t.Errorf("Chromium with cert2 on route two got:\n%s", body)
		}
	})

	// One connection, accepted by route one, then used for route two.
	t.Run("cert1 on one connection, route one then route two", func(t *testing.T) {
		c := client("cert1")
		if r := get(t, c, "/ca1"); r.Status != 200 {
			t.Fatalf("/ca1: %d %s", r.Status, oneLine(r.Body))
		}
		if r := get(t, c, "/ca2"); r.Status != 495 {
			t.Errorf("/ca2 on the connection route one accepted: %d %s, want 495", r.Status, oneLine(r.Body))
		}
	})

	// Under reject_connection the handshake cannot verify against one
	// route's CA (route two would be closed to its own certificates):
	// any certificate passes it, and each route's handler refuses.
	t.Run("reject_connection", func(t *testing.T) {
		port := testenv.FreePort(t)
		reject := strings.Replace(strings.Replace(config, fmt.Sprintf("address: :%d", httpsPort), fmt.Sprintf("address: :%d", port), 1),
			"downstream_mtls:\n", "downstream_mtls:\n  enforcement: reject_connection\n", 1)
		caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", reject, port)
		for _, c := range []struct {
			cert, path string
			status     int // 0: refused, by the handshake or with 495
		}{{"cert1", "/ca1", 200}, {"cert2", "/ca2", 200}, {"cert1", "/ca2", 0}, {"cert2", "/ca1", 0}, {"", "/ca2", 0}} {
			cfg := &tls.Config{RootCAs: roots}
			if cert := certs[c.cert]; cert != nil {
				cf, kf := cert.Write(t, dir, c.cert)
				pair, err := tls.LoadX509KeyPair(cf, kf)
				if err != nil {
					t.Fatal(err)
				}
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
			}
			hc := &http.Client{Transport: &http.Transport{DialContext: caddy.DialContext, TLSClientConfig: cfg}}
			r, err := caddy.Do(t, hc, "cas.pomerium.test", c.path, nil)
			hc.CloseIdleConnections()
			if c.status == 200 && (err != nil || r.Status != 200) || c.status == 0 && err == nil && r.Status != 495 {
				t.Errorf("%q on %s: %d %v, want %d (0: refused)", c.cert, c.path, r.Status, err, c.status)
			}
		}
	})
}

// The same two routes with sign-in: the host's own endpoints
// (/.pomerium/callback, ...) belong to no route, and must take a
// certificate of either route's CA, or a user of route two could never
// finish signing in.
func TestPomeriumPerRouteClientCAsSignIn(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "route one CA"), testpki.NewCA(t, "route two CA")
	ca1File, ca2File := ca1.WriteCert(t, dir, "ca1.pem"), ca2.WriteCert(t, dir, "ca2.pem")
	serverCA := testpki.NewCA(t, "server root")
	certFile, keyFile := serverCA.Issue(t, testpki.Server("*.pomerium.test")).Write(t, dir, "server")
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	httpsPort := testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice},
		RedirectURIs: []string{fmt.Sprintf("https://cas.pomerium.test:%d/.pomerium/callback", httpsPort)}})
	up := echoUpstream(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
certificate_file: %s
certificate_key_file: %s
idp_provider: oidc
idp_provider_url: %s
idp_client_id: caddy
idp_client_secret: caddy-secret
cookie_secret: %s
routes:
  - from: https://cas.pomerium.test
    prefix: /ca1
    to: %s
    tls_downstream_client_ca_file: %s
    allow_any_authenticated_user: true
  - from: https://cas.pomerium.test
    prefix: /ca2
    to: %s
    tls_downstream_client_ca_file: %s
    allow_any_authenticated_user: true
`, httpsPort, testenv.FreePort(t), certFile, keyFile, dex.Issuer, randomSecret(t), up, ca1File, up, ca2File)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	for name, c := range map[string]struct {
		ca   *testpki.CA
		path string
	}{"route one": {ca1, "/ca1"}, "route two": {ca2, "/ca2"}} {
		t.Run("a user of "+name+" signs in", func(t *testing.T) {
			cf, kf := c.ca.Issue(t, testpki.Client("alice")).Write(t, dir, c.path[1:])
			pair, err := tls.LoadX509KeyPair(cf, kf)
			if err != nil {
				t.Fatal(err)
			}
			ua := caddy.NewUserAgent(t, func(cfg *tls.Config) {
				cfg.RootCAs = roots
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
			})
			resp, body := ua.SignIn(t, ua.URL("cas.pomerium.test", c.path), alice.Email, alice.Password)
			if resp.StatusCode != 200 || !strings.Contains(body, "User-Agent") {
				t.Errorf("signing in on %s: %d at %s: %s", c.path, resp.StatusCode, resp.Request.URL, oneLine(body))
			}
		})
	}
}
