package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// Attacks on iap_mtls server_names with strict_sni_host insecure_off,
// where Caddy no longer checks that a request's Host is the name its
// connection was made for: a connection made with no server name at all
// (by IP address), or for a site that asks for no client certificate or
// for another CA's, carrying a request for a site that needs this CA's
// certificate. None of them may reach the upstream; only the site's own
// names and its server_names, with a valid certificate, do.
func TestReviewServerNamesSNIHostMismatch(t *testing.T) {
	c := newClientCerts(t)
	strangerCA := c.stranger.WriteCert(t, c.dir, "strangerCA.pem")
	upstream := echoUpstream(t)
	site := func(hosts, mtls string) string {
		return fmt.Sprintf("%s {\n\ttls internal\n%s\tiap_route {\n\t\tto %s\n\t\tallow_public_unauthenticated_access\n\t\tset_request_headers X-Route {host}\n\t}\n}\n",
			hosts, mtls, upstream)
	}
	// default_sni: a client that sends no server name (one connecting by
	// IP address) still completes a handshake, with app.test's certificate.
	caddy := testenv.StartCaddy(t, "\tdefault_sni app.test\n\tservers {\n\t\tstrict_sni_host insecure_off\n\t}",
		site("app.test, legacy.test", "\tiap_mtls {\n\t\tca_file "+c.caFile+"\n\t\tserver_names legacy.test\n\t}\n")+
			site("plain.test", "")+
			site("other.test", "\tiap_mtls {\n\t\tca_file "+strangerCA+"\n\t}\n"))
	caddy.WaitCertificates(t, "app.test", "legacy.test", "plain.test", "other.test")
	cert := func(name string) []string { return []string{"--cert", c.certFile[name], "--key", c.keyFile[name]} }
	host := func(h string) []string { return []string{"-H", fmt.Sprintf("Host: %s:%d", h, caddy.HTTPSPort)} }

	for _, tc := range []struct {
		what, sni string // sni "": connect by IP address, no server name
		args      []string
		want      int
	}{
		{"no server name, no certificate", "", host("app.test"), 495},
		{"no server name, another CA's certificate", "", append(host("app.test"), cert("untrusted")...), 495},
		{"no server name, a valid certificate (the default name's policy asks for it)", "", append(host("app.test"), cert("valid")...), 200},
		{"no server name, another site's host with this CA's certificate", "", append(host("other.test"), cert("valid")...), 495},
		{"a site asking for no certificate", "plain.test", append(host("app.test"), cert("valid")...), 421},
		{"a site asking for another CA's certificate", "other.test", append(host("app.test"), cert("untrusted")...), 421},
		{"the server name with another CA's certificate", "legacy.test", append(host("app.test"), cert("untrusted")...), 0},
		{"the server name with a valid certificate", "legacy.test", append(host("app.test"), cert("valid")...), 200},
	} {
		code, body := reviewCurl(t, caddy, tc.sni, tc.args...)
		switch {
		case tc.want == 0 && code == 200:
			t.Errorf("%s: 200, want a failed handshake or a refusal: %s", tc.what, oneLine(body))
		case tc.want != 0 && code != tc.want:
			t.Errorf("%s: %d, want %d: %s", tc.what, code, tc.want, oneLine(body))
		}
		if code == 200 && !strings.Contains(body, `"X-Route":["app.test"]`) {
			t.Errorf("%s: the upstream got %s", tc.what, oneLine(body))
		}
	}
}

// reviewCurl sends GET / to Caddy's HTTPS port with curl, for sni (a name
// resolved to 127.0.0.1), or to 127.0.0.1 itself when sni is "" (curl sends
// no server name for an IP address, and the certificate is not checked).
// It returns the status, 0 when the handshake or the request failed.
func reviewCurl(t *testing.T, caddy *testenv.Caddy, sni string, extra ...string) (int, string) {
	t.Helper()
	testenv.Need(t, "curl")
	args := []string{"-sS", "-w", "\n%{http_code}"}
	if sni == "" {
		args = append(args, "-k", fmt.Sprintf("https://127.0.0.1:%d/", caddy.HTTPSPort))
	} else {
		args = append(args, "--cacert", caddy.RootFile(t), "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", sni, caddy.HTTPSPort),
			fmt.Sprintf("https://%s:%d/", sni, caddy.HTTPSPort))
	}
	out, err := exec.Command("curl", append(args, extra...)...).CombinedOutput()
	if err != nil {
		return 0, string(out)
	}
	s := string(out)
	i := strings.LastIndex(s, "\n")
	var code int
	fmt.Sscan(s[i+1:], &code)
	return code, s[:i]
}
