package caddyfile

import (
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/module"
)

func init() {
	httpcaddyfile.RegisterDirective("iap_authenticate", parseAuthenticate)
}

// parseAuthenticate sets up sign-in for a whole site, in front of whatever
// handlers it has (iap_route puts it in front of its own proxy already):
//
//	iap_authenticate [<matcher>] {
//		bearer_token_format idp_identity_token|idp_access_token|jwt|passthrough
//		idp_access_token_allowed_audiences <audience...>
//		identity_providers <name...>
//		pass_bearer_token
//	}
//
// The block is optional; the identity provider and cookies are set in the
// global iap option.
func parseAuthenticate(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // the directive name
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	h.Next() // the directive name again: ExtractMatcherSet rewinds
	if h.NextArg() {
		return nil, h.Err("iap_authenticate takes no arguments: the identity provider and cookies are set in the global iap option")
	}
	a := &module.Authenticate{Hosts: siteHosts(h)}
	var at caddyfile.Token // the line of bearer_token_format, else identity_providers, for their errors
	for h.NextBlock(0) {
		opt := h.Val()
		if opt == "bearer_token_format" || opt == "identity_providers" && at.File == "" {
			at = h.Token()
		}
		args := h.RemainingArgs()
		switch opt {
		case "bearer_token_format":
			if len(args) != 1 {
				return nil, h.Errf("%s takes exactly one value", opt)
			}
			if err := authn.CheckBearerFormat(args[0]); err != nil {
				return nil, h.Err(err.Error())
			}
			a.BearerTokenFormat = args[0]
		case "idp_access_token_allowed_audiences":
			if len(args) == 0 {
				return nil, h.Errf("%s takes one or more audiences (client IDs) that access tokens may be for", opt)
			}
			a.IDPAccessTokenAllowedAudiences = append(a.IDPAccessTokenAllowedAudiences, args...)
		case "identity_providers":
			if len(args) == 0 {
				return nil, h.Errf("%s takes one or more names of the global iap option's identity_provider blocks", opt)
			}
			a.IdentityProviders = append(a.IdentityProviders, args...)
		case "pass_bearer_token":
			if len(args) != 0 {
				return nil, h.Errf("%s takes no value", opt)
			}
			a.PassBearerToken = true
		default:
			return nil, h.Errf("unrecognized iap_authenticate option %q: the identity provider and cookies are set in the global iap option", opt)
		}
	}
	if a.BearerTokenFormat != "" || len(a.IdentityProviders) > 0 {
		app, err := globalApp(h)
		if err != nil {
			return nil, err
		}
		if err := checkRouteWorkloads(app, a.BearerTokenFormat, a.IdentityProviders); err != nil {
			return nil, fmt.Errorf("%v, at %s:%d", err, at.File, at.Line)
		}
	}
	handler := caddyconfig.JSONModuleObject(a, "handler", "iap_authenticate", nil)
	r := caddyhttp.Route{HandlersRaw: []json.RawMessage{handler}}
	if matcherSet != nil {
		r.MatcherSetsRaw = []caddy.ModuleMap{matcherSet}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: r}}, nil
}
