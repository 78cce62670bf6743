package pomerium

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
	"github.com/caddy-iap/caddy-iap/module"
)

// Issue 13: Pomerium takes a global downstream_mtls with a CRL and no CA,
// for routes that name their own client CA (tls_downstream_client_ca):
// each such route checks its CA plus the global CRL. The adapter refused
// it ("downstream_mtls needs ca or ca_file").
func TestCRLOnlyDownstreamMTLSAppliesToEachRouteCA(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "route root")
	caFile := ca.WriteCert(t, dir, "routeCA.pem")
	good := ca.Issue(t, testpki.Client("good@example.com"))
	revoked := ca.Issue(t, testpki.Client("revoked@example.com"))
	crlFile := filepath.Join(dir, "route.crl")
	if err := os.WriteFile(crlFile, ca.CurrentCRL(t, revoked.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `downstream_mtls:
  crl_file: ` + crlFile + `
routes:
  - from: https://guarded.example
    to: http://b
    tls_downstream_client_ca_file: ` + caFile + `
    allow_public_unauthenticated_access: true
  - from: https://open.example
    to: http://c
    allow_public_unauthenticated_access: true
`
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "deprecated") {
			t.Errorf("unexpected warning: %s", w)
		}
	}

	// The guarded route's iap_mtls handler checks its CA and the CRL.
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var handlers []module.MTLS
	walk(cfg, func(o map[string]any) {
		if o["handler"] == "iap_mtls" {
			b, _ := json.Marshal(o)
			var m module.MTLS
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			handlers = append(handlers, m)
		}
	})
	if len(handlers) == 0 {
		t.Fatalf("no iap_mtls handler:\n%s", out)
	}
	for _, m := range handlers {
		if m.CAFile != caFile || m.CRLFile != crlFile {
			t.Errorf("iap_mtls has ca_file %q, crl_file %q; want the route's CA and the global CRL", m.CAFile, m.CRLFile)
		}
		v, _, err := downstreamtls.New(m.Options, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r := v.Verify([]*x509.Certificate{good.Cert}, time.Now()); !r.Valid {
			t.Errorf("a good certificate is refused: %s %s %v", r.Reason, r.Detail, r.Err)
		}
		if r := v.Verify([]*x509.Certificate{revoked.Cert}, time.Now()); r.Valid {
			t.Error("a certificate the global CRL revokes is accepted")
		}
	}
	// Only the guarded host asks for a client certificate.
	if strings.Count(string(out), `"client_authentication"`) != 1 || !strings.Contains(string(out), `"sni":["guarded.example"]`) {
		t.Errorf("want one connection policy with client_authentication, for guarded.example only:\n%s", out)
	}
}

// Without a route that names its own CA, a CA-less downstream_mtls checks
// nothing, and the adapter says so.
func TestCRLOnlyDownstreamMTLSWithoutARouteCAWarns(t *testing.T) {
	_, warnings, err := adapt(t, "downstream_mtls:\n  crl_file: /some.crl\nroutes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0].Line != 2 || !strings.Contains(warnings[0].Message, "no client certificate is asked for") {
		t.Errorf("warnings = %v", warnings)
	}
}
