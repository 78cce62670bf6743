package module

import (
	"strings"
	"testing"
)

// Pomerium's set_request_headers variables become Caddy placeholders;
// everything else in the value is left alone.
func TestPomeriumVariables(t *testing.T) {
	for in, want := range map[string]string{
		"static":                               "static",
		"$pomerium.client_cert_fingerprint":    "{http.iap.client_cert.fingerprint}",
		"${pomerium.client_cert_san_dns}":      "{http.iap.client_cert.san_dns}",
		"${ pomerium.client_cert_san_email }":  "{http.iap.client_cert.san_email}",
		"Bearer ${pomerium.jwt}":               "Bearer {http.auth.user.jwt}",
		"$pomerium.jwt.":                       "{http.auth.user.jwt}.",
		"a $$pomerium.jwt b":                   "a $pomerium.jwt b",
		"$5 and $HOME and {http.request.host}": "$5 and $HOME and {http.request.host}",
		"unclosed ${pomerium.jwt":              "unclosed ${pomerium.jwt",
		"$":                                    "$",
	} {
		got, err := pomeriumVariables(in)
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"$pomerium.id_token", "Bearer ${pomerium.access_token}", "$pomerium.nope"} {
		if _, err := pomeriumVariables(in); err == nil || !strings.Contains(err.Error(), "is not supported") {
			t.Errorf("%q: err %v", in, err)
		}
	}
}
