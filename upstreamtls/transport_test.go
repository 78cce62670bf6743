package upstreamtls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

// The iap_http transport presents an inline pair (Pomerium's base64 PEM) to
// an upstream that requires a client certificate, straight from the config.
func TestTransportPresentsTheInlinePair(t *testing.T) {
	ca := testpki.NewCA(t, "root")
	server := ca.Issue(t, testpki.Server("127.0.0.1"))
	serverPair, err := tls.X509KeyPair(server.CertPEM(), server.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	upstream.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	upstream.StartTLS()
	t.Cleanup(upstream.Close)

	certB64, keyB64 := ca.Issue(t, testpki.Client("inline@localhost")).Base64()
	raw := caddyconfig.JSONModuleObject(&upstreamtls.Transport{
		HTTPTransport: reverseproxy.HTTPTransport{TLS: &reverseproxy.TLSConfig{
			CARaw: caddyconfig.JSONModuleObject(caddytls.InlineCAPool{
				TrustedCACerts: []string{base64.StdEncoding.EncodeToString(ca.Cert.Raw)},
			}, "provider", "inline", nil),
			ServerName: "127.0.0.1",
		}},
		ClientCertificate: certB64, ClientCertificateKey: keyB64,
	}, "protocol", "iap_http", nil)
	tr := provision(t, raw)
	req := httptest.NewRequest("GET", upstream.URL, nil)
	req.RequestURI = ""
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "inline@localhost" {
		t.Errorf("the upstream saw %q, want the inline certificate", body)
	}
}

// An inline pair that cannot work fails at provision, naming the field.
func TestTransportRefusesABadInlinePair(t *testing.T) {
	f := newFiles(t)
	withTLS := reverseproxy.HTTPTransport{TLS: new(reverseproxy.TLSConfig)}
	for _, c := range []struct {
		name string
		tr   upstreamtls.Transport
		want string
	}{
		{"a certificate without its key", upstreamtls.Transport{HTTPTransport: withTLS, ClientCertificate: f.certB64},
			"iap_http: tls_client_certificate is set without tls_client_certificate_key"},
		{"no TLS", upstreamtls.Transport{ClientCertificate: f.certB64, ClientCertificateKey: f.keyB64},
			"iap_http: tls_client_certificate is set, but TLS toward the upstream is not"},
		{"a file pair too", upstreamtls.Transport{HTTPTransport: reverseproxy.HTTPTransport{TLS: &reverseproxy.TLSConfig{ClientCertificateFile: f.cert, ClientCertificateKeyFile: f.key}}, ClientCertificate: f.certB64, ClientCertificateKey: f.keyB64},
			"iap_http: tls_client_certificate and tls.client_certificate_file (or _automate) are both set: keep one"},
		{"not base64", upstreamtls.Transport{HTTPTransport: withTLS, ClientCertificate: "%%", ClientCertificateKey: f.keyB64},
			"iap_http: tls_client_certificate: not base64-encoded PEM"},
		{"another key", upstreamtls.Transport{HTTPTransport: withTLS, ClientCertificate: f.certB64, ClientCertificateKey: base64.StdEncoding.EncodeToString(mustRead(t, f.otherKey))},
			"iap_http: tls_client_certificate_key does not go with tls_client_certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			t.Cleanup(cancel)
			tr := c.tr
			err := tr.Provision(ctx)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
		})
	}
}

// provision loads the transport from its JSON, as Caddy does.
func provision(t *testing.T, raw json.RawMessage) http.RoundTripper {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	// "protocol" is the module's inline key, which Caddy takes out before
	// decoding the rest strictly.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "protocol")
	b, _ := json.Marshal(m)
	tr := new(upstreamtls.Transport)
	if err := caddy.StrictUnmarshalJSON(b, tr); err != nil {
		t.Fatal(err)
	}
	if err := tr.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Cleanup() })
	return tr
}

// A plain reverse_proxy takes the inline pair in the Caddyfile, beside every
// `transport http` subdirective, and the adapted JSON carries it.
func TestTransportCaddyfileTakesTheInlinePair(t *testing.T) {
	f := newFiles(t)
	src := "app.example {\n\treverse_proxy https://127.0.0.1:9443 {\n\t\ttransport iap_http {\n\t\t\ttls_client_certificate " +
		f.certB64 + " " + f.keyB64 + "\n\t\t\ttls_server_name upstream.example\n\t\t}\n\t}\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("caddy validate: %v", err)
	}
	for _, want := range []string{`"protocol":"iap_http"`, `"tls_client_certificate":"` + f.certB64 + `"`,
		`"tls_client_certificate_key":"` + f.keyB64 + `"`, `"server_name":"upstream.example"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}

	_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(strings.Replace(src, " "+f.keyB64, "", 1)), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "tls_client_certificate takes the certificate and its key, each as base64-encoded PEM; got 1 values, at Caddyfile:4") {
		t.Errorf("a certificate without its key: %v", err)
	}
}
