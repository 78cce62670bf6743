package upstreamtls_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

type files struct {
	dir                 string
	ca, otherCA         string
	caB64               string
	cert, key, otherKey string
	certB64, keyB64     string
}

func newFiles(t *testing.T) files {
	t.Helper()
	f := files{dir: t.TempDir()}
	ca := testpki.NewCA(t, "root")
	other := testpki.NewCA(t, "other")
	f.ca = ca.WriteCert(t, f.dir, "ca.pem")
	f.otherCA = other.WriteCert(t, f.dir, "other.pem")
	f.caB64 = base64.StdEncoding.EncodeToString(ca.CertPEM())
	client := ca.Issue(t, testpki.Client("client"))
	f.cert, f.key = client.Write(t, f.dir, "client")
	_, f.otherKey = other.Issue(t, testpki.Client("x")).Write(t, f.dir, "x")
	f.certB64, f.keyB64 = client.Base64()
	return f
}

// tlsJSON applies the options to an https transport and returns its TLS
// config as JSON, the form `caddy adapt` shows.
func tlsJSON(t *testing.T, o upstreamtls.Options, env upstreamtls.Env) (map[string]any, []string, error) {
	t.Helper()
	tr := &upstreamtls.Transport{HTTPTransport: reverseproxy.HTTPTransport{TLS: new(reverseproxy.TLSConfig)}}
	warnings, err := upstreamtls.Apply(o, env, tr)
	if err != nil {
		return nil, warnings, err
	}
	b, err := json.Marshal(tr.TLS)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, warnings, nil
}

func TestApplyMapsPomeriumOptionsOntoCaddysTransportTLS(t *testing.T) {
	f := newFiles(t)
	caDER := func() string {
		// what tls_custom_ca becomes: the CA in base64 DER
		m, _, err := tlsJSON(t, upstreamtls.Options{TLSCustomCA: f.caB64}, upstreamtls.Env{})
		if err != nil {
			t.Fatal(err)
		}
		return m["ca"].(map[string]any)["trusted_ca_certs"].([]any)[0].(string)
	}()

	for _, c := range []struct {
		name string
		opts upstreamtls.Options
		defs upstreamtls.Defaults
		want string // the TLS config's JSON, with {dir} for the temp dir
	}{
		{"no options leave Caddy's defaults", upstreamtls.Options{}, upstreamtls.Defaults{}, `{}`},
		{"a CA file becomes the file CA pool", upstreamtls.Options{TLSCustomCAFile: f.ca}, upstreamtls.Defaults{},
			`{"ca":{"pem_files":["{dir}/ca.pem"],"provider":"file"}}`},
		{"an inline CA becomes the inline CA pool", upstreamtls.Options{TLSCustomCA: f.caB64}, upstreamtls.Defaults{},
			`{"ca":{"provider":"inline","trusted_ca_certs":["` + caDER + `"]}}`},
		{"the CA file wins over the inline CA", upstreamtls.Options{TLSCustomCA: f.caB64, TLSCustomCAFile: f.otherCA}, upstreamtls.Defaults{},
			`{"ca":{"pem_files":["{dir}/other.pem"],"provider":"file"}}`},
		{"the global CA is added to the system roots", upstreamtls.Options{}, upstreamtls.Defaults{CertificateAuthorityFile: f.ca},
			`{"ca":{"pem_files":["{dir}/ca.pem"],"provider":"iap_system_plus"}}`},
		{"a route's CA replaces the global CA", upstreamtls.Options{TLSCustomCAFile: f.otherCA}, upstreamtls.Defaults{CertificateAuthorityFile: f.ca},
			`{"ca":{"pem_files":["{dir}/other.pem"],"provider":"file"}}`},
		{"tls_server_name sets the server name", upstreamtls.Options{TLSServerName: "a.example"}, upstreamtls.Defaults{},
			`{"server_name":"a.example"}`},
		{"tls_upstream_server_name wins over tls_server_name", upstreamtls.Options{TLSServerName: "a.example", TLSUpstreamServerName: "b.example"}, upstreamtls.Defaults{},
			`{"server_name":"b.example"}`},
		{"a client pair from files", upstreamtls.Options{TLSClientCertFile: f.cert, TLSClientKeyFile: f.key}, upstreamtls.Defaults{},
			`{"client_certificate_file":"{dir}/client.pem","client_certificate_key_file":"{dir}/client-key.pem"}`},
		{"tls_skip_verify turns verification off", upstreamtls.Options{TLSSkipVerify: true}, upstreamtls.Defaults{},
			`{"insecure_skip_verify":true}`},
		{"renegotiation is allowed freely", upstreamtls.Options{TLSUpstreamAllowRenegotiation: true}, upstreamtls.Defaults{},
			`{"renegotiation":"freely"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := tlsJSON(t, c.opts, upstreamtls.Env{Route: "r", Defaults: c.defs})
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(strings.ReplaceAll(c.want, "{dir}", f.dir)), &want); err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}

// An inline pair stays inline in the transport, as Pomerium's base64 PEM:
// adapting writes no file, and the adapted JSON runs anywhere.
func TestInlineClientPairStaysInlineAndWins(t *testing.T) {
	f := newFiles(t)
	tr := &upstreamtls.Transport{HTTPTransport: reverseproxy.HTTPTransport{TLS: new(reverseproxy.TLSConfig)}}
	if _, err := upstreamtls.Apply(upstreamtls.Options{
		TLSClientCert: f.certB64, TLSClientKey: f.keyB64,
		TLSClientCertFile: "/does/not/matter.pem", TLSClientKeyFile: "/does/not/matter-key.pem",
	}, upstreamtls.Env{Route: "r"}, tr); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(upstreamtls.TransportJSON(tr), &got); err != nil {
		t.Fatal(err)
	}
	if got["protocol"] != "iap_http" || got["tls_client_certificate"] != f.certB64 || got["tls_client_certificate_key"] != f.keyB64 {
		t.Errorf("transport %v: want iap_http with the inline pair", got)
	}
	if tls, _ := got["tls"].(map[string]any); tls["client_certificate_file"] != nil || tls["client_certificate_key_file"] != nil {
		t.Errorf("the file pair should lose to the inline one: %v", tls)
	}
}

func TestApplyRefusesBadInput(t *testing.T) {
	f := newFiles(t)
	for _, c := range []struct {
		name string
		opts upstreamtls.Options
		want string
	}{
		{"a missing CA file", upstreamtls.Options{TLSCustomCAFile: "/nope/ca.pem"}, "route r: tls_custom_ca_file: reading /nope/ca.pem: no such file or directory"},
		{"a CA file that holds a key", upstreamtls.Options{TLSCustomCAFile: f.key}, "no PEM certificate found"},
		{"an inline CA that is not base64", upstreamtls.Options{TLSCustomCA: "%%%"}, "tls_custom_ca: not base64-encoded PEM"},
		{"a certificate without a key", upstreamtls.Options{TLSClientCertFile: f.cert}, "route r: tls_client_cert_file is set without tls_client_key_file"},
		{"a key without a certificate", upstreamtls.Options{TLSClientKeyFile: f.key}, "route r: tls_client_key_file is set without tls_client_cert_file"},
		{"an inline key without a certificate", upstreamtls.Options{TLSClientKey: f.keyB64}, "route r: tls_client_key is set without tls_client_cert"},
		{"a key that belongs to another certificate", upstreamtls.Options{TLSClientCertFile: f.cert, TLSClientKeyFile: f.otherKey}, "tls_client_key_file: " + f.otherKey + " does not go with tls_client_cert_file " + f.cert},
		{"an inline key that belongs to another certificate", upstreamtls.Options{TLSClientCert: f.certB64, TLSClientKey: base64.StdEncoding.EncodeToString(mustRead(t, f.otherKey))}, "tls_client_key does not go with tls_client_cert"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := tlsJSON(t, c.opts, upstreamtls.Env{Route: "r"})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestTLSOptionsNeedAnHTTPSUpstream(t *testing.T) {
	tr := new(upstreamtls.Transport) // http upstream: no TLS
	_, err := upstreamtls.Apply(upstreamtls.Options{TLSServerName: "x"}, upstreamtls.Env{Route: "r"}, tr)
	if err == nil || !strings.Contains(err.Error(), "tls_server_name is set, but the route's upstreams are not https://") {
		t.Fatalf("error = %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
