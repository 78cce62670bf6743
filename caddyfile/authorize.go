package caddyfile

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/module"
)

func init() {
	httpcaddyfile.RegisterDirective("iap_authorize", parseAuthorize)
}

// parseAuthorize decides the site's requests with a policy, in front of
// whatever handlers it has (iap_route has one already):
//
//	iap_authorize [<matcher>] {
//		policy { allow { or { ... } } }
//		policy_file <policy.yaml>
//		allow_any_authenticated_user
//		allowed_users <email or id...>
//		allowed_domains <domain...>
//		allowed_idp_claims <claim> <value...>
//		cors_allow_preflight
//		show_error_details
//		description <text>
//		logo_url <http(s) or data:image URL>
//	}
//
// Put iap_authenticate first when the policy tests the user. The site's
// first address is the route's URL in the routes portal.
func parseAuthorize(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next()
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	h.Next()
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	var s authz.Shortcuts
	var policy authz.Policy
	handler := &module.Authorize{Route: strings.Join(siteAddresses(h), ", "), URL: siteURL(h)}
	for h.NextBlock(0) {
		opt := h.Val()
		switch opt {
		case "show_error_details":
			switch args := h.RemainingArgs(); len(args) {
			case 0:
				handler.ShowErrorDetails = true
			case 1:
				b, err := strconv.ParseBool(args[0])
				if err != nil {
					return nil, h.Errf("show_error_details takes true or false, got %q", args[0])
				}
				handler.ShowErrorDetails = b
			default:
				return nil, h.Err("show_error_details takes at most one value (true or false)")
			}
		case "description", "logo_url":
			args := h.RemainingArgs()
			if len(args) != 1 {
				return nil, h.Errf("%s takes exactly one value, got %d", opt, len(args))
			}
			if opt == "description" {
				handler.Description = args[0]
			} else if err := handler.SetLogoURL(args[0]); err != nil {
				return nil, h.Err(err.Error())
			}
		case "policy":
			p, err := module.ParsePolicyBlock(h.Dispenser)
			if err != nil {
				return nil, err
			}
			policy = append(policy, p...)
		case "policy_file":
			args := h.RemainingArgs()
			if len(args) != 1 {
				return nil, h.Err("policy_file takes one file name")
			}
			p, err := authz.LoadFile(args[0])
			if err != nil {
				return nil, h.Err(err.Error())
			}
			policy = append(policy, p...)
		default:
			if err := parseShortcut(h.Dispenser, &s); err != nil {
				return nil, err
			}
		}
	}
	full, err := s.Policy(policy)
	if err != nil {
		return nil, h.Err(err.Error())
	}
	if _, err := authz.Compile(full); err != nil {
		return nil, h.Errf("policy: %v", err)
	}
	handler.Policy = full
	r := caddyhttp.Route{HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(handler, "handler", "iap_authorize", nil)}}
	if matcherSet != nil {
		r.MatcherSetsRaw = []caddy.ModuleMap{matcherSet}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: r}}, nil
}

// parseShortcut reads one of Pomerium's policy shortcuts.
func parseShortcut(d *caddyfile.Dispenser, s *authz.Shortcuts) error {
	opt := d.Val()
	if opt == "allowed_idp_claims" {
		return module.ParseAllowedIDPClaims(d, s)
	}
	args := d.RemainingArgs()
	switch opt {
	case "allow_public_unauthenticated_access", "allow_any_authenticated_user", "cors_allow_preflight":
		if len(args) > 0 {
			return d.Errf("%s takes no value", opt)
		}
		switch opt {
		case "allow_public_unauthenticated_access":
			s.AllowPublicUnauthenticatedAccess = true
		case "allow_any_authenticated_user":
			s.AllowAnyAuthenticatedUser = true
		default:
			s.CORSAllowPreflight = true
		}
	case "allowed_users", "allowed_domains":
		if len(args) == 0 {
			return d.Errf("%s takes one or more values", opt)
		}
		if opt == "allowed_users" {
			s.AllowedUsers = append(s.AllowedUsers, args...)
		} else {
			s.AllowedDomains = append(s.AllowedDomains, args...)
		}
	default:
		return d.Errf("unrecognized iap_authorize option %q", opt)
	}
	return nil
}
