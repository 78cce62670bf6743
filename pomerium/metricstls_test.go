package pomerium

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// metricsPKI is the metrics server's certificate (for metrics.example),
// a client CA, and both written to files.
type metricsPKI struct {
	dir                 string
	cert, key           string // base64-encoded PEM
	certFile, keyFile   string
	ca, caFile          string // the client CA: base64-encoded PEM, and a file
	caDER               string // its DER, base64, as Caddy's inline CA pool takes it
	routeCert, routeKey string // a route certificate's files
}

func newMetricsPKI(t *testing.T) *metricsPKI {
	t.Helper()
	p := &metricsPKI{dir: t.TempDir()}
	leaf := testpki.NewCA(t, "metrics root").Issue(t, testpki.Server("metrics.example"))
	p.cert, p.key = leaf.Base64()
	p.certFile, p.keyFile = leaf.Write(t, p.dir, "metrics")
	clients := testpki.NewCA(t, "scrapers")
	p.ca = base64.StdEncoding.EncodeToString(clients.CertPEM())
	p.caFile = clients.WriteCert(t, p.dir, "scrapers.pem")
	p.caDER = base64.StdEncoding.EncodeToString(clients.Cert.Raw)
	p.routeCert, p.routeKey = testpki.NewCA(t, "route root").Issue(t, testpki.Server("app.example")).Write(t, p.dir, "route")
	return p
}

func pemOf(b64 string) string {
	b, _ := base64.StdEncoding.DecodeString(b64)
	return string(b)
}

// adaptedJSON adapts src with env and returns the config as generic JSON,
// failing on an error or a warning.
func adaptedJSON(t *testing.T, src string, env ...string) map[string]any {
	t.Helper()
	out, warnings, err := adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, envOf(env...))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("unexpected warning: %s", w)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// at returns the JSON of cfg at a path of keys.
func at(t *testing.T, cfg map[string]any, path ...string) string {
	t.Helper()
	var v any = cfg
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no %s", strings.Join(path, "."), k)
		}
		v = m[k]
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Issue 13: the metrics TLS settings were errors. With a certificate the
// metrics server is HTTPS with it (only it: the tag), with a client CA it
// requires a client certificate that CA issued, and the server's SNI-Host
// check stays off (one policy for every connection). Inline values go
// into the JSON as PEM, files by their path: nothing is written anywhere.
func TestMetricsTLSConfig(t *testing.T) {
	p := newMetricsPKI(t)
	metricsServer := func(policy string) string {
		return `{"automatic_https":{"disable":true},"listen":["127.0.0.1:9443"],"protocols":["h1","h2"],` +
			`"routes":[{"handle":[{"handler":"metrics"}],"terminal":true}],"strict_sni_host":false,"tls_connection_policies":[` + policy + `]}`
	}
	selectMetrics := `"certificate_selection":{"any_tag":["pomerium_metrics"]}`
	inlineCA := `"client_authentication":{"ca":{"provider":"inline","trusted_ca_certs":["` + p.caDER + `"]},"mode":"require_and_verify"}`
	fileCA := `"client_authentication":{"ca":{"pem_files":[` + jsonString(p.caFile) + `],"provider":"file"},"mode":"require_and_verify"}`
	inlineCert := `{"load_pem":[{"certificate":` + jsonString(pemOf(p.cert)) + `,"key":` + jsonString(pemOf(p.key)) + `,"tags":["pomerium_metrics"]}]}`
	fileCert := `{"load_files":[{"certificate":` + jsonString(p.certFile) + `,"key":` + jsonString(p.keyFile) + `,"tags":["pomerium_metrics"]}]}`

	for _, c := range []struct {
		name     string
		yaml     string
		env      []string
		server   string // the metrics server
		certs    string // the tls app's certificates
		mainAuto string // the main server's automatic_https
	}{
		{"an inline certificate and client CA", "metrics_certificate: " + p.cert + "\nmetrics_certificate_key: " + p.key + "\nmetrics_client_ca: " + p.ca + "\n", nil,
			metricsServer("{" + selectMetrics + "," + inlineCA + "}"), inlineCert, `{"ignore_loaded_certificates":true}`},
		{"certificate and client CA files", "metrics_certificate_file: " + p.certFile + "\nmetrics_certificate_key_file: " + p.keyFile + "\nmetrics_client_ca_file: " + p.caFile + "\n", nil,
			metricsServer("{" + selectMetrics + "," + fileCA + "}"), fileCert, `{"ignore_loaded_certificates":true}`},
		{"a certificate without a client CA: HTTPS for any client", "metrics_certificate_file: " + p.certFile + "\nmetrics_certificate_key_file: " + p.keyFile + "\n", nil,
			metricsServer("{" + selectMetrics + "}"), fileCert, `{"ignore_loaded_certificates":true}`},
		{"all of them from the environment", "", []string{"METRICS_CERTIFICATE=" + p.cert, "METRICS_CERTIFICATE_KEY=" + p.key, "METRICS_CLIENT_CA=" + p.ca},
			metricsServer("{" + selectMetrics + "," + inlineCA + "}"), inlineCert, `{"ignore_loaded_certificates":true}`},
		{"files from the environment", "", []string{"METRICS_CERTIFICATE_FILE=" + p.certFile, "METRICS_CERTIFICATE_KEY_FILE=" + p.keyFile, "METRICS_CLIENT_CA_FILE=" + p.caFile},
			metricsServer("{" + selectMetrics + "," + fileCA + "}"), fileCert, `{"ignore_loaded_certificates":true}`},
		{"the environment wins over the file", "metrics_certificate_file: /nowhere.pem\nmetrics_certificate_key_file: /nowhere.key\n",
			[]string{"METRICS_CERTIFICATE_FILE=" + p.certFile, "METRICS_CERTIFICATE_KEY_FILE=" + p.keyFile},
			metricsServer("{" + selectMetrics + "}"), fileCert, `{"ignore_loaded_certificates":true}`},
		{"with autocert", "autocert: true\nmetrics_certificate: " + p.cert + "\nmetrics_certificate_key: " + p.key + "\n", nil,
			metricsServer("{" + selectMetrics + "}"), inlineCert, `{"ignore_loaded_certificates":true}`},
		{"behind insecure_server the main server is untouched", "insecure_server: true\nmetrics_certificate: " + p.cert + "\nmetrics_certificate_key: " + p.key + "\n", nil,
			metricsServer("{" + selectMetrics + "}"), inlineCert, `{"disable":true}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := append([]string{"METRICS_ADDRESS=127.0.0.1:9443"}, c.env...)
			cfg := adaptedJSON(t, c.yaml+publicRoute, env...)
			if got := at(t, cfg, "apps", "http", "servers", "pomerium_metrics"); got != c.server {
				t.Errorf("metrics server:\n got %s\nwant %s", got, c.server)
			}
			if got := at(t, cfg, "apps", "tls", "certificates"); got != c.certs {
				t.Errorf("certificates:\n got %s\nwant %s", got, c.certs)
			}
			if got := at(t, cfg, "apps", "http", "servers", "pomerium", "automatic_https"); got != c.mainAuto {
				t.Errorf("main server's automatic_https: %s, want %s", got, c.mainAuto)
			}
		})
	}
}

// With the route certificates loaded, they are tagged and every TLS
// connection policy of the main server selects that tag, so that the
// metrics certificate never answers there, whatever name a client asks
// for; the metrics server selects the metrics certificate only.
func TestMetricsTLSKeepsEachCertificateOnItsServer(t *testing.T) {
	p := newMetricsPKI(t)
	metrics := "metrics_address: 127.0.0.1:9443\nmetrics_certificate: " + p.cert + "\nmetrics_certificate_key: " + p.key + "\n"
	routeCerts := "certificate_file: " + p.routeCert + "\ncertificate_key_file: " + p.routeKey + "\n"

	cfg := adaptedJSON(t, metrics+routeCerts+publicRoute)
	want := `{"load_files":[{"certificate":` + jsonString(p.routeCert) + `,"key":` + jsonString(p.routeKey) + `,"tags":["pomerium"]}],` +
		`"load_pem":[{"certificate":` + jsonString(pemOf(p.cert)) + `,"key":` + jsonString(pemOf(p.key)) + `,"tags":["pomerium_metrics"]}]}`
	if got := at(t, cfg, "apps", "tls", "certificates"); got != want {
		t.Errorf("certificates:\n got %s\nwant %s", got, want)
	}
	if got, want := at(t, cfg, "apps", "http", "servers", "pomerium", "tls_connection_policies"), `[{"certificate_selection":{"any_tag":["pomerium"]}}]`; got != want {
		t.Errorf("main server's policies: %s, want %s", got, want)
	}
	if got, want := at(t, cfg, "apps", "http", "servers", "pomerium", "automatic_https"), `{"disable_certificates":true}`; got != want {
		t.Errorf("main server's automatic_https: %s, want %s", got, want)
	}

	// With downstream mTLS, its policy selects the route certificates too.
	cfg = adaptedJSON(t, metrics+routeCerts+"downstream_mtls:\n  ca_file: "+p.caFile+"\n"+publicRoute)
	policies := at(t, cfg, "apps", "http", "servers", "pomerium", "tls_connection_policies")
	var list []map[string]any
	_ = json.Unmarshal([]byte(policies), &list)
	if len(list) != 2 || strings.Count(policies, `"certificate_selection":{"any_tag":["pomerium"]}`) != 2 || !strings.Contains(policies, `"client_authentication"`) {
		t.Errorf("main server's policies with downstream_mtls: %s", policies)
	}

	// Without a metrics certificate, nothing of this is added.
	cfg = adaptedJSON(t, "metrics_address: 127.0.0.1:9443\n"+routeCerts+publicRoute)
	if s := at(t, cfg, "apps"); strings.Contains(s, "tags") || strings.Contains(s, "certificate_selection") || strings.Contains(s, "ignore_loaded_certificates") {
		t.Errorf("plain metrics: %s", s)
	}
}

// Where Pomerium refuses to start, so does the adapter, naming the setting:
// a complete pair that does not load (either pair, even the one not
// served), and a client CA that is not base64 PEM; and a metrics
// certificate for a route host whose certificate Caddy manages, which
// Caddy could then present on the route.
func TestMetricsTLSErrors(t *testing.T) {
	p := newMetricsPKI(t)
	other := testpki.NewCA(t, "other").Issue(t, testpki.Server("metrics.example"))
	_, otherKey := other.Base64()
	_, otherKeyFile := other.Write(t, p.dir, "other")
	junk := filepath.Join(p.dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	appCert, appKey := testpki.NewCA(t, "app").Issue(t, testpki.Server("app.example")).Base64()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	inline := "metrics_certificate: " + p.cert + "\nmetrics_certificate_key: " + p.key + "\n"
	for _, c := range []struct{ name, yaml, want string }{
		{"a certificate that is not base64", "metrics_certificate: '%%%'\nmetrics_certificate_key: " + p.key + "\n",
			"config.yaml: metrics_certificate: not base64-encoded PEM"},
		{"a key that is not base64", "metrics_certificate: " + p.cert + "\nmetrics_certificate_key: '%%%'\n",
			"config.yaml: metrics_certificate_key: not base64-encoded PEM"},
		{"base64 that is not PEM", "metrics_certificate: " + b64("hello") + "\nmetrics_certificate_key: " + p.key + "\n",
			"config.yaml: metrics_certificate and metrics_certificate_key: tls: failed to find any PEM data in certificate input"},
		{"a key of another certificate", "metrics_certificate: " + p.cert + "\nmetrics_certificate_key: " + otherKey + "\n",
			"config.yaml: metrics_certificate and metrics_certificate_key: tls: private key does not match public key"},
		{"a missing file", "metrics_certificate_file: /nowhere/metrics.pem\nmetrics_certificate_key_file: " + p.keyFile + "\n",
			"config.yaml: metrics_certificate_file and metrics_certificate_key_file: open /nowhere/metrics.pem: no such file or directory"},
		{"a key file of another certificate", "metrics_certificate_file: " + p.certFile + "\nmetrics_certificate_key_file: " + otherKeyFile + "\n",
			"metrics_certificate_file and metrics_certificate_key_file: tls: private key does not match public key"},
		{"a bad file pair beside a good inline pair", inline + "metrics_certificate_file: " + junk + "\nmetrics_certificate_key_file: " + p.keyFile + "\n",
			"metrics_certificate_file and metrics_certificate_key_file: tls: failed to find any PEM data in certificate input"},
		{"a client CA that is not base64", inline + "metrics_client_ca: '%%%'\n", "config.yaml: metrics_client_ca: not base64-encoded PEM"},
		{"a client CA that is not PEM", inline + "metrics_client_ca: " + b64("hello") + "\n", "config.yaml: metrics_client_ca: data that is not PEM"},
		{"a client CA with a key only", inline + "metrics_client_ca: " + p.key + "\n", "config.yaml: metrics_client_ca: no PEM certificate"},
		{"a missing client CA file", inline + "metrics_client_ca_file: /nowhere/ca.pem\n", "config.yaml: metrics_client_ca_file: open /nowhere/ca.pem: no such file or directory"},
		{"a client CA file that is not PEM", inline + "metrics_client_ca_file: " + junk + "\n", "config.yaml: metrics_client_ca_file: data that is not PEM"},
		{"a metrics certificate for a route host of Caddy's local CA", "metrics_certificate: " + appCert + "\nmetrics_certificate_key: " + appKey + "\n",
			"config.yaml: metrics_certificate: the metrics certificate names app.example, a route host whose certificate Caddy gets"},
		{"the same under autocert", "autocert: true\nmetrics_certificate: " + appCert + "\nmetrics_certificate_key: " + appKey + "\n",
			"config.yaml: metrics_certificate: the metrics certificate names app.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := adaptWithEnv([]byte("metrics_address: :9443\n"+c.yaml+publicRoute), map[string]any{"filename": "config.yaml"}, envOf())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	// The same certificate for the route host is fine when the route
	// certificates are loaded: each server selects its own by tag.
	if _, _, err := adaptWithEnv([]byte("metrics_address: :9443\nmetrics_certificate: "+appCert+"\nmetrics_certificate_key: "+appKey+
		"\ncertificate: "+appCert+"\ncertificate_key: "+appKey+"\n"+publicRoute), map[string]any{"filename": "config.yaml"}, envOf()); err != nil {
		t.Errorf("the route's own certificate for the metrics too: %v", err)
	}
}

// Where Pomerium quietly ignores a setting, the adapter ignores it too and
// says what is served instead, at the setting's line.
func TestMetricsTLSWarnings(t *testing.T) {
	p := newMetricsPKI(t)
	inline := "metrics_certificate: " + p.cert + "\nmetrics_certificate_key: " + p.key + "\n"
	for _, c := range []struct {
		name, yaml string
		want       []string
		https      bool
	}{
		{"a certificate without its key", "metrics_certificate: " + p.cert + "\n",
			[]string{"config.yaml:2: metrics_certificate is ignored: metrics_certificate_key is not set, and Pomerium uses the two together only"}, false},
		{"a key file without its certificate file", "metrics_certificate_key_file: " + p.keyFile + "\n",
			[]string{"config.yaml:2: metrics_certificate_key_file is ignored: metrics_certificate_file is not set"}, false},
		{"an inline certificate with a key file", "metrics_certificate: " + p.cert + "\nmetrics_certificate_key_file: " + p.keyFile + "\n",
			[]string{"config.yaml:2: metrics_certificate is ignored: metrics_certificate_key is not set", "config.yaml:3: metrics_certificate_key_file is ignored: metrics_certificate_file is not set"}, false},
		{"a client CA without a certificate: plain HTTP, as in Pomerium", "metrics_client_ca: " + p.ca + "\n",
			[]string{"config.yaml:2: metrics_client_ca is ignored: there is no metrics certificate (metrics_certificate and metrics_certificate_key, or metrics_certificate_file and metrics_certificate_key_file), so the metrics endpoint is plain HTTP and asks for no client certificate, as in Pomerium"}, false},
		{"a client CA file with half a certificate", "metrics_certificate_file: " + p.certFile + "\nmetrics_client_ca_file: " + p.caFile + "\n",
			[]string{"config.yaml:2: metrics_certificate_file is ignored: metrics_certificate_key_file is not set", "config.yaml:3: metrics_client_ca_file is ignored: there is no metrics certificate"}, false},
		{"files beside an inline pair", inline + "metrics_certificate_file: " + p.certFile + "\nmetrics_certificate_key_file: " + p.keyFile + "\n",
			[]string{"config.yaml:4: metrics_certificate_file and metrics_certificate_key_file are ignored: metrics_certificate and metrics_certificate_key are served, as in Pomerium"}, true},
		{"a client CA file beside an inline one", inline + "metrics_client_ca: " + p.ca + "\nmetrics_client_ca_file: " + p.caFile + "\n",
			[]string{"config.yaml:5: metrics_client_ca_file is ignored: metrics_client_ca is used, as in Pomerium"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, warnings, err := adaptWithEnv([]byte("metrics_address: :9443\n"+c.yaml+publicRoute), map[string]any{"filename": "config.yaml"}, envOf())
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != len(c.want) {
				t.Errorf("warnings %v, want %q", warnings, c.want)
			}
			for _, want := range c.want {
				if !slices.ContainsFunc(warnings, func(w caddyconfig.Warning) bool { return strings.HasPrefix(w.String(), want) }) {
					t.Errorf("warnings %v lack %q", warnings, want)
				}
			}
			if got := strings.Contains(string(out), `"tls_connection_policies"`); got != c.https {
				t.Errorf("HTTPS %v, want %v:\n%s", got, c.https, out)
			}
		})
	}
	// Without metrics_address, each is ignored.
	_, warnings, err := adaptWithEnv([]byte(inline+"metrics_client_ca_file: "+p.caFile+"\n"+publicRoute), map[string]any{"filename": "config.yaml"}, envOf())
	if err != nil || len(warnings) != 3 || !strings.HasPrefix(warnings[0].String(), "config.yaml:1: metrics_certificate is ignored: metrics_address is not set") ||
		!strings.HasPrefix(warnings[2].String(), "config.yaml:3: metrics_client_ca_file is ignored: metrics_address is not set") {
		t.Errorf("without metrics_address: %v %v", err, warnings)
	}
}
