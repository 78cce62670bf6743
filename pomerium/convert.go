package pomerium

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/module"
)

// scalarKeys are the global settings that work and take one value; each
// can also come from the environment variable of its upper-case name, which
// wins, as in Pomerium.
var scalarKeys = []string{
	"address", "http_redirect_addr", "certificate_file", "certificate_key_file", "certificate", "certificate_key",
	"autocert", "autocert_ca", "autocert_email", "autocert_use_staging", "autocert_eab_key_id", "autocert_eab_mac_key",
	"autocert_must_staple", "autocert_trusted_ca_file",
	"authenticate_service_url", "signout_redirect_url", "jwt_issuer_format", "idp_provider", "idp_provider_url", "idp_client_id", "idp_client_secret", "idp_client_secret_file",
	"cookie_name", "cookie_secret", "cookie_secret_file", "cookie_domain", "cookie_expire", "cookie_same_site", "cookie_http_only",
	"shared_secret", "shared_secret_file", "signing_key", "signing_key_file",
	"certificate_authority", "certificate_authority_file",
	"pass_identity_headers", "log_level", "bearer_token_format",
	"normalize_path", "merge_slashes", "path_with_escaped_slashes_action",
	"timeout_read", "timeout_write", "timeout_idle", "default_upstream_timeout",
	"insecure_server", "use_proxy_protocol", "codec_type", "services",
	"headers_with_underscores_action", "health_check_addr", "autocert_dir", "metrics_address", "metrics_basic_auth",
	"metrics_certificate", "metrics_certificate_key", "metrics_certificate_file", "metrics_certificate_key_file",
	"metrics_client_ca", "metrics_client_ca_file",
	"dns_use_tcp", "skip_xff_append",
	"otel_traces_exporter", "otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint",
	"otel_exporter_otlp_protocol", "otel_exporter_otlp_traces_protocol", "otel_exporter_otlp_timeout",
	"otel_exporter_otlp_traces_timeout", "otel_traces_sampler_arg", "otel_bsp_schedule_delay",
	"otel_bsp_max_export_batch_size", "otel_attribute_value_length_limit", "otel_log_level",
}

// listKeys are the global settings that work and that the converter reads
// as YAML structures.
var listKeys = []string{"certificates", "idp_scopes", "idp_access_token_allowed_audiences", "idp_request_params", "downstream_mtls", "jwt_claims_headers", "routes", "policy", "allow_upgrades",
	"set_response_headers", "dns_resolvers", "circuit_breaker_thresholds", "authorize_log_fields", "access_log_fields",
	"otel_resource_attributes", "otel_exporter_otlp_headers", "otel_exporter_otlp_traces_headers", "programmatic_redirect_domain_whitelist", "identity_providers"}

// providerURLs are the issuers of the IdPs Pomerium names, where fixed.
var providerURLs = map[string]string{
	"google": "https://accounts.google.com",
	"gitlab": "https://gitlab.com",
	"apple":  "https://appleid.apple.com",
}

// oidcProviders speak OpenID Connect and work with the issuer in
// idp_provider_url.
var oidcProviders = []string{"", "oidc", "google", "gitlab", "apple", "azure", "okta", "onelogin", "ping", "auth0", "keycloak", "cognito"}

type settings struct {
	scalar map[string]*yaml.Node
	env    map[string]string
	nodes  map[string]*yaml.Node
}

// value returns a scalar setting: the environment variable, else the file.
func (s settings) value(key string) (string, bool) {
	if v, ok := s.env[key]; ok {
		return v, true
	}
	if n, ok := s.scalar[key]; ok {
		return n.Value, true
	}
	return "", false
}

func (c *converter) convert(root *yaml.Node) (map[string]any, error) {
	file := c.file
	s := settings{scalar: map[string]*yaml.Node{}, env: map[string]string{}, nodes: map[string]*yaml.Node{}}
	for _, kv := range pairs(root) {
		key, val := kv[0].Value, kv[1]
		st, ok := lookupSetting(globalSettings, key)
		if !ok {
			st, ok = lookupSetting(legacyGlobal, key)
		}
		if !ok {
			return nil, c.errf(kv[0], "unknown setting %q%s", key, didYouMean(key, globalSettings))
		}
		switch {
		case st.support == works && slices.Contains(scalarKeys, key):
			if val.Kind != yaml.ScalarNode {
				return nil, c.errf(val, "%s takes a single value", key)
			}
			s.scalar[key] = val
		case st.support == works:
			s.nodes[key] = val
		case st.isDefaultNode(val):
			// Pomerium's default, spelled out: nothing to do.
		case st.support == warned:
			c.warn(kv[0], "%s is ignored: %s", key, st.why)
		default:
			return nil, c.errf(kv[0], "%s", st.refusal())
		}
	}
	// Every global setting of Pomerium's is also read from the
	// environment variable of its upper-case name, as Pomerium binds them.
	for _, st := range globalSettings {
		v, ok := c.env(strings.ToUpper(st.name))
		if !ok || st.support == works || st.isDefault(v) {
			continue
		}
		if st.support == warned {
			c.warn(nil, "%s (from the environment variable %s) is ignored: %s", st.name, strings.ToUpper(st.name), st.why)
			continue
		}
		return nil, fmt.Errorf("%s: the environment variable %s: %s", c.file, strings.ToUpper(st.name), st.refusal())
	}
	for _, key := range scalarKeys {
		if v, ok := c.env(strings.ToUpper(key)); ok {
			s.env[key] = v
		}
	}
	// The settings that are lists or maps come from the environment too,
	// each replacing the file's: values separated by commas (also by
	// spaces, for the claims), as Pomerium decodes them, or a JSON list or
	// map. CERTIFICATES is a JSON (or YAML) list of {cert, key}, and
	// SET_RESPONSE_HEADERS (or HEADERS, its old name) a JSON map or
	// Name:Value pairs separated by commas.
	for key, sep := range map[string]func(rune) bool{
		"idp_scopes":                             func(r rune) bool { return r == ',' },
		"idp_access_token_allowed_audiences":     func(r rune) bool { return r == ',' },
		"idp_request_params":                     nil,
		"jwt_claims_headers":                     func(r rune) bool { return r == ',' || unicode.IsSpace(r) },
		"certificates":                           nil,
		"dns_resolvers":                          func(r rune) bool { return r == ',' },
		"authorize_log_fields":                   func(r rune) bool { return r == ',' },
		"access_log_fields":                      func(r rune) bool { return r == ',' },
		"set_response_headers":                   nil,
		"programmatic_redirect_domain_whitelist": func(r rune) bool { return r == ',' },
		// A JSON map, such as {"max_requests": 100}.
		"circuit_breaker_thresholds": nil,
		// OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_(TRACES_)HEADERS:
		// key=value pairs separated by commas, OpenTelemetry's form.
		"otel_resource_attributes":          func(r rune) bool { return r == ',' },
		"otel_exporter_otlp_headers":        func(r rune) bool { return r == ',' },
		"otel_exporter_otlp_traces_headers": func(r rune) bool { return r == ',' },
		// A JSON map of names to issuers.
		"identity_providers": nil,
	} {
		envKey := strings.ToUpper(key)
		v, ok := c.env(envKey)
		if !ok && key == "set_response_headers" {
			envKey = "HEADERS"
			v, ok = c.env(envKey)
		}
		if !ok {
			continue
		}
		n, err := envNode(envKey, v, sep)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", c.file, err)
		}
		if key == "authorize_log_fields" || key == "access_log_fields" {
			n.Line = 0 // errors name the variable, not a line of the file
		}
		s.nodes[key] = n
	}

	app, err := c.app(s)
	if err != nil {
		return nil, err
	}
	if app.AuthorizeLogFields, err = c.authorizeLogFields(s); err != nil {
		return nil, err
	}
	if app.Tracing, err = c.tracing(s); err != nil {
		return nil, err
	}
	dmtls, err := c.downstream(s)
	if err != nil {
		return nil, err
	}
	if dmtls != nil && dmtls.CA == "" && dmtls.CAFile == "" {
		// Pomerium takes downstream_mtls without a CA (a CRL, SAN rules,
		// a depth) for the routes that name their own client CA: each of
		// those checks its CA plus these. Other routes ask for no client
		// certificate.
		c.routeMTLS, dmtls = dmtls, nil
	}

	if c.upgrades, err = c.upgradeList(s.nodes["allow_upgrades"], "ALLOW_UPGRADES"); err != nil {
		return nil, err
	}
	if err := c.pathRules(s); err != nil {
		return nil, err
	}
	if err := c.services(s); err != nil {
		return nil, err
	}
	if c.defaultTimeout, _, err = c.duration(s, "default_upstream_timeout"); err != nil {
		return nil, err
	}
	if c.resolvers, err = c.dnsResolvers(s); err != nil {
		return nil, err
	}
	if err := c.globalCircuitBreakers(s); err != nil {
		return nil, err
	}
	if c.skipXFF, err = c.flag(s, "skip_xff_append"); err != nil {
		return nil, err
	}
	if n := s.nodes["set_response_headers"]; n != nil {
		if err := n.Decode(&c.respHeaders); err != nil {
			return nil, c.errf(n, "set_response_headers: a mapping of header names to values")
		}
		if c.respHeaders == nil {
			c.respHeaders = map[string]string{}
		}
	} else if c.respHeaders, err = c.defaultResponseHeaders(s); err != nil {
		return nil, err
	}

	// Pomerium serves the routes of policy first, then those of routes
	// (config.Options.GetAllPolicies), each host's in this order: both
	// lists count, and a policy route wins over a routes route for the
	// same request.
	type routeNodes struct {
		file  string
		nodes []*yaml.Node
	}
	var lists []routeNodes
	for _, key := range []string{"policy", "routes"} {
		c.file = file
		list, err := c.routeList(s, key)
		if err != nil {
			return nil, err
		}
		// Each route's iap_mtls takes the tls_downstream_server_name of
		// every route of its host: read them all first.
		if err := c.readServerNames(list); err != nil {
			return nil, err
		}
		lists = append(lists, routeNodes{c.file, list})
	}
	var routes []route
	for _, l := range lists {
		c.file = l.file
		for _, rn := range l.nodes {
			r, err := c.route(rn, app, s)
			if err != nil {
				return nil, err
			}
			routes = append(routes, r)
		}
	}
	c.file = file
	if c.routeMTLS != nil && !slices.ContainsFunc(routes, func(r route) bool { return r.downstream != nil }) {
		c.warn(s.nodes["downstream_mtls"], "downstream_mtls has no ca or ca_file, and no route names its own client CA (tls_downstream_client_ca): no client certificate is asked for or checked")
	}
	return c.assemble(s, app, dmtls, routes)
}

// routeList returns the route nodes of the policy or routes setting. Its
// environment variable (POLICY or ROUTES: the list as base64-encoded YAML)
// replaces the file's, as in Pomerium; errors in it then name the variable
// instead of the file.
func (c *converter) routeList(s settings, key string) ([]*yaml.Node, error) {
	n := s.nodes[key]
	envKey := strings.ToUpper(key)
	if v, ok := c.env(envKey); ok {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: the environment variable %s is not base64: %v", c.file, envKey, err)
		}
		doc, err := oneDocument(raw)
		if err != nil {
			return nil, fmt.Errorf("%s (base64-decoded): %v", envKey, err)
		}
		c.file = envKey + " (base64-decoded)"
		n = nil
		if len(doc.Content) > 0 {
			n = doc.Content[0]
		}
	}
	if n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, c.errf(n, "%s is a list of routes", key)
	}
	return n.Content, nil
}

// app builds the iap app from the identity and cookie settings.
func (c *converter) app(s settings) (*module.App, error) {
	app := new(module.App)
	get := func(key string) string { v, _ := s.value(key); return v }
	secretOf := func(key string) (string, error) {
		if v := get(key); v != "" {
			return v, nil
		}
		if f := get(key + "_file"); f != "" {
			v, err := readSecretFile(f)
			if err != nil {
				return "", fmt.Errorf("%s_file: %v", key, err)
			}
			return v, nil
		}
		return "", nil
	}

	provider := get("idp_provider")
	if !slices.Contains(oidcProviders, provider) {
		return nil, fmt.Errorf("%s: idp_provider %q is not an OpenID Connect provider; caddy-iap signs in with OIDC only (use idp_provider: oidc with an OIDC-capable IdP)", c.file, provider)
	}
	providerURL := get("idp_provider_url")
	if providerURL == "" {
		providerURL = providerURLs[provider]
	}
	if providerURL != "" || get("idp_client_id") != "" {
		secret, err := secretOf("idp_client_secret")
		if err != nil {
			return nil, fmt.Errorf("%s: %v", c.file, err)
		}
		if providerURL == "" {
			return nil, fmt.Errorf("%s: idp_provider_url is required for idp_provider %q", c.file, provider)
		}
		app.IDP = &module.IDP{ProviderURL: providerURL, ClientID: get("idp_client_id"), ClientSecret: secret}
		if n := s.nodes["idp_scopes"]; n != nil {
			scopes, err := c.strings(n)
			if err != nil {
				return nil, err
			}
			app.IDP.Scopes = scopes
		}
		if n := s.nodes["idp_request_params"]; n != nil {
			var params map[string]string
			if err := n.Decode(&params); err != nil {
				return nil, c.errf(n, "idp_request_params: a mapping of parameter names to values: %v", err)
			}
			app.IDP.RequestParams = params
		}
	}
	if n := s.nodes["programmatic_redirect_domain_whitelist"]; n != nil {
		// Pomerium's default is [localhost], the app's too; [] turns
		// programmatic login off.
		list, err := c.strings(n)
		if err != nil {
			return nil, err
		}
		domains := []string{}
		for i, d := range list {
			if d = strings.TrimSpace(d); d == "" {
				continue
			}
			at := n // the entry's own line, in a YAML list
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				at = n.Content[i]
			}
			if err := authn.CheckRedirectDomain(d); err != nil {
				return nil, c.errf(at, "programmatic_redirect_domain_whitelist: %q: %v", d, err)
			}
			domains = append(domains, d)
		}
		app.ProgrammaticRedirectDomainWhitelist = domains
	}
	if v := strings.TrimSpace(get("signout_redirect_url")); v != "" {
		app.SignOutRedirectURL = v
	}
	if err := c.bearer(s, app); err != nil {
		return nil, err
	}
	if err := c.workloadIssuers(s, app); err != nil {
		return nil, err
	}
	if err := c.checkGlobalWorkloads(s, app); err != nil {
		return nil, err
	}
	if f, err := issuerFormat(get("jwt_issuer_format")); err != nil {
		return nil, fmt.Errorf("%s: %v", c.file, err)
	} else {
		app.JWTIssuerFormat = f
	}
	if v := strings.TrimSpace(get("authenticate_service_url")); v != "" {
		// Central sign-in: the IdP lists that host's callback only.
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%s: authenticate_service_url: %q is not a URL such as https://authenticate.example.com", c.file, v)
		}
		if app.IDP != nil {
			app.AuthenticateURL = "https://" + u.Host
		}
	}

	var err error
	app.CookieName = get("cookie_name")
	app.CookieDomain = get("cookie_domain")
	app.CookieSameSite = get("cookie_same_site")
	if app.CookieSecret, err = secretOf("cookie_secret"); err != nil {
		return nil, fmt.Errorf("%s: %v", c.file, err)
	}
	shared, err := secretOf("shared_secret")
	if err != nil {
		return nil, fmt.Errorf("%s: %v", c.file, err)
	}
	if app.CookieSecret == "" && shared != "" && app.IDP != nil {
		// Pomerium instances share keys through shared_secret; derive the
		// cookie key from it so that they keep agreeing.
		raw, err := module.DecodeBase64(shared)
		if err != nil {
			return nil, fmt.Errorf("%s: shared_secret: %v", c.file, err)
		}
		key, err := hkdf.Key(sha256.New, raw, nil, "caddy-iap cookie_secret from shared_secret", 32)
		if err != nil {
			return nil, err
		}
		app.CookieSecret = base64.StdEncoding.EncodeToString(key)
	}
	if v := get("cookie_expire"); v != "" {
		d, err := caddy.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%s: cookie_expire: %v", c.file, err)
		}
		app.CookieExpire = caddy.Duration(d)
	}
	if v, ok := s.value("cookie_http_only"); ok && v == "false" {
		c.warn(s.scalar["cookie_http_only"], "cookie_http_only: false is ignored: session cookies are always HttpOnly")
	}
	// One or more PEM keys, as Pomerium reads them: the first signs and
	// every key is published, so its three-step rotation works unchanged.
	app.SigningKey = get("signing_key")
	app.SigningKeyFile = get("signing_key_file")
	app.CertificateAuthority = get("certificate_authority")
	app.CertificateAuthorityFile = get("certificate_authority_file")
	// Pomerium sends the assertion and claim headers only when
	// pass_identity_headers is true, the route's if set, else the
	// global one (Policy.GetPassIdentityHeaders): off by default, unlike
	// the iap app's default. A route's own setting is its iap_authorize's.
	pass := false
	if v, ok := s.value("pass_identity_headers"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s: pass_identity_headers: %q is not true or false", c.file, v)
		}
		pass = b
	}
	app.PassIdentityHeaders = &pass
	if n := s.nodes["jwt_claims_headers"]; n != nil {
		app.JWTClaimsHeaders = map[string]string{}
		switch n.Kind {
		case yaml.MappingNode:
			for _, kv := range pairs(n) {
				app.JWTClaimsHeaders[kv[0].Value] = kv[1].Value
			}
		default:
			claims, err := c.strings(n)
			if err != nil {
				return nil, err
			}
			for _, claim := range claims {
				app.JWTClaimsHeaders["X-Pomerium-Claim-"+strings.ReplaceAll(claim, "_", "-")] = claim
			}
		}
	}
	// Upstreams written for Pomerium expect its names.
	app.Compat = "pomerium"
	return app, nil
}

// downstream reads downstream_mtls (and its environment variables).
func (c *converter) downstream(s settings) (*downstreamtls.Options, error) {
	n := s.nodes["downstream_mtls"]
	o := new(downstreamtls.Options)
	if n != nil {
		if n.Kind != yaml.MappingNode {
			return nil, c.errf(n, "downstream_mtls is a mapping")
		}
		known := []string{"ca", "ca_file", "crl", "crl_file", "enforcement", "match_subject_alt_names", "max_verify_depth"}
		for _, kv := range pairs(n) {
			if !slices.Contains(known, kv[0].Value) {
				return nil, c.errf(kv[0], "unknown downstream_mtls setting %q", kv[0].Value)
			}
		}
		var raw map[string]any
		if err := n.Decode(&raw); err != nil {
			return nil, c.errf(n, "downstream_mtls: %v", err)
		}
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, o); err != nil {
			return nil, c.errf(n, "downstream_mtls: %v", err)
		}
	}
	// Pomerium binds an environment variable to each downstream_mtls
	// setting (DOWNSTREAM_MTLS_<NAME>); a variable wins over the file.
	for key, field := range map[string]*string{"DOWNSTREAM_MTLS_CA": &o.CA, "DOWNSTREAM_MTLS_CA_FILE": &o.CAFile,
		"DOWNSTREAM_MTLS_CRL": &o.CRL, "DOWNSTREAM_MTLS_CRL_FILE": &o.CRLFile, "DOWNSTREAM_MTLS_ENFORCEMENT": &o.Enforcement} {
		if v, ok := c.env(key); ok {
			*field = v
		}
	}
	if v, ok := c.env("DOWNSTREAM_MTLS_MAX_VERIFY_DEPTH"); ok {
		d, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: DOWNSTREAM_MTLS_MAX_VERIFY_DEPTH: %q is not a whole number", c.file, v)
		}
		depth := uint32(d)
		o.MaxVerifyDepth = &depth
	}
	if v, ok := c.env("DOWNSTREAM_MTLS_MATCH_SUBJECT_ALT_NAMES"); ok {
		// A list of {type: pattern}, in YAML or JSON, as in the file.
		var list []map[string]string
		if err := yaml.Unmarshal([]byte(v), &list); err != nil {
			return nil, fmt.Errorf("%s: DOWNSTREAM_MTLS_MATCH_SUBJECT_ALT_NAMES: a list of {type: pattern}, such as [{email: .*@example.com}]: %v", c.file, err)
		}
		b, _ := json.Marshal(list)
		var sans downstreamtls.SANMatchers
		if err := json.Unmarshal(b, &sans); err != nil {
			return nil, fmt.Errorf("%s: DOWNSTREAM_MTLS_MATCH_SUBJECT_ALT_NAMES: %v", c.file, err)
		}
		o.MatchSubjectAltNames = sans
	}
	if o.CA == "" && o.CAFile == "" && o.CRL == "" && o.CRLFile == "" && len(o.MatchSubjectAltNames) == 0 && o.MaxVerifyDepth == nil {
		// Nothing to check (an enforcement alone changes nothing).
		return nil, nil
	}
	return o, nil
}

// assemble puts the apps together.
func (c *converter) assemble(s settings, app *module.App, dmtls *downstreamtls.Options, routes []route) (map[string]any, error) {
	get := func(key string) string { v, _ := s.value(key); return v }
	address := get("address")
	if address == "" {
		address = ":443"
	}
	// Pomerium logs every request (Envoy's access log); so does this
	// server, with each decision's reason (iap_reason) and each route's
	// description (iap_route_description).
	srv := map[string]any{"listen": []string{address}, "logs": map[string]any{}}
	httpApp := map[string]any{"servers": map[string]any{"pomerium": srv}}
	insecure, err := c.flag(s, "insecure_server")
	if err != nil {
		return nil, err
	}
	if insecure && (dmtls != nil || slices.ContainsFunc(routes, func(r route) bool { return r.downstream != nil })) {
		return nil, fmt.Errorf("%s: insecure_server serves plain HTTP, so downstream mTLS (downstream_mtls, tls_downstream_client_ca) cannot ask for client certificates", c.file)
	}
	if p := portOf(address); p != "" && !insecure {
		n, _ := strconv.Atoi(p)
		httpApp["https_port"] = n
	}
	if err := c.server(s, srv); err != nil {
		return nil, err
	}
	if err := c.underscoreHeaders(s); err != nil {
		return nil, err
	}
	metricsTLS, err := c.metricsTLS(s)
	if err != nil {
		return nil, err
	}
	extra, err := c.extraServers(s, metricsTLS)
	if err != nil {
		return nil, err
	}
	for name, srv := range extra {
		httpApp["servers"].(map[string]any)[name] = srv
	}
	if v := get("http_redirect_addr"); v != "" {
		if p := portOf(v); p != "" {
			n, _ := strconv.Atoi(p)
			httpApp["http_port"] = n
		}
	}

	// Envoy picks the virtual host first: a host that some route names
	// exactly is served by its own routes only, and wildcard routes are
	// tried for the other hosts, whatever their place in the config
	// (envoyconfig buildMainRouteConfiguration). So the exact hosts' routes
	// go first, in config order, and a request for such a host that none of
	// them matches gets 404 instead of falling to a wildcard route.
	exact := slices.DeleteFunc(slices.Clone(routes), func(r route) bool { return r.wildcard })
	wild := slices.DeleteFunc(slices.Clone(routes), func(r route) bool { return !r.wildcard })
	routes = append(exact, wild...)

	var hosts, exactHosts []string
	var caddyRoutes []caddyhttp.Route
	var policies []*caddytls.ConnectionPolicy
	routeCAs := map[string]*caddytls.ConnectionPolicy{} // per host, of tls_downstream_client_ca
	for _, r := range routes {
		caddyRoutes = append(caddyRoutes, r.caddy)
		if !slices.Contains(hosts, r.host) {
			hosts = append(hosts, r.host)
			if !r.wildcard {
				exactHosts = append(exactHosts, r.host)
			}
		}
		if r.downstream != nil {
			// The deprecated per-route client CA; route put its handler first.
			// Its connection policy is also that of the host's
			// tls_downstream_server_name.
			site, err := module.MTLS{Options: *r.downstream}.ForSite(append([]string{r.host}, c.serverNames[strings.ToLower(r.host)]...))
			if err != nil {
				key := "tls_downstream_client_ca"
				if r.downstream.CAFile != "" {
					key += "_file"
				}
				return nil, fmt.Errorf("%s: route %s: %s: %v", c.file, r.host, key, err)
			}
			for _, w := range site.Warnings {
				c.warn(nil, "route %s: client certificates: %s", r.host, w)
			}
			if prev := routeCAs[r.host]; prev != nil {
				// Another route of this host has its own CA: one handshake
				// names both (see mergeClientCAs).
				if err := mergeClientCAs(prev.ClientAuthentication, site.ConnectionPolicy.ClientAuthentication); err != nil {
					return nil, fmt.Errorf("%s: route %s: tls_downstream_client_ca: %v", c.file, r.host, err)
				}
				continue
			}
			routeCAs[r.host] = site.ConnectionPolicy
			policies = append(policies, site.ConnectionPolicy)
		}
	}
	if err := c.checkServerNames(routes, hosts); err != nil {
		return nil, err
	}
	serverNames := c.allServerNames(routes)
	if insecure && len(serverNames) > 0 {
		// Plain HTTP: no handshake names anything.
		for _, r := range routes {
			if r.serverNameNode != nil {
				c.warn(r.serverNameNode, "tls_downstream_server_name is ignored: insecure_server serves plain HTTP, with no TLS server name")
			}
		}
		serverNames = nil
	}
	// Pomerium answers its own endpoints (/.pomerium/...: the sign-in
	// callback, the user page, the JWKS) on every host before the routes.
	// Here the iap_authenticate of whichever route matches answers them;
	// for an exact host whose routes all have a path, prefix or regex that
	// leaves them out, a route after that host's routes does, or signing in
	// could never finish there.
	var own []caddyhttp.Route
	for _, h := range exactHosts {
		var mtls json.RawMessage
		var cas []*downstreamtls.Options
		idp, idpSet := "", false
		for _, r := range exact {
			if r.host == h {
				// The host's callback signs in with one IdP: its routes
				// must share it.
				if idpSet && r.idp != idp {
					return nil, fmt.Errorf("%s: %s: routes of one host sign in with one identity provider: give them the same idp_client_id", c.file, h)
				}
				idp, idpSet = r.idp, true
			}
			if r.host == h && r.mtls != nil {
				if mtls == nil {
					mtls = r.mtls
				}
				cas = append(cas, r.downstream)
			}
		}
		if len(cas) > 1 {
			// Routes with their own client CAs: a user of any of them signs in here.
			var err error
			if mtls, err = hostMTLS(cas); err != nil {
				return nil, fmt.Errorf("%s: %s: tls_downstream_client_ca: %v", c.file, h, err)
			}
		}
		own = append(own, ownEndpoints(h, mtls, idp))
	}
	if app.AuthenticateURL != "" {
		// authenticate_service_url: the one host where users sign in, as
		// Pomerium's authenticate service. Its own route answers every
		// path there (the callback, the sign-in, the user page); it gets
		// a certificate and the global downstream mTLS like a route host.
		u, _ := url.Parse(app.AuthenticateURL)
		if h := u.Hostname(); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
			exactHosts = append(exactHosts, h)
			own = append(own, caddyhttp.Route{
				MatcherSetsRaw: caddyhttp.RawMatcherSets{{"host": caddyconfig.JSON(caddyhttp.MatchHost{h}, nil)}},
				HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(&caddyhttp.Subroute{Routes: caddyhttp.RouteList{{HandlersRaw: []json.RawMessage{
					caddyconfig.JSONModuleObject(&module.Authenticate{Hosts: []string{h}}, "handler", "iap_authenticate", nil),
					staticResponse(404, nil, "")}}}}, "handler", "subroute", nil)},
				Terminal: true,
			})
		}
	}
	caddyRoutes = slices.Insert(caddyRoutes, len(exact), own...)

	if dmtls != nil && len(hosts) > 0 {
		// The global downstream mTLS guards every route: a connection
		// policy for all their hosts, and its handler first on each route,
		// as iap_mtls does for a Caddyfile site.
		site, err := module.MTLS{Options: *dmtls, ServerNames: c.serverNames}.ForSite(hosts)
		if err != nil {
			return nil, fmt.Errorf("%s: downstream_mtls: %v", c.file, err)
		}
		withServerNames(site.ConnectionPolicy, serverNames)
		for _, w := range site.Warnings {
			c.warn(s.nodes["downstream_mtls"], "downstream_mtls: %s", w)
		}
		policies = append(policies, site.ConnectionPolicy)
		for i := range caddyRoutes {
			sub := caddyRoutes[i].HandlersRaw[0]
			caddyRoutes[i].HandlersRaw = append([]json.RawMessage{site.Handler}, sub)
		}
	}
	if len(policies) > 0 {
		policies = append(policies, &caddytls.ConnectionPolicy{})
		srv["tls_connection_policies"] = policies
		if len(serverNames) > 0 {
			// A connection made for a tls_downstream_server_name carries
			// requests for its route's host: Caddy's SNI-Host check, on
			// when client certificates are asked for, would refuse them.
			// Each iap_mtls checks it instead (server_names).
			srv["strict_sni_host"] = false
		}
	}
	if len(wild) > 0 && len(exactHosts) > 0 {
		notFound := caddyhttp.Route{
			MatcherSetsRaw: caddyhttp.RawMatcherSets{{"host": caddyconfig.JSON(caddyhttp.MatchHost(exactHosts), nil)}},
			HandlersRaw:    []json.RawMessage{staticResponse(404, nil, "")},
			Terminal:       true,
		}
		caddyRoutes = slices.Insert(caddyRoutes, len(exact)+len(own), notFound)
	}
	if app.Tracing != nil {
		// Every request but the health checks is traced, refusals too.
		caddyRoutes = append([]caddyhttp.Route{tracingRoute()}, caddyRoutes...)
	}
	srv["routes"] = append([]caddyhttp.Route{healthRoute()}, caddyRoutes...)
	level := strings.ToUpper(get("log_level"))
	accessLog, first, err := c.accessLog(s, srv, level)
	if err != nil {
		return nil, err
	}
	if c.skipXFF {
		// The map that tells each proxy whether the client sent an
		// X-Forwarded-For (xff.go).
		if first == nil {
			first = new(caddyhttp.Route)
		}
		first.HandlersRaw = append([]json.RawMessage{xffMap()}, first.HandlersRaw...)
	}
	if first != nil {
		// After the health checks (whose requests Pomerium logs at debug
		// only), before every route.
		srv["routes"] = slices.Insert(srv["routes"].([]caddyhttp.Route), 1, *first)
	}

	apps := map[string]any{"http": httpApp, "iap": iapApp(app)}
	tlsApp := map[string]any{}
	var certFiles []map[string]any
	if cf, kf := get("certificate_file"), get("certificate_key_file"); cf != "" || kf != "" {
		if cf == "" || kf == "" {
			return nil, fmt.Errorf("%s: certificate_file and certificate_key_file go together", c.file)
		}
		certFiles = append(certFiles, map[string]any{"certificate": cf, "key": kf})
	}
	if n := s.nodes["certificates"]; n != nil {
		var list []struct {
			Cert string `yaml:"cert"`
			Key  string `yaml:"key"`
		}
		if err := n.Decode(&list); err != nil {
			return nil, c.errf(n, "certificates: a list of {cert, key} file pairs: %v", err)
		}
		for _, p := range list {
			certFiles = append(certFiles, map[string]any{"certificate": p.Cert, "key": p.Key})
		}
	}
	var inline []map[string]any
	if cert, key := get("certificate"), get("certificate_key"); cert != "" || key != "" {
		cb, err1 := module.DecodeBase64(cert)
		kb, err2 := module.DecodeBase64(key)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: certificate and certificate_key are base64-encoded PEM", c.file)
		}
		inline = append(inline, map[string]any{"certificate": string(cb), "key": string(kb)})
	}
	autocert, err := c.flag(s, "autocert")
	if err != nil {
		return nil, err
	}
	issuer, mustStaple, err := c.acmeIssuer(s, autocert && !insecure)
	if err != nil {
		return nil, err
	}
	loaded := false
	switch {
	case insecure:
		// Plain HTTP on address, as Pomerium serves behind a proxy that
		// terminates TLS: no certificates, no redirects, no client
		// certificates to ask for (refused above).
		srv["automatic_https"] = map[string]any{"disable": true}
	case autocert:
		// Caddy's automatic HTTPS gets the route hosts' certificates,
		// from the ACME CA of the autocert_* settings if any.
		if issuer != nil && len(hosts) > 0 {
			p := map[string]any{"subjects": append(slices.Clone(hosts), serverNames...), "issuers": []map[string]any{issuer}}
			if mustStaple {
				p["must_staple"] = true
			}
			tlsApp["automation"] = map[string]any{"policies": []map[string]any{p}}
		}
	case len(certFiles) > 0 || len(inline) > 0:
		certs := map[string]any{}
		if len(certFiles) > 0 {
			certs["load_files"] = certFiles
		}
		if len(inline) > 0 {
			certs["load_pem"] = inline
		}
		tlsApp["certificates"] = certs
		srv["automatic_https"] = map[string]any{"disable_certificates": true}
		loaded = true
		c.checkCoverage(routes, serverNames, slices.Concat(certFiles, inline))
	default:
		// Pomerium serves a self-signed certificate; Caddy's local CA
		// issues one per host instead.
		if len(hosts) > 0 {
			tlsApp["automation"] = map[string]any{"policies": []map[string]any{{
				"subjects": append(slices.Clone(hosts), serverNames...), "issuers": []map[string]any{{"module": "internal"}},
			}}}
			// Pomerium touches no trust store; neither does this CA.
			apps["pki"] = map[string]any{"certificate_authorities": map[string]any{"local": map[string]any{"install_trust": false}}}
		}
	}
	if len(serverNames) > 0 && !insecure && !loaded {
		// Caddy manages certificates for the hosts of its routes; the
		// names of tls_downstream_server_name are no route's host.
		tlsApp["certificates"] = map[string]any{"automate": serverNames}
	}
	if metricsTLS != nil {
		if !insecure {
			if err := c.applyMetricsTLS(metricsTLS, srv, slices.Concat(hosts, serverNames), loaded, slices.Concat(certFiles, inline), policies); err != nil {
				return nil, err
			}
		}
		certs, _ := tlsApp["certificates"].(map[string]any)
		if certs == nil {
			certs = map[string]any{}
			tlsApp["certificates"] = certs
		}
		if metricsTLS.pem != nil {
			list, _ := certs["load_pem"].([]map[string]any)
			certs["load_pem"] = append(list, map[string]any{"certificate": metricsTLS.pem.CertificatePEM, "key": metricsTLS.pem.KeyPEM, "tags": metricsTLS.pem.Tags})
		} else {
			list, _ := certs["load_files"].([]map[string]any)
			certs["load_files"] = append(list, map[string]any{"certificate": metricsTLS.file.Certificate, "key": metricsTLS.file.Key, "tags": metricsTLS.file.Tags})
		}
	}
	if len(tlsApp) > 0 {
		apps["tls"] = tlsApp
	}
	cfg := map[string]any{"apps": apps}
	if dir, _ := s.value("autocert_dir"); strings.TrimSpace(dir) != "" {
		if autocert && !insecure {
			// Pomerium keeps its certificates there; Caddy keeps them (and
			// the iap app's keys) in its storage, here that folder.
			cfg["storage"] = map[string]any{"module": "file_system", "root": strings.TrimSpace(dir)}
		} else {
			c.warn(s.scalar["autocert_dir"], "autocert_dir is ignored: autocert is not true")
		}
	}
	// The access log goes through its own log (pomerium_access), which
	// keeps the fields of access_log_fields; the default log leaves it out.
	defaultLog := map[string]any{"exclude": []string{"http.log.access." + accessLoggerName}}
	if level != "" {
		defaultLog["level"] = level
	}
	cfg["logging"] = map[string]any{"logs": map[string]any{"default": defaultLog, "pomerium_access": accessLog}}
	return cfg, nil
}

// healthRoute answers Pomerium's health checks, /healthz and /ping, on
// every host before any route, without a client certificate or a user,
// as Pomerium's control plane does (handlers.HealthCheck): GET and HEAD
// get 200 "OK", other methods 405. Their access log lines are at DEBUG,
// as Pomerium logs them, so a load balancer's checks do not fill the log.
func healthRoute() caddyhttp.Route {
	sub := &caddyhttp.Subroute{Routes: caddyhttp.RouteList{
		{
			MatcherSetsRaw: caddyhttp.RawMatcherSets{{"method": caddyconfig.JSON(caddyhttp.MatchMethod{"GET", "HEAD"}, nil)}},
			HandlersRaw:    []json.RawMessage{staticResponse(200, map[string]string{"Content-Type": "text/plain"}, "OK\n")},
		},
		{
			HandlersRaw: []json.RawMessage{staticResponse(405, map[string]string{"Content-Type": "text/plain; charset=utf-8",
				"X-Content-Type-Options": "nosniff"}, "Method Not Allowed\n")},
		},
	}}
	return caddyhttp.Route{
		MatcherSetsRaw: caddyhttp.RawMatcherSets{{"path": caddyconfig.JSON(caddyhttp.MatchPath{"/healthz", "/ping"}, nil)}},
		HandlersRaw: []json.RawMessage{
			caddyconfig.JSON(map[string]string{"handler": "vars", caddyhttp.LogLevelVar: "DEBUG"}, nil),
			caddyconfig.JSONModuleObject(sub, "handler", "subroute", nil)},
		Terminal: true,
	}
}

// ownEndpoints is the route that answers caddy-iap's endpoints under
// Pomerium's names on host when none of the host's routes took the
// request: the host's client certificate check (the deprecated per-route
// CA, if any), then iap_authenticate, which answers them, then 404 for a
// path it does not know.
func ownEndpoints(host string, mtls json.RawMessage, idp string) caddyhttp.Route {
	var handlers []json.RawMessage
	if mtls != nil {
		handlers = append(handlers, mtls)
	}
	handlers = append(handlers,
		caddyconfig.JSONModuleObject(&module.Authenticate{Hosts: []string{host}, SignIn: module.SignInPolicy, IDP: idp}, "handler", "iap_authenticate", nil),
		staticResponse(404, nil, ""))
	sub := &caddyhttp.Subroute{Routes: caddyhttp.RouteList{{HandlersRaw: handlers}}}
	return caddyhttp.Route{
		MatcherSetsRaw: caddyhttp.RawMatcherSets{{
			"host": caddyconfig.JSON(caddyhttp.MatchHost{host}, nil),
			"path": caddyconfig.JSON(caddyhttp.MatchPath{"/.pomerium", "/.pomerium/*", "/.well-known/pomerium/*"}, nil),
		}},
		HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(sub, "handler", "subroute", nil)},
		Terminal:    true,
	}
}

// staticResponse is a static_response handler.
func staticResponse(status int, header map[string]string, body string) json.RawMessage {
	h := map[string]any{"handler": "static_response", "status_code": status}
	if len(header) > 0 {
		hdr := map[string][]string{}
		for k, v := range header {
			hdr[k] = []string{v}
		}
		h["headers"] = hdr
	}
	if body != "" {
		h["body"] = body
	}
	return caddyconfig.JSON(h, nil)
}

// envNode decodes the environment variable name of a list or map setting:
// a JSON (or YAML flow) list or map, else values separated by sep, or for
// set_response_headers (sep nil, name HEADERS or SET_RESPONSE_HEADERS)
// Name:Value pairs separated by commas, as Pomerium reads HEADERS.
func envNode(name, v string, sep func(rune) bool) (*yaml.Node, error) {
	if t := strings.TrimSpace(v); strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{") {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(t), &doc); err != nil || len(doc.Content) == 0 {
			return nil, fmt.Errorf("the environment variable %s is not a JSON list or map: %v", name, err)
		}
		return doc.Content[0], nil
	}
	switch {
	case sep != nil:
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, item := range strings.FieldsFunc(v, sep) {
			if item = strings.TrimSpace(item); item != "" {
				list.Content = append(list.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: item})
			}
		}
		return list, nil
	case name == "HEADERS" || name == "SET_RESPONSE_HEADERS":
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for pair := range strings.SplitSeq(v, ",") {
			k, val, ok := strings.Cut(pair, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("the environment variable %s: %q is not Name:Value (pairs are separated by commas, or the whole is a JSON map)", name, pair)
			}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(k)},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(val)})
		}
		return m, nil
	}
	if name == "IDENTITY_PROVIDERS" {
		return nil, fmt.Errorf("the environment variable %s is a JSON map of names to issuers, such as {\"ci\": {\"issuer\": \"https://token.actions.githubusercontent.com\", \"audiences\": [\"api\"]}}", name)
	}
	if name == "CIRCUIT_BREAKER_THRESHOLDS" {
		return nil, fmt.Errorf("the environment variable %s is a JSON map, such as {\"max_requests\": 100}", name)
	}
	return nil, fmt.Errorf("the environment variable %s is a JSON list, such as [{\"cert\": \"/path/cert.pem\", \"key\": \"/path/key.pem\"}]", name)
}

// iapApp is the iap app's config: the app, or, when authorize_log_fields is
// an empty list (an "authorize check" line with the decision only), its
// JSON with that list, which the struct's omitempty would drop.
func iapApp(app *module.App) any {
	if app.AuthorizeLogFields == nil || len(app.AuthorizeLogFields) > 0 {
		return app
	}
	var m map[string]any
	_ = json.Unmarshal(caddyconfig.JSON(app, nil), &m)
	m["authorize_log_fields"] = []string{}
	return m
}

// defaultResponseHeaders are the response headers Pomerium sets on every
// route when the global set_response_headers is not written
// (config.Options.GetSetResponseHeadersForPolicy): X-Frame-Options and
// X-XSS-Protection, and Strict-Transport-Security when the config names
// certificates of its own (HasCertificates; autocert alone does not
// count) and not autocert's staging CA.
func (c *converter) defaultResponseHeaders(s settings) (map[string]string, error) {
	h := map[string]string{
		"X-Frame-Options":  "SAMEORIGIN",
		"X-XSS-Protection": "1; mode=block",
	}
	staging, err := c.flag(s, "autocert_use_staging")
	if err != nil {
		return nil, err
	}
	own := s.nodes["certificates"] != nil && len(s.nodes["certificates"].Content) > 0
	for _, key := range []string{"certificate", "certificate_key", "certificate_file", "certificate_key_file"} {
		if v, _ := s.value(key); v != "" {
			own = true
		}
	}
	if own && !staging {
		h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains; preload"
	}
	return h, nil
}
