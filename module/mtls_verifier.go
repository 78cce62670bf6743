package module

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
)

func init() {
	caddy.RegisterModule(MTLSVerifier{})
}

// MTLSVerifier verifies client certificates during the TLS handshake, for
// the enforcement reject_connection: the chain to the configured CAs (roots
// and intermediates alike are trust anchors) with the client-auth usage,
// then the checks Caddy's client_auth lacks: max_verify_depth,
// match_subject_alt_names, the CRL of every issuer in the chain (ca_file
// and crl_file are reread when they change) and OCSP. A certificate that
// fails any of them fails the handshake; so does one whose OCSP status
// cannot be established under ocsp hard (the default), logged with the
// responder.
//
// Use it with client_authentication mode "require", so that every failure
// is decided, and logged with its reason, here.
type MTLSVerifier struct {
	downstreamtls.Options

	cache  *downstreamtls.Cache
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (MTLSVerifier) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.client_auth.verifier.iap",
		New: func() caddy.Module { return new(MTLSVerifier) },
	}
}

// Provision loads the CAs, CRLs and patterns.
func (v *MTLSVerifier) Provision(ctx caddy.Context) (err error) {
	v.logger = ctx.Logger()
	registerMetrics(ctx)
	v.cache, err = newVerifierCache(v.Options, v.logger)
	return err
}

// Cleanup lets go of connections to OCSP responders.
func (v *MTLSVerifier) Cleanup() error {
	if v.cache != nil {
		v.cache.Close()
	}
	return nil
}

// VerifyClientCertificate checks the certificates the client presented. A
// chain verified before is answered from the cache without parsing it again.
func (v *MTLSVerifier) VerifyClientCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	res, err := v.cache.VerifyDER(rawCerts, time.Now())
	observeClientCert(stageHandshake, res, err)
	if err != nil {
		v.logger.Info("client certificate refused", zap.String("reason", downstreamtls.ReasonInvalid), zap.String("detail", downstreamtls.DetailInvalid), zap.Error(err))
		return fmt.Errorf("%s: parsing: %v", downstreamtls.ReasonInvalid, err)
	}
	if res.Valid {
		return nil
	}
	v.logger.Info("client certificate refused",
		zap.String("subject", res.Subject()),
		zap.String("fingerprint", res.Fingerprint()),
		zap.String("reason", res.Reason),
		zap.String("detail", res.Detail),
		zap.Error(res.Err))
	return fmt.Errorf("%s (%s): %v", res.Reason, res.Detail, res.Err)
}

// Interface guards
var (
	_ caddy.Provisioner                  = (*MTLSVerifier)(nil)
	_ caddy.CleanerUpper                 = (*MTLSVerifier)(nil)
	_ caddytls.ClientCertificateVerifier = (*MTLSVerifier)(nil)
)
