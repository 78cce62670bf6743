package module

import (
	"encoding/json"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
)

// SiteMTLS is what downstream mutual TLS for a site becomes in Caddy's
// config. The Caddyfile directive iap_mtls and the Pomerium adapter's
// downstream_mtls both build it with MTLS.ForSite, so the two cannot drift.
type SiteMTLS struct {
	// The TLS connection policy for the site's hosts: client_authentication
	// with the CA pool, mode "request" under the policy modes, and mode
	// "require" with the tls.client_auth.verifier.iap verifier under
	// reject_connection (see downstreamtls.Options.ClientAuthentication).
	ConnectionPolicy *caddytls.ConnectionPolicy

	// The http.handlers.iap_mtls handler, to run before every other handler
	// of the site.
	Handler json.RawMessage

	// What to tell the user about options that work but may not do what
	// they expect, such as a CRL soon out of date.
	Warnings []string
}

// ForSite checks the options (files, CRL windows, patterns), so that
// `caddy adapt` and `caddy validate` fail on them, and returns the TLS
// connection policy and the handler for a site of these host names. With no
// host names the policy matches every connection; a Caddyfile site sets its
// own SNI matcher over this one anyway.
func (m MTLS) ForSite(hosts []string) (SiteMTLS, error) {
	_, warnings, err := downstreamtls.New(m.Options, time.Now())
	if err != nil {
		return SiteMTLS{}, err
	}
	verifier := caddyconfig.JSONModuleObject(MTLSVerifier{Options: m.Options}, "verifier", "iap", nil)
	clientAuth, err := m.ClientAuthentication(verifier)
	if err != nil {
		return SiteMTLS{}, err
	}
	policy := &caddytls.ConnectionPolicy{ClientAuthentication: clientAuth}
	if len(hosts) > 0 {
		policy.MatchersRaw = caddy.ModuleMap{"sni": caddyconfig.JSON(hosts, nil)}
	}
	return SiteMTLS{
		ConnectionPolicy: policy,
		Handler:          caddyconfig.JSONModuleObject(&m, "handler", "iap_mtls", nil),
		Warnings:         warnings,
	}, nil
}
