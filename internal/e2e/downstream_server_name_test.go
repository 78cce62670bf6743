package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// Pomerium's tls_downstream_server_name, from a config.yaml, with curl
// sending that server name (SNI) and the route's host in Host: the
// handshake gets a certificate for the name (curl verifies it against
// Caddy's local CA), asks for the route's client certificates, and the
// request reaches the route. The name opens no other route, and another
// route's SNI still opens nothing here (421), with the client
// certificate checks of the route (495) as ever. Run with the global
// downstream_mtls and with the route's own client CA.
func TestPomeriumTLSDownstreamServerName(t *testing.T) {
	c := newClientCerts(t)
	for _, mode := range []struct{ name, global, route string }{
		{"global downstream_mtls", "downstream_mtls:\n  ca_file: " + c.caFile + "\n", ""},
		{"the route's own client CA", "", "    tls_downstream_client_ca_file: " + c.caFile + "\n"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			upstream := echoUpstream(t)
			httpsPort := testenv.FreePort(t)
			config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
%sroutes:
  - from: https://app.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
    set_request_headers:
      X-Route: app
    tls_downstream_server_name: legacy.pomerium.test
%s  - from: https://other.pomerium.test
    to: %[4]s
    allow_public_unauthenticated_access: true
    set_request_headers:
      X-Route: other
`, httpsPort, testenv.FreePort(t), mode.global, upstream, mode.route)
			caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
			caddy.WaitCertificates(t, "app.pomerium.test", "other.pomerium.test", "legacy.pomerium.test")
			cert := []string{"--cert", c.certFile["valid"], "--key", c.keyFile["valid"]}
			host := func(h string) []string { return []string{"-H", fmt.Sprintf("Host: %s:%d", h, httpsPort)} }
			for _, tc := range []struct {
				what      string
				sni       string
				args      []string
				status    int
				routeSeen string
			}{
				{"the name's SNI with the route's host and a client certificate", "legacy.pomerium.test", append(host("app.pomerium.test"), cert...), 200, "app"},
				{"the route's own name", "app.pomerium.test", cert, 200, "app"},
				{"the name's SNI without a client certificate", "legacy.pomerium.test", host("app.pomerium.test"), 495, ""},
			} {
				code, body, err := curl(t, caddy, tc.sni, tc.args...)
				if err != nil || code != tc.status {
					t.Errorf("%s: %d (%v), want %d: %s", tc.what, code, err, tc.status, oneLine(body))
					continue
				}
				if tc.routeSeen != "" && !strings.Contains(body, `"X-Route":["`+tc.routeSeen+`"]`) {
					t.Errorf("%s: the upstream got %s, want route %s", tc.what, oneLine(body), tc.routeSeen)
				}
			}
			// The name's SNI with another route's host: under the global
			// downstream_mtls, that route's iap_mtls refuses it (the name is
			// not its); with only app's own CA, other asks for no
			// certificate, so the connection's name does not matter to it
			// (as in Pomerium, which routes by Host alone).
			want, wantRoute := 421, ""
			if mode.global == "" {
				want, wantRoute = 200, "other"
			}
			code, body, err := curl(t, caddy, "legacy.pomerium.test", append(host("other.pomerium.test"), cert...)...)
			if err != nil || code != want || wantRoute != "" && !strings.Contains(body, `"X-Route":["other"]`) {
				t.Errorf("the name's SNI with another route's host: %d (%v), want %d %s: %s", code, err, want, wantRoute, oneLine(body))
			}
			// Another route's SNI with app's host: refused whatever that
			// connection asked for (strict_sni_host is off, app's iap_mtls
			// checks it).
			code, body, err = curl(t, caddy, "other.pomerium.test", append(host("app.pomerium.test"), cert...)...)
			if err != nil || code != 421 {
				t.Errorf("another route's SNI with the route's host: %d (%v), want 421: %s", code, err, oneLine(body))
			}
		})
	}
}

// The same in a Caddyfile: the name is one of the site's addresses (its
// certificate and the site's client-certificate policy), iap_mtls's
// server_names lets a connection made for it carry requests for the
// site's other host, and strict_sni_host insecure_off leaves that check to
// iap_mtls. Without server_names the same request is 421.
func TestMTLSServerNamesCaddyfile(t *testing.T) {
	c := newClientCerts(t)
	upstream := echoUpstream(t)
	site := func(hosts, extra string) string {
		return fmt.Sprintf("%s {\n\ttls internal\n\tiap_mtls {\n\t\tca_file %s\n%s\t}\n\tiap_route {\n\t\tto %s\n\t\tallow_public_unauthenticated_access\n\t\tset_request_headers X-Route {host}\n\t}\n}\n",
			hosts, c.caFile, extra, upstream)
	}
	caddy := testenv.StartCaddy(t, "\tservers {\n\t\tstrict_sni_host insecure_off\n\t}",
		site("app.test, legacy.test", "\t\tserver_names legacy.test\n")+site("plain.test, oldname.test", ""))
	caddy.WaitCertificates(t, "app.test", "legacy.test", "plain.test", "oldname.test")
	cert := []string{"--cert", c.certFile["valid"], "--key", c.keyFile["valid"]}
	host := func(h string) string { return fmt.Sprintf("Host: %s:%d", h, caddy.HTTPSPort) }
	for _, tc := range []struct {
		what, sni, host string
		args            []string
		status          int
	}{
		{"the name's SNI with the site's host", "legacy.test", "app.test", cert, 200},
		{"the name's SNI without a client certificate", "legacy.test", "app.test", nil, 495},
		{"another site's SNI", "plain.test", "app.test", cert, 421},
		{"a site without server_names", "oldname.test", "plain.test", cert, 421},
	} {
		code, body, err := curl(t, caddy, tc.sni, append([]string{"-H", host(tc.host)}, tc.args...)...)
		if err != nil || code != tc.status {
			t.Errorf("%s: %d (%v), want %d: %s", tc.what, code, err, tc.status, oneLine(body))
		}
	}
}
