package module

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
)

func init() {
	caddy.RegisterModule(Authenticate{})
}

// Authenticate requires a signed-in user. It answers the sign-in endpoints
// (/.iap/callback, /.iap/sign_in, /.iap/sign_out, the user page /.iap/,
// /.iap/user, /.iap/jwt) and the public JWKS (/.well-known/iap/jwks.json)
// itself; other requests go on with the user's identity, or get a sign-in
// redirect (browsers) or 401 (API clients).
//
// It removes identity headers that clients send (X-Iap-* and the
// jwt_claims_headers) and its own cookies (the session and login cookies),
// and sets the signed assertion and claim headers for the upstream. It sets
// the placeholders {http.auth.user.id},
// {http.auth.user.email}, {http.auth.user.name}, {http.auth.user.groups}
// {http.auth.user.claim.<name>} and {http.auth.user.jwt} (the assertion); the
// access log's user_id shows the user.
//
// The IdP, cookies and keys come from the `iap` app.
type Authenticate struct {
	// The hosts of this route, which other routes' return URLs may point
	// to. Set by the Caddyfile from the site's addresses.
	Hosts []string `json:"hosts,omitempty"`

	// Let CORS preflight requests through without a session, for routes
	// with cors_allow_preflight (browsers send preflights without cookies).
	AllowCORSPreflight bool `json:"allow_cors_preflight,omitempty"`

	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Authenticate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.iap_authenticate", New: func() caddy.Module { return new(Authenticate) }}
}

// Provision finds the iap app.
func (h *Authenticate) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("iap")
	if err != nil {
		return fmt.Errorf("iap_authenticate: %v", err)
	}
	h.app = appIface.(*App)
	if h.app.auth == nil {
		return errors.New("iap_authenticate: sign-in needs an identity provider: set `idp` in the global `iap` option (or apps.iap.idp in JSON), or make the route public")
	}
	h.app.addHosts(h.Hosts)
	return nil
}

type identityKey struct{}

// sessionFrom returns the signed-in user of the request, if any.
func sessionFrom(ctx context.Context) *authn.Session {
	s, _ := ctx.Value(identityKey{}).(*authn.Session)
	return s
}

// ServeHTTP authenticates the request.
func (h *Authenticate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripIdentityHeaders(r, h.app)
	if h.AllowCORSPreflight && r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		return next.ServeHTTP(w, r)
	}
	s, done := h.app.auth.Authenticate(w, r)
	if done {
		return nil
	}
	r = r.WithContext(context.WithValue(r.Context(), identityKey{}, s))
	h.app.auth.StripCookies(r.Header)

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", s.Subject)
	repl.Set("http.auth.user.email", s.Email)
	repl.Set("http.auth.user.name", s.Name)
	repl.Set("http.auth.user.groups", strings.Join(s.Groups, ","))
	repl.Map(func(key string) (any, bool) {
		if key == "http.auth.user.jwt" {
			// Signed (or taken from the cache) only when a config uses it,
			// e.g. set_request_headers with Pomerium's $pomerium.jwt.
			jwt, err := h.app.auth.Assertion(s, r.Host)
			return jwt, err == nil
		}
		name, ok := strings.CutPrefix(key, "http.auth.user.claim.")
		if !ok {
			return nil, false
		}
		v, ok := s.Claim(name)
		if list, isList := v.([]string); isList {
			return strings.Join(list, ","), ok
		}
		return v, ok
	})

	if h.app.PassIdentityHeaders == nil || *h.app.PassIdentityHeaders {
		_, header, _ := h.app.auth.Names()
		jwt, err := h.app.auth.Assertion(s, r.Host)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("signing the identity assertion: %v", err))
		}
		r.Header.Set(header, jwt)
		for name, claim := range h.app.JWTClaimsHeaders {
			if v, ok := s.Claim(claim); ok {
				r.Header.Set(name, claimString(v))
			}
		}
	}
	return next.ServeHTTP(w, r)
}

func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []string:
		return strings.Join(v, ",")
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// stripIdentityHeaders removes the identity headers a client may forge:
// every header with the identity prefix (X-Iap-, or X-Pomerium- under
// compat pomerium) and the configured claim headers.
func stripIdentityHeaders(r *http.Request, app *App) {
	prefix := "X-Iap-"
	if app != nil && app.Compat == "pomerium" {
		prefix = "X-Pomerium-"
	}
	for name := range r.Header {
		if strings.HasPrefix(name, prefix) {
			r.Header.Del(name)
		}
	}
	if app != nil {
		for name := range app.JWTClaimsHeaders {
			r.Header.Del(name)
		}
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Authenticate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Authenticate)(nil)
)
