package caddyfile

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// A message about a block (an error, a warning) belongs to the line of the
// option it names first as a whole word, else to the directive's line.
func TestOptionLinesPlaceAMessage(t *testing.T) {
	d := caddyfile.NewTestDispenser("iap_mtls {\n\tca_file a.pem\n\tcrl_file b.pem\n\tca x\n}")
	d.Next()
	lines := newOptionLines(d)
	for d.NextBlock(0) {
		lines.note(d)
		d.RemainingArgs()
	}
	for msg, want := range map[string]int{
		"crl_file b.pem: no configured CA signed this CRL": 3,
		"iap_mtls: ca_file: reading a.pem: no such file":   2,
		"ca and ca_file are both set":                      4,
		"ca_file_extra is not an option":                   1,
		"nothing named here":                               1,
	} {
		if got := lines.at(msg); got.Line != want {
			t.Errorf("%q: line %d, want %d", msg, got.Line, want)
		}
	}
}
