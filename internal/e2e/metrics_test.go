package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// metricsEnv is Dex, a Caddy with its admin endpoint on loopback, and
// client certificates: one from the sites' CA, one from a stranger.
type metricsEnv struct {
	caddy     *testenv.Caddy
	dex       *testenv.Dex
	admin     string // host:port of the admin endpoint
	caddyfile string
	good, bad tls.Certificate
}

func startMetricsEnv(t *testing.T) *metricsEnv {
	t.Helper()
	e := &metricsEnv{admin: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	dir := t.TempDir()
	root, stranger := testpki.NewCA(t, "metrics root"), testpki.NewCA(t, "metrics stranger")
	caFile := root.WriteCert(t, dir, "ca.pem")
	e.good, e.bad = keyPair(t, root.Issue(t, testpki.Client("alice"))), keyPair(t, stranger.Issue(t, testpki.Client("eve")))

	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	e.dex = testenv.StartDex(t, testenv.DexOptions{
		RedirectURIs: []string{fmt.Sprintf("https://app.test:%d/.iap/callback", httpsPort)},
		Users:        []testenv.DexUser{alice},
	})
	up := echoUpstream(t)
	e.caddyfile = fmt.Sprintf(`{
	admin %s
	skip_install_trust
	local_certs
	http_port %d
	https_port %d
	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
		}
		cookie_secret %s
	}
}
`, e.admin, httpPort, httpsPort, e.dex.Issuer, e.dex.ClientID, e.dex.ClientSecret, randomSecret(t)) +
		site("app.test", "to "+up, "allow_any_authenticated_user") +
		"public.test {\n\ttls internal\n\tlog\n\tiap_route {\n\t\tto " + up + "\n\t\tallow_public_unauthenticated_access\n\t}\n}\n" +
		// A route with a name of its own, and no policy: closed to all.
		"closed.test {\n\ttls internal\n\tlog\n\tiap_route {\n\t\tname closed\n\t\tto " + up + "\n\t}\n}\n" +
		mtlsSite("mtls.test", "ca_file "+caFile, up) +
		mtlsSite("reject.test", "ca_file "+caFile+"\nenforcement reject_connection", up)
	e.caddy = testenv.StartCaddyConfig(t, "caddyfile", "Caddyfile", e.caddyfile, httpsPort)
	e.caddy.HTTPPort = httpPort
	e.caddy.WaitCertificates(t, "app.test", "public.test", "closed.test", "mtls.test", "reject.test")
	return e
}

func keyPair(t *testing.T, c *testpki.Cert) tls.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(c.CertPEM(), c.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// withClientCert presents the certificate whatever CAs the server names.
func withClientCert(pair tls.Certificate) func(*tls.Config) {
	return func(cfg *tls.Config) {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
}

// scrape GETs the admin endpoint's /metrics and parses it; the parser
// refuses a metric family exported twice.
func (e *metricsEnv) scrape(t *testing.T) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping the admin endpoint: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, iapLines(string(body)))
	}
	return families, string(body)
}

// value is the sample of the family with exactly these labels, or -1.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return -1
}

// iapLines are caddy-iap's lines of an exposition, for failure messages.
func iapLines(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, "caddy_iap_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitIdPUp scrapes until caddy_iap_idp_up is 1 (Caddy discovers the IdP
// in the background) and returns that scrape.
func (e *metricsEnv) waitIdPUp(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		families, body := e.scrape(t)
		if value(families, "caddy_iap_idp_up", map[string]string{"issuer": e.dex.Issuer}) == 1 {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy_iap_idp_up never became 1:\n%s", iapLines(body))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type want struct {
	name   string
	labels map[string]string
	value  float64
}

func check(t *testing.T, families map[string]*dto.MetricFamily, body string, wants []want) {
	t.Helper()
	for _, w := range wants {
		if got := value(families, w.name, w.labels); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	if t.Failed() {
		t.Logf("caddy-iap's metrics:\n%s", iapLines(body))
	}
}

func decision(route, outcome, reason string) map[string]string {
	return map[string]string{"route": route, "outcome": outcome, "reason": reason}
}

// Caddy's admin /metrics counts caddy-iap's decisions by route, outcome
// and reason, sign-ins and their failures, client-certificate
// verifications at the handshake and at the request, and the IdP's health;
// the access log names each request's decision and reason; and a reload
// keeps the counts, exported once, and the new config counting.
func TestMetrics(t *testing.T) {
	e := startMetricsEnv(t)
	e.waitIdPUp(t)

	// An allowed request and a denied one.
	if r := e.caddy.Get(t, "public.test", "/", nil); r.Status != http.StatusOK {
		t.Fatalf("public.test: %d %s", r.Status, r.Body)
	}
	if r := e.caddy.Get(t, "closed.test", "/", nil); r.Status != http.StatusForbidden {
		t.Fatalf("closed.test: %d %s", r.Status, r.Body)
	}

	// A sign-in through Dex: the policy sends the browser to sign in, and
	// lets it in once it has.
	ua := e.caddy.NewUserAgent(t)
	resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != fmt.Sprintf("app.test:%d", e.caddy.HTTPSPort) {
		t.Fatalf("sign-in ended with %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	// A sign-in that fails: a callback with no sign-in in progress.
	if r := e.caddy.Get(t, "app.test", "/.iap/callback?state=forged&code=x", nil); r.Status != http.StatusBadRequest {
		t.Fatalf("forged callback: %d %s", r.Status, r.Body)
	}

	// Client certificates: iap_mtls refuses one from another CA (495)
	// and lets one of its CA in; reject_connection refuses the stranger's
	// in the handshake.
	r, err := e.caddy.Do(t, e.caddy.Client(t, withClientCert(e.bad)), "mtls.test", "/", nil)
	if err != nil || r.Status != 495 {
		t.Fatalf("mtls.test with a stranger's certificate: %d %v %s", r.Status, err, r.Body)
	}
	r, err = e.caddy.Do(t, e.caddy.Client(t, withClientCert(e.good)), "mtls.test", "/", nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("mtls.test with a good certificate: %d %v %s", r.Status, err, r.Body)
	}
	if _, err := e.caddy.Do(t, e.caddy.Client(t, withClientCert(e.bad)), "reject.test", "/", nil); err == nil {
		t.Fatal("reject.test let a stranger's certificate through")
	}

	families, text := e.scrape(t)
	check(t, families, text, []want{
		{"caddy_iap_decisions_total", decision("public.test", "allow", "allowed"), 1},
		{"caddy_iap_decisions_total", decision("closed", "deny", "no-policy"), 1},
		{"caddy_iap_decisions_total", decision("app.test", "sign_in", "user-unauthenticated"), 1},
		{"caddy_iap_decisions_total", decision("app.test", "allow", "allowed"), 1},
		{"caddy_iap_decisions_total", decision("app.test", "deny", "invalid-callback"), 1},
		{"caddy_iap_decisions_total", decision("mtls.test", "deny", "invalid-client-certificate"), 1},
		{"caddy_iap_decisions_total", decision("mtls.test", "allow", "allowed"), 1},
		{"caddy_iap_sign_ins_total", map[string]string{"result": "success", "reason": ""}, 1},
		{"caddy_iap_sign_ins_total", map[string]string{"result": "failure", "reason": "invalid-callback"}, 1},
		{"caddy_iap_client_certificate_verifications_total", map[string]string{
			"stage": "request", "result": "invalid", "reason": "invalid-client-certificate", "detail": "unknown-authority"}, 1},
		{"caddy_iap_client_certificate_verifications_total", map[string]string{
			"stage": "request", "result": "valid", "reason": "", "detail": ""}, 1},
		{"caddy_iap_client_certificate_verifications_total", map[string]string{
			"stage": "handshake", "result": "invalid", "reason": "invalid-client-certificate", "detail": "unknown-authority"}, 1},
		{"caddy_iap_idp_up", map[string]string{"issuer": e.dex.Issuer}, 1},
		{"caddy_iap_idp_fetch_errors_total", map[string]string{"issuer": e.dex.Issuer, "document": "discovery"}, 0},
		{"caddy_iap_idp_fetch_errors_total", map[string]string{"issuer": e.dex.Issuer, "document": "keys"}, 0},
	})
	// No label carries a path, a user or a query.
	for _, leak := range []string{"/.iap/", "forged", alice.Email, "user-0"} {
		if strings.Contains(iapLines(text), leak) {
			t.Errorf("a label carries %q:\n%s", leak, iapLines(text))
		}
	}
	t.Logf("caddy-iap's metrics:\n%s", iapLines(text))

	// The access log names the decision and its reason.
	for _, c := range []struct{ host, decision, reason string }{
		{"public.test", "allow", "allowed"},
		{"closed.test", "deny", "no-policy"},
	} {
		entry := accessLogEntry(t, e.caddy.Log(), c.host)
		if entry["iap_decision"] != c.decision || entry["iap_reason"] != c.reason {
			t.Errorf("access log of %s: iap_decision %v, iap_reason %v; want %s, %s", c.host, entry["iap_decision"], entry["iap_reason"], c.decision, c.reason)
		}
	}

	t.Run("reload", func(t *testing.T) {
		const ready = "identity provider ready"
		before := strings.Count(e.caddy.Log(), ready)
		e.reload(t)
		// The new config's iap app discovers the IdP afresh.
		if !waitCount(e.caddy, ready, before+1) {
			t.Fatalf("no new iap app after the reload:\n%s", e.caddy.Log())
		}
		families, text := e.scrape(t)
		for _, name := range []string{"caddy_iap_decisions_total", "caddy_iap_sign_ins_total",
			"caddy_iap_client_certificate_verifications_total", "caddy_iap_idp_fetch_errors_total", "caddy_iap_idp_up"} {
			if n := strings.Count(text, "# TYPE "+name+" "); n != 1 {
				t.Errorf("%s is exported %d times after the reload, want once", name, n)
			}
		}
		// The counts went on, and the new config's routes count into them.
		if r := e.caddy.Get(t, "closed.test", "/", nil); r.Status != http.StatusForbidden {
			t.Fatalf("closed.test after the reload: %d %s", r.Status, r.Body)
		}
		families, text = e.scrape(t)
		check(t, families, text, []want{
			{"caddy_iap_decisions_total", decision("public.test", "allow", "allowed"), 1},
			{"caddy_iap_decisions_total", decision("closed", "deny", "no-policy"), 2},
			{"caddy_iap_sign_ins_total", map[string]string{"result": "success", "reason": ""}, 1},
		})
		// The new config's IdP, discovered again, is up.
		e.waitIdPUp(t)
	})
}

// waitCount waits up to 30s for Caddy's log to hold s n times.
func waitCount(c *testenv.Caddy, s string, n int) bool {
	for range 600 {
		if strings.Count(c.Log(), s) >= n {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// reload makes Caddy load its config again through the admin API, as
// `caddy reload --force` does.
func (e *metricsEnv) reload(t *testing.T) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+e.admin+"/load", strings.NewReader(e.caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // load it though it is unchanged
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /load: %v", err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /load: %d %s", resp.StatusCode, body)
	}
}

// accessLogEntry is the last access log entry of a request to host.
func accessLogEntry(t *testing.T, log, host string) map[string]any {
	t.Helper()
	var last map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			continue
		}
		logger, _ := entry["logger"].(string)
		req, _ := entry["request"].(map[string]any)
		if h, _ := req["host"].(string); strings.HasPrefix(logger, "http.log.access") && strings.HasPrefix(h, host) {
			last = entry
		}
	}
	if last == nil {
		t.Fatalf("no access log entry for %s", host)
	}
	return last
}
