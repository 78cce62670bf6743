package module

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
)

func init() {
	caddy.RegisterModule(Authenticate{})
}

// Authenticate finds out who the user is. It answers the sign-in endpoints
// (/.iap/callback, /.iap/sign_in, /.iap/sign_out, the user page /.iap/,
// /.iap/user, /.iap/jwt) and the public JWKS (/.well-known/iap/jwks.json)
// itself, and reads the user from the session cookie or an
// Authorization: Bearer ID token, refreshing the session when due.
//
// What happens to a request without a user depends on sign_in. By default
// ("required") it is asked to sign in: browsers are redirected to the IdP,
// API clients get 401. Under "policy", which iap_route uses, it goes on
// anonymous, and the iap_authorize handler after it decides first, asking
// for sign-in only when its policy does not let the anonymous request in.
//
// Client-sent identity headers (X-Iap-*, X-Pomerium-* and the
// jwt_claims_headers) and caddy-iap's own cookies never reach the upstream.
// Once the request is allowed, the upstream gets the signed assertion
// (X-Iap-Jwt-Assertion) and the claim headers. The placeholders
// {http.auth.user.id}, {http.auth.user.email}, {http.auth.user.name},
// {http.auth.user.groups}, {http.auth.user.claim.<name>} and
// {http.auth.user.jwt} (the assertion) carry the user; the access log's
// user_id shows them.
//
// The IdP, cookies and keys come from the `iap` app.
type Authenticate struct {
	// The hosts of this route, which other routes' return URLs may point
	// to. Set by the Caddyfile from the site's addresses.
	Hosts []string `json:"hosts,omitempty"`

	// When a request without a signed-in user is asked to sign in:
	// "required" (the default) asks every such request; "policy" lets it
	// go on anonymous, for the iap_authorize handler after it to decide.
	// Under "policy" an IdP is optional: without one, the endpoints under
	// /.iap/ answer 404 (no-identity-provider) and are never proxied.
	SignIn string `json:"sign_in,omitempty"`

	// Let CORS preflight requests through without a session under
	// sign_in "required" (browsers send preflights without cookies).
	// Under "policy", the route's policy decides (cors_preflight).
	AllowCORSPreflight bool `json:"allow_cors_preflight,omitempty"`

	// The identity provider that signs this route's users in: a name from
	// the iap app's idps. Default: the app's idp.
	IDP string `json:"idp,omitempty"`

	// Keep the Authorization header of a request that signed in with a
	// bearer token (ID or access token), for the upstream. By default it
	// is removed, as the session cookie is, so an upstream cannot replay
	// the token on another route. (Under bearer_token_format passthrough
	// the header is not a credential and always reaches the upstream.)
	PassBearerToken bool `json:"pass_bearer_token,omitempty"`

	// How this route reads an "Authorization: Bearer <token>" header:
	// "idp_identity_token", "idp_access_token", "jwt" or "passthrough", as the
	// iap app's bearer_token_format, which it overrides. Default: the
	// app's.
	BearerTokenFormat string `json:"bearer_token_format,omitempty"`

	// With idp_access_token, the audiences this route's access tokens may
	// be for (userinfo's "aud"), replacing the app's
	// idp_access_token_allowed_audiences. Default: the app's.
	IDPAccessTokenAllowedAudiences []string `json:"idp_access_token_allowed_audiences,omitempty"`
	// Let SPDY/3.1 upgrades (kubectl exec, attach and port-forward) pass
	// this handler; by default they are refused (400, upgrade-refused).
	// iap_route sets it, and the same on its iap_authorize, from
	// allow_spdy.
	AllowSPDY bool `json:"allow_spdy,omitempty"`

	// With bearer_token_format jwt, the names of the iap app's
	// identity_providers whose workload JWTs this route accepts (Pomerium's
	// route identity_providers). Default: all of them. Only for routes
	// whose bearer_token_format is jwt.
	IdentityProviders []string `json:"identity_providers,omitempty"`

	app    *App
	auth   *authn.Authenticator
	bearer authn.BearerTokens
	logger *zap.Logger
}

// The values of sign_in.
const (
	SignInRequired = "required"
	SignInPolicy   = "policy"
)

// CaddyModule returns the Caddy module information.
func (Authenticate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.iap_authenticate", New: func() caddy.Module { return new(Authenticate) }}
}

// Provision finds the iap app.
func (h *Authenticate) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.app = configuredApp(ctx)
	if h.app == nil || h.app.auth == nil {
		if err := h.provisionWorkloads(); err != nil {
			return err
		}
		if h.SignIn != SignInPolicy {
			return errors.New("iap_authenticate: sign-in needs an identity provider: set `idp` in the global `iap` option (or apps.iap.idp in JSON), or make the route public")
		}
		return nil
	}
	h.app.addHosts(h.Hosts)
	var err error
	if h.auth, err = h.app.authFor(h.IDP); err != nil {
		return fmt.Errorf("iap_authenticate: %v", err)
	}
	h.bearer = authn.BearerTokens{Format: h.BearerTokenFormat, AllowedAudiences: h.IDPAccessTokenAllowedAudiences}
	if h.BearerTokenFormat != "" || h.IDPAccessTokenAllowedAudiences != nil {
		format, audiences := h.BearerTokenFormat, h.IDPAccessTokenAllowedAudiences
		if format == "" {
			format = h.app.BearerTokenFormat
		}
		if audiences == nil {
			audiences = h.app.IDPAccessTokenAllowedAudiences
		}
		warnOpenAccessTokens(h.logger, "iap_authenticate", format, audiences)
	}
	return h.provisionWorkloads()
}

// Validate checks sign_in and bearer_token_format.
func (h *Authenticate) Validate() error {
	if err := authn.CheckBearerFormat(h.BearerTokenFormat); err != nil {
		return fmt.Errorf("iap_authenticate: %v", err)
	}
	switch h.SignIn {
	case "", SignInRequired, SignInPolicy:
		return nil
	}
	return fmt.Errorf("iap_authenticate: sign_in %q is not %q or %q", h.SignIn, SignInRequired, SignInPolicy)
}

// warnOpenAccessTokens warns of access tokens taken without an audience
// check: the IdP's userinfo vouches for tokens it issued to any client,
// such as another application's.
func warnOpenAccessTokens(logger *zap.Logger, where, format string, audiences []string) {
	if format == authn.BearerAccessToken && len(audiences) == 0 {
		logger.Warn(where + ": bearer_token_format idp_access_token without idp_access_token_allowed_audiences accepts an access token the identity provider issued to any client (another application's too); list the audiences to accept")
	}
}

// ServeHTTP answers the endpoints, or finds the user and goes on.
func (h *Authenticate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	st, refused := begin(r, h.app)
	if refused == nil {
		refused = st.refuseSPDY(h.AllowSPDY)
	}
	if refused != nil {
		st.logRefusal(h.logger, r, "request refused")
		return refused.respond(w, r)
	}
	if serveOpenEndpoint(w, r, h.app) {
		return st.answered(w, r)
	}
	if h.app == nil || h.app.auth == nil {
		if authn.IsEndpoint(h.app.compat(), r.URL.Path) {
			f := st.refuse(http.StatusNotFound, authz.ReasonNoIdP, "",
				"Sign-in is not set up on this server: it has no identity provider.")
			st.logRefusal(h.logger, r, "request refused")
			return f.respond(w, r)
		}
		return next.ServeHTTP(w, r)
	}
	auth := h.auth
	st.auth = auth
	if h.bearer.Format == authn.BearerJWT && h.cookieAndBearer(r) {
		f := st.refuse(http.StatusBadRequest, authz.ReasonCookieAndBearer, "",
			"This route takes workload JWTs: send either the Authorization: Bearer token or a session cookie, not both.")
		st.logRefusal(h.logger, r, "request refused")
		return f.respond(w, r)
	}
	if h.bearer.Format != "" || h.bearer.AllowedAudiences != nil {
		r = r.WithContext(authn.WithBearerTokens(r.Context(), h.bearer))
	}
	if auth.ServeEndpoint(w, r) {
		return st.answered(w, r)
	}
	if auth.SignInHost(r.Host) {
		// The central sign-in host serves sign-in only: its other pages
		// are the user page.
		prefix, _, _ := auth.Names()
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, prefix, http.StatusFound)
		return nil
	}
	required := h.SignIn != SignInPolicy
	if required && h.AllowCORSPreflight && r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		h.app.stripCookies(r.Header)
		return next.ServeHTTP(w, r)
	}
	s, err := auth.Session(w, r)
	st.identified, st.identityErr, st.passBearer = true, err, h.PassBearerToken
	if err == nil {
		st.Session = s
	}
	h.app.stripCookies(r.Header)
	if required {
		if s == nil {
			auth.Challenge(w, r, err)
			observeSignInRedirect(r, st)
			return st.answered(w, r)
		}
		if err := st.setIdentityOut(r); err != nil {
			return err
		}
	}
	return next.ServeHTTP(w, r)
}

// serveOpenEndpoint answers the endpoints that need neither a user nor a
// client certificate: the health check /.iap/healthz (/.pomerium/healthz
// under compat pomerium) and, with an IdP, the JWKS and the back-channel
// logout (/.iap/backchannel_logout: the IdP has no client certificate, and
// only a logout token it signed ends sessions there). It reports whether
// it answered.
func serveOpenEndpoint(w http.ResponseWriter, r *http.Request, app *App) bool {
	if r.URL.Path == healthzPath(app.compat()) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		return true
	}
	if app != nil && app.auth != nil {
		if r.URL.Path == authn.BackchannelLogoutPath(app.compat()) {
			// For the IdP the logout token names, of all the app's.
			authn.ServeBackchannelLogout(w, r, app.authenticators())
			return true
		}
		if _, _, jwks := app.auth.Names(); r.URL.Path == jwks {
			return app.auth.ServeEndpoint(w, r)
		}
	}
	return false
}

// healthzPath is the health check's path.
func healthzPath(compat string) string {
	if compat == "pomerium" {
		return "/.pomerium/healthz"
	}
	return "/.iap/healthz"
}

// setIdentityOut gives an allowed request's upstream the user's identity:
// the signed assertion and the claim headers (unless pass_identity_headers
// is off), without the bearer token the user signed in with, and without
// any programmatic login token, whoever's it is.
func (st *request) setIdentityOut(r *http.Request) error {
	s, app := st.Session, st.app
	if !(st.passBearer && s != nil && s.Bearer) {
		// A programmatic login token is ours, accepted or not (one for
		// another route would let this upstream replay it there).
		authn.StripTokens(r.Header)
	}
	auth := st.authn()
	if st.identityOut || s == nil || auth == nil {
		return nil
	}
	st.identityOut = true
	if s.Bearer && !st.passBearer {
		r.Header.Del("Authorization")
	}
	pass := app.PassIdentityHeaders == nil || *app.PassIdentityHeaders
	if st.passIdentity != nil {
		pass = *st.passIdentity
	}
	if !pass {
		return nil
	}
	_, header, _ := auth.Names()
	jwt, err := auth.AssertionFor(s, r.Host, st.uriIssuer())
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("signing the identity assertion: %v", err))
	}
	r.Header.Set(header, jwt)
	for name, claim := range app.JWTClaimsHeaders {
		v, ok := s.Claim(claim)
		if !ok {
			continue
		}
		if value := claimString(v); httpguts.ValidHeaderFieldValue(value) {
			r.Header.Set(name, value)
		} else if app.logger != nil {
			app.logger.Warn("claim header left out: the claim holds control characters",
				zap.String("header", name), zap.String("claim", claim), zap.String("user_id", s.Subject))
		}
	}
	return nil
}

// claimString writes a claim as a header value: a list's items joined
// with commas, an item that holds a comma or a double quote written as a
// quoted string (RFC 8941: "x,admins" stays one item for an upstream that
// splits on commas), anything else as fmt prints it.
func claimString(v any) string {
	var items []string
	switch v := v.(type) {
	case string:
		return v
	case []string:
		items = v
	case []any:
		items = make([]string, len(v))
		for i, x := range v {
			items[i] = fmt.Sprint(x)
		}
	default:
		return fmt.Sprint(v)
	}
	var b strings.Builder
	for i, item := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		if strings.ContainsAny(item, ",\"") {
			b.WriteString(strconv.Quote(item))
			continue
		}
		b.WriteString(item)
	}
	return b.String()
}

// stripIdentityHeaders removes the identity headers a client may forge:
// every header with either identity prefix (X-Iap- and X-Pomerium-, in
// both modes, so a client cannot slip the other mode's assertion past),
// the configured claim headers, and the RFC 9440 Client-Cert headers
// (iap_mtls sets them afresh from a verified certificate).
func stripIdentityHeaders(r *http.Request, app *App) {
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Iap-") || strings.HasPrefix(name, "X-Pomerium-") {
			r.Header.Del(name)
		}
	}
	r.Header.Del("Client-Cert")
	r.Header.Del("Client-Cert-Chain")
	if app != nil {
		for name := range app.JWTClaimsHeaders {
			r.Header.Del(name)
		}
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Authenticate)(nil)
	_ caddy.Validator             = (*Authenticate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Authenticate)(nil)
)
