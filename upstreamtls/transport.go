package upstreamtls

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Transport{})
}

// Transport is Caddy's HTTP transport (`http.reverse_proxy.transport.http`,
// with the same options) whose upstream client certificate is read again
// from its files when they change: replace tls_client_cert_file and
// tls_client_key_file on disk, and the next new connection to the upstream
// presents the new certificate, with no reload or restart. Caddy's own
// transport, like Pomerium, loads the pair once.
//
// The files are checked (two stats) each time an upstream asks for a client
// certificate, that is once per new TLS connection. A pair that does not load,
// such as a certificate already replaced while its key is not yet, is logged
// and the previous pair is kept until both files agree. HTTP/3 upstreams keep
// the pair loaded at start.
//
// iap_route and the Pomerium adapter use this transport when a route has a
// client certificate.
type Transport struct {
	reverseproxy.HTTPTransport
}

// CaddyModule returns the Caddy module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.iap_http",
		New: func() caddy.Module { return new(Transport) },
	}
}

// Provision sets up Caddy's transport, then hands its client certificate to
// a KeyPair that rereads the files.
func (t *Transport) Provision(ctx caddy.Context) error {
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	if t.TLS == nil || t.TLS.ClientCertificateFile == "" {
		return nil
	}
	cfg := t.HTTPTransport.Transport.TLSClientConfig
	if cfg == nil || len(cfg.Certificates) != 1 {
		return nil
	}
	kp := NewKeyPair(t.TLS.ClientCertificateFile, t.TLS.ClientCertificateKeyFile, &cfg.Certificates[0], ctx.Logger().With(
		zap.String("cert_file", t.TLS.ClientCertificateFile), zap.String("key_file", t.TLS.ClientCertificateKeyFile)))
	cfg.Certificates = nil
	cfg.GetClientCertificate = kp.GetClientCertificate
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner                      = (*Transport)(nil)
	_ caddy.CleanerUpper                     = (*Transport)(nil)
	_ reverseproxy.TLSTransport              = (*Transport)(nil)
	_ reverseproxy.RequestHeaderOpsTransport = (*Transport)(nil)
	_ reverseproxy.ProxyProtocolTransport    = (*Transport)(nil)
)
