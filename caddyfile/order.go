package caddyfile

import "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

// The plugin orders its directives, so a Caddyfile needs no `order` line:
// iap_tracing first of all, so that refused requests are traced too, then
// iap_mtls (no handler runs for a request without a valid
// client certificate, not even a login redirect), then iap_authenticate,
// then iap_authorize; iap_route where reverse_proxy goes.
func init() {
	// Each goes right before Caddy's tracing, so iap_tracing first.
	httpcaddyfile.RegisterDirectiveOrder("iap_tracing", httpcaddyfile.Before, "tracing")
	httpcaddyfile.RegisterDirectiveOrder("iap_mtls", httpcaddyfile.Before, "tracing")
	httpcaddyfile.RegisterDirectiveOrder("iap_authenticate", httpcaddyfile.Before, "tracing")
	httpcaddyfile.RegisterDirectiveOrder("iap_authorize", httpcaddyfile.Before, "tracing")
	httpcaddyfile.RegisterDirectiveOrder("iap_route", httpcaddyfile.Before, "reverse_proxy")
}
