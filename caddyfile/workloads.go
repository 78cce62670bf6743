package caddyfile

import (
	"fmt"
	"maps"
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/module"
)

// parseWorkloadIssuer parses one issuer of workload JWTs in the global
// iap option (Pomerium's identity_providers entry), and checks it here so
// that a bad one fails caddy adapt naming its line:
//
//	identity_provider <name> {
//		issuer <url>
//		jwks_url <url>
//		audiences <audience...>
//		supported_algs <alg...>
//	}
func parseWorkloadIssuer(d *caddyfile.Dispenser, app *module.App) error {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.Err("identity_provider takes one name, then a block: identity_provider <name> { issuer <url> audiences <audience...> }")
	}
	name := args[0]
	file, line := d.File(), d.Line() // the block's first line, for errors found at its end
	if app.IdentityProviders[name] != nil {
		return d.Errf("identity_provider %s is set twice", name)
	}
	w := new(module.WorkloadIssuer)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		vals := d.RemainingArgs()
		switch opt {
		case "issuer", "jwks_url":
			if len(vals) != 1 {
				return d.Errf("identity_provider %s: %s takes one URL", name, opt)
			}
			if opt == "issuer" {
				w.Issuer = vals[0]
			} else {
				w.JWKSURL = vals[0]
			}
		case "audiences":
			if len(vals) == 0 {
				return d.Errf("identity_provider %s: audiences takes one or more audiences", name)
			}
			w.Audiences = append(w.Audiences, vals...)
		case "supported_algs":
			if len(vals) == 0 {
				return d.Errf("identity_provider %s: supported_algs takes one or more algorithms", name)
			}
			w.SupportedAlgs = append(w.SupportedAlgs, vals...)
		default:
			return d.Errf("identity_provider %s: unrecognized option %q (issuer, jwks_url, audiences, supported_algs)", name, opt)
		}
	}
	if err := authn.CheckWorkloadIssuer(authn.WorkloadIssuer{Name: name, Issuer: w.Issuer, JWKSURL: w.JWKSURL,
		SupportedAlgs: w.SupportedAlgs, Audiences: w.Audiences}); err != nil {
		return fmt.Errorf("%v, at %s:%d", err, file, line)
	}
	for other, o := range app.IdentityProviders {
		if o.Issuer == w.Issuer {
			return fmt.Errorf("identity_provider %s: issuer %q is identity_provider %s's too: a token's iss must say which one verifies it, at %s:%d", name, w.Issuer, other, file, line)
		}
	}
	if app.IdentityProviders == nil {
		app.IdentityProviders = map[string]*module.WorkloadIssuer{}
	}
	app.IdentityProviders[name] = w
	return nil
}

// checkRouteWorkloads checks a route's identity_providers and
// bearer_token_format jwt against the global iap option, at adapt: as
// Pomerium, identity_providers is only for routes that read workload JWTs,
// and each name must be an identity_provider block.
func checkRouteWorkloads(app *module.App, format string, names []string) error {
	if format == "" {
		format = app.BearerTokenFormat
	}
	if format != authn.BearerJWT {
		if len(names) > 0 {
			return fmt.Errorf("identity_providers: only routes whose bearer_token_format is jwt read workload JWTs (this one's is %q)", format)
		}
		return nil
	}
	if len(app.IdentityProviders) == 0 {
		return fmt.Errorf("bearer_token_format jwt: the global iap option has no identity_provider block, so no workload JWT could be verified")
	}
	if app.IDP == nil {
		return fmt.Errorf("bearer_token_format jwt: caddy-iap reads workload JWTs on servers with a sign-in identity provider (idp in the global iap option), whose keys sign the identity assertion")
	}
	for _, n := range names {
		if app.IdentityProviders[n] == nil {
			return fmt.Errorf("identity_providers: %q is not an identity_provider of the global iap option (%q)", n, slices.Sorted(maps.Keys(app.IdentityProviders)))
		}
	}
	return nil
}
