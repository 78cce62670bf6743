package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// metricsTLSEnv is a metrics endpoint served over HTTPS by a real Caddy
// from a Pomerium config, with its own certificate (from a CA of its own,
// for the given names and 127.0.0.1; clients ask for
// metrics.pomerium.test) and the client certificates of newClientCerts
// (the client CA is their root).
type metricsTLSEnv struct {
	caddy       *testenv.Caddy
	clients     *clientCerts
	metricsCert *testpki.Cert
	metricsRoot *x509.Certificate // the CA that issued it
	metricsCA   string            // its file
	addr        string            // the metrics server's 127.0.0.1:port
}

func newMetricsTLSEnv(t *testing.T, name string) *metricsTLSEnv {
	t.Helper()
	e := &metricsTLSEnv{clients: newClientCerts(t)}
	ca := testpki.NewCA(t, "metrics server root")
	e.metricsCert = ca.Issue(t, testpki.Server(name, "127.0.0.1"))
	e.metricsRoot, e.metricsCA = ca.Cert, ca.WriteCert(t, e.clients.dir, "metricsCA.pem")
	e.addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	return e
}

// curl runs the real curl on the metrics server at path, resolving
// metrics.pomerium.test to 127.0.0.1, and returns the status and body, or
// the exit error when the handshake fails.
func (e *metricsTLSEnv) curl(t *testing.T, url string, extra ...string) (int, string, error) {
	t.Helper()
	testenv.Need(t, "curl")
	_, port, _ := strings.Cut(e.addr, ":")
	args := append([]string{"-sS", "--resolve", "metrics.pomerium.test:" + port + ":127.0.0.1", "-w", "\n%{http_code}",
		strings.ReplaceAll(url, "$PORT", port)}, extra...)
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

// check runs the cases every metrics TLS setup must pass with curl: the
// metrics over HTTPS with the metrics certificate only to a client
// certificate from the client CA, valid now (PEM or PKCS#12), by name or
// by IP address; a handshake failure otherwise; never over plain HTTP.
// auth is the user:password of metrics_basic_auth, if set.
func (e *metricsTLSEnv) check(t *testing.T, auth string) {
	t.Helper()
	var extra []string
	if auth != "" {
		extra = []string{"--user", auth}
	}
	c := e.clients
	byName := "https://metrics.pomerium.test:$PORT/metrics"
	for _, tc := range []struct {
		name string
		url  string
		args []string
		ok   bool
	}{
		{"no client certificate is refused", byName, nil, false},
		{"a certificate from another CA is refused", byName, []string{"--cert", c.certFile["untrusted"], "--key", c.keyFile["untrusted"]}, false},
		{"an expired certificate from the client CA is refused", byName, []string{"--cert", c.certFile["expired"], "--key", c.keyFile["expired"]}, false},
		{"a server certificate from the client CA (no clientAuth usage) is refused", byName, []string{"--cert", c.certFile["server-only"], "--key", c.keyFile["server-only"]}, false},
		{"the client certificate as PEM gets the metrics", byName, []string{"--cert", c.certFile["valid"], "--key", c.keyFile["valid"]}, true},
		{"the client certificate as PKCS#12 gets the metrics", byName, []string{"--cert-type", "P12", "--cert", c.p12s["valid"] + ":changeit"}, true},
		{"a certificate from an intermediate of the client CA gets the metrics", byName, []string{"--cert", c.certFile["via-intermediate"], "--key", c.keyFile["via-intermediate"]}, true},
		{"a scraper that connects by IP address (no SNI) gets the metrics", "https://127.0.0.1:$PORT/metrics", []string{"--cert", c.certFile["valid"], "--key", c.keyFile["valid"]}, true},
	} {
		args := append(append([]string{"--cacert", e.metricsCA}, tc.args...), extra...)
		code, body, err := e.curl(t, tc.url, args...)
		switch {
		case tc.ok && (err != nil || code != 200 || !strings.Contains(body, "# TYPE go_goroutines gauge")):
			t.Errorf("%s: %d %v %.300s", tc.name, code, err, body)
		case !tc.ok && (err == nil || strings.Contains(body, "go_goroutines")):
			t.Errorf("%s: curl succeeded (%d): %.300s", tc.name, code, body)
		}
	}
	// The endpoint is HTTPS only: plain HTTP gets Go's 400, no metrics.
	if code, body, _ := e.curl(t, "http://metrics.pomerium.test:$PORT/metrics"); code != 400 || strings.Contains(body, "go_goroutines") {
		t.Errorf("plain HTTP to the metrics port: %d %.300s", code, body)
	}

	// Go's TLS client, trusting only the metrics certificate's CA, sees
	// the same.
	roots := x509.NewCertPool()
	roots.AddCert(e.metricsRoot)
	for _, tc := range []struct {
		name   string
		client string
		ok     bool
	}{{"Go without a client certificate", "", false}, {"Go with the client certificate", "valid", true}, {"Go with an expired one", "expired", false}} {
		cfg := &tls.Config{RootCAs: roots, ServerName: "metrics.pomerium.test"}
		if tc.client != "" {
			c.tlsCert(t, tc.client)(cfg)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		t.Cleanup(client.CloseIdleConnections)
		req, _ := http.NewRequest("GET", "https://"+e.addr+"/metrics", nil)
		if user, pass, ok := strings.Cut(auth, ":"); ok {
			req.SetBasicAuth(user, pass)
		}
		res, err := client.Do(req)
		var body []byte
		if err == nil {
			body, _ = io.ReadAll(res.Body)
			res.Body.Close()
		}
		if tc.ok != (err == nil && res.StatusCode == 200 && bytes.Contains(body, []byte("go_goroutines"))) {
			t.Errorf("%s: %v %.300s", tc.name, err, body)
		}
	}
}

// presented returns the leaf certificate a server presents on addr for
// sni, nil if the handshake fails before it shows one.
func presented(t *testing.T, addr, sni string, client func(*tls.Config)) *x509.Certificate {
	t.Helper()
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
	if client != nil {
		client(cfg)
	}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// Issue 13: metrics_certificate_file, metrics_certificate_key_file and
// metrics_client_ca_file serve the metrics over HTTPS to clients whose
// certificate the client CA issued, with the route certificates loaded
// (certificate_file): each server presents its own certificate only.
func TestPomeriumMetricsTLSFromFiles(t *testing.T) {
	e := newMetricsTLSEnv(t, "metrics.pomerium.test")
	c := e.clients
	serverCA := testpki.NewCA(t, "route root")
	routeCert := serverCA.Issue(t, testpki.Server("*.pomerium.test", "127.0.0.1"))
	certFile, keyFile := routeCert.Write(t, c.dir, "_wildcard.pomerium.test")
	mCert, mKey := e.metricsCert.Write(t, c.dir, "metrics")
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
log_level: debug
certificate_file: %s
certificate_key_file: %s
metrics_address: %s
metrics_certificate_file: %s
metrics_certificate_key_file: %s
metrics_client_ca_file: %s
routes:
  - from: https://verify.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
`, httpsPort, testenv.FreePort(t), certFile, keyFile, e.addr, mCert, mKey, c.caFile, echoUpstream(t))
	e.caddy = testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	testenv.WaitListening(t, e.addr, nil)
	e.check(t, "")

	// Refusals are logged with Go's reason (at debug level, as Caddy logs
	// every failed handshake).
	for _, reason := range []string{"client didn't provide a certificate", "certificate signed by unknown authority", "certificate has expired"} {
		if !e.caddy.WaitLog(reason) {
			t.Errorf("the log does not say %q", reason)
		}
	}

	// Each server presents its own certificate, whatever name the client
	// asks for: the metrics certificate never on the route port (not even
	// for its own name, which the route wildcard covers, nor for its IP
	// address), a route certificate never on the metrics port.
	main := fmt.Sprintf("127.0.0.1:%d", httpsPort)
	for _, sni := range []string{"verify.pomerium.test", "metrics.pomerium.test", ""} {
		if got := presented(t, main, sni, nil); got == nil || !got.Equal(routeCert.Cert) {
			t.Errorf("route port, SNI %q: presented %v, want the route certificate", sni, subject(got))
		}
	}
	for _, sni := range []string{"metrics.pomerium.test", "verify.pomerium.test", "other.pomerium.test", ""} {
		if got := presented(t, e.addr, sni, c.tlsCert(t, "valid")); got != nil && !got.Equal(e.metricsCert.Cert) {
			t.Errorf("metrics port, SNI %q: presented %v, want the metrics certificate or none", sni, subject(got))
		}
	}
	if code, body, err := curl(t, e.caddy, "verify.pomerium.test", "--cacert", serverCA.WriteCert(t, c.dir, "routeCA.pem")); err != nil || code != 200 {
		t.Errorf("the route: %d %v %s", code, err, body)
	}
}

// Issue 13: metrics_certificate, metrics_certificate_key and
// metrics_client_ca (base64-encoded PEM), here from Pomerium's environment
// variables, with Caddy's local CA issuing the route's certificate. The
// metrics certificate is a wildcard that covers the route host: Caddy
// still gets the route its own certificate (and none for the metrics
// certificate's names) and presents that one on the route port, and
// metrics_basic_auth still applies.
func TestPomeriumMetricsTLSInlineFromTheEnvironment(t *testing.T) {
	e := newMetricsTLSEnv(t, "*.pomerium.test")
	c := e.clients
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
routes:
  - from: https://verify.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
`, httpsPort, testenv.FreePort(t), echoUpstream(t))
	cert, key := e.metricsCert.Base64()
	e.caddy = testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort,
		"METRICS_ADDRESS="+e.addr, "METRICS_CERTIFICATE="+cert, "METRICS_CERTIFICATE_KEY="+key,
		"METRICS_CLIENT_CA="+b64(c.root.CertPEM()), "METRICS_BASIC_AUTH="+b64([]byte("ops:s3cret")))
	testenv.WaitListening(t, e.addr, nil)
	// Until the local CA has issued the route's certificate, the wildcard
	// is the only one for its name.
	if !e.caddy.WaitLog(`"certificate obtained successfully","identifier":"verify.pomerium.test"`) {
		t.Fatal("Caddy got no certificate for the route host")
	}
	e.check(t, "ops:s3cret")

	// The client certificate and the password are both needed.
	if code, _, err := e.curl(t, "https://metrics.pomerium.test:$PORT/metrics", "--cacert", e.metricsCA,
		"--cert", c.certFile["valid"], "--key", c.keyFile["valid"]); err != nil || code != 401 {
		t.Errorf("the client certificate without the password: %d %v", code, err)
	}

	main := fmt.Sprintf("127.0.0.1:%d", httpsPort)
	if got := presented(t, main, "verify.pomerium.test", nil); got == nil || got.Equal(e.metricsCert.Cert) ||
		got.VerifyHostname("verify.pomerium.test") != nil {
		t.Errorf("route port: presented %v, want the local CA's certificate for the route", subject(got))
	}
	if got := presented(t, e.addr, "verify.pomerium.test", c.tlsCert(t, "valid")); got != nil && !got.Equal(e.metricsCert.Cert) {
		t.Errorf("metrics port, SNI of the route: presented %v", subject(got))
	}
	if code, body, err := curl(t, e.caddy, "verify.pomerium.test"); err != nil || code != 200 {
		t.Errorf("the route: %d %v %s", code, err, body)
	}
	// Automatic HTTPS manages the route host only: no certificate is
	// obtained for the metrics certificate's names.
	managed := false
	for line := range strings.Lines(e.caddy.Log()) {
		if strings.Contains(line, "certificate management") || strings.Contains(line, "obtain") {
			managed = managed || strings.Contains(line, "verify.pomerium.test")
			if strings.Contains(line, "*.pomerium.test") || strings.Contains(line, "127.0.0.1") {
				t.Errorf("Caddy manages a name of the metrics certificate: %s", line)
			}
		}
	}
	if !managed {
		t.Errorf("no line of the log says Caddy manages the route host:\n%s", e.caddy.Log())
	}
}

// subject names a certificate in a failure message.
func subject(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%s (issuer %s)", c.Subject.CommonName, c.Issuer.CommonName)
}
