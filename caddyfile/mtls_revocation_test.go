package caddyfile_test

import (
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// The revocation options of iap_mtls reach the handler and the handshake
// verifier as the same JSON names, and bad values are refused at adapt.
func TestMTLSRevocationOptions(t *testing.T) {
	dir := t.TempDir()
	caFile := testpki.NewCA(t, "root").WriteCert(t, dir, "ca.pem")
	site := func(opts string) string {
		return "app.example {\n\tiap_mtls {\n\t\tca_file " + caFile + "\n\t\tenforcement reject_connection\n" + opts + "\t}\n\trespond ok\n}\n"
	}
	out, err := adapt(t, site("\t\tcrl_expired warn\n\t\tocsp soft\n\t\tocsp_responder http://ocsp.example/\n\t\tocsp_chain\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"crl_expired":"warn"`, `"ocsp":"soft"`, `"ocsp_responder":"http://ocsp.example/"`, `"ocsp_chain":true`} {
		// Once in the handler, once in the verifier module.
		if n := strings.Count(out, want); n != 2 {
			t.Errorf("%s appears %d times, want 2 (handler and verifier):\n%s", want, n, out)
		}
	}
	for _, c := range []struct{ opts, want string }{
		{"\t\tocsp maybe\n", `ocsp: unknown mode "maybe"`},
		{"\t\tocsp_responder ldap://x\n", `ocsp_responder: "ldap://x" is not an http or https URL`},
		{"\t\tcrl_expired ignore\n", `crl_expired: unknown value "ignore"`},
		{"\t\tocsp_chain sometimes\n", `ocsp_chain takes true or false`},
		{"\t\tocsp off\n\t\tocsp_responder http://x/\n", "ocsp_responder is set but ocsp is off"},
	} {
		if _, err := adapt(t, site(c.opts)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.opts, err, c.want)
		}
	}
}
