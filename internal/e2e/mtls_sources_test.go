package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Issue 14: iap_mtls asks for a client certificate on its own hosts, and
// only there, whatever the site's certificate source: a certificate file
// per site, one file shared by several sites (a wildcard or SAN
// certificate), a wildcard site beside a specific host, `tls internal`, or
// automatic HTTPS with Caddy's internal issuer (the test globals set
// local_certs), or on_demand TLS (the internal issuer, certificates made at
// the first handshake once an ask endpoint allowed the name). Before the
// fix, a site whose certificate file another site on the port also loaded
// never asked: every client got 495. HTTP/3 is TestMTLSOverHTTP3.
func TestMTLSWithEveryCertificateSource(t *testing.T) {
	testenv.Need(t, "openssl")
	dir := t.TempDir()
	clientCA := testpki.NewCA(t, "iap_mtls client root")
	caFile := clientCA.WriteCert(t, dir, "rootCA.pem")
	alice := clientCA.Issue(t, testpki.Client("alice"))
	aliceFile, aliceKey := alice.Write(t, dir, "alice")
	alicePair, err := tls.LoadX509KeyPair(aliceFile, aliceKey)
	if err != nil {
		t.Fatal(err)
	}

	serverCA := testpki.NewCA(t, "site server root")
	serverRoots := x509.NewCertPool()
	serverRoots.AddCert(serverCA.Cert)
	files := func(name string, hosts ...string) string {
		cert, key := serverCA.Issue(t, testpki.Server(hosts...)).Write(t, dir, name)
		return cert + " " + key
	}
	wild := files("wild", "*.example.test", "example.test")
	san := files("san", "x.example.test", "yy.example.test", "zzz.example.test")
	a := files("a", "a.example.test")
	b := files("b", "b.example.test")

	// The ask endpoint of on_demand TLS allows the test hosts only, and
	// counts what it was asked.
	var asked sync.Map
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		domain := r.URL.Query().Get("domain")
		asked.Store(domain, true)
		if !strings.HasSuffix(domain, ".example.test") {
			http.Error(w, "not ours", http.StatusForbidden)
		}
	}))
	t.Cleanup(ask.Close)
	onDemand := "\ton_demand_tls {\n\t\task " + ask.URL + "\n\t}"
	const onDemandTLS = "internal {\n\t\ton_demand\n\t}"

	up := echoUpstream(t)
	// site is a site block: tls is the argument of its tls directive
	// ("" for none: automatic HTTPS), enforcement that of its iap_mtls
	// ("" for no iap_mtls).
	site := func(host, tlsArgs, enforcement string) string {
		var body string
		if tlsArgs != "" {
			body += "\ttls " + tlsArgs + "\n"
		}
		if enforcement != "" {
			body += "\tiap_mtls {\n\t\tca_file " + caFile + "\n\t\tenforcement " + enforcement + "\n\t}\n"
		}
		return fmt.Sprintf("https://%s {\n%s\tiap_route {\n\t\tto %s\n\t\tallow_public_unauthenticated_access\n\t}\n}\n", host, body, up)
	}
	const deny, reject = "policy_with_default_deny", "reject_connection"

	type hostCase struct {
		host, enforcement string // enforcement "" = no iap_mtls
	}
	for _, row := range []struct {
		name     string
		sites    string
		fileCert bool // the sites' certificates come from serverCA, not Caddy's local CA
		hosts    []hostCase
		globals  string // extra global options
	}{
		{"tls cert key per site",
			site("a.example.test", a, deny) + site("b.example.test", b, ""), true,
			[]hostCase{{"a.example.test", deny}, {"b.example.test", ""}}, ""},
		{"one cert file shared by two sites",
			site("app.example.test", wild, deny) + site("other.example.test", wild, ""), true,
			[]hostCase{{"app.example.test", deny}, {"other.example.test", ""}}, ""},
		{"one SAN cert file shared by three sites, iap_mtls on two",
			site("x.example.test", san, deny) + site("yy.example.test", san, "") + site("zzz.example.test", san, reject), true,
			[]hostCase{{"x.example.test", deny}, {"yy.example.test", ""}, {"zzz.example.test", reject}}, ""},
		{"one SAN cert file shared by three sites, iap_mtls on one",
			site("x.example.test", san, "") + site("yy.example.test", san, deny) + site("zzz.example.test", san, ""), true,
			[]hostCase{{"x.example.test", ""}, {"yy.example.test", deny}, {"zzz.example.test", ""}}, ""},
		{"wildcard site with iap_mtls and a specific host",
			site("*.example.test", wild, deny) + site("plain.example.test", wild, ""), true,
			[]hostCase{{"foo.example.test", deny}, {"plain.example.test", ""}}, ""},
		{"wildcard site and a specific host with iap_mtls",
			site("*.example.test", wild, "") + site("secure.example.test", wild, reject), true,
			[]hostCase{{"foo.example.test", ""}, {"secure.example.test", reject}}, ""},
		{"tls internal",
			site("a.example.test", "internal", deny) + site("b.example.test", "internal", ""), false,
			[]hostCase{{"a.example.test", deny}, {"b.example.test", ""}}, ""},
		{"automatic HTTPS with local_certs",
			site("a.example.test", "", deny) + site("b.example.test", "", "") + site("c.example.test", "", reject), false,
			[]hostCase{{"a.example.test", deny}, {"b.example.test", ""}, {"c.example.test", reject}}, ""},
		{"on_demand with the internal issuer and an ask endpoint",
			site("a.example.test", onDemandTLS, deny) + site("b.example.test", onDemandTLS, "") + site("c.example.test", onDemandTLS, reject), false,
			[]hostCase{{"a.example.test", deny}, {"b.example.test", ""}, {"c.example.test", reject}}, onDemand},
		{"on_demand for a wildcard site with iap_mtls and a specific host",
			site("*.example.test", onDemandTLS, deny) + site("plain.example.test", onDemandTLS, ""), false,
			[]hostCase{{"foo.example.test", deny}, {"plain.example.test", ""}}, onDemand},
	} {
		t.Run(row.name, func(t *testing.T) {
			caddy := testenv.StartCaddy(t, row.globals, row.sites)
			roots := serverRoots
			if !row.fileCert {
				roots = caddy.Roots(t)
			}
			client := func(withCert bool) *http.Client {
				cfg := &tls.Config{RootCAs: roots}
				if withCert {
					cfg.Certificates = []tls.Certificate{alicePair}
				}
				return &http.Client{
					Timeout:   20 * time.Second,
					Transport: &http.Transport{DialContext: caddy.DialContext, TLSClientConfig: cfg, DisableKeepAlives: true},
				}
			}
			for _, hc := range row.hosts {
				t.Run(hc.host, func(t *testing.T) {
					// A valid certificate gets through everywhere.
					r, err := caddy.Do(t, client(true), hc.host, "/", nil)
					if err != nil || r.Status != 200 {
						t.Errorf("with a valid certificate: status %d, err %v, want 200: %s", r.Status, err, r.Body)
					}

					// Without one: 495, a failed handshake, or 200 where
					// there is no iap_mtls.
					r, err = caddy.Do(t, client(false), hc.host, "/", http.Header{"Accept": {"application/json"}})
					switch hc.enforcement {
					case "":
						if err != nil || r.Status != 200 {
							t.Errorf("without a certificate: status %d, err %v, want 200: %s", r.Status, err, r.Body)
						}
					case deny:
						if err != nil || r.Status != 495 || !strings.Contains(r.Body, "client-certificate-required") {
							t.Errorf("without a certificate: status %d, err %v, want 495 client-certificate-required: %s", r.Status, err, r.Body)
						}
					case reject:
						if err == nil || !strings.Contains(err.Error(), "tls:") {
							t.Errorf("without a certificate: status %d, err %v, want a failed handshake", r.Status, err)
						}
					}

					// The handshake asks for a certificate, naming the CA,
					// on hosts with iap_mtls only.
					out := sClient(t, caddy.HTTPSPort, hc.host)
					if hc.enforcement == "" {
						if !strings.Contains(out, "No client certificate CA names sent") {
							t.Errorf("%s asked for a client certificate:\n%s", hc.host, out)
						}
					} else if !strings.Contains(out, "Acceptable client certificate CA names") || !strings.Contains(out, "iap_mtls client root") {
						t.Errorf("%s did not ask for a client certificate from its CA:\n%s", hc.host, out)
					}
					// The certificate was made on demand, once allowed.
					if _, ok := asked.Load(hc.host); row.globals != "" && !ok {
						t.Errorf("the ask endpoint was not asked about %s", hc.host)
					}
				})
			}
		})
	}
}

// sClient runs `openssl s_client` for host against Caddy and returns what
// it printed.
func sClient(t *testing.T, port int, host string) string {
	t.Helper()
	var out []byte
	for i := 0; i < 50; i++ {
		cmd := exec.Command("openssl", "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-servername", host)
		cmd.Stdin = strings.NewReader("")
		out, _ = cmd.CombinedOutput()
		// Caddy may still be issuing the site's certificate.
		if !strings.Contains(string(out), "internal error") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return string(out)
}
