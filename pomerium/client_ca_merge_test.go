package pomerium

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Routes of one host, each with its own client CA (one inline, one from a
// file), make one connection policy for the host whose pool holds both
// CAs, so that the handshake names both (a browser offers only
// certificates whose issuer is named); each route keeps its own iap_mtls.
// internal/e2e.TestPomeriumPerRouteClientCAs runs it with Chromium.
func TestPerRouteClientCAsShareTheHostsHandshake(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "one"), testpki.NewCA(t, "two")
	ca2File := ca2.WriteCert(t, dir, "ca2.pem")
	ca1PEM, err := os.ReadFile(ca1.WriteCert(t, dir, "ca1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	src := `routes:
  - from: https://a.example
    prefix: /one
    to: http://b
    tls_downstream_client_ca: ` + base64.StdEncoding.EncodeToString(ca1PEM) + `
    allow_public_unauthenticated_access: true
  - from: https://a.example
    prefix: /two
    to: http://c
    tls_downstream_client_ca_file: ` + ca2File + `
    allow_public_unauthenticated_access: true
`
	out, _, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var pools []map[string]any
	handlers := 0
	walk(cfg, func(o map[string]any) {
		if ca, ok := o["client_authentication"].(map[string]any); ok {
			pools = append(pools, ca["ca"].(map[string]any))
		}
		if o["handler"] == "iap_mtls" {
			handlers++
		}
	})
	if len(pools) != 1 {
		t.Fatalf("%d client_authentication blocks, want one for the host:\n%s", len(pools), out)
	}
	var certs []string
	for _, c := range pools[0]["trusted_ca_certs"].([]any) {
		certs = append(certs, c.(string))
	}
	for _, want := range [][]byte{ca1.Cert.Raw, ca2.Cert.Raw} {
		if !slices.Contains(certs, base64.StdEncoding.EncodeToString(want)) {
			t.Errorf("the host's pool lacks a route's CA: %v", pools[0])
		}
	}
	if handlers < 2 {
		t.Errorf("%d iap_mtls handlers, want one per route at least", handlers)
	}
}
