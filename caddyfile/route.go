// Package caddyfile holds caddy-iap's Caddyfile directives and global option.
// Each produces the same config structs as the JSON and Pomerium paths.
package caddyfile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/module"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

func init() {
	httpcaddyfile.RegisterDirective("iap_route", parseRoute)
}

// parseRoute sets up one Pomerium route:
//
//	iap_route [<matcher>] [<upstreams...>] {
//		to <upstreams...>
//		name <name>
//		tls_custom_ca <base64 PEM> | tls_custom_ca_file <path>
//		tls_server_name <name>
//		tls_upstream_server_name <name>
//		tls_client_cert <base64 PEM>
//		tls_client_key <base64 PEM>
//		tls_client_cert_file <path>
//		tls_client_key_file <path>
//		tls_skip_verify
//		tls_upstream_allow_renegotiation
//		preserve_host_header
//		set_request_headers <field> <value>
//		remove_request_headers <fields...>
//		allow_public_unauthenticated_access
//		allow_any_authenticated_user
//		allowed_users <email or id...>
//		allowed_domains <domain...>
//		allowed_idp_claims <claim> <value...>
//		cors_allow_preflight
//		description <text>
//		logo_url <http(s) or data:image URL>
//		show_error_details
//		bearer_token_format idp_identity_token|idp_access_token|jwt|passthrough
//		idp_access_token_allowed_audiences <audience...>
//		identity_providers <name...>
//		pass_bearer_token
//		allow_websockets [true|false]
//		allow_spdy [true|false]
//		policy { allow { or { ... } } deny { ... } }
//		policy_file <policy.yaml>
//		# ...and any reverse_proxy subdirective
//	}
//
// It becomes one route of two handlers: iap_authorize with the route's
// policy, then the reverse_proxy those lines describe. For the guide's route
// (`to https://localhost:44330`, `tls_upstream_server_name openssl.localhost`,
// `tls_custom_ca_file rootCA.pem`, the client pair and public access) that is
// the same as:
//
//	route {
//		iap_authorize  # policy: allow: or: [accept: true]
//		reverse_proxy https://localhost:44330 {
//			transport http {
//				tls_server_name openssl.localhost
//				tls_trust_pool file rootCA.pem
//				tls_client_auth client.pem client-key.pem
//			}
//		}
//	}
//
// Without a policy the route answers 403 to everyone, as in Pomerium.
func parseRoute(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // the directive name
	// A route is named by its site's address(es), else by its place.
	defaultName := strings.Join(siteAddresses(h), ", ")
	if defaultName == "" {
		defaultName = fmt.Sprintf("%s:%d", h.File(), h.Line())
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}

	var route module.Route
	d := h.NewFromNextSegment()
	lines := newOptionLines(h.Dispenser)
	for d.Next() {
		for d.NextBlock(0) {
			if d.Nesting() != 1 {
				continue
			}
			lines.note(d)
			n, err := parseRouteOption(d, &route)
			if err != nil {
				return nil, err
			}
			d.DeleteN(n)
		}
	}
	d.Reset()
	if route.Name == "" {
		route.Name = defaultName
	}

	// Everything left is reverse_proxy's, including `to`.
	rp := new(reverseproxy.Handler)
	d.Next()
	if err := rp.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	if err := rp.FinalizeUnmarshalCaddyfile(h); err != nil {
		return nil, err
	}
	if len(rp.Upstreams) == 0 && rp.DynamicUpstreamsRaw == nil {
		return nil, h.Errf("iap_route %s: needs the upstream: `to <url>` (or reverse_proxy's dynamic upstreams)", route.Name)
	}

	app, err := globalApp(h)
	if err != nil {
		return nil, err
	}
	if err := checkRouteWorkloads(app, route.BearerTokenFormat, route.IdentityProviders); err != nil {
		return nil, lines.wrap(err)
	}
	env := upstreamtls.Env{Defaults: app.Defaults}
	route.Hosts = siteHosts(h)
	route.URL = siteURL(h)
	handlers, warnings, err := route.Handlers(rp, env)
	if err != nil {
		return nil, lines.wrap(err)
	}
	for _, w := range warnings {
		caddy.Log().Named("iap").Warn(w, zap.String("route", route.Name))
	}

	r := caddyhttp.Route{HandlersRaw: handlers}
	if matcherSet != nil {
		r.MatcherSetsRaw = []caddy.ModuleMap{matcherSet}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: r}}, nil
}

// parseRouteOption parses one line of the block if it is one of the route's
// own options, and returns how many tokens it took (0 if the line belongs to
// reverse_proxy).
func parseRouteOption(d *caddyfile.Dispenser, r *module.Route) (int, error) {
	opt := d.Val()
	str := map[string]*string{
		"name":                                  &r.Name,
		"description":                           &r.Description,
		"logo_url":                              &r.LogoURL,
		"idp":                                   &r.IDP,
		"jwt_issuer_format":                     &r.JWTIssuerFormat,
		"bearer_token_format":                   &r.BearerTokenFormat,
		"kubernetes_service_account_token":      &r.KubernetesServiceAccountToken,
		"kubernetes_service_account_token_file": &r.KubernetesServiceAccountTokenFile,
		"tls_custom_ca":                         &r.TLSCustomCA,
		"tls_custom_ca_file":                    &r.TLSCustomCAFile,
		"tls_server_name":                       &r.TLSServerName,
		"tls_upstream_server_name":              &r.TLSUpstreamServerName,
		"tls_client_cert":                       &r.TLSClientCert,
		"tls_client_key":                        &r.TLSClientKey,
		"tls_client_cert_file":                  &r.TLSClientCertFile,
		"tls_client_key_file":                   &r.TLSClientKeyFile,
	}
	flags := map[string]*bool{
		"tls_skip_verify":                     &r.TLSSkipVerify,
		"tls_upstream_allow_renegotiation":    &r.TLSUpstreamAllowRenegotiation,
		"preserve_host_header":                &r.PreserveHostHeader,
		"allow_public_unauthenticated_access": &r.AllowPublicUnauthenticatedAccess,
		"allow_any_authenticated_user":        &r.AllowAnyAuthenticatedUser,
		"cors_allow_preflight":                &r.CORSAllowPreflight,
		"pass_bearer_token":                   &r.PassBearerToken,
		"show_error_details":                  &r.ShowErrorDetails,
		"allow_spdy":                          &r.AllowSPDY,
	}
	if opt == "allow_websockets" {
		args := d.RemainingArgs()
		allow := len(args) == 0
		if len(args) == 1 {
			b, err := strconv.ParseBool(args[0])
			if err != nil {
				return 0, d.Errf("allow_websockets takes true or false, got %q", args[0])
			}
			allow = b
		} else if len(args) > 1 {
			return 0, d.Errf("allow_websockets takes at most one value (true or false)")
		}
		r.AllowWebsockets = &allow
		return 1 + len(args), nil
	}
	switch {
	case str[opt] != nil:
		args := d.RemainingArgs()
		if len(args) != 1 {
			return 0, d.Errf("%s takes exactly one value, got %d", opt, len(args))
		}
		if *str[opt] != "" {
			return 0, d.Errf("%s is set twice", opt)
		}
		*str[opt] = args[0]
		return 1 + len(args), nil

	case flags[opt] != nil:
		args := d.RemainingArgs()
		switch len(args) {
		case 0:
			*flags[opt] = true
		case 1:
			b, err := strconv.ParseBool(args[0])
			if err != nil {
				return 0, d.Errf("%s takes true or false, got %q", opt, args[0])
			}
			*flags[opt] = b
		default:
			return 0, d.Errf("%s takes at most one value (true or false)", opt)
		}
		return 1 + len(args), nil

	case opt == "set_request_headers":
		n, pairs, err := lineOrBlock(d)
		if err != nil {
			return 0, err
		}
		if r.SetRequestHeaders == nil {
			r.SetRequestHeaders = make(map[string]string)
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return 0, d.Errf("set_request_headers takes a field and a value, got %q", p)
			}
			r.SetRequestHeaders[p[0]] = p[1]
		}
		return n, nil

	case opt == "remove_request_headers":
		n, lines, err := lineOrBlock(d)
		if err != nil {
			return 0, err
		}
		for _, l := range lines {
			r.RemoveRequestHeaders = append(r.RemoveRequestHeaders, l...)
		}
		if len(r.RemoveRequestHeaders) == 0 {
			return 0, d.Errf("remove_request_headers takes one or more header fields")
		}
		return n, nil

	case opt == "policy":
		seg := d.NextSegment()
		sub := caddyfile.NewDispenser(seg)
		sub.Next()
		p, err := module.ParsePolicyBlock(sub)
		if err != nil {
			return 0, err
		}
		r.Policy = append(r.Policy, p...)
		return len(seg), nil

	case opt == "policy_file":
		args := d.RemainingArgs()
		if len(args) != 1 {
			return 0, d.Errf("policy_file takes one file name")
		}
		p, err := authz.LoadFile(args[0])
		if err != nil {
			return 0, d.Err(err.Error())
		}
		r.Policy = append(r.Policy, p...)
		return 2, nil

	case opt == "identity_providers":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return 0, d.Err("identity_providers takes one or more names of the global iap option's identity_provider blocks, whose workload JWTs the route accepts")
		}
		r.IdentityProviders = append(r.IdentityProviders, args...)
		return 1 + len(args), nil

	case opt == "idp_access_token_allowed_audiences":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return 0, d.Err("idp_access_token_allowed_audiences takes one or more audiences (client IDs) that access tokens may be for")
		}
		r.IDPAccessTokenAllowedAudiences = append(r.IDPAccessTokenAllowedAudiences, args...)
		return 1 + len(args), nil

	case opt == "depends_on":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return 0, d.Err("depends_on takes one or more hosts, such as depends_on api.example.com")
		}
		r.DependsOn = append(r.DependsOn, args...)
		return 1 + len(args), nil

	case opt == "allowed_users" || opt == "allowed_domains" || opt == "allowed_idp_claims":
		n := 1 + d.CountRemainingArgs()
		if err := parseShortcut(d, &r.Shortcuts); err != nil {
			return 0, err
		}
		return n, nil
	}
	return 0, nil
}

// lineOrBlock reads `opt a b` or `opt { a b \n c d }` and returns the token
// count and the lines of arguments.
func lineOrBlock(d *caddyfile.Dispenser) (int, [][]string, error) {
	n := 1
	var lines [][]string
	if args := d.RemainingArgs(); len(args) > 0 {
		lines = append(lines, args)
		n += len(args)
	}
	hadBlock := false
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		hadBlock = true
		line := append([]string{d.Val()}, d.RemainingArgs()...)
		lines = append(lines, line)
		n += len(line)
	}
	if hadBlock {
		n += 2 // the braces
	}
	if len(lines) == 0 {
		return 0, nil, d.ArgErr()
	}
	return n, lines, nil
}
