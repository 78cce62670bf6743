package caddyfile_test

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// An inline upstream client certificate stays inline through both
// adapters: the adapted JSON carries it, and adapting writes no file (the
// data directory stays empty), so the JSON runs on another machine.
func TestInlineClientCertificateStaysInTheConfig(t *testing.T) {
	data, config := t.TempDir(), t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	t.Setenv("XDG_CONFIG_HOME", config)
	ca := testpki.NewCA(t, "root")
	cert, key := ca.Issue(t, testpki.Client("inline@localhost")).Base64()

	for _, c := range []struct{ adapter, src string }{
		{"caddyfile", "app.example {\n\tiap_route {\n\t\tto https://127.0.0.1:9443\n\t\ttls_client_cert " + cert + "\n\t\ttls_client_key " + key + "\n\t\tallow_public_unauthenticated_access\n\t}\n}\n"},
		{"pomerium", "routes:\n  - from: https://app.example\n    to: https://127.0.0.1:9443\n    tls_client_cert: " + cert + "\n    tls_client_key: " + key + "\n    allow_public_unauthenticated_access: true\n"},
	} {
		t.Run(c.adapter, func(t *testing.T) {
			out, _, err := caddyconfig.GetAdapter(c.adapter).Adapt([]byte(c.src), map[string]any{"filename": "config"})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"protocol":"iap_http"`, `"tls_client_certificate":"` + cert + `"`, `"tls_client_certificate_key":"` + key + `"`} {
				if !strings.Contains(string(out), want) {
					t.Errorf("adapted config lacks %s", want)
				}
			}
			if strings.Contains(string(out), "client_certificate_file") {
				t.Errorf("adapted config names a client certificate file:\n%s", out)
			}
			for _, dir := range []string{data, config} {
				if entries, _ := os.ReadDir(dir); len(entries) > 0 {
					t.Errorf("adapting wrote into %s: %v", dir, entries)
				}
			}
		})
	}
}
