package module

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `iap` app: the identity provider, cookie and signing keys that
// every route of this Caddy shares. It is the Caddyfile's global option
// `iap`. Routes without sign-in (public routes, client certificates only)
// need no IdP.
type App struct {
	// The OpenID Connect identity provider. Pomerium's idp_provider_url,
	// idp_client_id, idp_client_secret and idp_scopes.
	IDP *IDP `json:"idp,omitempty"`

	// The session cookie's name. Default: __Host-_iap (__Host-_pomerium
	// under compat pomerium), or _iap without the prefix when cookie_domain
	// is set: browsers refuse __Host- cookies that a sibling subdomain
	// plants. A name given here is used as written.
	CookieName string `json:"cookie_name,omitempty"`

	// 32 random bytes, base64-encoded, from which the cookie keys are
	// derived. Required once an IdP is set; use the same value on every
	// instance so that they share sessions. Make one with
	// `head -c32 /dev/urandom | base64`.
	CookieSecret string `json:"cookie_secret,omitempty"`

	// Secrets that cookie_secret replaced, to rotate it without signing
	// anyone out: cookies they sealed still open, and a session is sealed
	// again under cookie_secret on its next response. Remove a secret once
	// every session has been seen since (at the latest after
	// cookie_expire); sessions it still seals then end, which the log
	// says. Default: none.
	CookieSecretPrevious []string `json:"cookie_secret_previous,omitempty"`

	// The cookie's Domain attribute, e.g. `.example.com` to share sessions
	// across subdomains. Default: none (host-only cookies).
	CookieDomain string `json:"cookie_domain,omitempty"`

	// The longest a session lasts, whatever refreshes happen. Default: 14h.
	CookieExpire caddy.Duration `json:"cookie_expire,omitempty"`

	// The cookie's SameSite: lax (default), strict or none.
	CookieSameSite string `json:"cookie_same_site,omitempty"`

	// The one host where users sign in, as https://host[:port]
	// (Pomerium's authenticate_service_url). The IdP then lists a single
	// redirect URI, https://<host>/.iap/callback (/oauth2/callback under
	// compat pomerium), however many hosts there are. Every other host
	// sends a user who must sign in there, and takes the session back in a
	// hand-off that is good once, for that host only, for a minute, and
	// only in the browser that started the sign-in; no cookie domain is
	// shared. The host needs a site with iap_authenticate (it answers
	// /.iap/ there and sends other paths to the user page), and the other
	// hosts must be hosts of this server's iap routes. Default: none, each
	// host signs in on its own callback.
	AuthenticateURL string `json:"authenticate_url,omitempty"`

	// Where sign-out sends the browser when the sign-out link names no
	// return URL (or one the return-URL rules refuse): any http(s) URL,
	// such as a "you are signed out" page of your own (Pomerium's
	// signout_redirect_url). Default: the root of the host signed out of.
	SignOutRedirectURL string `json:"sign_out_redirect_url,omitempty"`

	// How the identity assertion's iss is written, as Pomerium's
	// jwt_issuer_format: "hostOnly" (the default: the route's host name,
	// as aud) or "uri" (https://<host>/). A route's own jwt_issuer_format
	// wins.
	JWTIssuerFormat string `json:"jwt_issuer_format,omitempty"`

	// How an "Authorization: Bearer <token>" header is read on every
	// route that does not say otherwise (Pomerium's bearer_token_format):
	//   - "idp_identity_token" (the default): an ID token of the IdP for
	//     this client, verified here (signature, issuer, audience, expiry);
	//   - "idp_access_token": an access token of the IdP, opaque or not,
	//     verified by calling the IdP's userinfo endpoint with it; the
	//     user's claims are userinfo's, and an answer is reused for up to a
	//     minute (never past the token's expiry);
	//   - "passthrough" (Pomerium's "default"): not read at all. It is not
	//     a credential: the user is whoever the session cookie says, or
	//     anonymous, and the header reaches the upstream as it came;
	//   - "jwt": a workload JWT of one of identity_providers, verified
	//     against its issuer's keys; the user is "<name>/<sub>" with the
	//     token's claims. A request that also carries a session cookie is
	//     refused (400 cookie-and-bearer), as in Pomerium.
	// An accepted bearer token is removed before the upstream unless the
	// route has pass_bearer_token. Programmatic login tokens (Authorization:
	// IAP <token>) are read under every format and never reach the upstream.
	BearerTokenFormat string `json:"bearer_token_format,omitempty"`

	// With bearer_token_format idp_access_token, the audiences an access
	// token may be for: the IdP's userinfo answer must have an "aud" that
	// is a string in this list (Pomerium's
	// idp_access_token_allowed_audiences). Default: none checked, so any
	// access token the IdP vouches for is accepted, whichever client it was
	// issued to. A route's own list replaces this one.
	IDPAccessTokenAllowedAudiences []string `json:"idp_access_token_allowed_audiences,omitempty"`
	// The hosts a programmatic login (a command-line or desktop client's
	// sign-in, /.iap/api/v1/login) may send its token to, Pomerium's
	// programmatic_redirect_domain_whitelist: host names or IP addresses,
	// each matched whole (no subdomains, no wildcards), on any port.
	// "localhost" stands for every loopback URL (localhost, 127.0.0.0/8,
	// [::1]), over http or https; the other hosts take https only.
	// Default: ["localhost"]. An empty list, [], turns programmatic login
	// off.
	ProgrammaticRedirectDomainWhitelist []string `json:"programmatic_redirect_domain_whitelist,omitzero"`

	// More identity providers, by name (a lowercase letter, then letters,
	// digits and dashes), for routes that sign users in elsewhere than
	// the default idp, which they need: Pomerium's per-route
	// idp_client_id. A route names one with its `idp` option
	// (iap_authenticate's "idp" in JSON). Each has its own session
	// cookie, <cookie_name>_<name>, sealed so that it opens only as that
	// IdP's: a session made by one is never accepted on a route of
	// another, and a bearer ID token only by its own issuer and client.
	// The cookie secret, cookie settings and signing keys are the
	// default's. authenticate_url is the default IdP's: the named ones
	// sign in on each route host's own callback.
	IDPs map[string]*IDP `json:"idps,omitempty"`

	// Issuers of workload JWTs, by name (lowercase, without "/"): the
	// bearer tokens that machines send, which routes with
	// bearer_token_format jwt accept (Pomerium's identity_providers). A
	// route lists the names it accepts in its own identity_providers
	// (default: all of them). A workload's user ID is "<name>/<sub>", and
	// every claim of its token is a claim for the policy (claim/...).
	// They need no idp: a server may take workload tokens only.
	IdentityProviders map[string]*WorkloadIssuer `json:"identity_providers,omitempty"`

	// A PEM file with the ECDSA P-256 keys of the identity assertion: the
	// first signs, and every key is published in the JWKS, as with
	// Pomerium's signing_key. To rotate: add the new key after the current
	// one, then (once upstreams may have fetched the JWKS again, the JWKS
	// max-age of 5 minutes) put it first, then (once the old key's
	// assertions have expired, 5 minutes) remove the old one. Default: a
	// key generated once and kept in Caddy's storage, so every instance
	// sharing that storage signs with the same key.
	SigningKeyFile string `json:"signing_key_file,omitempty"`

	// The same keys as base64-encoded PEM (Pomerium's signing_key). If both
	// are set, the file wins.
	SigningKey string `json:"signing_key,omitempty"`

	// Rotate the generated key (the one kept in Caddy's storage) on this
	// schedule, e.g. 24h: each key is generated and published in the JWKS
	// one interval before it signs, signs for one interval, and stays
	// published while its assertions live. Instances sharing the storage
	// switch together. Not with signing_key(_file). Default: off.
	SigningKeyRotate caddy.Duration `json:"signing_key_rotate,omitempty"`

	// Headers to send upstream with a claim of the user's ID token each,
	// e.g. {"X-Email": "email", "X-Groups": "groups"}. Clients' own values
	// of these headers are always removed.
	JWTClaimsHeaders map[string]string `json:"jwt_claims_headers,omitempty"`

	// Send the signed identity assertion (X-Iap-Jwt-Assertion) and the
	// claim headers upstream. Default: true.
	PassIdentityHeaders *bool `json:"pass_identity_headers,omitempty"`

	// "pomerium" uses Pomerium's names, so upstreams written for it keep
	// working: X-Pomerium-Jwt-Assertion, /.well-known/pomerium/jwks.json
	// and /.pomerium/ endpoints.
	Compat string `json:"compat,omitempty"`

	// How often each instance reads the revocations (sign-outs, admin
	// revocations) from Caddy's storage again. A revocation made on one
	// instance ends the session on every instance sharing the storage
	// within this plus one read (at most 3s): 5s by default. Default: 2s.
	RevocationRefresh caddy.Duration `json:"revocation_refresh,omitempty"`

	// Refuse signed-in requests (503, reason revocations-unavailable) once
	// the revocations could not be read from storage for this long: a
	// session revoked on another instance during the outage cannot be
	// told from a live one. Default: off, sessions keep working on the
	// last list read (see README, Running several instances).
	RevocationFailClosedAfter caddy.Duration `json:"revocation_fail_closed_after,omitempty"`

	// Where sessions live: "cookie" (the default) seals the whole session
	// in the cookie, no server state; "storage" keeps it in Caddy's
	// storage, sealed under a key derived from cookie_secret, and the
	// cookie carries only a random reference: no size limit (a user in
	// 900 groups signs in), and sign-out deletes the session. Instances
	// sharing the storage share the sessions.
	SessionStore string `json:"session_store,omitempty"`

	// Log each decision of iap_authorize as an "authorize check" line at
	// INFO (logger http.handlers.iap_authorize) with these fields, by
	// Pomerium's names (its authorize_log_fields), followed by allow, deny
	// and reason, e.g. ["request-id", "method", "path", "host", "ip",
	// "user", "email", "route-id"]. "headers" adds every request header
	// (Cookie, Authorization and Proxy-Authorization as REDACTED), and
	// headers.<Name> one header, its value in full. id-token logs the
	// user's ID token and id-token-claims its claims: list them only if
	// the log is as private as the tokens. See README for each field.
	// Default: no such line (refusals are logged as always); the Pomerium
	// adapter sets Pomerium's default list.
	AuthorizeLogFields []string `json:"authorize_log_fields,omitempty"`

	// OpenTelemetry tracing: where the spans of iap_tracing handlers go,
	// and which requests are traced (Pomerium's otel_* settings). Default:
	// none, and iap_tracing refuses to load.
	Tracing *Tracing `json:"tracing,omitempty"`

	// CAs added to the system roots for routes without their own
	// tls_custom_ca; applied when routes are adapted.
	upstreamtls.Defaults

	auth      *authn.Authenticator
	workloads *authn.Workloads                // identity_providers; nil: none
	auths     map[string]*authn.Authenticator // the named IdPs'
	all       []*authn.Authenticator          // the default's, then the named ones' by name
	hosts     *sync.Map                       // route hosts, for return URLs across routes
	portal    *portal                         // the routes, for the routes portal
	logger    *zap.Logger

	// The tracer provider of Tracing; shut down (its spans sent) at
	// Cleanup, once the servers of this config are done.
	tracer *sdktrace.TracerProvider

	// Set when the keys come from storage and may change: Start watches
	// them until Stop.
	keyWatch                   func(stop <-chan struct{})
	stopKeyWatch, keyWatchDone chan struct{}

	// The revocations' refresh loop (revocations.go).
	revocationRefresh                        time.Duration
	stopRevocationWatch, revocationWatchDone chan struct{}
}

// IDP is an OpenID Connect identity provider.
type IDP struct {
	// The issuer URL, e.g. https://accounts.google.com or
	// https://dex.example.com/dex.
	ProviderURL string `json:"provider_url,omitempty"`
	// The client ID registered at the IdP. Register
	// https://<each route host>/.iap/callback as a redirect URI.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	// Default: openid email profile offline_access. offline_access gives a
	// refresh token, so sessions outlive the ID token.
	Scopes []string `json:"scopes,omitempty"`
	// The ID token claim that holds the user's groups. Default: groups.
	GroupsClaim string `json:"groups_claim,omitempty"`
	// Extra parameters of the authorization request, as Pomerium's
	// idp_request_params: {"prompt": "select_account"}, Google's
	// {"hd": "example.com"}, Azure's {"domain_hint": "..."}. They shape the
	// IdP's sign-in page; who gets in is still the policy's. The
	// sign-in's own parameters (state, nonce, redirect_uri, client_id,
	// response_type, scope, code_challenge) cannot be set.
	RequestParams map[string]string `json:"request_params,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "iap", New: func() caddy.Module { return new(App) }}
}

// Provision sets up sign-in when an IdP is configured.
func (a *App) Provision(ctx caddy.Context) error {
	a.hosts = new(sync.Map)
	a.portal = new(portal)
	a.logger = ctx.Logger()
	a.logger.Info("caddy-iap", zap.String("version", Version()), zap.Bool("sign_in", a.IDP != nil))
	if err := authn.CheckBearerFormat(a.BearerTokenFormat); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	if err := CheckAuthorizeLogFields(a.AuthorizeLogFields); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	if err := a.provisionTracing(); err != nil {
		return fmt.Errorf("iap: tracing: %v", err)
	}
	if err := a.provisionWorkloads(ctx); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	if a.BearerTokenFormat == authn.BearerJWT && a.workloads == nil {
		return errors.New("iap: bearer_token_format jwt: there are no identity_providers, so no workload JWT could be verified")
	}
	if a.IDP == nil {
		return nil
	}
	logger := ctx.Logger()
	if err := a.expandPlaceholders(); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	if err := checkIssuerFormat(a.JWTIssuerFormat); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	warnOpenAccessTokens(logger, "iap", a.BearerTokenFormat, a.IDPAccessTokenAllowedAudiences)
	if u, err := url.Parse(a.IDP.ProviderURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("iap: idp provider_url %q: must be the IdP's issuer URL, http(s)://host[/path]", a.IDP.ProviderURL)
	}
	secret, err := decodeSecret(a.CookieSecret)
	if err != nil {
		return fmt.Errorf("iap: cookie_secret: %v", err)
	}
	var previous [][]byte
	for i, s := range a.CookieSecretPrevious {
		p, err := decodeSecret(s)
		if err != nil {
			return fmt.Errorf("iap: cookie_secret_previous %d: %v", i+1, err)
		}
		previous = append(previous, p)
	}
	sameSite, err := parseSameSite(a.CookieSameSite)
	if err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	keys, fromStorage, err := a.signingKeys(ctx)
	if err != nil {
		return fmt.Errorf("iap: signing key: %v", err)
	}
	jwksMaxAge := time.Duration(0) // authn's default
	if rotate := time.Duration(a.SigningKeyRotate); rotate > 0 {
		// A JWKS fetched just before a next key is added must expire
		// well before that key signs, one interval later.
		jwksMaxAge = max(min(5*time.Minute, rotate/4), time.Second)
	}
	cfg := authn.Config{
		ProviderURL: a.IDP.ProviderURL, ClientID: a.IDP.ClientID, ClientSecret: a.IDP.ClientSecret,
		Scopes: a.IDP.Scopes, GroupsClaim: a.IDP.GroupsClaim, AuthParams: a.IDP.RequestParams,
		Bearer: authn.BearerTokens{Format: a.BearerTokenFormat, AllowedAudiences: a.IDPAccessTokenAllowedAudiences,
			Workloads: a.workloads},
		CookieName: a.CookieName, CookieSecret: secret, PreviousCookieSecrets: previous, CookieDomain: a.CookieDomain,
		CookieExpire: time.Duration(a.CookieExpire), CookieSameSite: sameSite, AuthenticateURL: a.AuthenticateURL, SignOutRedirectURL: a.SignOutRedirectURL,
		SigningKeys: keys, JWKSMaxAge: jwksMaxAge, ClaimHeaders: a.JWTClaimsHeaders, Compat: a.Compat,
		ProgrammaticRedirectDomains: a.ProgrammaticRedirectDomainWhitelist, Version: Version(),
		AllowedRedirectHosts: func(hostport string) bool {
			host := hostport
			if h, _, err := net.SplitHostPort(hostport); err == nil {
				host = h
			}
			_, ok := a.hosts.Load(strings.ToLower(host))
			return ok
		},
		Refuse: func(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
			f := &refusal{Status: status, Reason: reason, Message: message}
			if st := requestOf(r); st != nil {
				st.Reason, st.refused = authz.Reason(reason), f
				return
			}
			_ = f.write(w, r)
		},
		Routes:  a.portalRoutes,
		Observe: authnObserver(ctx, a.IDP.ProviderURL),
		Logger:  logger,
	}
	if a.auth, err = authn.New(cfg); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	if err := a.provisionIDPs(cfg); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	if err := a.provisionRevocations(ctx); err != nil {
		return fmt.Errorf("iap: %v", err)
	}
	if fromStorage && (a.SigningKeyRotate > 0 || len(keys) > 1) {
		storage := ctx.Storage()
		a.keyWatch = func(stop <-chan struct{}) { a.watchSigningKeys(ctx, storage, keys, stop) }
	}
	return nil
}

// Start discovers the IdP in the background: a down IdP does not stop
// Caddy; routes answer 503 until it is back. With a rotating key, it also
// follows the key ring in storage.
func (a *App) Start() error {
	for _, auth := range a.authenticators() {
		auth.Start()
	}
	if a.keyWatch != nil {
		stop, done := make(chan struct{}), make(chan struct{})
		a.stopKeyWatch, a.keyWatchDone = stop, done
		go func() {
			defer close(done)
			a.keyWatch(stop)
		}()
	}
	a.startRevocations()
	return nil
}

// Stop ends the background work.
func (a *App) Stop() error {
	for _, auth := range a.authenticators() {
		auth.Stop()
	}
	if a.stopKeyWatch != nil {
		// Wait for it: a watcher still writing the key ring after Stop
		// would write into the storage of a config that is gone (and
		// recreate a test's removed temporary directory).
		close(a.stopKeyWatch)
		<-a.keyWatchDone
		a.stopKeyWatch, a.keyWatchDone = nil, nil
	}
	a.stopRevocations()
	return nil
}

// provisionTracing checks the tracing settings and builds their tracer
// provider. A new config builds its own, so a reload with other settings
// takes effect; the old one's is shut down when that config is cleaned up.
func (a *App) provisionTracing() error {
	if a.Tracing == nil {
		return nil
	}
	if err := a.Tracing.expandPlaceholders(); err != nil {
		return err
	}
	if err := a.Tracing.validate(); err != nil {
		return err
	}
	tp, err := a.Tracing.newProvider(a.logger.Named("tracing"))
	if err != nil {
		return err
	}
	a.tracer = tp
	return nil
}

// Cleanup sends the spans still waiting and shuts the tracer provider
// down, waiting at most the export timeout. Caddy calls it after the
// config's servers have stopped, so the last requests' spans are in.
func (a *App) Cleanup() error {
	if a.tracer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.Tracing.Timeout))
	defer cancel()
	if err := a.tracer.Shutdown(ctx); err != nil {
		a.logger.Named("tracing").Error("sending the last spans failed; they are dropped", zap.Error(err))
	}
	a.tracer = nil
	return nil
}

// expandPlaceholders replaces Caddy's global placeholders, {env.NAME} and
// {file./path}, in the app's secrets, URLs and paths, as Caddy's own
// modules do at provision, so that secrets stay out of the config. A
// placeholder that is unknown or empty (an unset variable) is an error
// naming the option.
func (a *App) expandPlaceholders() error {
	repl := caddy.NewReplacer()
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"idp provider_url", &a.IDP.ProviderURL},
		{"idp client_id", &a.IDP.ClientID},
		{"idp client_secret", &a.IDP.ClientSecret},
		{"cookie_secret", &a.CookieSecret},
		{"cookie_domain", &a.CookieDomain},
		{"authenticate_url", &a.AuthenticateURL},
		{"sign_out_redirect_url", &a.SignOutRedirectURL},
		{"signing_key", &a.SigningKey},
		{"signing_key_file", &a.SigningKeyFile},
	} {
		v, err := repl.ReplaceOrErr(*f.v, true, true)
		if err != nil {
			return fmt.Errorf("%s: %v", f.name, err)
		}
		*f.v = v
	}
	for i, s := range a.CookieSecretPrevious {
		v, err := repl.ReplaceOrErr(s, true, true)
		if err != nil {
			return fmt.Errorf("cookie_secret_previous %d: %v", i+1, err)
		}
		a.CookieSecretPrevious[i] = v
	}
	return nil
}

// configuredApp returns the iap app when the config has one, else nil: a
// config without it has no IdP and no shared settings.
func configuredApp(ctx caddy.Context) *App {
	app, err := ctx.AppIfConfigured("iap")
	if err != nil {
		return nil
	}
	a, _ := app.(*App)
	return a
}

// compat is the app's compat mode; "" without an app.
func (a *App) compat() string {
	if a == nil {
		return ""
	}
	return a.Compat
}

// addHosts records route hosts that return URLs may point to.
func (a *App) addHosts(hosts []string) {
	for _, h := range hosts {
		a.hosts.Store(strings.ToLower(h), true)
	}
}

func decodeSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("required once an idp is set: 32 random bytes, base64 (head -c32 /dev/urandom | base64)")
	}
	b, err := DecodeBase64(s)
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("must decode to 32 bytes, got %d", len(b))
	}
	return b, nil
}

// DecodeBase64 accepts standard or URL-safe base64, padded or not, as
// secrets are written in the wild.
func DecodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func parseSameSite(s string) (http.SameSite, error) {
	switch strings.ToLower(s) {
	case "", "lax":
		return http.SameSiteLaxMode, nil
	case "strict":
		return http.SameSiteStrictMode, nil
	case "none":
		return http.SameSiteNoneMode, nil
	}
	return 0, fmt.Errorf("cookie_same_site: %q is not lax, strict or none", s)
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
