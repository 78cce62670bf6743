package upstreamtls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// Env is what Apply needs besides the options.
type Env struct {
	// Route names the route in errors and warnings, e.g. its site address.
	Route string

	// Defaults set for every route.
	Defaults Defaults

	// Now is the time against which certificate validity is checked.
	// Default: time.Now().
	Now time.Time
}

// Apply sets the TLS of transport t from the options. The transport's TLS
// must already be enabled when any upstream is https; options that only mean
// something over TLS are an error on a plain-http route.
//
// Every file named by an option is read and checked here, so a bad file
// fails the config at `caddy adapt`/`caddy validate` with the route, the
// option, the path and the cause. It returns warnings for what is allowed but
// unsafe (tls_skip_verify, an expired client certificate).
//
// An inline client certificate (tls_client_cert, tls_client_key) stays
// inline, in the transport's tls_client_certificate and
// tls_client_certificate_key: nothing is written to disk, so the adapted
// config can run on another machine.
func Apply(o Options, env Env, t *Transport) (warnings []string, err error) {
	if env.Now.IsZero() {
		env.Now = time.Now()
	}
	fail := func(option string, err error) ([]string, error) {
		return nil, fmt.Errorf("route %s: %s: %w", env.Route, option, err)
	}
	unpaired := func(have, lack string) ([]string, error) {
		return nil, fmt.Errorf("route %s: %s is set without %s", env.Route, have, lack)
	}

	if t.TLS == nil {
		if set := o.FirstSet(); set != "" {
			return nil, fmt.Errorf("route %s: %s is set, but the route's upstreams are not https:// (use https:// in 'to')", env.Route, set)
		}
		return nil, nil
	}
	tc := t.TLS

	// Trusted roots: the route's own CA replaces the system roots; the
	// global certificate_authority is added to them.
	switch {
	case o.TLSCustomCAFile != "":
		if _, err := readCertsFile(o.TLSCustomCAFile); err != nil {
			return fail("tls_custom_ca_file", err)
		}
		tc.CARaw = caddyconfig.JSONModuleObject(caddytls.FileCAPool{
			TrustedCACertPEMFiles: []string{o.TLSCustomCAFile},
		}, "provider", "file", nil)
	case o.TLSCustomCA != "":
		certs, err := decodeCertsBase64(o.TLSCustomCA)
		if err != nil {
			return fail("tls_custom_ca", err)
		}
		tc.CARaw = caddyconfig.JSONModuleObject(caddytls.InlineCAPool{
			TrustedCACerts: derBase64(certs),
		}, "provider", "inline", nil)
	case env.Defaults.CertificateAuthorityFile != "" || env.Defaults.CertificateAuthority != "":
		pool := SystemPlusCAPool{}
		if f := env.Defaults.CertificateAuthorityFile; f != "" {
			if _, err := readCertsFile(f); err != nil {
				return fail("certificate_authority_file", err)
			}
			pool.PEMFiles = []string{f}
		}
		if s := env.Defaults.CertificateAuthority; s != "" {
			certs, err := decodeCertsBase64(s)
			if err != nil {
				return fail("certificate_authority", err)
			}
			pool.TrustedCACerts = derBase64(certs)
		}
		tc.CARaw = caddyconfig.JSONModuleObject(pool, "provider", "iap_system_plus", nil)
	}

	// Server name: tls_upstream_server_name > tls_server_name > URL host.
	switch {
	case o.TLSUpstreamServerName != "":
		tc.ServerName = o.TLSUpstreamServerName
	case o.TLSServerName != "":
		tc.ServerName = o.TLSServerName
	}

	// Client certificate: the inline pair wins over the file pair.
	if o.TLSClientCert != "" || o.TLSClientKey != "" {
		switch {
		case o.TLSClientCert == "":
			return unpaired("tls_client_key", "tls_client_cert")
		case o.TLSClientKey == "":
			return unpaired("tls_client_cert", "tls_client_key")
		}
		pair, err := decodePair(o.TLSClientCert, o.TLSClientKey, "tls_client_cert", "tls_client_key")
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", env.Route, err)
		}
		if w := validityWarning(pair.Leaf, env.Now); w != "" {
			warnings = append(warnings, fmt.Sprintf("route %s: tls_client_cert: %s", env.Route, w))
		}
		t.ClientCertificate, t.ClientCertificateKey = o.TLSClientCert, o.TLSClientKey
		tc.ClientCertificateFile, tc.ClientCertificateKeyFile = "", ""
	} else {
		certFile, keyFile := o.TLSClientCertFile, o.TLSClientKeyFile
		certOpt, keyOpt := "tls_client_cert_file", "tls_client_key_file"
		switch {
		case certFile != "" && keyFile == "":
			return unpaired(certOpt, keyOpt)
		case certFile == "" && keyFile != "":
			return unpaired(keyOpt, certOpt)
		case certFile != "":
			leaf, err := loadPair(certFile, keyFile, certOpt, keyOpt)
			if err != nil {
				return nil, fmt.Errorf("route %s: %w", env.Route, err)
			}
			if w := validityWarning(leaf, env.Now); w != "" {
				warnings = append(warnings, fmt.Sprintf("route %s: %s %s: %s", env.Route, certOpt, certFile, w))
			}
			tc.ClientCertificateFile, tc.ClientCertificateKeyFile = certFile, keyFile
		}
	}

	if o.TLSSkipVerify {
		tc.InsecureSkipVerify = true
		warnings = append(warnings, fmt.Sprintf("route %s: tls_skip_verify is on: the upstream's certificate is NOT verified, so anyone on the path can impersonate it; use tls_custom_ca_file instead", env.Route))
	}
	if o.TLSUpstreamAllowRenegotiation {
		tc.Renegotiation = "freely"
	}
	return warnings, nil
}

// FirstSet names the first option that is set, or returns "", for errors.
func (o Options) FirstSet() string {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"tls_custom_ca", o.TLSCustomCA != ""},
		{"tls_custom_ca_file", o.TLSCustomCAFile != ""},
		{"tls_server_name", o.TLSServerName != ""},
		{"tls_upstream_server_name", o.TLSUpstreamServerName != ""},
		{"tls_client_cert", o.TLSClientCert != ""},
		{"tls_client_key", o.TLSClientKey != ""},
		{"tls_client_cert_file", o.TLSClientCertFile != ""},
		{"tls_client_key_file", o.TLSClientKeyFile != ""},
		{"tls_skip_verify", o.TLSSkipVerify},
		{"tls_upstream_allow_renegotiation", o.TLSUpstreamAllowRenegotiation},
	} {
		if f.set {
			return f.name
		}
	}
	return ""
}

// readCertsFile reads a PEM file that must hold at least one certificate.
func readCertsFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, errors.Unwrap(err))
	}
	certs, err := parseCertsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

func decodeCertsBase64(s string) ([]*x509.Certificate, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64-encoded PEM: %v", err)
	}
	return parseCertsPEM(b)
}

func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

func derBase64(certs []*x509.Certificate) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

// loadPair loads and checks a client certificate and its key from files,
// naming the option and path of whichever is at fault.
func loadPair(certFile, keyFile, certOpt, keyOpt string) (*x509.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", certOpt, certFile, errors.Unwrap(err))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", keyOpt, keyFile, errors.Unwrap(err))
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", certOpt, certFile, err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("%s: %s does not go with %s %s: %v", keyOpt, keyFile, certOpt, certFile, err)
	}
	return certs[0], nil
}

func validityWarning(leaf *x509.Certificate, now time.Time) string {
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Sprintf("client certificate %q expired on %s; upstreams that verify it will refuse the connection", leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("client certificate %q is not valid until %s", leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return ""
}

// TransportOf decodes the HTTP transport of a reverse_proxy handler (Caddy's
// `http` or our `iap_http`), so that Apply can set its TLS; it returns nil
// when the handler uses another transport module.
func TransportOf(h *reverseproxy.Handler) (*Transport, error) {
	if h.TransportRaw == nil {
		return new(Transport), nil
	}
	var probe struct {
		Protocol string `json:"protocol"`
	}
	if err := json.Unmarshal(h.TransportRaw, &probe); err != nil {
		return nil, err
	}
	if probe.Protocol != "http" && probe.Protocol != "iap_http" {
		return nil, nil
	}
	t := new(Transport)
	if err := json.Unmarshal(h.TransportRaw, t); err != nil {
		return nil, err
	}
	return t, nil
}

// TransportJSON encodes t as a reverse_proxy transport: our `iap_http` when
// t presents a client certificate, from files (which it rereads when they
// change) or inline, else Caddy's own `http`.
func TransportJSON(t *Transport) json.RawMessage {
	if t.ClientCertificate != "" || t.ClientCertificateKey != "" || (t.TLS != nil && t.TLS.ClientCertificateFile != "") {
		return caddyconfig.JSONModuleObject(t, "protocol", "iap_http", nil)
	}
	return caddyconfig.JSONModuleObject(&t.HTTPTransport, "protocol", "http", nil)
}
