// Package authn is caddy-iap's OpenID Connect relying party: sign-in with
// the authorization code flow (PKCE, state and nonce), sessions kept in
// encrypted cookies (no server state), refresh, sign-out, bearer tokens, and
// a signed identity assertion for upstreams. It is a plain net/http library:
// go-oidc v3 and x/oauth2 do the protocol, and nothing here imports Caddy.
package authn

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Config configures an Authenticator.
type Config struct {
	// The identity provider's issuer URL (discovery is at
	// /.well-known/openid-configuration below it).
	ProviderURL  string
	ClientID     string
	ClientSecret string
	// Scopes default to openid, email, profile and offline_access.
	Scopes []string
	// GroupsClaim names the ID token claim holding the user's groups.
	// Default: groups.
	GroupsClaim string
	// Bearer says how an "Authorization: Bearer <token>" header is read
	// (bearer.go): as an ID token of this IdP (BearerIDToken, the
	// default), as an access token verified by the IdP's userinfo
	// endpoint (BearerAccessToken), or not at all (BearerPassthrough).
	// A request's context may say otherwise (WithBearerTokens).
	Bearer BearerTokens
	// AuthParams are extra parameters of the authorization request
	// (Pomerium's idp_request_params), such as prompt=select_account or
	// Google's hd=example.com. The sign-in's own (state, nonce,
	// redirect_uri, client_id, response_type, scope, the PKCE challenge)
	// cannot be set.
	AuthParams map[string]string

	// CookieName names the session cookie; chunks are <name>_0.._N.
	// Default: __Host-_iap (__Host-_pomerium under compat pomerium), or
	// without the __Host- prefix when CookieDomain is set, since browsers
	// refuse a __Host- cookie with a Domain. A name set here is used as
	// written. The login cookies are always __Host-<name>_login_<id>
	// (<name> without a __Host- or __Secure- prefix of its own).
	CookieName string
	// CookieSecret is 32 random bytes; the cookie keys are derived from it.
	CookieSecret []byte
	// PreviousCookieSecrets are secrets CookieSecret replaced, 32 bytes
	// each: cookies they sealed still open, and a session cookie that
	// opens only with one of them is sealed again under CookieSecret on
	// the response. A session sealed under a secret in neither ends.
	PreviousCookieSecrets [][]byte
	CookieDomain          string
	// CookieExpire caps a session's whole life. Default: 14h.
	CookieExpire time.Duration
	// CookieSameSite defaults to Lax.
	CookieSameSite http.SameSite
	// CookieBudget is the most bytes the session's cookies may add to a
	// request's Cookie header (names, values and separators of the cookie
	// and its chunks; each chunk stays under the 4 KB browsers keep per
	// cookie). Default 8192: half of Caddy's default 16 KB limit on request
	// headers (max_header_size), leaving the rest to the request line,
	// other headers and the application's own cookies. A session over it
	// is kept without its raw ID token (only sign-out's id_token_hint needs
	// it); one still over it, which is mostly a user with very many
	// groups, is not set: sign-in ends with a 400 page, reason
	// session-too-large, since a cookie over the server's limit would make
	// every later request fail with 431 until cookie_expire.
	CookieBudget int

	// SigningKey signs identity assertions (ECDSA P-256, ES256). It is
	// shorthand for SigningKeys with that one key.
	SigningKey crypto.Signer
	// SigningKeys is the assertions' key ring, when there is more than
	// one key: all are published in the JWKS, and the one whose time has
	// come signs (SigningKey.SignsFrom). Authenticator.SetSigningKeys
	// replaces it while serving.
	SigningKeys []SigningKey
	// JWKSMaxAge is the JWKS's Cache-Control max-age: how long a client
	// may use it without fetching it again. A ring that gains keys on a
	// schedule needs it well under the time between a key's publication
	// and its first signature. Default 5 minutes.
	JWKSMaxAge time.Duration

	// ClaimHeaders maps upstream header names to ID token claims, e.g.
	// X-Email: email. Their claims are kept in the session.
	ClaimHeaders map[string]string

	// Compat "pomerium" uses Pomerium's names: /.pomerium/ endpoints,
	// X-Pomerium-Jwt-Assertion and /.well-known/pomerium/jwks.json.
	Compat string

	// AllowedRedirectHosts are hosts, besides the request's own, that a
	// return URL may point to (the hosts of this server's routes). It is
	// asked about the return URL's host lowercased, with ":port" when the
	// port is not 443 ("app.example.com", "app.example.com:8443"), and
	// only for a return URL on the request's own port: another port is
	// another origin, refused whatever this says.
	AllowedRedirectHosts func(host string) bool

	// SignOutRedirectURL is where sign-out sends the browser when its
	// redirect_uri is absent or refused (Pomerium's signout_redirect_url):
	// an http(s) URL the administrator chose, on any host. Default: the
	// host's root.
	SignOutRedirectURL string

	// ProgrammaticRedirectDomains are the hosts a programmatic login may
	// send its token to (Pomerium's programmatic_redirect_domain_whitelist):
	// host names or IP addresses, each matched whole, on any port.
	// "localhost" stands for every loopback URL (localhost, 127.0.0.0/8,
	// [::1]), over http or https; any other host takes https only, since
	// the token would cross the network. nil means Pomerium's default,
	// [localhost]; an empty list turns programmatic login off.
	ProgrammaticRedirectDomains []string

	// AuthenticateURL, when set, is the one host where users sign in
	// ("https://auth.example.com", Pomerium's authenticate_service_url):
	// the IdP lists only its callback, https://<host>/.iap/callback
	// (/oauth2/callback under compat pomerium). Other hosts send a user
	// who must sign in there, and take the session back in a hand-off
	// that is good once, for one host, for a minute, in the browser that
	// started the sign-in (handoff.go). The host needs a route of this
	// Authenticator, and the other hosts must be AllowedRedirectHosts.
	AuthenticateURL string

	// IDPName is the name of a named IdP (the iap app's idps); empty for
	// the default. It is bound into the programmatic login tokens, so
	// that one minted on a route of one IdP opens nothing on a route of
	// another, whatever host they share (the session cookies are bound
	// by their names).
	IDPName string

	// Refuse, when set, renders every refusal authn makes (401, 503, a bad
	// callback, a CSRF mismatch, ...) instead of authn's own page or JSON:
	// a server with error pages of its own (Caddy's handle_errors) renders
	// them all in one place. Headers authn set on the response for it
	// (WWW-Authenticate, Retry-After, Allow) are already on w.
	Refuse func(w http.ResponseWriter, r *http.Request, status int, reason, message string)

	// Observe, when set, is told what happens, for metrics; it must not
	// block. event is one of:
	//   - EventSignIn: a sign-in ended, result ResultSuccess, or
	//     ResultFailure with reason the refusal's reason (authz's list:
	//     invalid-callback, invalid-handoff, session-too-large,
	//     identity-provider-unavailable); a sign-in that cannot start
	//     because the IdP is down is a failure too;
	//   - EventIdP: the IdP's health, result ResultUp (discovered, or its
	//     health check passes again) or ResultDown (discovery or the
	//     health check failed); it may repeat a state;
	//   - EventIdPFetchError: a fetch from the IdP failed, result
	//     FetchDiscovery (the discovery document, at start or in a health
	//     check), FetchKeys (the key set) or FetchUserinfo (an access
	//     token's check got no answer, or not a userinfo answer).
	// For the last two, reason is the IdP's ProviderURL, so that one
	// Observe can serve several Authenticators. Results and sign-in
	// reasons are from these fixed lists, so they bound a metric's labels.
	Observe func(event, result, reason string)

	// KeySetRefreshInterval is the least time between two fetches of the
	// IdP's key set (JWKS), for all requests together. A token signed with
	// a key not fetched yet makes the first fetch after it; until then such
	// tokens are refused (invalid-bearer-token), so that made-up key IDs
	// cannot make Caddy hammer the IdP. Default 10s.
	KeySetRefreshInterval time.Duration

	// Routes, when set, gives the routes that the routes portal lists to a
	// signed-in user of this IdP (idp is Config.IDPName): the page
	// <prefix>routes and its JSON <prefix>api/v1/routes (Pomerium's
	// /.pomerium/routes and /.pomerium/api/v1/routes). nil: no portal,
	// those paths answer 404. Anonymous requests are asked to sign in.
	Routes func(r *http.Request, s *Session, idp string) []PortalRoute

	// Version is the plugin's version, shown in the user endpoint's JSON
	// (/.iap/user) as "version". Empty leaves it out.
	Version string

	// HTTPClient makes the calls to the identity provider.
	HTTPClient *http.Client
	Logger     *zap.Logger

	// Now is the clock; default time.Now.
	Now func() time.Time
}

// The events, results and fetches that Config.Observe is told of.
const (
	EventSignIn        = "sign_in"
	EventIdP           = "idp"
	EventIdPFetchError = "idp_fetch_error"

	ResultSuccess = "success"
	ResultFailure = "failure"
	ResultUp      = "up"
	ResultDown    = "down"

	FetchDiscovery = "discovery"
	FetchKeys      = "keys"
	FetchUserinfo  = "userinfo"
)

// observe tells Config.Observe, when set.
func (c *Config) observe(event, result, reason string) {
	if c.Observe != nil {
		c.Observe(event, result, reason)
	}
}

func (c *Config) setDefaults() {
	if c.ProgrammaticRedirectDomains == nil {
		c.ProgrammaticRedirectDomains = []string{"localhost"}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "email", "profile", "offline_access"}
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if c.CookieName == "" {
		c.CookieName = "_iap"
		if c.Compat == "pomerium" {
			c.CookieName = "_pomerium"
		}
		if c.CookieDomain == "" {
			c.CookieName = hostPrefix + c.CookieName
		}
	}
	if c.CookieExpire == 0 {
		c.CookieExpire = 14 * time.Hour
	}
	if c.Bearer.Format == "" {
		c.Bearer.Format = BearerIDToken
	}
	if c.KeySetRefreshInterval == 0 {
		c.KeySetRefreshInterval = 10 * time.Second
	}
	if c.CookieBudget == 0 {
		c.CookieBudget = DefaultCookieBudget
	}
	if c.CookieSameSite == 0 {
		c.CookieSameSite = http.SameSiteLaxMode
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.SigningKeys) == 0 && c.SigningKey != nil {
		c.SigningKeys = []SigningKey{{Key: c.SigningKey}}
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = defaultJWKSMaxAge
	}
	if c.AllowedRedirectHosts == nil {
		c.AllowedRedirectHosts = func(string) bool { return false }
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.ProviderURL == "" {
		errs = append(errs, errors.New("idp provider_url is required"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("idp client_id is required"))
	}
	if len(c.CookieSecret) != 32 {
		errs = append(errs, fmt.Errorf("cookie_secret must be 32 bytes (base64 of `head -c32 /dev/urandom`), got %d", len(c.CookieSecret)))
	}
	for i, p := range c.PreviousCookieSecrets {
		if len(p) != 32 {
			errs = append(errs, fmt.Errorf("previous cookie secret %d must be 32 bytes, got %d", i+1, len(p)))
		}
	}
	if len(c.SigningKeys) == 0 {
		errs = append(errs, errors.New("a signing key is required"))
	}
	if err := CheckBearerFormat(c.Bearer.Format); err != nil {
		errs = append(errs, err)
	}
	if c.KeySetRefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("the key set refresh interval must not be negative, got %s", c.KeySetRefreshInterval))
	}
	if c.CookieBudget < minCookieBudget {
		errs = append(errs, fmt.Errorf("cookie budget must be at least %d bytes, got %d", minCookieBudget, c.CookieBudget))
	}
	if c.CookieDomain != "" && hasPrefixFold(c.CookieName, hostPrefix) {
		errs = append(errs, fmt.Errorf("cookie_name %q with cookie_domain %q: browsers refuse a __Host- cookie that has a Domain; unset cookie_domain or choose a name without __Host-", c.CookieName, c.CookieDomain))
	}
	if c.Compat != "" && c.Compat != "pomerium" {
		errs = append(errs, fmt.Errorf("compat: unknown value %q (want pomerium)", c.Compat))
	}
	for _, d := range c.ProgrammaticRedirectDomains {
		if err := CheckRedirectDomain(d); err != nil {
			errs = append(errs, fmt.Errorf("programmatic_redirect_domain_whitelist %q: %v", d, err))
		}
	}
	if c.SignOutRedirectURL != "" {
		if u, err := url.Parse(c.SignOutRedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("sign_out_redirect_url %q: want an http(s) URL such as https://example.com/bye", c.SignOutRedirectURL))
		}
	}
	for k := range c.AuthParams {
		if slices.Contains(reservedAuthParams, strings.ToLower(k)) {
			errs = append(errs, fmt.Errorf("idp request_params: %q is set by the sign-in itself", k))
		}
	}
	if !strings.Contains(" "+strings.Join(c.Scopes, " ")+" ", " openid ") {
		errs = append(errs, errors.New("idp scopes must include openid"))
	}
	return errors.Join(errs...)
}

// reservedAuthParams are the authorization request's parameters that the
// sign-in sets, which AuthParams cannot.
var reservedAuthParams = []string{"state", "nonce", "redirect_uri", "client_id", "response_type", "scope",
	"code_challenge", "code_challenge_method", "response_mode", "request", "request_uri"}

// hostPrefix starts the name of a cookie that browsers keep only if it was
// set over https with Secure, Path=/ and no Domain. Such a cookie is
// host-only and cannot be set, overwritten or shadowed from another host
// (a sibling subdomain), from plain http, or by a cookie of a longer path:
// what another host plants under example.com is never read as ours.
const hostPrefix = "__Host-"

// hasPrefixFold is strings.HasPrefix ignoring case, as browsers match the
// __Host- and __Secure- prefixes.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// unprefixed is a cookie name without its __Host- or __Secure- prefix.
func unprefixed(name string) string {
	for _, p := range []string{hostPrefix, "__Secure-"} {
		if hasPrefixFold(name, p) {
			return name[len(p):]
		}
	}
	return name
}

// DefaultCookieBudget is Config.CookieBudget's default: 8 KB of a request's
// headers for the session's cookies.
const DefaultCookieBudget = 8192

// minCookieBudget fits one chunk and its marker.
const minCookieBudget = 4096

// names are the paths and headers, which differ under compat pomerium.
type names struct {
	prefix          string // /.iap/
	jwksPath        string
	assertionHeader string
	// Programmatic login (prefix + "api/v1/login"): the query parameter
	// naming the client's loopback redirect URI, the one carrying the
	// token to it, and the token's Authorization scheme ("IAP <token>",
	// also "Bearer IAP-<token>").
	redirectParam, tokenParam, tokenScheme string
}

func namesFor(compat string) names {
	if compat == "pomerium" {
		return names{"/.pomerium/", "/.well-known/pomerium/jwks.json", "X-Pomerium-Jwt-Assertion",
			"pomerium_redirect_uri", "pomerium_jwt", "Pomerium"}
	}
	return names{"/.iap/", "/.well-known/iap/jwks.json", "X-Iap-Jwt-Assertion",
		"redirect_uri", "iap_token", "IAP"}
}
