package module

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

// Route is one Pomerium route, under Pomerium's option names. The Caddyfile
// directive iap_route and the Pomerium config adapter both fill a Route and
// call Handlers, so both produce the same Caddy config.
//
// Upstreams (Pomerium's `to`) and every plain reverse_proxy setting live in
// the reverse_proxy handler that Handlers is given.
type Route struct {
	// Name identifies the route in logs and errors: its site address.
	Name string `json:"name,omitempty"`

	upstreamtls.Options

	// Pass the Host header the client sent to the upstream. By default, as
	// in Pomerium, the upstream gets the host of its own URL.
	PreserveHostHeader bool `json:"preserve_host_header,omitempty"`

	// Headers to set on the request to the upstream. Values may hold
	// Caddy placeholders, and Pomerium's variables $pomerium.jwt,
	// $pomerium.client_cert_fingerprint, $pomerium.client_cert_san_dns and
	// $pomerium.client_cert_san_email (also as ${...}; $$ is a $), which
	// become {http.auth.user.jwt} and {http.iap.client_cert.*}.
	SetRequestHeaders map[string]string `json:"set_request_headers,omitempty"`

	// Headers to remove from the request to the upstream.
	RemoveRequestHeaders []string `json:"remove_request_headers,omitempty"`

	// Pomerium's policy shortcuts: allow_public_unauthenticated_access,
	// allow_any_authenticated_user, allowed_users, allowed_domains,
	// allowed_idp_claims and cors_allow_preflight.
	authz.Shortcuts

	// The route's policy, in Pomerium Policy Language. A route with neither
	// a policy nor a shortcut denies everyone.
	Policy authz.Policy `json:"policy,omitempty"`

	// The hosts of the route's site, for sign-in return URLs.
	Hosts []string `json:"-"`

	// Keep the Authorization header of a user who signed in with a bearer
	// token (ID or access token), for the upstream. By default it is
	// removed. The Pomerium adapter sets it on routes that read bearer
	// tokens, since Pomerium passes them on.
	PassBearerToken bool `json:"pass_bearer_token,omitempty"`

	// How the route reads an "Authorization: Bearer <token>" header:
	// "idp_identity_token", "idp_access_token", "jwt" or "passthrough" (see the
	// iap app's bearer_token_format, which this overrides). Default: the
	// app's.
	BearerTokenFormat string `json:"bearer_token_format,omitempty"`

	// With idp_access_token, the audiences the route's access tokens may
	// be for, replacing the app's idp_access_token_allowed_audiences.
	IDPAccessTokenAllowedAudiences []string `json:"idp_access_token_allowed_audiences,omitempty"`

	// With bearer_token_format jwt, the names of the iap app's
	// identity_providers whose workload JWTs the route accepts. Default:
	// all of them.
	IdentityProviders []string `json:"identity_providers,omitempty"`

	// The identity provider of the route's users: a name from the iap
	// app's idps. Default: the app's idp.
	IDP string `json:"idp,omitempty"`

	// Let WebSocket upgrades through to the upstream (after the policy
	// allowed the request). nil means yes, as in Caddy; the Pomerium
	// adapter sets it from Pomerium's allow_websockets, whose default is
	// false. Other upgrades (h2c, ...) are always refused.
	AllowWebsockets *bool `json:"allow_websockets,omitempty"`

	// Let SPDY/3.1 upgrades (kubectl exec, attach and port-forward)
	// through to the upstream, after the policy allowed the request, as
	// Pomerium's allow_spdy. Off by default; on for a route with a
	// Kubernetes service-account token, as in Pomerium.
	AllowSPDY bool `json:"allow_spdy,omitempty"`

	// Send the identity assertion and claim headers upstream on this
	// route, overriding the app's pass_identity_headers; nil follows the
	// app. The Pomerium adapter sets it from the route's own setting.
	PassIdentityHeaders *bool `json:"pass_identity_headers,omitempty"`

	// How the assertion's iss is written on this route: "hostOnly" or
	// "uri"; empty follows the app's jwt_issuer_format.
	JWTIssuerFormat string `json:"jwt_issuer_format,omitempty"`

	// A Kubernetes service-account token, inline or from a file: see
	// iap_authorize's kubernetes_service_account_token.
	KubernetesServiceAccountToken     string `json:"kubernetes_service_account_token,omitempty"`
	KubernetesServiceAccountTokenFile string `json:"kubernetes_service_account_token_file,omitempty"`

	// Hosts signed in together with this route: see iap_authorize's
	// depends_on.
	DependsOn []string `json:"depends_on,omitempty"`

	// What the routes portal (/.iap/routes) says of the route, as text.
	Description string `json:"description,omitempty"`

	// The route's logo in the routes portal: an http(s) or data:image
	// URL; javascript: and other schemes are refused.
	LogoURL string `json:"logo_url,omitempty"`

	// Show how the policy decided on this route's 403 pages: see
	// iap_authorize's show_error_details.
	ShowErrorDetails bool `json:"show_error_details,omitempty"`

	// The route's URL in the routes portal (Pomerium's from); the
	// Caddyfile takes the site's first address.
	URL string `json:"-"`
}

// Handlers returns the handlers the route becomes, in order:
// iap_authenticate under sign_in "policy" (the /.iap/ endpoints, and the
// user if the request carries one), iap_authorize (the route's policy with
// its shortcuts, which asks for sign-in when it needs a user), then rp with
// its transport TLS and headers set from the route. It returns warnings to
// be logged.
func (r Route) Handlers(rp *reverseproxy.Handler, env upstreamtls.Env) (handlers []json.RawMessage, warnings []string, err error) {
	policy, err := r.Shortcuts.Policy(r.Policy)
	if err != nil {
		return nil, nil, fmt.Errorf("route %s: %v", r.Name, err)
	}
	if err := authn.CheckBearerFormat(r.BearerTokenFormat); err != nil {
		return nil, nil, fmt.Errorf("route %s: %v", r.Name, err)
	}
	if _, err = authz.Compile(policy); err != nil {
		return nil, nil, fmt.Errorf("route %s: policy: %v", r.Name, err)
	}
	if err := checkPortalFields(r.Name, r.URL, r.LogoURL); err != nil {
		return nil, nil, err
	}

	transport, err := upstreamtls.TransportOf(rp)
	if err != nil {
		return nil, nil, fmt.Errorf("route %s: reading transport: %v", r.Name, err)
	}
	if transport == nil {
		if set := r.Options.FirstSet(); set != "" {
			return nil, nil, fmt.Errorf("route %s: %s needs reverse_proxy's http transport", r.Name, set)
		}
		transport = new(upstreamtls.Transport) // unused: another transport module is in charge
	} else {
		env.Route = r.Name
		warnings, err = upstreamtls.Apply(r.Options, env, transport)
		if err != nil {
			return nil, nil, err
		}
		if rp.TransportRaw != nil || transport.TLS != nil {
			rp.TransportRaw = upstreamtls.TransportJSON(transport)
		}
	}
	if err := r.setHeaders(rp, transport.TLS != nil); err != nil {
		return nil, nil, err
	}

	// A route to the Kubernetes API takes WebSocket and SPDY upgrades
	// whatever allow_websockets and allow_spdy say, as Pomerium's
	// (Policy.IsForKubernetes): kubectl exec, attach and port-forward
	// need them.
	kubernetes := r.KubernetesServiceAccountToken != "" || r.KubernetesServiceAccountTokenFile != ""
	spdy := r.AllowSPDY || kubernetes

	// Find out who the user is (never asking), then decide: the policy asks
	// for sign-in only when it does not let the anonymous request in.
	handlers = append(handlers,
		caddyconfig.JSONModuleObject(&Authenticate{Hosts: r.Hosts, SignIn: SignInPolicy, PassBearerToken: r.PassBearerToken, IDP: r.IDP,
			BearerTokenFormat: r.BearerTokenFormat, IDPAccessTokenAllowedAudiences: r.IDPAccessTokenAllowedAudiences, AllowSPDY: spdy,
			IdentityProviders: r.IdentityProviders},
			"handler", "iap_authenticate", nil),
		caddyconfig.JSONModuleObject(&Authorize{Route: r.Name, Policy: policy, AllowSPDY: spdy,
			RefuseWebSockets: r.AllowWebsockets != nil && !*r.AllowWebsockets && !kubernetes, PassIdentityHeaders: r.PassIdentityHeaders, JWTIssuerFormat: r.JWTIssuerFormat,
			KubernetesServiceAccountToken: r.KubernetesServiceAccountToken, KubernetesServiceAccountTokenFile: r.KubernetesServiceAccountTokenFile,
			DependsOn: r.DependsOn, URL: r.URL, Description: r.Description, LogoURL: r.LogoURL, IDP: r.IDP,
			ShowErrorDetails: r.ShowErrorDetails},
			"handler", "iap_authorize", nil),
		caddyconfig.JSONModuleObject(rp, "handler", "reverse_proxy", nil))
	return handlers, warnings, nil
}

// setHeaders applies Pomerium's header options to the proxy's request
// headers, leaving any header_up the user wrote alone.
func (r Route) setHeaders(rp *reverseproxy.Handler, upstreamTLS bool) error {
	ops := func() *headers.HeaderOps {
		if rp.Headers == nil {
			rp.Headers = new(headers.Handler)
		}
		if rp.Headers.Request == nil {
			rp.Headers.Request = new(headers.HeaderOps)
		}
		if rp.Headers.Request.Set == nil {
			rp.Headers.Request.Set = make(http.Header)
		}
		return rp.Headers.Request
	}
	hostSetByUser := rp.Headers != nil && rp.Headers.Request != nil && rp.Headers.Request.Set.Get("Host") != ""
	if !hostSetByUser {
		// Caddy passes the client's Host to http upstreams and the
		// upstream's own host to https upstreams; Pomerium passes the
		// upstream's own host unless preserve_host_header is set.
		if r.PreserveHostHeader {
			// The upstream gets the client's Host itself, so it needs no
			// X-Forwarded-Host, as in Pomerium.
			o := ops()
			o.Delete = append(o.Delete, "X-Forwarded-Host")
		}
		switch {
		case r.PreserveHostHeader && upstreamTLS:
			ops().Set.Set("Host", "{http.request.hostport}")
		case !r.PreserveHostHeader && !upstreamTLS:
			ops().Set.Set("Host", "{http.reverse_proxy.upstream.hostport}")
		}
	}
	for k, v := range r.SetRequestHeaders {
		v, err := pomeriumVariables(v)
		if err != nil {
			return fmt.Errorf("route %s: set_request_headers %s: %v", r.Name, k, err)
		}
		ops().Set.Set(k, v)
	}
	for _, k := range r.RemoveRequestHeaders {
		o := ops()
		o.Delete = append(o.Delete, k)
	}
	if rp.Headers != nil && rp.Headers.Request != nil && len(rp.Headers.Request.Set) == 0 {
		rp.Headers.Request.Set = nil
	}
	return nil
}

// pomeriumPlaceholders are the Caddy placeholders for the variables that
// Pomerium substitutes in set_request_headers values.
var pomeriumPlaceholders = map[string]string{
	"pomerium.jwt":                     "{http.auth.user.jwt}",
	"pomerium.client_cert_fingerprint": "{http.iap.client_cert.fingerprint}",
	"pomerium.client_cert_san_dns":     "{http.iap.client_cert.san_dns}",
	"pomerium.client_cert_san_email":   "{http.iap.client_cert.san_email}",
}

// pomeriumVariables turns Pomerium's $pomerium.<name> and ${pomerium.<name>}
// in a header value into Caddy placeholders, and $$ into $. Other text,
// other $ and Caddy placeholders stay as they are. A pomerium variable that
// has no placeholder here (id_token, access_token) is an error rather than
// an empty header.
func pomeriumVariables(v string) (string, error) {
	if !strings.Contains(v, "$") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		rest := v[i:]
		var name string
		var n int
		switch {
		case strings.HasPrefix(rest, "$$"):
			b.WriteByte('$')
			i++
			continue
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				b.WriteString(rest)
				return b.String(), nil
			}
			name, n = strings.TrimSpace(rest[2:end]), end+1
		case strings.HasPrefix(rest, "$"):
			n = 1
			for n < len(rest) && (rest[n] == '.' || rest[n] == '_' || 'a' <= rest[n] && rest[n] <= 'z' ||
				'A' <= rest[n] && rest[n] <= 'Z' || '0' <= rest[n] && rest[n] <= '9') {
				n++
			}
			for n > 1 && rest[n-1] == '.' { // a sentence's full stop
				n--
			}
			name = rest[1:n]
		}
		if !strings.HasPrefix(name, "pomerium.") {
			b.WriteByte(v[i])
			continue
		}
		placeholder, ok := pomeriumPlaceholders[name]
		if !ok {
			return "", fmt.Errorf("$%s is not supported; use $pomerium.jwt, $pomerium.client_cert_fingerprint, $pomerium.client_cert_san_dns or $pomerium.client_cert_san_email, or a Caddy placeholder", name)
		}
		b.WriteString(placeholder)
		i += n - 1
	}
	return b.String(), nil
}
