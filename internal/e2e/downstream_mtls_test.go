package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// clientCerts are the client certificates of Pomerium's downstream mTLS
// acceptance cases, each written as PEM files and as PKCS#12 (password
// changeit, as the guide makes them with mkcert -pkcs12).
type clientCerts struct {
	dir                     string
	root, inter, stranger   *testpki.CA
	revokedInter            *testpki.CA
	caFile, crlFile         string
	certs                   map[string]*testpki.Cert
	certFile, keyFile, p12s map[string]string
}

func newClientCerts(t *testing.T) *clientCerts {
	t.Helper()
	testenv.Need(t, "openssl")
	c := &clientCerts{dir: t.TempDir(), certs: map[string]*testpki.Cert{},
		certFile: map[string]string{}, keyFile: map[string]string{}, p12s: map[string]string{}}
	c.root = testpki.NewCA(t, "downstream root")
	c.inter = c.root.IssueCA(t, "downstream intermediate")
	c.revokedInter = c.root.IssueCA(t, "revoked intermediate")
	c.stranger = testpki.NewCA(t, "stranger root")
	c.caFile = c.root.WriteCert(t, c.dir, "rootCA.pem")

	alice := testpki.Client("alice")
	alice.Emails = []string{"alice@example.com"}
	mallory := testpki.Client("mallory")
	mallory.Emails = []string{"mallory@evil.example"}
	c.add(t, "valid", c.root.Issue(t, alice))
	c.add(t, "other-email", c.root.Issue(t, mallory))
	c.add(t, "via-intermediate", c.inter.Issue(t, testpki.Client("bob")))
	c.add(t, "untrusted", c.stranger.Issue(t, testpki.Client("eve")))
	c.add(t, "expired", c.root.Issue(t, testpki.Client("old").Expired()))
	c.add(t, "server-only", c.root.Issue(t, testpki.Server("server.example")))
	c.add(t, "revoked", c.root.Issue(t, testpki.Client("revoked")))
	c.add(t, "revoked-intermediate", c.revokedInter.Issue(t, testpki.Client("dave")))

	// One CRL per issuer: the root revokes a leaf and an intermediate.
	crls := append(c.root.CurrentCRL(t, c.certs["revoked"].Cert, c.revokedInter.Cert), c.inter.CurrentCRL(t)...)
	crls = append(crls, c.revokedInter.CurrentCRL(t)...)
	c.crlFile = filepath.Join(c.dir, "crl.pem")
	if err := os.WriteFile(c.crlFile, crls, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *clientCerts) add(t *testing.T, name string, cert *testpki.Cert) {
	t.Helper()
	c.certs[name] = cert
	c.certFile[name], c.keyFile[name] = cert.Write(t, c.dir, name)
	p12 := filepath.Join(c.dir, name+".p12")
	out, err := exec.Command("openssl", "pkcs12", "-export", "-in", c.certFile[name], "-inkey", c.keyFile[name],
		"-out", p12, "-passout", "pass:changeit", "-name", name).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs12: %v\n%s", err, out)
	}
	c.p12s[name] = p12
}

// tlsCert is the certificate as crypto/tls wants it, chain included.
func (c *clientCerts) tlsCert(t *testing.T, name string) func(*tls.Config) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(c.certFile[name], c.keyFile[name])
	if err != nil {
		t.Fatal(err)
	}
	// Present it whatever CAs the server names, as curl does, so that a
	// certificate from an untrusted CA reaches the server's checks.
	return func(cfg *tls.Config) {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
}

// curl runs the real curl against host on Caddy, with the client
// certificate as PEM files or as PKCS#12, and returns the status and body,
// or the exit error when the handshake fails.
func curl(t *testing.T, caddy *testenv.Caddy, host string, extra ...string) (int, string, error) {
	t.Helper()
	testenv.Need(t, "curl")
	var args []string
	if !slices.Contains(extra, "--cacert") {
		args = []string{"--cacert", caddy.RootFile(t)}
	}
	args = append(append(args, "-sS",
		"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, caddy.HTTPSPort),
		"-w", "\n%{http_code}", fmt.Sprintf("https://%s:%d/", host, caddy.HTTPSPort)), extra...)
	out, err := exec.Command("curl", args...).CombinedOutput()
	if err != nil {
		return 0, string(out), fmt.Errorf("curl: %v: %s", err, out)
	}
	s := string(out)
	i := strings.LastIndex(s, "\n")
	var code int
	fmt.Sscan(s[i+1:], &code)
	return code, s[:i], nil
}

// echoUpstream answers with the request headers it got, as JSON.
func echoUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func mtlsSite(host, mtls, upstream string) string {
	return fmt.Sprintf("%s {\n\ttls internal\n\tiap_mtls {\n\t\t%s\n\t}\n\tiap_route {\n\t\tto %s\n\t\tallow_public_unauthenticated_access\n\t}\n}\n",
		host, strings.ReplaceAll(mtls, "\n", "\n\t\t"), upstream)
}

func TestDownstreamMTLS(t *testing.T) {
	c := newClientCerts(t)
	up := echoUpstream(t)
	common := "ca_file " + c.caFile + "\ncrl_file " + c.crlFile + "\nmax_verify_depth 2"
	caddy := testenv.StartCaddy(t, "",
		mtlsSite("deny.test", common+"\npass_client_certificate", up)+
			mtlsSite("policy.test", common+"\nenforcement policy", up)+
			mtlsSite("reject.test", common+"\nenforcement reject_connection", up)+
			mtlsSite("san.test", "ca_file "+c.caFile+"\nmatch_subject_alt_names {\n\temail .*@example\\.com\n}", up)+
			mtlsSite("depth1.test", "ca_file "+c.caFile, up)+
			mtlsSite("inline-ca.test", "ca "+base64.StdEncoding.EncodeToString(c.root.CertPEM()), up)+
			"styled.test {\n\ttls internal\n\tiap_mtls {\n\t\tca_file "+c.caFile+"\n\t}\n\trespond ok\n"+
			"\thandle_errors {\n\t\trespond \"styled {err.status_code} {err.id}\" {err.status_code}\n\t}\n}\n"+
			site("plain.test", "to "+up, "allow_public_unauthenticated_access")+
			site("certheaders-nomtls.test", "to "+up, "allow_public_unauthenticated_access", "set_request_headers X-Cert-Fingerprint $pomerium.client_cert_fingerprint")+
			"certheaders.test {\n\ttls internal\n\tiap_mtls {\n\t\tca_file "+c.caFile+"\n\t\tenforcement policy\n\t}\n"+
			"\tiap_route {\n\t\tto "+up+"\n\t\tallow_public_unauthenticated_access\n\t\tset_request_headers {\n"+
			"\t\t\tX-Cert-Fingerprint $pomerium.client_cert_fingerprint\n\t\t\tX-Cert-San-Dns ${pomerium.client_cert_san_dns}\n"+
			"\t\t\tX-Cert-San-Email ${pomerium.client_cert_san_email}\n\t\t}\n\t}\n}\n")

	// Each acceptance case under each enforcement mode. want495 is the
	// detail of the 495 under policy_with_default_deny ("" = 200).
	cases := []struct {
		cert, reason, detail string
	}{
		{"", "client-certificate-required", ""},
		{"untrusted", "invalid-client-certificate", "unknown-authority"},
		{"expired", "invalid-client-certificate", "expired"},
		{"server-only", "invalid-client-certificate", "not-for-client-auth"},
		{"revoked", "invalid-client-certificate", "revoked"},
		{"revoked-intermediate", "invalid-client-certificate", "revoked"},
		{"valid", "", ""},
		{"via-intermediate", "", ""},
	}
	withCert := func(name string) []func(*tls.Config) {
		if name == "" {
			return nil
		}
		return []func(*tls.Config){c.tlsCert(t, name)}
	}
	name := func(cert string) string {
		if cert == "" {
			return "no certificate"
		}
		return cert
	}

	t.Run("policy_with_default_deny", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(name(tc.cert), func(t *testing.T) {
				r, err := caddy.Do(t, caddy.Client(t, withCert(tc.cert)...), "deny.test", "/", http.Header{"Accept": {"application/json"}})
				if err != nil {
					t.Fatal(err)
				}
				if tc.reason == "" {
					if r.Status != 200 {
						t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
					}
					return
				}
				if r.Status != 495 || r.Header.Get("Location") != "" {
					t.Fatalf("status %d (Location %q), want 495 and no redirect: %s", r.Status, r.Header.Get("Location"), r.Body)
				}
				var body struct{ Error, Reason, Detail string }
				if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
					t.Fatalf("%v: %s", err, r.Body)
				}
				if body.Reason != tc.reason || body.Detail != tc.detail || body.Error == "" {
					t.Errorf("got %+v, want reason %q detail %q and a message", body, tc.reason, tc.detail)
				}
			})
		}
	})

	t.Run("policy", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(name(tc.cert), func(t *testing.T) {
				r, err := caddy.Do(t, caddy.Client(t, withCert(tc.cert)...), "policy.test", "/", nil)
				if err != nil {
					t.Fatal(err)
				}
				// Nothing is denied by default: the route's policy
				// (public here) decides.
				if r.Status != 200 {
					t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
				}
			})
		}
	})

	t.Run("reject_connection", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(name(tc.cert), func(t *testing.T) {
				r, err := caddy.Do(t, caddy.Client(t, withCert(tc.cert)...), "reject.test", "/", nil)
				if tc.reason == "" {
					if err != nil || r.Status != 200 {
						t.Fatalf("status %d, err %v, want 200", r.Status, err)
					}
					return
				}
				if err == nil {
					t.Fatalf("the handshake succeeded (status %d), want it to fail", r.Status)
				}
				if !strings.Contains(err.Error(), "tls:") {
					t.Errorf("want a TLS error, got %v", err)
				}
			})
		}
		if !caddy.WaitLog(`"detail":"revoked"`) {
			t.Errorf("the verifier logged no revoked refusal:\n%s", logLinesWith(caddy.Log(), "client certificate"))
		}
	})

	t.Run("refusals are logged with address, subject, fingerprint and reason", func(t *testing.T) {
		line := logLinesWith(caddy.Log(), `"subject":"CN=eve,O=caddy-iap tests"`)
		for _, want := range []string{`"remote_addr":"127.0.0.1:`, `"fingerprint":"`, `"reason":"invalid-client-certificate"`, `"detail":"unknown-authority"`} {
			if !strings.Contains(line, want) {
				t.Errorf("refusal log lacks %s:\n%s", want, line)
			}
		}
	})

	t.Run("browsers get a page", func(t *testing.T) {
		r := caddy.Get(t, "deny.test", "/", http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}})
		if r.Status != 495 || !strings.Contains(r.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(r.Body, "A valid client certificate is required") || !strings.Contains(r.Body, "client-certificate-required") {
			t.Errorf("got %d %s:\n%s", r.Status, r.Header.Get("Content-Type"), r.Body)
		}
	})

	t.Run("subject alt names", func(t *testing.T) {
		for _, tc := range []struct {
			cert   string
			status int
		}{{"valid", 200}, {"other-email", 495}} {
			r, err := caddy.Do(t, caddy.Client(t, c.tlsCert(t, tc.cert)), "san.test", "/", nil)
			if err != nil || r.Status != tc.status {
				t.Errorf("%s: status %d (%v), want %d: %s", tc.cert, r.Status, err, tc.status, r.Body)
			}
			if tc.status == 495 && !strings.Contains(r.Body, `"detail":"san-mismatch"`) {
				t.Errorf("%s: want san-mismatch: %s", tc.cert, r.Body)
			}
		}
	})

	t.Run("an inline ca works as ca_file does", func(t *testing.T) {
		if r, err := caddy.Do(t, caddy.Client(t, c.tlsCert(t, "valid")), "inline-ca.test", "/", nil); err != nil || r.Status != 200 {
			t.Errorf("valid: %d %v %s", r.Status, err, r.Body)
		}
		if r := caddy.Get(t, "inline-ca.test", "/", nil); r.Status != 495 {
			t.Errorf("no certificate: %d %s", r.Status, r.Body)
		}
	})

	t.Run("handle_errors can restyle a 495", func(t *testing.T) {
		r := caddy.Get(t, "styled.test", "/", nil)
		if r.Status != 495 || r.Body != "styled 495 client-certificate-required" {
			t.Errorf("got %d %q", r.Status, r.Body)
		}
	})

	t.Run("max_verify_depth defaults to 1", func(t *testing.T) {
		r, err := caddy.Do(t, caddy.Client(t, c.tlsCert(t, "via-intermediate")), "depth1.test", "/", nil)
		if err != nil || r.Status != 495 || !strings.Contains(r.Body, `"detail":"too-deep"`) {
			t.Errorf("status %d (%v): %s", r.Status, err, r.Body)
		}
	})

	t.Run("curl with PEM and PKCS#12", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			args   []string
			status int
		}{
			{"no certificate", nil, 495},
			{"PEM", []string{"--cert", c.certFile["valid"], "--key", c.keyFile["valid"]}, 200},
			{"PKCS#12", []string{"--cert-type", "P12", "--cert", c.p12s["valid"] + ":changeit"}, 200},
			{"PKCS#12 from an untrusted CA", []string{"--cert-type", "P12", "--cert", c.p12s["untrusted"] + ":changeit"}, 495},
		} {
			code, body, err := curl(t, caddy, "deny.test", tc.args...)
			if err != nil || code != tc.status {
				t.Errorf("%s: status %d (%v), want %d: %s", tc.name, code, err, tc.status, body)
			}
		}
		if _, _, err := curl(t, caddy, "reject.test"); err == nil {
			t.Errorf("reject_connection: curl without a certificate got through")
		}
		if code, body, err := curl(t, caddy, "reject.test", "--cert-type", "P12", "--cert", c.p12s["valid"]+":changeit"); err != nil || code != 200 {
			t.Errorf("reject_connection with PKCS#12: %d %v %s", code, err, body)
		}
	})

	t.Run("only hosts with iap_mtls ask for a certificate", func(t *testing.T) {
		testenv.Need(t, "openssl")
		sclient := func(sni string) string {
			cmd := exec.Command("openssl", "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", caddy.HTTPSPort), "-servername", sni)
			cmd.Stdin = strings.NewReader("")
			out, _ := cmd.CombinedOutput()
			return string(out)
		}
		if out := sclient("plain.test"); !strings.Contains(out, "No client certificate CA names sent") {
			t.Errorf("plain.test asked for a client certificate:\n%s", out)
		}
		if out := sclient("deny.test"); !strings.Contains(out, "Acceptable client certificate CA names") || !strings.Contains(out, "downstream root") {
			t.Errorf("deny.test did not ask for a client certificate from its CA:\n%s", out)
		}
	})

	t.Run("a connection for one host cannot be used for another", func(t *testing.T) {
		// SNI plain.test (no certificate asked), then Host deny.test.
		client := caddy.Client(t, func(cfg *tls.Config) { cfg.ServerName = "plain.test" })
		r, err := caddy.Do(t, client, "plain.test", "/", http.Header{"Host": {"deny.test"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusMisdirectedRequest {
			t.Errorf("status %d, want 421: %s", r.Status, r.Body)
		}
	})

	t.Run("Client-Cert headers", func(t *testing.T) {
		forged := http.Header{"Client-Cert": {":Zm9yZ2Vk:"}, "Client-Cert-Chain": {":Zm9yZ2Vk:"}}
		upstreamGot := func(host string, cert string) http.Header {
			t.Helper()
			var opts []func(*tls.Config)
			if cert != "" {
				opts = append(opts, c.tlsCert(t, cert))
			}
			r, err := caddy.Do(t, caddy.Client(t, opts...), host, "/", forged)
			if err != nil || r.Status != 200 {
				t.Fatalf("%s: %d %v %s", host, r.Status, err, r.Body)
			}
			var h http.Header
			if err := json.Unmarshal([]byte(r.Body), &h); err != nil {
				t.Fatal(err)
			}
			return h
		}
		leaf := ":" + base64.StdEncoding.EncodeToString(c.certs["via-intermediate"].Cert.Raw) + ":"
		inter := ":" + base64.StdEncoding.EncodeToString(c.inter.Cert.Raw) + ":"
		if h := upstreamGot("deny.test", "via-intermediate"); h.Get("Client-Cert") != leaf || h.Get("Client-Cert-Chain") != inter {
			t.Errorf("with pass_client_certificate: Client-Cert %q, Client-Cert-Chain %q", h.Get("Client-Cert"), h.Get("Client-Cert-Chain"))
		}
		for _, host := range []string{"policy.test", "plain.test"} {
			if h := upstreamGot(host, ""); h.Get("Client-Cert") != "" || h.Get("Client-Cert-Chain") != "" {
				t.Errorf("%s passed the client's forged headers: %v", host, h)
			}
		}
		if h := upstreamGot("policy.test", "valid"); h.Get("Client-Cert") != "" {
			t.Errorf("policy.test passed Client-Cert without pass_client_certificate: %v", h)
		}

		// Pomerium's TC-CC-17..18: $pomerium.client_cert_* in
		// set_request_headers, for a valid certificate only.
		h := upstreamGot("certheaders.test", "valid")
		sum := sha256.Sum256(c.certs["valid"].Cert.Raw)
		if h.Get("X-Cert-Fingerprint") != hex.EncodeToString(sum[:]) || h.Get("X-Cert-San-Email") != "alice@example.com" {
			t.Errorf("certificate-derived headers: %v", h)
		}
		for _, cert := range []string{"untrusted", ""} {
			if h := upstreamGot("certheaders.test", cert); h.Get("X-Cert-Fingerprint") != "" || h.Get("X-Cert-San-Email") != "" {
				t.Errorf("certificate %q (not valid) gave certificate headers: %v", cert, h)
			}
		}
		if h := upstreamGot("certheaders-nomtls.test", ""); h.Get("X-Cert-Fingerprint") != "" {
			t.Errorf("a site without iap_mtls gave certificate headers: %v", h)
		}
	})
}

// Config errors name the option, the file and the cause.
func TestDownstreamConfigErrors(t *testing.T) {
	c := newClientCerts(t)
	for _, tc := range []struct {
		name, mtls string
		want       []string
	}{
		{"a missing CA file", "ca_file /nonexistent/ca.pem", []string{"iap_mtls", "ca_file: reading /nonexistent/ca.pem: no such file or directory"}},
		{"both ca and ca_file", "ca_file " + c.caFile + "\nca " + base64.StdEncoding.EncodeToString(c.root.CertPEM()), []string{"ca and ca_file are both set"}},
		{"a CRL file without a CRL", "ca_file " + c.caFile + "\ncrl_file " + c.caFile, []string{"crl_file " + c.caFile, `no PEM "X509 CRL" block found`}},
		{"a bad pattern", "ca_file " + c.caFile + "\nmatch_subject_alt_names {\n\temail (oops\n}", []string{`email pattern "(oops"`}},
		{"an unknown enforcement", "ca_file " + c.caFile + "\nenforcement sometimes", []string{`unknown mode "sometimes"`}},
		{"a bad depth", "ca_file " + c.caFile + "\nmax_verify_depth -1", []string{`max_verify_depth: "-1" is not a whole number`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := testenv.WriteCaddyfile(t, t.TempDir(), "", mtlsSite("m.test", tc.mtls, "http://127.0.0.1:1"))
			out, ok := testenv.Validate(t, path)
			if ok {
				t.Fatalf("validate succeeded:\n%s", out)
			}
			for _, w := range append(tc.want, "Caddyfile:") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("two different iap_mtls for one host", func(t *testing.T) {
		site := "m.test {\n\ttls internal\n\tiap_mtls {\n\t\tca_file " + c.caFile + "\n\t}\n\tiap_mtls {\n\t\tca_file " + c.caFile + "\n\t\tenforcement policy\n\t}\n}\n"
		out, ok := testenv.Validate(t, testenv.WriteCaddyfile(t, t.TempDir(), "", site))
		if ok || !strings.Contains(out, "m.test already has iap_mtls at") {
			t.Errorf("validate ok=%v:\n%s", ok, out)
		}
	})
}
