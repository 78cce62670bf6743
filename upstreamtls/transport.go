package upstreamtls

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
// The client certificate can also be given inline, in Pomerium's form
// (tls_client_cert and tls_client_key: base64-encoded PEM), with
// tls_client_certificate and tls_client_certificate_key. The config then
// carries the pair itself: nothing is written to disk when it is adapted,
// and the adapted JSON runs on another machine as it is. An inline pair is
// fixed; change it with a config reload.
//
// iap_route and the Pomerium adapter use this transport when a route has a
// client certificate.
type Transport struct {
	reverseproxy.HTTPTransport

	// A base64-encoded PEM client certificate (and any intermediates) to
	// present to upstreams: Pomerium's tls_client_cert, the inline form of
	// tls.client_certificate_file. Needs tls_client_certificate_key, and
	// TLS toward the upstream; not with tls.client_certificate_file, nor
	// with HTTP/3 upstreams.
	ClientCertificate string `json:"tls_client_certificate,omitempty"`

	// The base64-encoded PEM private key of tls_client_certificate:
	// Pomerium's tls_client_key.
	ClientCertificateKey string `json:"tls_client_certificate_key,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.iap_http",
		New: func() caddy.Module { return new(Transport) },
	}
}

// Provision sets up Caddy's transport, then hands its client certificate to
// a KeyPair that rereads the files, or sets the inline pair.
func (t *Transport) Provision(ctx caddy.Context) error {
	inline, err := t.inlinePair()
	if err != nil {
		return err
	}
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	if inline != nil {
		rt := t.HTTPTransport.Transport
		if rt.TLSClientConfig == nil {
			rt.TLSClientConfig = new(tls.Config)
		}
		rt.TLSClientConfig.Certificates = []tls.Certificate{*inline}
		return nil
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

// UnmarshalCaddyfile reads Caddy's `transport http` subdirectives, plus
// the inline client certificate:
//
//	transport iap_http {
//		tls_client_certificate <base64 PEM certificate> <base64 PEM key>
//		# ...and every `transport http` subdirective
//	}
func (t *Transport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the transport's name
	own := caddyfile.NewDispenser(d.NextSegment())
	own.Next()
	for own.NextBlock(0) {
		if own.Nesting() != 1 || own.Val() != "tls_client_certificate" {
			continue
		}
		args := own.RemainingArgs()
		if len(args) != 2 {
			return own.Errf("tls_client_certificate takes the certificate and its key, each as base64-encoded PEM; got %d values", len(args))
		}
		t.ClientCertificate, t.ClientCertificateKey = args[0], args[1]
		own.DeleteN(1 + len(args))
	}
	own.Reset()
	return t.HTTPTransport.UnmarshalCaddyfile(own)
}

// inlinePair decodes and checks tls_client_certificate and
// tls_client_certificate_key; nil when neither is set.
func (t *Transport) inlinePair() (*tls.Certificate, error) {
	if t.ClientCertificate == "" && t.ClientCertificateKey == "" {
		return nil, nil
	}
	switch {
	case t.ClientCertificate == "":
		return nil, errors.New("iap_http: tls_client_certificate_key is set without tls_client_certificate")
	case t.ClientCertificateKey == "":
		return nil, errors.New("iap_http: tls_client_certificate is set without tls_client_certificate_key")
	case t.TLS == nil:
		return nil, errors.New("iap_http: tls_client_certificate is set, but TLS toward the upstream is not (set tls, or use https:// upstreams)")
	case t.TLS.ClientCertificateFile != "" || t.TLS.ClientCertificateKeyFile != "" || t.TLS.ClientCertificateAutomate != "":
		return nil, errors.New("iap_http: tls_client_certificate and tls.client_certificate_file (or _automate) are both set: keep one")
	case slices.Equal(t.Versions, []string{"3"}):
		return nil, errors.New("iap_http: tls_client_certificate is not supported with HTTP/3 upstreams: use tls.client_certificate_file")
	}
	pair, err := decodePair(t.ClientCertificate, t.ClientCertificateKey, "tls_client_certificate", "tls_client_certificate_key")
	if err != nil {
		return nil, fmt.Errorf("iap_http: %w", err)
	}
	return pair, nil
}

// decodePair decodes a base64-encoded PEM certificate and key and checks
// that they go together, naming the options in errors.
func decodePair(certB64, keyB64, certOpt, keyOpt string) (*tls.Certificate, error) {
	certPEM, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil {
		return nil, fmt.Errorf("%s: not base64-encoded PEM: %v", certOpt, err)
	}
	keyPEM, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return nil, fmt.Errorf("%s: not base64-encoded PEM: %v", keyOpt, err)
	}
	if _, err := parseCertsPEM(certPEM); err != nil {
		return nil, fmt.Errorf("%s: %w", certOpt, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s does not go with %s: %v", keyOpt, certOpt, err)
	}
	return &pair, nil
}

// Interface guards
var (
	_ caddy.Provisioner                      = (*Transport)(nil)
	_ caddyfile.Unmarshaler                  = (*Transport)(nil)
	_ caddy.CleanerUpper                     = (*Transport)(nil)
	_ reverseproxy.TLSTransport              = (*Transport)(nil)
	_ reverseproxy.RequestHeaderOpsTransport = (*Transport)(nil)
	_ reverseproxy.ProxyProtocolTransport    = (*Transport)(nil)
)
