// Package e2e runs Caddy built with caddy-iap against real peers: openssl
// s_server as the upstream, and real HTTP clients.
package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// pki is the guide's set of certificates: a private root, the upstream's
// server certificate for openssl.localhost, Caddy's client certificate, and
// the same from a CA nobody trusts.
type pki struct {
	dir                          string
	ca, otherCA                  *testpki.CA
	caFile, otherCAFile          string
	serverCert, serverKey        string
	client                       *testpki.Cert
	clientCert, clientKey        string
	otherClientCert, otherClient string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	p := pki{dir: t.TempDir()}
	p.ca = testpki.NewCA(t, "caddy-iap test root")
	p.otherCA = testpki.NewCA(t, "untrusted root")
	p.caFile = p.ca.WriteCert(t, p.dir, "rootCA.pem")
	p.otherCAFile = p.otherCA.WriteCert(t, p.dir, "otherCA.pem")
	p.serverCert, p.serverKey = p.ca.Issue(t, testpki.Server("openssl.localhost")).Write(t, p.dir, "openssl.localhost")
	p.client = p.ca.Issue(t, testpki.Client("pomerium@localhost"))
	p.clientCert, p.clientKey = p.client.Write(t, p.dir, "pomerium@localhost-client")
	p.otherClientCert, p.otherClient = p.otherCA.Issue(t, testpki.Client("stranger@localhost")).Write(t, p.dir, "stranger-client")
	return p
}

// site is a site block with one iap_route made of the given lines.
func site(host string, lines ...string) string {
	return fmt.Sprintf("%s {\n\ttls internal\n\tiap_route {\n\t\tname %s\n\t\t%s\n\t}\n}\n", host, host, strings.Join(lines, "\n\t\t"))
}

// upstreamCase is one route and what a request through it must get.
type upstreamCase struct {
	host       string
	lines      []string
	wantStatus int
	wantBody   []string // substrings of the body
	wantCause  string   // the cause logged for a 502
}

// runCases starts one Caddy with a site per case and checks each.
func runCases(t *testing.T, globals string, cases []upstreamCase) *testenv.Caddy {
	t.Helper()
	var sites strings.Builder
	for _, c := range cases {
		sites.WriteString(site(c.host, c.lines...))
	}
	caddy := testenv.StartCaddy(t, globals, sites.String())
	for _, c := range cases {
		t.Run(c.host, func(t *testing.T) {
			resp := caddy.Get(t, c.host, "/", nil)
			if resp.Status != c.wantStatus {
				t.Fatalf("status = %d, want %d; body:\n%s", resp.Status, c.wantStatus, resp.Body)
			}
			for _, s := range c.wantBody {
				if !strings.Contains(resp.Body, s) {
					t.Errorf("body lacks %q:\n%s", s, resp.Body)
				}
			}
			if c.wantStatus == http.StatusBadGateway {
				if resp.Body != "" {
					t.Errorf("a 502 must not carry upstream TLS detail, got body %q", resp.Body)
				}
				want := fmt.Sprintf(`"route":%q`, c.host)
				if !caddy.WaitLog(want) || !strings.Contains(logLinesWith(caddy.Log(), want), fmt.Sprintf(`"cause":%q`, c.wantCause)) {
					t.Errorf("log lacks route %s with cause %q:\n%s", c.host, c.wantCause, logLinesWith(caddy.Log(), "iap"))
				}
			}
		})
	}
	return caddy
}

func logLinesWith(log, s string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func b64File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// The guide's first half: Caddy verifies the upstream's certificate against
// a custom CA, under the name set by tls_upstream_server_name.
func TestUpstreamServerVerification(t *testing.T) {
	p := newPKI(t)
	up := testenv.StartSServer(t, p.serverCert, p.serverKey)
	to := "to https://" + up.Addr()
	s_serverPage := []string{"Ciphers supported in s_server binary", "no client certificate available"}

	caddy := runCases(t, "", []upstreamCase{
		{"custom-ca-and-server-name.test", []string{to, "tls_upstream_server_name openssl.localhost", "tls_custom_ca_file " + p.caFile, "allow_public_unauthenticated_access"}, 200, s_serverPage, ""},
		{"inline-custom-ca.test", []string{to, "tls_upstream_server_name openssl.localhost", "tls_custom_ca " + b64File(t, p.caFile), "allow_public_unauthenticated_access"}, 200, s_serverPage, ""},
		{"ca-file-wins-over-inline.test", []string{to, "tls_upstream_server_name openssl.localhost", "tls_custom_ca " + b64File(t, p.otherCAFile), "tls_custom_ca_file " + p.caFile, "allow_public_unauthenticated_access"}, 200, s_serverPage, ""},
		{"wrong-ca.test", []string{to, "tls_upstream_server_name openssl.localhost", "tls_custom_ca_file " + p.otherCAFile, "allow_public_unauthenticated_access"}, 502, nil, "unknown-authority"},
		{"system-roots-only.test", []string{to, "tls_upstream_server_name openssl.localhost", "allow_public_unauthenticated_access"}, 502, nil, "unknown-authority"},
		{"wrong-server-name.test", []string{to, "tls_custom_ca_file " + p.caFile, "allow_public_unauthenticated_access"}, 502, nil, "name-mismatch"},
		{"skip-verify.test", []string{to, "tls_skip_verify", "allow_public_unauthenticated_access"}, 200, s_serverPage, ""},
		{"server-name-alone.test", []string{to, "tls_server_name openssl.localhost", "tls_custom_ca_file " + p.caFile, "allow_public_unauthenticated_access"}, 200, s_serverPage, ""},
		{"upstream-server-name-wins.test", []string{to, "tls_server_name wrong.example", "tls_upstream_server_name openssl.localhost", "tls_custom_ca_file " + p.caFile, "allow_public_unauthenticated_access"}, 200, s_serverPage, ""},
		{"server-name-loses.test", []string{to, "tls_server_name openssl.localhost", "tls_upstream_server_name wrong.example", "tls_custom_ca_file " + p.caFile, "allow_public_unauthenticated_access"}, 502, nil, "name-mismatch"},
	})
	if !strings.Contains(caddy.Log(), "tls_skip_verify is on") {
		t.Errorf("tls_skip_verify logged no warning:\n%s", caddy.Log())
	}
}

// The guide's second half: the upstream requires a client certificate
// (s_server -Verify 1), and Caddy presents one from files or inline.
func TestUpstreamClientCertificate(t *testing.T) {
	p := newPKI(t)
	// -verifyCAfile, unlike -CAfile, sends no CA names, so Caddy presents
	// even a certificate the upstream will refuse.
	up := testenv.StartSServer(t, p.serverCert, p.serverKey, "-Verify", "1", "-verifyCAfile", p.caFile, "-verify_return_error")
	base := []string{"to https://" + up.Addr(), "tls_upstream_server_name openssl.localhost", "tls_custom_ca_file " + p.caFile, "allow_public_unauthenticated_access"}
	with := func(lines ...string) []string { return append(append([]string{}, base...), lines...) }
	inlineCert, inlineKey := p.client.Base64()
	shown := []string{"Client certificate", "pomerium@localhost"}

	runCases(t, "", []upstreamCase{
		{"no-client-cert.test", with(), 502, nil, "client-certificate-required"},
		{"client-cert-files.test", with("tls_client_cert_file "+p.clientCert, "tls_client_key_file "+p.clientKey), 200, shown, ""},
		{"client-cert-inline.test", with("tls_client_cert "+inlineCert, "tls_client_key "+inlineKey), 200, shown, ""},
		{"inline-pair-wins.test", with("tls_client_cert "+inlineCert, "tls_client_key "+inlineKey, "tls_client_cert_file "+p.otherClientCert, "tls_client_key_file "+p.otherClient), 200, shown, ""},
		{"untrusted-client-cert.test", with("tls_client_cert_file "+p.otherClientCert, "tls_client_key_file "+p.otherClient), 502, nil, "client-certificate-rejected"},
	})
}

// Replacing the client certificate and key files on disk takes effect on the
// next new upstream connection (s_server -www closes each one), with no
// reload: beyond Pomerium and Caddy, which load the pair once.
func TestUpstreamClientCertificateRotation(t *testing.T) {
	p := newPKI(t)
	up := testenv.StartSServer(t, p.serverCert, p.serverKey, "-Verify", "1", "-verifyCAfile", p.caFile, "-verify_return_error")
	certFile, keyFile := p.client.Write(t, t.TempDir(), "rotating")
	caddy := testenv.StartCaddy(t, "", site("rotation.test", "to https://"+up.Addr(), "tls_upstream_server_name openssl.localhost",
		"tls_custom_ca_file "+p.caFile, "tls_client_cert_file "+certFile, "tls_client_key_file "+keyFile, "allow_public_unauthenticated_access"))
	presents := func(cn string) {
		t.Helper()
		r := caddy.Get(t, "rotation.test", "/", nil)
		if r.Status != 200 || !strings.Contains(r.Body, "CN=") {
			t.Fatalf("status %d, body:\n%s", r.Status, r.Body)
		}
		if !strings.Contains(r.Body, "CN="+cn) && !strings.Contains(r.Body, "CN = "+cn) {
			t.Errorf("the upstream saw another certificate than %s:\n%s", cn, logLinesWith(r.Body, "CN"))
		}
	}
	presents("pomerium@localhost")

	next := p.ca.Issue(t, testpki.Client("rotated@localhost"))
	// The certificate alone: it does not match the old key, so the old pair
	// stays in use.
	if err := os.WriteFile(certFile, next.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	presents("pomerium@localhost")
	if !caddy.WaitLog("do not load; keeping the previous certificate") {
		t.Errorf("the half-rotated pair was not logged:\n%s", logLinesWith(caddy.Log(), "client certificate"))
	}
	if err := os.WriteFile(keyFile, next.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	presents("rotated@localhost")
	if !caddy.WaitLog("upstream client certificate reloaded") {
		t.Errorf("the rotation was not logged:\n%s", logLinesWith(caddy.Log(), "client certificate"))
	}
}

// tls_upstream_allow_renegotiation lets a TLS 1.2 upstream renegotiate the
// connection, as Apache does to ask for a client certificate on one path.
func TestUpstreamRenegotiation(t *testing.T) {
	p := newPKI(t)
	up := testenv.StartApache(t, p.serverCert, p.serverKey, p.caFile)
	base := []string{"to https://" + up.Addr(), "tls_upstream_server_name openssl.localhost", "tls_custom_ca_file " + p.caFile,
		"tls_client_cert_file " + p.clientCert, "tls_client_key_file " + p.clientKey, "allow_public_unauthenticated_access"}
	caddy := testenv.StartCaddy(t, "",
		site("reneg-off.test", base...)+
			site("reneg-on.test", append(base, "tls_upstream_allow_renegotiation")...))

	if r := caddy.Get(t, "reneg-on.test", "/reneg", nil); r.Status != 200 || !strings.Contains(r.Body, "Apache Server Status") {
		t.Errorf("with renegotiation allowed: status %d, body:\n%s", r.Status, r.Body)
	}
	if r := caddy.Get(t, "reneg-off.test", "/reneg", nil); r.Status != 502 {
		t.Errorf("with renegotiation refused: status %d, want 502; body:\n%s", r.Status, r.Body)
	}
	if !caddy.WaitLog(`"cause":"renegotiation-refused"`) {
		t.Errorf("no renegotiation-refused cause logged:\n%s", logLinesWith(caddy.Log(), "iap"))
	}
	if !strings.Contains(up.ErrorLog(), "Awaiting re-negotiation handshake") {
		t.Errorf("apache did not renegotiate:\n%s", up.ErrorLog())
	}
	// Paths that need no renegotiation work either way.
	for _, host := range []string{"reneg-on.test", "reneg-off.test"} {
		if r := caddy.Get(t, host, "/", nil); r.Status != 200 {
			t.Errorf("%s /: status %d", host, r.Status)
		}
	}
}

// The global certificate_authority_file adds a CA to the system roots for
// routes that set none; a route's own CA replaces it.
func TestGlobalCertificateAuthority(t *testing.T) {
	p := newPKI(t)
	up := testenv.StartSServer(t, p.serverCert, p.serverKey)
	to := "to https://" + up.Addr()
	runCases(t, "\tiap {\n\t\tcertificate_authority_file "+p.caFile+"\n\t}", []upstreamCase{
		{"global-ca.test", []string{to, "tls_upstream_server_name openssl.localhost", "allow_public_unauthenticated_access"}, 200, []string{"Ciphers supported"}, ""},
		{"route-ca-overrides.test", []string{to, "tls_upstream_server_name openssl.localhost", "tls_custom_ca_file " + p.otherCAFile, "allow_public_unauthenticated_access"}, 502, nil, "unknown-authority"},
	})
}

// Access is denied by default, as in Pomerium: a route with no policy
// answers 403, as JSON to API clients and as a page to browsers, and never
// reaches the upstream.
func TestDefaultDeny(t *testing.T) {
	p := newPKI(t)
	up := testenv.StartSServer(t, p.serverCert, p.serverKey)
	caddy := testenv.StartCaddy(t, "", site("closed.test", "to https://"+up.Addr(), "tls_upstream_server_name openssl.localhost", "tls_custom_ca_file "+p.caFile))

	r := caddy.Get(t, "closed.test", "/", http.Header{"Accept": {"application/json"}})
	if r.Status != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", r.Status)
	}
	var body struct{ Error, Reason string }
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body.Reason != "no-policy" || body.Error == "" {
		t.Errorf("JSON body = %q (%v), want reason no-policy and an error message", r.Body, err)
	}
	r = caddy.Get(t, "closed.test", "/", http.Header{"Accept": {"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}})
	if r.Status != http.StatusForbidden || !strings.Contains(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(r.Body, "no-policy") {
		t.Errorf("browser got %d %s:\n%s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if strings.Contains(up.Output(), "GET /") {
		t.Errorf("a refused request reached the upstream:\n%s", up.Output())
	}
	if !strings.Contains(logLinesWith(caddy.Log(), "request refused"), `"reason":"no-policy"`) {
		t.Errorf("refusal not logged with its reason:\n%s", caddy.Log())
	}
}

// Errors a user can act on: each names the route, the option, the path and
// the cause, at `caddy validate`.
func TestConfigErrors(t *testing.T) {
	p := newPKI(t)
	noCert := filepath.Join(p.dir, "no-cert.pem")
	if err := os.WriteFile(noCert, []byte("just text, no PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expiredCert, expiredKey := p.ca.Issue(t, testpki.Client("old@localhost").Expired()).Write(t, p.dir, "expired-client")
	inlineCert, _ := p.client.Base64()
	to := "to https://localhost:44330"

	for _, c := range []struct {
		name  string
		lines []string
		ok    bool     // validate succeeds
		want  []string // in the output
	}{
		{"a missing CA file", []string{to, "tls_custom_ca_file /nonexistent/rootCA.pem"}, false,
			[]string{"route r.test", "tls_custom_ca_file", "/nonexistent/rootCA.pem", "no such file or directory"}},
		{"a CA file with no certificate", []string{to, "tls_custom_ca_file " + noCert}, false,
			[]string{"route r.test", "tls_custom_ca_file", noCert, "no PEM certificate found"}},
		{"a CA path that is a directory", []string{to, "tls_custom_ca_file " + p.dir}, false,
			[]string{"route r.test", "tls_custom_ca_file", p.dir, "is a directory"}},
		{"an inline CA that is not base64", []string{to, "tls_custom_ca not*base64"}, false,
			[]string{"route r.test", "tls_custom_ca", "not base64-encoded PEM"}},
		{"a client certificate without its key", []string{to, "tls_client_cert_file " + p.clientCert}, false,
			[]string{"route r.test", "tls_client_cert_file is set without tls_client_key_file"}},
		{"a client key without its certificate", []string{to, "tls_client_key_file " + p.clientKey}, false,
			[]string{"route r.test", "tls_client_key_file is set without tls_client_cert_file"}},
		{"an inline certificate without its key", []string{to, "tls_client_cert " + inlineCert}, false,
			[]string{"route r.test", "tls_client_cert is set without tls_client_key"}},
		{"a missing client certificate file", []string{to, "tls_client_cert_file /nonexistent/client.pem", "tls_client_key_file " + p.clientKey}, false,
			[]string{"route r.test", "tls_client_cert_file", "/nonexistent/client.pem", "no such file or directory"}},
		{"a key that does not match its certificate", []string{to, "tls_client_cert_file " + p.clientCert, "tls_client_key_file " + p.otherClient}, false,
			[]string{"route r.test", "tls_client_key_file", p.otherClient, "does not go with", p.clientCert}},
		{"TLS options on an http upstream", []string{"to http://localhost:8080", "tls_custom_ca_file " + p.caFile}, false,
			[]string{"route r.test", "tls_custom_ca_file", "not https://"}},
		{"an option given twice", []string{to, "tls_custom_ca_file a.pem", "tls_custom_ca_file b.pem"}, false,
			[]string{"tls_custom_ca_file is set twice"}},
		{"an expired client certificate is a warning", []string{to, "tls_client_cert_file " + expiredCert, "tls_client_key_file " + expiredKey}, true,
			[]string{"route r.test", "tls_client_cert_file", expiredCert, "expired on"}},
		{"tls_skip_verify is a warning", []string{to, "tls_skip_verify"}, true,
			[]string{"route r.test", "tls_skip_verify is on"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := testenv.WriteCaddyfile(t, dir, "", site("r.test", c.lines...))
			out, ok := testenv.Validate(t, path)
			if ok != c.ok {
				t.Fatalf("validate succeeded = %v, want %v:\n%s", ok, c.ok, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
