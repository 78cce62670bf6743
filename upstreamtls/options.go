// Package upstreamtls maps a route's upstream TLS options, under Pomerium's
// names, onto the TLS settings of Caddy's reverse_proxy HTTP transport.
//
// The mapping is a pure function of the options (plus the files they name):
// the Caddyfile directive iap_route and the Pomerium config adapter both call
// Apply, so a route means the same thing whichever way it was written, and
// `caddy adapt` shows a plain reverse_proxy with transport TLS.
package upstreamtls

// Options are the upstream TLS options of one route. Each keeps the name and
// the meaning it has in Pomerium's route configuration.
type Options struct {
	// A base64-encoded PEM bundle of CA certificates that replaces the
	// system's trusted roots when verifying this route's upstream.
	TLSCustomCA string `json:"tls_custom_ca,omitempty"`

	// A PEM file of CA certificates that replaces the system's trusted roots
	// when verifying this route's upstream. If tls_custom_ca is also set,
	// this file wins.
	TLSCustomCAFile string `json:"tls_custom_ca_file,omitempty"`

	// The name sent as SNI to the upstream and verified in its certificate.
	// Default: the host of the upstream URL. Superseded by
	// tls_upstream_server_name when both are set.
	TLSServerName string `json:"tls_server_name,omitempty"`

	// The name sent as SNI to the upstream and verified in its certificate.
	// It wins over tls_server_name, which wins over the host of the upstream
	// URL. Set it when the upstream is reached by an address (such as
	// localhost or an IP) that its certificate does not name.
	TLSUpstreamServerName string `json:"tls_upstream_server_name,omitempty"`

	// A base64-encoded PEM client certificate to present to the upstream.
	// Needs tls_client_key. When both this pair and the file pair are set,
	// this pair wins.
	TLSClientCert string `json:"tls_client_cert,omitempty"`

	// The base64-encoded PEM private key of tls_client_cert.
	TLSClientKey string `json:"tls_client_key,omitempty"`

	// A PEM file with the client certificate (and any intermediates) to
	// present to the upstream. Needs tls_client_key_file.
	TLSClientCertFile string `json:"tls_client_cert_file,omitempty"`

	// The PEM private key file of tls_client_cert_file.
	TLSClientKeyFile string `json:"tls_client_key_file,omitempty"`

	// Turns off verification of the upstream's certificate. The connection
	// is still encrypted but no longer authenticated: use it only while
	// testing. A warning is logged whenever the route is loaded.
	TLSSkipVerify bool `json:"tls_skip_verify,omitempty"`

	// Lets a TLS 1.2 upstream renegotiate the connection, as some servers
	// that ask for a client certificate late (per path) do. Default: off.
	TLSUpstreamAllowRenegotiation bool `json:"tls_upstream_allow_renegotiation,omitempty"`
}

// Defaults are options set once for every route (Caddyfile global option
// `iap`, Pomerium's top-level keys).
type Defaults struct {
	// A PEM file of CA certificates added to the system's trusted roots for
	// every route that sets no tls_custom_ca(_file) of its own. Pomerium's
	// certificate_authority_file.
	CertificateAuthorityFile string `json:"certificate_authority_file,omitempty"`

	// The same as certificate_authority_file, as base64-encoded PEM.
	// Pomerium's certificate_authority. If both are set, both are added.
	CertificateAuthority string `json:"certificate_authority,omitempty"`
}
