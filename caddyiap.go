// Package caddyiap brings identity-aware access to Caddy: Pomerium's routes,
// upstream and downstream mutual TLS, OIDC sign-in and its policy language.
//
// Build Caddy with it:
//
//	xcaddy build v2.11.9 --with github.com/caddy-iap/caddy-iap
package caddyiap

import (
	// The Caddyfile directives and global option.
	_ "github.com/caddy-iap/caddy-iap/caddyfile"
	// The handlers and matcher.
	_ "github.com/caddy-iap/caddy-iap/module"
	// The config adapter for Pomerium's config.yaml.
	_ "github.com/caddy-iap/caddy-iap/pomerium"
	// The CA pool that adds Pomerium's certificate_authority to the system roots.
	_ "github.com/caddy-iap/caddy-iap/upstreamtls"
)
