package pomerium

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/module"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

// route is one converted Pomerium route.
type route struct {
	host       string
	wildcard   bool // host has a *: Pomerium tries it only for hosts that no route names exactly
	caddy      caddyhttp.Route
	downstream *downstreamtls.Options // the deprecated per-route client CA
	mtls       json.RawMessage        // its iap_mtls handler
	idp        string                 // its named IdP (idp_client_id); "" the default

	serverName     string     // its tls_downstream_server_name, lowercased
	serverNameNode *yaml.Node // where it was written
}

// tlsKeys are the route's upstream TLS options, decoded into
// upstreamtls.Options by their Pomerium names.
var tlsKeys = []string{"tls_custom_ca", "tls_custom_ca_file", "tls_server_name", "tls_upstream_server_name",
	"tls_client_cert", "tls_client_key", "tls_client_cert_file", "tls_client_key_file", "tls_skip_verify",
	"tls_upstream_allow_renegotiation"}

// route converts one route through module.Route, as iap_route does.
func (c *converter) route(n *yaml.Node, app *module.App, s settings) (route, error) {
	var out route
	if n.Kind != yaml.MappingNode {
		return out, c.errf(n, "a route is a mapping with from, to and a policy")
	}
	fields := map[string]*yaml.Node{}
	for _, kv := range pairs(n) {
		key := kv[0].Value
		st, ok := lookupSetting(routeSettings, key)
		if !ok {
			st, ok = lookupSetting(legacyRoute, key)
		}
		switch {
		case !ok:
			return out, c.errf(kv[0], "unknown route setting %q%s", key, didYouMean(key, routeSettings))
		case st.support == works:
			fields[key] = kv[1]
		case st.isDefaultNode(kv[1]):
			// Pomerium's default, spelled out: nothing to do.
		case st.support == warned:
			c.warn(kv[0], "route setting %s is ignored: %s", key, st.why)
		default:
			return out, c.errf(kv[0], "route setting %s", st.refusal())
		}
	}
	fromNode := fields["from"]
	if fromNode == nil {
		return out, c.errf(n, "a route needs from")
	}
	host, err := c.hostOf(fromNode, fromNode.Value)
	if err != nil {
		return out, err
	}
	out.host = host
	out.wildcard = strings.Contains(host, "*")
	r := module.Route{Name: fromNode.Value, Hosts: []string{host}, URL: fromNode.Value}
	// Pomerium's name, when set, names the route in logs and errors, as
	// in Pomerium's own logs; description and id are for its console.
	if v := fields["name"]; v != nil {
		name, err := c.str(v)
		if err != nil {
			return out, err
		}
		if name = strings.TrimSpace(name); name != "" {
			r.Name = name
		}
	}

	// Its own client at the IdP (idp_client_id): a named IdP of the app.
	if r.IDP, err = c.routeIDP(fields, app); err != nil {
		return out, err
	}
	out.idp = r.IDP
	for key, target := range map[string]*string{"kubernetes_service_account_token": &r.KubernetesServiceAccountToken,
		"kubernetes_service_account_token_file": &r.KubernetesServiceAccountTokenFile} {
		if v := fields[key]; v != nil {
			if *target, err = c.str(v); err != nil {
				return out, err
			}
		}
	}
	if v := fields["tls_downstream_server_name"]; v != nil {
		if out.serverName, err = c.serverName(v); err != nil {
			return out, err
		}
		out.serverNameNode = v
	}
	if v := fields["depends_on"]; v != nil {
		if r.DependsOn, err = c.strings(v); err != nil {
			return out, err
		}
	}
	if err := c.routeBearer(fields, app, &r); err != nil {
		return out, err
	}
	if err := c.routeWorkloads(fields, app, &r, n); err != nil {
		return out, err
	}
	if v := fields["jwt_issuer_format"]; v != nil {
		s, err := c.str(v)
		if err == nil {
			r.JWTIssuerFormat, err = issuerFormat(s)
		}
		if err != nil {
			return out, c.errf(v, "%v", err)
		}
	}

	// WebSockets and SPDY: off unless the route (or the global
	// allow_upgrades) turns them on, as Pomerium's Policy.GetAllowWebsockets
	// and GetAllowSPDY decide. (A Kubernetes route takes both anyway: see
	// module.Route.)
	upgrades := c.upgrades
	if v := fields["allow_upgrades"]; v != nil {
		if upgrades, err = c.upgradeList(v, ""); err != nil {
			return out, err
		}
	}
	allow, err := c.allowsUpgrade(fields["allow_websockets"], upgrades, "websocket")
	if err != nil {
		return out, err
	}
	r.AllowWebsockets = &allow
	if r.AllowSPDY, err = c.allowsUpgrade(fields["allow_spdy"], upgrades, module.SPDYProtocol); err != nil {
		return out, err
	}

	// Upstream TLS: the same options, decoded by their Pomerium names.
	tlsFields := map[string]any{}
	for _, k := range tlsKeys {
		if v := fields[k]; v != nil {
			var x any
			if err := v.Decode(&x); err != nil {
				return out, c.errf(v, "%s: %v", k, err)
			}
			tlsFields[k] = x
		}
	}
	b, _ := json.Marshal(tlsFields)
	if err := json.Unmarshal(b, &r.Options); err != nil {
		return out, c.errf(n, "tls options: %v", err)
	}

	// Policy: the shortcuts and PPL.
	if p := fields["policy"]; p != nil {
		policy, err := authz.FromYAML(p, c.file)
		if err != nil {
			return out, err
		}
		r.Policy = policy
	}
	for key, target := range map[string]*bool{"allow_public_unauthenticated_access": &r.AllowPublicUnauthenticatedAccess,
		"allow_any_authenticated_user": &r.AllowAnyAuthenticatedUser, "cors_allow_preflight": &r.CORSAllowPreflight,
		"preserve_host_header": &r.PreserveHostHeader, "show_error_details": &r.ShowErrorDetails} {
		if v := fields[key]; v != nil {
			if *target, err = c.boolean(v); err != nil {
				return out, err
			}
		}
	}
	if v := fields["show_error_details"]; v != nil && r.ShowErrorDetails {
		// Pomerium's 403 page lists its Enterprise sub-policies' traces,
		// never the route's own policy; here every refused user reads it.
		c.warn(v, "show_error_details: a refused user's 403 page and JSON show every rule and criterion of this route's policy as written "+
			"(allowed emails, groups, claims and address ranges included), where Pomerium's show the traces of Enterprise sub-policies only; "+
			"set it to false unless the policy is fine for anyone refused to read")
	}
	if v := fields["allowed_users"]; v != nil {
		if r.AllowedUsers, err = c.strings(v); err != nil {
			return out, err
		}
	}
	if v := fields["allowed_domains"]; v != nil {
		if r.AllowedDomains, err = c.strings(v); err != nil {
			return out, err
		}
	}
	if v := fields["allowed_idp_claims"]; v != nil {
		if err := v.Decode(&r.AllowedIDPClaims); err != nil {
			return out, c.errf(v, "allowed_idp_claims: a mapping of claim names to lists of values")
		}
	}
	if v := fields["sub_policies"]; v != nil {
		if err := c.subPolicies(v, &r); err != nil {
			return out, err
		}
	}
	if v := fields["set_request_headers"]; v != nil {
		if err := v.Decode(&r.SetRequestHeaders); err != nil {
			return out, c.errf(v, "set_request_headers: a mapping of header names to values")
		}
	}
	if v := fields["remove_request_headers"]; v != nil {
		if r.RemoveRequestHeaders, err = c.strings(v); err != nil {
			return out, err
		}
	}
	// The routes portal's description and logo.
	if v := fields["description"]; v != nil {
		if r.Description, err = c.str(v); err != nil {
			return out, err
		}
		r.Description = strings.TrimSpace(r.Description)
	}
	if v := fields["logo_url"]; v != nil {
		if r.LogoURL, err = c.str(v); err != nil {
			return out, err
		}
		if err := authn.SafeLogoURL(r.LogoURL); err != nil {
			return out, c.errf(v, "logo_url %.80q: %v", r.LogoURL, err)
		}
	}
	if v := fields["pass_identity_headers"]; v != nil {
		// The route's own setting wins over the global one, as in Pomerium.
		b, err := c.boolean(v)
		if err != nil {
			return out, err
		}
		r.PassIdentityHeaders = &b
	}

	if app.IDP == nil && !r.IsPublic() {
		c.warn(fromNode, "route %s needs signed-in users but no identity provider is configured (idp_provider_url): it will refuse everyone", fromNode.Value)
	}

	// The upstreams and the proxy settings; a redirect or response route
	// answers itself, after its policy, as in Pomerium.
	act, err := c.action(n, fields)
	if err != nil {
		return out, err
	}
	var rp *reverseproxy.Handler
	var toPath string
	if act == "to" {
		if rp, toPath, err = c.proxy(fields); err != nil {
			return out, err
		}
		if c.skipXFF && !setsHeader(r.SetRequestHeaders, "X-Forwarded-For") {
			keepClientXFF(rp)
		}
		if !setsHeader(r.SetRequestHeaders, "X-Request-Id") {
			sendRequestID(rp)
		}
	} else {
		rp = &reverseproxy.Handler{TransportRaw: caddyconfig.JSONModuleObject(new(reverseproxy.HTTPTransport), "protocol", "http", nil)}
	}
	env := upstreamtls.Env{Defaults: app.Defaults}
	handlers, warnings, err := r.Handlers(rp, env)
	if err != nil {
		return out, c.errf(fromNode, "%v", err)
	}
	for _, w := range warnings {
		c.warn(fromNode, "%s", w)
	}
	// description goes into the access log of each request the route
	// takes, next to the route's name, as in Pomerium's logs.
	if v := fields["description"]; v != nil {
		d, err := c.str(v)
		if err != nil {
			return out, err
		}
		if d = strings.TrimSpace(d); d != "" {
			handlers = append([]json.RawMessage{caddyconfig.JSON(map[string]any{"handler": "log_append",
				"key": "iap_route_description", "value": literal(d), "early": true}, nil)}, handlers...)
		}
	}

	match := caddy.ModuleMap{"host": caddyconfig.JSON(caddyhttp.MatchHost{host}, nil)}
	paths, err := c.pathMatch(fields)
	if err != nil {
		return out, err
	}
	if paths.pattern != "" {
		match["path_regexp"] = caddyconfig.JSON(map[string]string{"pattern": paths.pattern}, nil)
	}

	if act != "to" {
		// No upstream: the response header settings go on the route's own
		// answer, through a headers handler before it.
		resp, err := c.responseHeaders(fields)
		if err != nil {
			return out, err
		}
		if resp != nil {
			// Deferred: the headers the route's answer writes (Location)
			// are there to rewrite.
			resp.Deferred = true
			h := caddyconfig.JSONModuleObject(&headers.Handler{Response: resp}, "handler", "headers", nil)
			handlers = append(handlers[:len(handlers)-1:len(handlers)-1], h, handlers[len(handlers)-1])
		}
	}
	switch act {
	case "redirect":
		h, err := c.redirect(fields["redirect"], paths)
		if err != nil {
			return out, err
		}
		handlers = append(handlers[:len(handlers)-1:len(handlers)-1], h...)
	case "response":
		h, err := c.response(fields["response"])
		if err != nil {
			return out, err
		}
		handlers = append(handlers[:len(handlers)-1:len(handlers)-1], h)
	}

	// The path and host rewrites, between the policy and the proxy.
	if act == "to" {
		pre, err := c.rewrites(fields, paths, toPath)
		if err != nil {
			return out, err
		}
		proxy := handlers[len(handlers)-1]
		handlers = append(append(handlers[:len(handlers)-1:len(handlers)-1], pre...), proxy)
	}

	// The deprecated per-route client CA: downstream mTLS for this host.
	for _, k := range []string{"tls_downstream_client_ca", "tls_downstream_client_ca_file"} {
		if v := fields[k]; v != nil {
			c.warn(v, "%s is deprecated in Pomerium: use downstream_mtls", k)
			o := &downstreamtls.Options{Enforcement: downstreamtls.PolicyWithDefaultDeny}
			if g := c.routeMTLS; g != nil {
				// A global downstream_mtls without a CA: its CRL and
				// checks apply to this route's CA.
				*o = *g
				if o.Enforcement == "" {
					o.Enforcement = downstreamtls.PolicyWithDefaultDeny
				}
			}
			if k == "tls_downstream_client_ca" {
				o.CA = v.Value
			} else {
				o.CAFile = v.Value
			}
			out.downstream = o
			out.mtls = caddyconfig.JSONModuleObject(&module.MTLS{Options: *o, ServerNames: c.namesOf(host)}, "handler", "iap_mtls", nil)
			handlers = append([]json.RawMessage{out.mtls}, handlers...)
		}
	}

	sub := &caddyhttp.Subroute{Routes: caddyhttp.RouteList{{HandlersRaw: handlers}}}
	out.caddy = caddyhttp.Route{
		MatcherSetsRaw: caddyhttp.RawMatcherSets{match},
		HandlersRaw:    []json.RawMessage{caddyconfig.JSONModuleObject(sub, "handler", "subroute", nil)},
		Terminal:       true,
	}
	return out, nil
}

// proxy builds the reverse_proxy handler for the route's `to`.
//
// It also returns the path of the first upstream URL, which Pomerium uses
// as the route's prefix_rewrite when it has none (envoyconfig
// getRewriteOptions).
func (c *converter) proxy(fields map[string]*yaml.Node) (*reverseproxy.Handler, string, error) {
	toNode := fields["to"]
	if toNode == nil {
		return nil, "", fmt.Errorf("%s:%d: a route needs to", c.file, fields["from"].Line)
	}
	targets, err := c.strings(toNode)
	if err != nil {
		return nil, "", err
	}
	toPath := ""
	rp := new(reverseproxy.Handler)
	var scheme string
	var weights []int
	for _, t := range targets {
		raw, weight, hasWeight := strings.Cut(t, ",")
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, "", c.errf(toNode, "to: %q is not an http or https URL", raw)
		}
		if scheme != "" && u.Scheme != scheme {
			return nil, "", c.errf(toNode, "to: mixes http and https upstreams")
		}
		scheme = u.Scheme
		if len(rp.Upstreams) == 0 {
			toPath = u.EscapedPath()
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		rp.Upstreams = append(rp.Upstreams, &reverseproxy.Upstream{Dial: u.Hostname() + ":" + port})
		w := 1
		if hasWeight {
			if w, err = strconv.Atoi(strings.TrimSpace(weight)); err != nil || w < 0 {
				return nil, "", c.errf(toNode, "to: weight %q is not a whole number", weight)
			}
		}
		weights = append(weights, w)
	}
	weighted := slices.ContainsFunc(weights, func(w int) bool { return w != 1 })
	if weighted {
		rp.LoadBalancing = &reverseproxy.LoadBalancing{SelectionPolicyRaw: caddyconfig.JSONModuleObject(
			reverseproxy.WeightedRoundRobinSelection{Weights: weights}, "policy", "weighted_round_robin", nil)}
	}
	if v := fields["load_balancing_policy"]; v != nil {
		// Envoy's policy by its Pomerium name, onto Caddy's selection
		// policies. RING_HASH and MAGLEV hash, in Pomerium, a key of the
		// session, else the client's IP: here the client's IP.
		p := map[string]string{"ROUND_ROBIN": "round_robin", "LEAST_REQUEST": "least_conn", "RANDOM": "random",
			"RING_HASH": "client_ip_hash", "MAGLEV": "client_ip_hash"}[enum(v.Value, "LOAD_BALANCING_POLICY_")]
		switch {
		case p == "":
			return nil, "", c.errf(v, "load_balancing_policy: %q is not one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM and MAGLEV", v.Value)
		case weighted:
			c.warn(v, "load_balancing_policy is ignored: the upstreams of to are weighted, so they are chosen by weighted round robin")
		default:
			rp.LoadBalancing = &reverseproxy.LoadBalancing{SelectionPolicyRaw: json.RawMessage(`{"policy":"` + p + `"}`)}
		}
	}
	if v := fields["health_checks"]; v != nil {
		hc, err := c.healthChecks(v)
		if err != nil {
			return nil, "", err
		}
		rp.HealthChecks = hc
	}
	transport := new(reverseproxy.HTTPTransport)
	if scheme == "https" {
		transport.TLS = new(reverseproxy.TLSConfig)
	}
	if v := fields["timeout"]; v != nil {
		d, err := time.ParseDuration(v.Value)
		if err != nil {
			return nil, "", c.errf(v, "timeout: %v", err)
		}
		transport.ResponseHeaderTimeout = caddy.Duration(d)
	} else if c.defaultTimeout > 0 {
		// default_upstream_timeout, for the routes without their own.
		transport.ResponseHeaderTimeout = caddy.Duration(c.defaultTimeout)
	}
	if v := fields["idle_timeout"]; v != nil {
		d, err := time.ParseDuration(v.Value)
		if err != nil {
			return nil, "", c.errf(v, "idle_timeout: %v", err)
		}
		enabled := true
		transport.KeepAlive = &reverseproxy.KeepAlive{Enabled: &enabled, IdleConnTimeout: caddy.Duration(d)}
	}
	if len(c.resolvers) > 0 {
		transport.Resolver = &reverseproxy.UpstreamResolver{Addresses: c.resolvers}
	}
	if err := c.healthPolicy(fields, rp, transport); err != nil {
		return nil, "", err
	}
	if transport.TLS != nil || transport.ResponseHeaderTimeout != 0 || transport.KeepAlive != nil || transport.Resolver != nil || transport.MaxConnsPerHost != 0 {
		// Otherwise Caddy's default http transport, written nowhere, as
		// reverse_proxy in a Caddyfile leaves it.
		rp.TransportRaw = caddyconfig.JSONModuleObject(transport, "protocol", "http", nil)
	}
	if host, err := c.hostRewrite(fields); err != nil {
		return nil, "", err
	} else if host != "" {
		rp.Headers = &headers.Handler{Request: &headers.HeaderOps{Set: http.Header{"Host": {host}}}}
	}
	resp, err := c.responseHeaders(fields)
	if err != nil {
		return nil, "", err
	}
	if resp != nil {
		if rp.Headers == nil {
			rp.Headers = new(headers.Handler)
		}
		rp.Headers.Response = resp
	}
	return rp, toPath, nil
}

// responseHeaders reads the route's set_response_headers and
// rewrite_response_headers; nil when it has neither.
//
// rewrite_response_headers is a list of {header, prefix, value}: a header
// whose value begins with prefix gets value in its place, as Pomerium's
// rewrite-headers script does (an empty prefix prepends value).
func (c *converter) responseHeaders(fields map[string]*yaml.Node) (*headers.RespHeaderOps, error) {
	ops := &headers.HeaderOps{}
	// The global set_response_headers, then the route's over it; a
	// "disable" key in either turns them all off, as in Pomerium
	// (Options.GetSetResponseHeadersForPolicy).
	set := maps.Clone(c.respHeaders)
	if _, off := set["disable"]; off {
		set = nil
	}
	if v := fields["set_response_headers"]; v != nil {
		var h map[string]string
		if err := v.Decode(&h); err != nil {
			return nil, c.errf(v, "set_response_headers: a mapping of header names to values")
		}
		if set == nil {
			set = map[string]string{}
		}
		maps.Copy(set, h)
	}
	if _, off := set["disable"]; off {
		set = nil
	}
	if len(set) > 0 {
		ops.Set = http.Header{}
		for k, val := range set {
			ops.Set.Set(k, literal(val))
		}
	}
	if v := fields["rewrite_response_headers"]; v != nil {
		var list []struct {
			Header string `yaml:"header"`
			Prefix string `yaml:"prefix"`
			Value  string `yaml:"value"`
		}
		if err := v.Decode(&list); err != nil {
			return nil, c.errf(v, "rewrite_response_headers: a list of {header, prefix, value}")
		}
		ops.Replace = map[string][]headers.Replacement{}
		for _, r := range list {
			if r.Header == "" {
				return nil, c.errf(v, "rewrite_response_headers: each entry names a header")
			}
			name := http.CanonicalHeaderKey(r.Header)
			ops.Replace[name] = append(ops.Replace[name], headers.Replacement{
				SearchRegexp: "^" + regexp.QuoteMeta(r.Prefix), Replace: strings.ReplaceAll(literal(r.Value), "$", "$$")})
		}
	}
	if ops.Set == nil && ops.Replace == nil {
		return nil, nil
	}
	return &headers.RespHeaderOps{HeaderOps: ops}, nil
}

// pathSpec is how a route matches paths, as Caddy config.
type pathSpec struct {
	pattern string // the path_regexp pattern; "" matches every path
	rewrite string // what prefix_rewrite replaces
}

// pathMatch reads the route's regex, path and prefix. Pomerium
// (envoyconfig mkRouteMatch) takes the first one set of regex, path,
// prefix and ignores the others; an empty value counts as unset.
//
// Every kind becomes a path_regexp, so that the value is matched as
// written: Caddy's path matcher would read * as a wildcard, {...} as a
// placeholder and % as escaped-path matching, none of which Pomerium does.
// A regex must match the whole path, as Envoy's safe_regex does, and is
// case-sensitive, as in Pomerium. A path or prefix compares letters
// without case, as Caddy's path matcher does, and unlike Pomerium: a
// guarded /admin route then guards /ADMIN too.
func (c *converter) pathMatch(fields map[string]*yaml.Node) (pathSpec, error) {
	kind := ""
	var value string
	for _, k := range []string{"regex", "path", "prefix"} {
		n := fields[k]
		if n == nil {
			continue
		}
		v, err := c.str(n)
		if err != nil {
			return pathSpec{}, err
		}
		if v == "" {
			continue
		}
		if kind != "" {
			c.warn(n, "%s is ignored: %s decides which paths this route matches, as in Pomerium", k, kind)
			continue
		}
		kind, value = k, v
		switch k {
		case "regex":
			if _, err := regexp.Compile(anchored(v)); err != nil {
				return pathSpec{}, c.errf(n, "regex: %v", err)
			}
		case "path":
			if v == "/healthz" || v == "/ping" {
				c.warn(n, "path %s is answered by the health check on every host, as in Pomerium: this route never gets it", v)
			}
		}
	}
	// The matcher reads the decoded path, rewrite the escaped one.
	decoded := value
	if u, err := url.PathUnescape(value); err == nil {
		decoded = u
	}
	literal := func(p string) string { return "(?i)^" + regexp.QuoteMeta(p) }
	switch kind {
	case "regex":
		return pathSpec{pattern: anchored(value), rewrite: `^.*$`}, nil
	case "path":
		return pathSpec{pattern: literal(decoded) + "$", rewrite: literal(value) + "$"}, nil
	case "prefix":
		return pathSpec{pattern: literal(decoded), rewrite: literal(value)}, nil
	}
	return pathSpec{rewrite: "^/"}, nil
}

// anchored returns re made to match the whole path, as Envoy's safe_regex
// does: "^(?:re)$", unless re already begins with ^ and ends with $ (in
// single-line mode, where they mean the ends of the path).
func anchored(re string) string {
	p, err := syntax.Parse(re, syntax.Perl)
	if err == nil && p.Op == syntax.OpConcat && len(p.Sub) >= 2 &&
		p.Sub[0].Op == syntax.OpBeginText && p.Sub[len(p.Sub)-1].Op == syntax.OpEndText {
		return re
	}
	return "^(?:" + re + ")$"
}

// allowsUpgrade decides whether the route proxies upgrades to protocol,
// as Pomerium's Policy.GetAllowWebsockets and GetAllowSPDY do: its own
// switch (allow_websockets, allow_spdy) when true, else the upgrades of
// the route's allow_upgrades if set, else of the global one, naming the
// protocol; off by default.
func (c *converter) allowsUpgrade(flag *yaml.Node, upgrades []string, protocol string) (bool, error) {
	if flag != nil {
		b, err := c.boolean(flag)
		if err != nil || b {
			return b, err
		}
	}
	return slices.ContainsFunc(upgrades, func(u string) bool { return strings.EqualFold(u, protocol) }), nil
}

// upgradeList reads an allow_upgrades list (a YAML list, or values
// separated by commas), or its environment variable, which wins. Only
// websocket and spdy/3.1 are proxied: any other upgrade is a warning.
func (c *converter) upgradeList(n *yaml.Node, envKey string) ([]string, error) {
	var list []string
	if n != nil {
		if n.Kind == yaml.ScalarNode {
			list = strings.Split(n.Value, ",")
		} else {
			var err error
			if list, err = c.strings(n); err != nil {
				return nil, err
			}
		}
	}
	if envKey != "" {
		if v, ok := c.env(envKey); ok {
			// Values separated by commas, or a JSON list.
			en, err := envNode(envKey, v, func(r rune) bool { return r == ',' })
			if err != nil {
				return nil, fmt.Errorf("%s: %v", c.file, err)
			}
			if list, err = c.strings(en); err != nil {
				return nil, fmt.Errorf("%s: the environment variable %s is a list of names", c.file, envKey)
			}
			n = nil
		}
	}
	var out []string
	for _, u := range list {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if !strings.EqualFold(u, "websocket") && !strings.EqualFold(u, module.SPDYProtocol) {
			c.warn(n, "allow_upgrades: %s upgrades are not supported by caddy-iap and are refused", u)
		}
		out = append(out, u)
	}
	return out, nil
}

// sendRequestID makes rp send the upstream Caddy's request ID (the access
// log's request_id, the ID of refusal pages) as X-Request-Id, in place of
// any the client sent, as Pomerium's Envoy does for a request from outside
// (use_remote_address, external request IDs not preserved): a client
// cannot file its request under an ID of its choosing, such as another
// user's, in the upstream's logs.
func sendRequestID(rp *reverseproxy.Handler) {
	if rp.Headers == nil {
		rp.Headers = new(headers.Handler)
	}
	if rp.Headers.Request == nil {
		rp.Headers.Request = new(headers.HeaderOps)
	}
	if rp.Headers.Request.Set == nil {
		rp.Headers.Request.Set = http.Header{}
	}
	rp.Headers.Request.Set["X-Request-Id"] = []string{"{http.request.uuid}"}
}
