package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Pomerium's upstream mTLS guide, run from a Pomerium config.yaml: the
// route exactly as the guide writes it (with the signed-in user's email in
// its policy), Dex to sign in, and openssl s_server -Verify 1 upstream.
func TestPomeriumConfigUpstreamMTLSGuide(t *testing.T) {
	p := newPKI(t)
	up := testenv.StartSServer(t, p.serverCert, p.serverKey, "-Verify", "1", "-verifyCAfile", p.caFile, "-verify_return_error")
	httpsPort := testenv.FreePort(t)
	// The guide's authenticate_service_url is where users sign in: the
	// IdP lists that host's callback only (central sign-in).
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice},
		RedirectURIs: []string{fmt.Sprintf("https://authenticate.pomerium.test:%d/oauth2/callback", httpsPort)}})
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
authenticate_service_url: https://authenticate.pomerium.test:%d
idp_provider: oidc
idp_provider_url: %s
idp_client_id: caddy
idp_client_secret: caddy-secret
cookie_secret: %s
certificate_authority_file: %s
routes:
  - from: https://openssl.pomerium.test
    to: https://%s
    tls_upstream_server_name: openssl.localhost
    tls_client_cert_file: %s
    tls_client_key_file: %s
    policy:
      - allow:
          or:
            - email:
                is: %s
`, httpsPort, testenv.FreePort(t), httpsPort, dex.Issuer, randomSecret(t), p.caFile, up.Addr(), p.clientCert, p.clientKey, alice.Email)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	ua := caddy.NewUserAgent(t)
	resp, body := ua.SignIn(t, ua.URL("openssl.pomerium.test", "/"), alice.Email, alice.Password)
	if resp.StatusCode != 200 || !strings.Contains(body, "Client certificate") || !strings.Contains(body, "pomerium@localhost") {
		t.Fatalf("got %d:\n%s", resp.StatusCode, body)
	}
}

// Pomerium's downstream mTLS guide from a config.yaml: a wildcard
// certificate, downstream_mtls.ca_file, and curl with and without the
// client certificate (PEM and PKCS#12, password changeit).
func TestPomeriumConfigDownstreamMTLSGuide(t *testing.T) {
	c := newClientCerts(t)
	serverCA := testpki.NewCA(t, "server root")
	certFile, keyFile := serverCA.Issue(t, testpki.Server("*.pomerium.test")).Write(t, c.dir, "_wildcard.pomerium.test")
	serverCAFile := serverCA.WriteCert(t, c.dir, "serverCA.pem")
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
certificate_file: %s
certificate_key_file: %s
downstream_mtls:
  ca_file: %s
routes:
  - from: https://verify.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
`, httpsPort, testenv.FreePort(t), certFile, keyFile, c.caFile, echoUpstream(t))
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)

	for _, tc := range []struct {
		name   string
		args   []string
		status int
	}{
		{"no client certificate", nil, 495},
		{"the client certificate as PEM", []string{"--cert", c.certFile["valid"], "--key", c.keyFile["valid"]}, 200},
		{"the client certificate as PKCS#12", []string{"--cert-type", "P12", "--cert", c.p12s["valid"] + ":changeit"}, 200},
		{"a certificate from another CA", []string{"--cert", c.certFile["untrusted"], "--key", c.keyFile["untrusted"]}, 495},
	} {
		code, body, err := curl(t, caddy, "verify.pomerium.test", append([]string{"--cacert", serverCAFile}, tc.args...)...)
		if err != nil || code != tc.status {
			t.Errorf("%s: %d (%v), want %d: %s", tc.name, code, err, tc.status, body)
		}
	}

	// A Go client that trusts the wildcard certificate's CA sees the same.
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	ua := caddy.NewUserAgent(t, func(cfg *tls.Config) { cfg.RootCAs = roots }, c.tlsCert(t, "valid"))
	if resp, body := ua.Get(t, ua.URL("verify.pomerium.test", "/"), nil); resp.StatusCode != 200 {
		t.Errorf("Go client with the certificate: %d %s", resp.StatusCode, body)
	}
}
