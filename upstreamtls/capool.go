package upstreamtls

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func init() {
	caddy.RegisterModule(SystemPlusCAPool{})
}

// SystemPlusCAPool trusts the system's root certificates plus the given CA
// certificates. It is Pomerium's certificate_authority(_file): a private CA
// added to, not replacing, the roots that public upstreams are verified
// against. Caddy's own `combined` pool cannot include the system roots, hence
// this module.
type SystemPlusCAPool struct {
	// PEM files of CA certificates to trust in addition to the system roots.
	PEMFiles []string `json:"pem_files,omitempty"`

	// Base64 DER-encoded CA certificates to trust in addition to the system
	// roots.
	TrustedCACerts []string `json:"trusted_ca_certs,omitempty"`

	pool *x509.CertPool
}

// CaddyModule returns the Caddy module information.
func (SystemPlusCAPool) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.ca_pool.source.iap_system_plus",
		New: func() caddy.Module { return new(SystemPlusCAPool) },
	}
}

// Provision loads the system roots and adds the configured certificates.
func (p *SystemPlusCAPool) Provision(caddy.Context) error {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range p.PEMFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("certificate authority: %v", err)
		}
		certs, err := parseCertsPEM(b)
		if err != nil {
			return fmt.Errorf("certificate authority %s: %v", f, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	for i, s := range p.TrustedCACerts {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("certificate authority %d: not base64: %v", i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("certificate authority %d: %v", i, err)
		}
		pool.AddCert(c)
	}
	p.pool = pool
	return nil
}

// CertPool returns the pool.
func (p SystemPlusCAPool) CertPool() *x509.CertPool { return p.pool }

// Interface guards
var (
	_ caddy.Provisioner = (*SystemPlusCAPool)(nil)
	_ caddytls.CA       = (*SystemPlusCAPool)(nil)
)
