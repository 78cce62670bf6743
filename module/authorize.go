// Package module registers caddy-iap's Caddy modules and glues the authn and
// authz libraries into Caddy's request handling.
package module

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

func init() {
	caddy.RegisterModule(Authorize{})
}

// Authorize decides each request with a policy written in Pomerium Policy
// Language, first, with whatever identity the request carries, or none, as
// Pomerium does:
//   - allowed: the request goes on, with the user's identity headers;
//   - anonymous, and the outcome turned on who the user is (a criterion
//     that tests the user decided it): sign in, when an iap_authenticate
//     with an IdP ran before it (a redirect for browsers, 401 for API
//     clients), else 403;
//   - refused otherwise (a deny rule, a signed-in user not allowed, a
//     policy that tests no user): 403.
//
// With no policy, every request is refused, as in Pomerium.
//
// It also logs, with the route's name, why a request to the upstream failed
// at the TLS layer, since the client only sees 502 Bad Gateway.
type Authorize struct {
	// The route's name (its site address), used in logs.
	Route string `json:"route,omitempty"`

	// The policy, in PPL's JSON form: a rule or a list of rules, e.g.
	// `[{"allow":{"or":[{"accept":true}]}}]`.
	Policy authz.Policy `json:"policy,omitempty"`

	// Refuse WebSocket upgrades (400, upgrade-refused). iap_route sets it
	// when the route's allow_websockets is false. Upgrades other than
	// websocket and SPDY/3.1 are refused on every route.
	RefuseWebSockets bool `json:"refuse_websockets,omitempty"`

	// Let SPDY/3.1 upgrades (kubectl exec, attach and port-forward) through
	// once the policy allowed the request. Off by default: they are
	// refused (400, upgrade-refused). iap_route sets it, and the same on
	// its iap_authenticate, from allow_spdy.
	AllowSPDY bool `json:"allow_spdy,omitempty"`

	// Send the identity assertion and claim headers upstream for this
	// route, overriding the app's pass_identity_headers; nil follows the
	// app. The Pomerium adapter sets it from a route's own
	// pass_identity_headers. (Under iap_authenticate's sign_in "required"
	// the headers are set before this handler runs, by the app's setting.)
	PassIdentityHeaders *bool `json:"pass_identity_headers,omitempty"`

	// How the assertion's iss is written on this route: "hostOnly" or
	// "uri", overriding the app's jwt_issuer_format; empty follows the app.
	JWTIssuerFormat string `json:"jwt_issuer_format,omitempty"`

	// A Kubernetes service-account token (Pomerium's
	// kubernetes_service_account_token), for a route to the Kubernetes
	// API: an allowed request of a signed-in user goes upstream with it as
	// its credential and the user to impersonate (Impersonate-User: the
	// email; one Impersonate-Group per group). Impersonate-* headers the
	// client sent never pass, and a request without a user gets no token.
	KubernetesServiceAccountToken string `json:"kubernetes_service_account_token,omitempty"`

	// The same, from a file, read again when it changes (a projected
	// token, such as /var/run/secrets/kubernetes.io/serviceaccount/token).
	KubernetesServiceAccountTokenFile string `json:"kubernetes_service_account_token_file,omitempty"`

	// Hosts this route's pages call (an API, assets), signed in together
	// with it (Pomerium's depends_on): a browser asked to sign in here goes
	// through each host's sign-in after the IdP's, before the page it
	// asked for, so its requests to them carry a session. Each must be a
	// host of this server's iap routes, on this port; with
	// authenticate_url the user is asked nothing more.
	DependsOn []string `json:"depends_on,omitempty"`

	// The route's address in the routes portal (/.iap/routes), such as
	// https://wiki.example.com (Pomerium's from). iap_route sets it from
	// the site's first address. A route without one is not listed.
	URL string `json:"url,omitempty"`

	// What the routes portal says of the route, as text.
	Description string `json:"description,omitempty"`

	// The route's logo in the routes portal: an http(s) URL, or a
	// data:image URL (data:image/png;base64,...). Other schemes, such as
	// javascript:, are refused when the config is loaded.
	LogoURL string `json:"logo_url,omitempty"`

	// The identity provider of the route's users, as its
	// iap_authenticate's idp: the routes portal lists the route to users
	// of that IdP (to everyone when it is public). Default: the app's idp.
	IDP string `json:"idp,omitempty"`

	// Show, on the page and in the JSON of a refusal by this route's
	// policy (403, or 495 for a certificate), how the policy decided:
	// each rule (allow or deny) with whether it matched, and each
	// criterion as written with its result (Pomerium's
	// show_error_details). It shows the route's policy to whoever is
	// refused, never the request's cookies or tokens. Default: off, the
	// page says only the status, the reason and the request ID.
	ShowErrorDetails bool `json:"show_error_details,omitempty"`

	decisionLog *authorizeLog // nil: the app lists no authorize_log_fields
	checksum    uint64        // route-checksum of decisionLog
	k8s         *kubernetesToken
	eval        *authz.Evaluator
	testsCert   bool // an allow rule tests the client certificate
	deniesCert  bool // a deny rule does
	app         *App
	logger      *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Authorize) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.iap_authorize",
		New: func() caddy.Module { return new(Authorize) },
	}
}

// Provision compiles the policy.
func (a *Authorize) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger().With(zap.String("route", a.Route))
	registerMetrics(ctx)
	eval, err := authz.Compile(a.Policy)
	if err != nil {
		return fmt.Errorf("route %s: policy: %v", a.Route, err)
	}
	a.eval = eval
	if err := checkIssuerFormat(a.JWTIssuerFormat); err != nil {
		return fmt.Errorf("route %s: %v", a.Route, err)
	}
	if a.k8s, err = newKubernetesToken(a.KubernetesServiceAccountToken, a.KubernetesServiceAccountTokenFile); err != nil {
		return fmt.Errorf("route %s: %v", a.Route, err)
	}
	a.testsCert, a.deniesCert = testsClientCert(a.Policy)
	a.app = configuredApp(ctx)
	if a.app != nil && a.app.auth != nil {
		a.app.keepClaims(a.Policy.ClaimNames()...)
	}
	if a.app != nil {
		a.app.portal.add(a)
		a.checksum = routeChecksum(a)
		a.decisionLog = newAuthorizeLog(a.app.AuthorizeLogFields, ctx.Logger())
	}
	return nil
}

// Validate checks the routes portal's URL and logo.
func (a *Authorize) Validate() error {
	return checkPortalFields(a.Route, a.URL, a.LogoURL)
}

// Cleanup takes the route off the routes portal.
func (a *Authorize) Cleanup() error {
	if a.app != nil {
		a.app.portal.remove(a)
	}
	return nil
}

// SetLogoURL sets logo_url, refusing what Validate would refuse.
func (a *Authorize) SetLogoURL(logoURL string) error {
	if err := checkPortalFields(a.Route, "", logoURL); err != nil {
		return err
	}
	a.LogoURL = logoURL
	return nil
}

// checkPortalFields refuses a logo_url other than http(s) and data:image,
// and a URL that is not http(s).
func checkPortalFields(route, rawURL, logoURL string) error {
	if err := authn.SafeLogoURL(logoURL); err != nil {
		return fmt.Errorf("route %s: logo_url %.80q: %v", route, logoURL, err)
	}
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("route %s: url %q: must be the route's http(s) URL", route, rawURL)
		}
	}
	return nil
}

// ServeHTTP decides, then refuses, asks for sign-in, or lets the request
// go on.
func (a *Authorize) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	setDecisionRoute(r, a.Route)
	st, refused := begin(r, a.app)
	if refused != nil {
		st.logRefusal(a.logger, r, "request refused")
		return refused.respond(w, r)
	}
	if f := st.refuseSPDY(a.AllowSPDY); f != nil {
		st.logRefusal(a.logger, r, "request refused")
		return f.respond(w, r)
	}
	if a.RefuseWebSockets && len(upgradeOf(r)) > 0 && !st.spdy {
		f := st.refuse(http.StatusBadRequest, authz.ReasonUpgradeRefused, "", "WebSockets are turned off on this route (allow_websockets).")
		st.logRefusal(a.logger, r, "request refused")
		return f.respond(w, r)
	}
	if !st.identified && a.app != nil && a.app.auth != nil {
		// No iap_authenticate ran: a session cookie for this host is not
		// the upstream's either.
		a.app.stripCookies(r.Header)
	}
	var (
		in   authz.Input
		user authz.User
		cert authz.ClientCert
	)
	st.input(r, &in, &user, &cert)
	d := a.eval.Evaluate(&in)
	st.Decision, st.Reason = &d, d.Reason
	a.decisionLog.log(r, st, d, a.Route, a.checksum)
	if !d.Allow {
		// The trace is worked out for a refusal only, and only when asked.
		details := func(f *refusal) *refusal {
			if a.ShowErrorDetails {
				tr := a.eval.Explain(&in)
				f.Trace = &tr
			}
			return f
		}
		if d.NeedsSignIn() && st.identified {
			// Anonymous, and the outcome turned on who the user is.
			st.authn().ChallengeThrough(w, r, st.identityErr, a.DependsOn)
			observeSignInRedirect(r, st)
			return st.answered(w, r)
		}
		if st.Cert != nil && !st.Cert.Valid && (d.Reason == authz.ReasonNotAllowed && a.testsCert ||
			d.Reason == authz.ReasonDenied && a.deniesCert) {
			// The certificate is what failed: say so, with 495, as Pomerium
			// does (TC-CC-13 for a deny rule), rather than a bare 403.
			f := details(st.refuse(StatusSSLCertificateError, authz.Reason(st.Cert.Reason), st.Cert.Detail, certMessage(st.Cert)))
			st.logRefusal(a.logger, r, "request refused", zap.Int("rule", d.Rule))
			return f.respond(w, r)
		}
		st.logRefusal(a.logger, r, "request refused", zap.Int("rule", d.Rule))
		return details(st.refuse(http.StatusForbidden, d.Reason, "", forbiddenMessage(d.Reason))).respond(w, r)
	}
	st.passIdentity, st.issuerFormat = a.PassIdentityHeaders, a.JWTIssuerFormat
	observeDecision(r, outcomeAllow, string(d.Reason))
	if err := st.setIdentityOut(r); err != nil {
		return err
	}
	if a.k8s != nil {
		token, err := a.k8s.get()
		if err != nil {
			a.logger.Error("kubernetes service account token: the request goes on without it", zap.Error(err))
		}
		setKubernetesHeaders(r.Header, token, st.Session)
	}
	err := next.ServeHTTP(w, r)
	if noUpstream(err) {
		// reverse_proxy found no upstream to take the request and wrote
		// nothing: say why, as every other refusal does.
		f := st.refuse(http.StatusServiceUnavailable, authz.ReasonNoUpstream, "",
			"The service behind this page cannot take the request now: each of its servers is unhealthy or at its limit of requests at once. Try again in a moment.")
		st.logRefusal(a.logger, r, "no upstream available")
		w.Header().Set("Retry-After", "5")
		return f.respond(w, r)
	}
	if cause := upstreamtls.Cause(err); cause != "" {
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		upstream, _ := repl.GetString("http.reverse_proxy.upstream.hostport")
		a.logger.Error("upstream TLS connection failed",
			zap.String("upstream", upstream),
			zap.String("cause", cause),
			zap.Error(rootCause(err)))
	}
	return err
}

// testsClientCert reports whether an allow rule and whether a deny rule of
// the policy test the client certificate.
func testsClientCert(p authz.Policy) (allow, deny bool) {
	tests := func(a *authz.Action) bool {
		if a == nil {
			return false
		}
		for _, op := range [][]authz.Criterion{a.And, a.Or, a.Not, a.Nor} {
			for _, c := range op {
				if c.Name == "client_certificate" || c.Name == "invalid_client_certificate" || c.Name == "client_certificate_user" {
					return true
				}
			}
		}
		return false
	}
	for _, rule := range p {
		allow = allow || tests(rule.Allow)
		deny = deny || tests(rule.Deny)
	}
	return allow, deny
}

func forbiddenMessage(reason authz.Reason) string {
	switch reason {
	case authz.ReasonNoPolicy:
		return "This route has no policy, so access is denied to everyone."
	case authz.ReasonCertUserMismatch:
		return "The client certificate your device sent was not issued to the user you are signed in as. Sign in as the certificate's owner, or use your own device."
	}
	return "You are not allowed to access this page."
}

// noUpstream reports whether err is reverse_proxy's 503 for a request that
// no upstream could take (none healthy, or all at their request limit).
func noUpstream(err error) bool {
	var he caddyhttp.HandlerError
	return errors.As(err, &he) && he.StatusCode == http.StatusServiceUnavailable &&
		he.Err != nil && he.Err.Error() == "no upstreams available"
}

// rootCause drops Caddy's wrapping, for a shorter log line.
func rootCause(err error) error {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.Err != nil {
		return he.Err
	}
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Authorize)(nil)
	_ caddy.Validator             = (*Authorize)(nil)
	_ caddy.CleanerUpper          = (*Authorize)(nil)
	_ caddyhttp.MiddlewareHandler = (*Authorize)(nil)
)
