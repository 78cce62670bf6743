package authn

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/caddy-iap/caddy-iap/authz"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// ErrBadBearer wraps why an Authorization: Bearer token was refused.
var ErrBadBearer = errors.New("invalid bearer token")

// refreshBefore is how long before the ID token's expiry a session is
// refreshed.
const refreshBefore = time.Minute

// legacyCookieName is the default session cookie name before the __Host-
// prefix.
const legacyCookieName = "_iap"

// loginTTL bounds how long a sign-in may take at the IdP.
const loginTTL = 10 * time.Minute

// Authenticator signs users in and keeps their sessions.
type Authenticator struct {
	cfg     Config
	names   names
	idp     *idp
	session codecs
	login   codecs
	// csrfKeys sign sign-out forms: the first signs, all verify, as the
	// cookie secrets they derive from.
	csrfKeys [][]byte
	jar      jar
	loginJ   jar // its name is the login cookies' prefix
	// legacy is the session's jar under the default name before it took
	// the __Host- prefix (_iap), when the name is defaulted: StripCookies
	// removes those too, which a browser may hold for a while after an
	// upgrade. It is never read.
	legacy jar
	signer *assertionSigner

	// Central sign-in (handoff.go): the sign-in host's canonical
	// authority, "" without one; the key of hand-offs; the hand-offs
	// taken. callbackPath is the IdP's redirect URI's path.
	authHost     string
	callbackPath string
	handoff      codecs
	handoffs     usedHandoffs

	keepMu sync.RWMutex
	keep   map[string]bool // claims kept in sessions, besides the standard ones

	// decoded remembers sessions by their exact cookie value, so that a
	// cookie is opened (AES-GCM, inflate, JSON) once per instance rather
	// than on every request. Only values that authenticated are kept, with
	// whether a previous cookie secret sealed them, so that a cached value
	// is sealed again as one just opened is. The cache belongs to this
	// Authenticator and its secrets: a new list of secrets is a new
	// Authenticator (a config reload) with an empty cache, so a secret
	// removed from the list opens nothing, cached or not.
	decodedMu sync.RWMutex
	decoded   map[string]*decodedSession

	// revocations end sessions early (revocation.go); nil: none yet.
	revocations           atomic.Pointer[Revocations]
	revocationsFailClosed time.Duration
	// access caches the IdP's answers on access tokens (bearer.go).
	access accessTokens
	// server keeps sessions in a Store (sessionstore.go); nil: in cookies.
	server *serverSessions
}

// decodedSession is a session opened from a cookie value.
type decodedSession struct {
	s Session
	// stale: a previous cookie secret sealed it.
	stale bool
}

// maxDecoded bounds the decoded-session cache; it is emptied when full.
const maxDecoded = 10000

// KeepClaims adds ID token claims to keep in sessions, for policies that
// test them (claim/<name>). Sessions signed in before keep what they had.
func (a *Authenticator) KeepClaims(names ...string) {
	a.keepMu.Lock()
	defer a.keepMu.Unlock()
	for _, n := range names {
		a.keep[n] = true
	}
}

// New checks the configuration and returns an Authenticator. Call Start to
// begin discovering the identity provider, and Stop to end.
func New(cfg Config) (*Authenticator, error) {
	defaultName := cfg.CookieName == ""
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{cfg: cfg, names: namesFor(cfg.Compat), keep: map[string]bool{}, decoded: map[string]*decodedSession{}}
	for _, claim := range cfg.ClaimHeaders {
		a.keep[claim] = true
	}
	var err error
	if a.session, err = newCodecs(cfg.CookieSecret, cfg.PreviousCookieSecrets, "session"); err != nil {
		return nil, err
	}
	if a.login, err = newCodecs(cfg.CookieSecret, cfg.PreviousCookieSecrets, "login"); err != nil {
		return nil, err
	}
	if a.handoff, err = newCodecs(cfg.CookieSecret, cfg.PreviousCookieSecrets, handoffName); err != nil {
		return nil, err
	}
	a.callbackPath = a.names.prefix + "callback"
	if cfg.AuthenticateURL != "" {
		if a.authHost, err = parseAuthenticateURL(cfg.AuthenticateURL); err != nil {
			return nil, fmt.Errorf("authenticate_url %q: %v", cfg.AuthenticateURL, err)
		}
		if cfg.Compat == "pomerium" {
			// Pomerium's authenticate service takes the IdP's redirect at
			// /oauth2/callback, and IdPs list that URL.
			a.callbackPath = "/oauth2/callback"
		}
	}
	for _, secret := range append([][]byte{cfg.CookieSecret}, cfg.PreviousCookieSecrets...) {
		k, err := hkdf.Key(sha256.New, secret, nil, "caddy-iap csrf", 32)
		if err != nil {
			return nil, err
		}
		a.csrfKeys = append(a.csrfKeys, k)
	}
	a.jar = jar{name: cfg.CookieName, domain: cfg.CookieDomain, sameSite: cfg.CookieSameSite}
	if defaultName && cfg.CookieName != legacyCookieName {
		a.legacy = jar{name: legacyCookieName}
	}
	// The login cookies bind a sign-in to the browser that started it: each
	// holds the state, the nonce and the PKCE verifier, sealed under its
	// name, and is host-only (no Domain). The __Host- prefix adds that no
	// other host can plant one: a sibling subdomain could otherwise set one
	// for example.com holding its own sign-in's state, then send the victim
	// to that sign-in's callback, signing the victim in as the attacker
	// (login fixation). They must come back on the IdP's redirect (a
	// top-level cross-site GET), so they are Lax whatever the session's
	// SameSite.
	a.loginJ = jar{name: hostPrefix + unprefixed(cfg.CookieName) + "_login", sameSite: http.SameSiteLaxMode}
	if a.signer, err = newAssertionSigner(cfg.SigningKeys, cfg.Now); err != nil {
		return nil, err
	}
	a.signer.idp = cfg.IDPName
	a.idp = newIdP(&a.cfg)
	return a, nil
}

// Start discovers the identity provider in the background.
func (a *Authenticator) Start() { a.idp.start() }

// Stop ends background work.
func (a *Authenticator) Stop() { a.idp.stop() }

// Names returns the endpoint prefix (/.iap/) and the assertion header.
func (a *Authenticator) Names() (prefix, assertionHeader, jwksPath string) {
	return a.names.prefix, a.names.assertionHeader, a.names.jwksPath
}

// Authenticate requires a signed-in user: it answers the endpoints
// (ServeEndpoint) and otherwise returns the user, or asks the client to
// sign in (Challenge). done reports whether it answered. A caller that
// decides first and asks for sign-in only when its policy needs a user
// calls ServeEndpoint, Session and Challenge itself.
func (a *Authenticator) Authenticate(w http.ResponseWriter, r *http.Request) (s *Session, done bool) {
	if a.ServeEndpoint(w, r) {
		return nil, true
	}
	s, err := a.Session(w, r)
	if err != nil {
		a.Challenge(w, r, err)
		return nil, true
	}
	return s, false
}

// ServeEndpoint answers the JWKS and the endpoints under the prefix
// (/.iap/): the callback, sign-in and sign-out, and, for a signed-in user,
// the user page, its JSON and the current assertion (others are asked to
// sign in). It reports whether the request was one of them.
func (a *Authenticator) ServeEndpoint(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == a.names.jwksPath {
		a.serveJWKS(w, r)
		return true
	}
	if r.URL.Path == a.callbackPath && a.callbackPath != a.names.prefix+"callback" {
		if !a.SignInHost(r.Host) {
			return false
		}
		a.callback(w, r)
		return true
	}
	if !a.IsEndpoint(r.URL.Path) {
		return false
	}
	if a.serveEndpoint(w, r) {
		return true
	}
	s, err := a.Session(w, r)
	if err != nil {
		a.Challenge(w, r, err)
		return true
	}
	a.serveUserEndpoint(w, r, s)
	return true
}

// Peek returns the request's user without writing anything: from a bearer
// token (as the request's BearerTokens say), or from the session cookie as
// it is (not refreshed). It is for a caller that cannot answer the
// request, such as a request matcher. It
// returns nil and no error when the request carries no credential, and an
// error when it carries one that cannot be used without writing (a
// session that needs a claim it did not keep) or at all.
func (a *Authenticator) Peek(r *http.Request) (*Session, error) {
	b := a.bearerTokens(r)
	if raw, ok := a.bearerToken(r, b); ok {
		return a.bearer(r.Context(), raw, b)
	}
	if _, err := a.jar.read(r); err != nil {
		return nil, nil
	}
	s := a.cookieSession(r)
	if s == nil {
		return nil, errors.New("the session cookie is not valid")
	}
	if missing := a.unkeptClaim(s); missing != "" {
		return nil, fmt.Errorf("the session predates the use of claim %q", missing)
	}
	return s, nil
}

// IsEndpoint reports whether path is one of authn's own: the JWKS or under
// the prefix (/.iap/, or /.pomerium/ under compat pomerium).
func (a *Authenticator) IsEndpoint(path string) bool {
	return a.names.isEndpoint(path)
}

// IsEndpoint reports whether path is reserved for authn's endpoints under
// the given compat mode, for a server that has no Authenticator (no IdP)
// and must keep those paths from its upstreams.
func IsEndpoint(compat, path string) bool {
	return namesFor(compat).isEndpoint(path)
}

func (n names) isEndpoint(path string) bool {
	return path == n.jwksPath || strings.HasPrefix(path, n.prefix) || path == strings.TrimSuffix(n.prefix, "/")
}

// Session returns the request's user from a programmatic login token, a
// bearer token (as the request's BearerTokens say) or the session cookie,
// refreshing an ID token about to expire (the new cookie is written to w). Any failure is an error; ErrIdPUnavailable means the session
// needed the IdP and it is down.
func (a *Authenticator) Session(w http.ResponseWriter, r *http.Request) (*Session, error) {
	if token, ok := a.programmaticCredential(r); ok {
		return a.tokenSession(r, token)
	}
	b := a.bearerTokens(r)
	if raw, ok := a.bearerToken(r, b); ok {
		return a.bearer(r.Context(), raw, b)
	}
	raw, err := a.jar.read(r)
	if err != nil {
		return nil, err
	}
	s, stale, err := a.openSession(raw)
	if errors.Is(err, ErrSessionStoreUnavailable) {
		return nil, err // the session may be fine: keep its cookie
	}
	if err != nil {
		a.sessionJar().clear(w, r)
		a.cfg.Logger.Info("session cookie refused, and cleared", zap.String("host", r.Host), zap.Error(err))
		return nil, err
	}
	now := a.cfg.Now()
	if now.After(a.sessionEnds(s.IssuedAt)) {
		a.sessionJar().clear(w, r)
		return nil, errors.New("session reached cookie_expire")
	}
	if err := a.checkRevoked(&s); err != nil {
		if !errors.Is(err, ErrRevocationsUnavailable) {
			a.sessionJar().clear(w, r)
		}
		return nil, err
	}
	if missing := a.unkeptClaim(&s); missing != "" {
		// A claim is needed that this session did not keep: never decide
		// on it as absent. Refresh now, or sign in again.
		if s.RefreshToken == "" {
			a.sessionJar().clear(w, r)
			return nil, fmt.Errorf("the session predates the use of claim %q and has no refresh token", missing)
		}
	} else if now.Add(refreshBefore).Before(s.IDTokenExpiry) {
		if stale {
			a.reseal(w, r, &s)
		}
		return &s, nil
	}
	if err := a.refresh(r.Context(), &s); err != nil {
		if errors.Is(err, ErrIdPUnavailable) {
			return nil, err
		}
		a.sessionJar().clear(w, r)
		return nil, fmt.Errorf("refreshing the session: %w", err)
	}
	if err := a.writeSession(w, r, &s); err != nil {
		// The refreshed session cannot be kept (it grew over the cookie
		// budget): end it rather than refresh again on every request.
		a.sessionJar().clear(w, r)
		return nil, fmt.Errorf("keeping the refreshed session: %w", err)
	}
	return &s, nil
}

// keepIDToken reports whether sessions keep the raw ID token: only for the
// id_token_hint of an IdP with an end_session_endpoint, since it doubles
// the cookie that every request carries.
func (a *Authenticator) keepIDToken() bool {
	_, _, endURL, err := a.idp.get()
	return err == nil && endURL != ""
}

// openSession decodes a session cookie's value, from the cache when this
// exact value was opened before. It returns a copy the caller may change,
// and whether a previous cookie secret sealed it (stale).
func (a *Authenticator) openSession(raw string) (s Session, stale bool, err error) {
	if isServerRef(raw) {
		return a.openServerSession(raw)
	}
	a.decodedMu.RLock()
	cached, ok := a.decoded[raw]
	a.decodedMu.RUnlock()
	if ok {
		return cached.s, cached.stale, nil
	}
	if stale, err = a.session.open(a.cfg.CookieName, raw, &s); err != nil {
		return Session{}, false, err
	}
	a.decodedMu.Lock()
	if len(a.decoded) >= maxDecoded {
		clear(a.decoded)
	}
	a.decoded[raw] = &decodedSession{s: s, stale: stale}
	a.decodedMu.Unlock()
	return s, stale, nil
}

// reseal sets the session's cookies again, sealed under the current
// cookie_secret, for a session a previous one sealed: the browser holds a
// current cookie from this response on, and the previous secret can leave
// the list once every session was seen (or cookie_expire has passed). The
// request is served whether or not this works.
func (a *Authenticator) reseal(w http.ResponseWriter, r *http.Request, s *Session) {
	if err := a.writeSession(w, r, s); err != nil {
		a.cfg.Logger.Warn("session sealed under a previous cookie secret could not be sealed again under cookie_secret",
			zap.String("user_id", s.Subject), zap.Error(err))
		return
	}
	a.cfg.Logger.Debug("session sealed again under the current cookie_secret", zap.String("user_id", s.Subject))
}

// writeSession sets the session cookies, within Config.CookieBudget: a
// session over it is kept without its raw ID token (s loses it too), and
// one still over it is ErrSessionTooLarge, with nothing written.
func (a *Authenticator) writeSession(w http.ResponseWriter, r *http.Request, s *Session) error {
	if a.server != nil {
		return a.writeServerSession(w, r, s)
	}
	j := a.sessionJar()
	expires := a.sessionEnds(s.IssuedAt)
	v, err := a.session.seal(a.cfg.CookieName, s)
	if err != nil {
		return err
	}
	err = j.write(w, r, v, expires)
	if errors.Is(err, ErrSessionTooLarge) && s.RawIDToken != "" {
		a.cfg.Logger.Info("session kept without the ID token, which sign-out would send as id_token_hint: it does not fit the cookie budget",
			zap.String("user_id", s.Subject), zap.Int("id_token_bytes", len(s.RawIDToken)), zap.Error(err))
		s.RawIDToken = ""
		if v, err = a.session.seal(a.cfg.CookieName, s); err != nil {
			return err
		}
		err = j.write(w, r, v, expires)
	}
	if errors.Is(err, ErrSessionTooLarge) {
		return fmt.Errorf("%w (%d groups, %d other claims kept)", err, len(s.Groups), len(s.Claims))
	}
	return err
}

func (a *Authenticator) refresh(ctx context.Context, s *Session) error {
	if s.RefreshToken == "" {
		return errors.New("the ID token expired and there is no refresh token")
	}
	verifier, oauth, _, err := a.idp.get()
	if err != nil {
		return err
	}
	ts := oauth.TokenSource(a.idp.ctx(ctx), &oauth2.Token{RefreshToken: s.RefreshToken, Expiry: time.Unix(1, 0)})
	tok, err := ts.Token()
	if err != nil {
		return err
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return errors.New("the refresh response has no id_token")
	}
	id, err := verifier.Verify(a.idp.ctx(ctx), rawID)
	if err != nil {
		if a.idp.keysLimited() {
			// Possibly signed with a key the IdP just rotated in, which
			// cannot be fetched yet: keep the session and try again.
			return fmt.Errorf("%w: %v", ErrIdPUnavailable, err)
		}
		return err
	}
	if id.Subject != s.Subject {
		return errors.New("the refreshed ID token is for another user")
	}
	fresh, err := a.sessionFrom(id)
	if err != nil {
		return err
	}
	fresh.ID, fresh.IssuedAt = s.ID, s.IssuedAt
	if fresh.IdPSessionID == "" {
		// A refreshed ID token need not repeat sid: the IdP session is
		// the same, and back-channel logout finds the session by it.
		fresh.IdPSessionID = s.IdPSessionID
	}
	if a.keepIDToken() {
		fresh.RawIDToken = rawID
	}
	fresh.RefreshToken = s.RefreshToken
	if tok.RefreshToken != "" {
		fresh.RefreshToken = tok.RefreshToken
	}
	*s = *fresh
	a.cfg.Logger.Debug("session refreshed", zap.String("user_id", s.Subject))
	return nil
}

// sessionFrom reads the user out of a verified ID token.
func (a *Authenticator) sessionFrom(tok *oidc.IDToken) (*Session, error) {
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, err
	}
	return a.sessionFromClaims(tok.Subject, tok.Expiry, claims), nil
}

// sessionFromClaims reads the user out of verified claims: an ID token's,
// or userinfo's for an access token.
func (a *Authenticator) sessionFromClaims(subject string, expiry time.Time, claims map[string]any) *Session {
	s := &Session{Subject: subject, IDTokenExpiry: expiry, IssuedAt: a.cfg.Now()}
	s.Email, _ = claims["email"].(string)
	s.Name, _ = claims["name"].(string)
	s.IdPSessionID, _ = claims["sid"].(string)
	s.Groups = stringList(claims[a.cfg.GroupsClaim])
	a.keepMu.RLock()
	defer a.keepMu.RUnlock()
	for claim := range a.keep {
		if a.standardClaim(claim) {
			continue
		}
		s.Kept = append(s.Kept, claim)
		if v, ok := claims[claim]; ok {
			if s.Claims == nil {
				s.Claims = map[string]any{}
			}
			s.Claims[claim] = v
		}
	}
	slices.Sort(s.Kept)
	return s
}

func stringList(v any) []string {
	switch v := v.(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return []string{v}
	}
	return nil
}

// WantsHTML reports whether the client prefers a page: browsers list
// text/html in Accept; API clients and curl's */* get JSON.
func WantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.TrimSpace(mt) {
		case "text/html", "application/xhtml+xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

// Challenge asks a client without a usable session to sign in: a browser
// GET is redirected to the IdP, anything else gets 401 (reason
// user-unauthenticated, or invalid-bearer-token when cause is a refused
// bearer token), and 503 with Retry-After while the IdP cannot be reached.
// cause is why there is no session, for the log; nil means none was
// presented.
func (a *Authenticator) Challenge(w http.ResponseWriter, r *http.Request, cause error) {
	a.ChallengeThrough(w, r, cause, nil)
}

// ChallengeThrough is Challenge for a route that depends on other hosts
// (Pomerium's depends_on): after signing in, the browser goes through each
// host's sign-in in turn, which asks nothing more of the user (the sign-in
// host's session under authenticate_url, else the IdP's), and then to the
// page it asked for. A host without a port gets the request's.
func (a *Authenticator) ChallengeThrough(w http.ResponseWriter, r *http.Request, cause error, hosts []string) {
	if errors.Is(cause, ErrIdPUnavailable) {
		a.unavailable(w, r, cause)
		return
	}
	if errors.Is(cause, ErrRevocationsUnavailable) {
		a.revocationsUnavailable(w, r, cause)
		return
	}
	if errors.Is(cause, ErrSessionStoreUnavailable) {
		a.sessionStoreUnavailable(w, r, cause)
		return
	}
	reason, message := string(authz.ReasonUnauthenticated), a.signInMessage(r)
	if errors.Is(cause, ErrBadBearer) {
		reason, message = string(authz.ReasonBadToken), bearerRefusal(cause)
	}
	a.cfg.Logger.Info("request not signed in",
		zap.String("reason", reason), zap.String("host", r.Host),
		zap.String("uri", r.URL.RequestURI()), zap.String("remote_addr", r.RemoteAddr), zap.Error(cause))
	if reason == string(authz.ReasonUnauthenticated) && WantsHTML(r) && r.Method == http.MethodGet && !a.sentCredential(r) {
		returnTo := "https://" + r.Host + r.URL.RequestURI()
		_, port, _ := net.SplitHostPort(r.Host)
		for i := len(hosts) - 1; i >= 0; i-- {
			h := hosts[i]
			if port != "" && !strings.Contains(h, ":") {
				h = net.JoinHostPort(h, port)
			}
			returnTo = "https://" + h + a.names.prefix + "sign_in?redirect_uri=" + url.QueryEscape(returnTo)
		}
		a.startLogin(w, r, returnTo)
		return
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q`, r.Host))
	a.errorPage(w, r, http.StatusUnauthorized, reason, message)
}

func (a *Authenticator) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.retryLater(w, r, err, "identity provider unavailable", authz.ReasonIdPUnavailable,
		"The identity provider cannot be reached, so you cannot sign in right now. Try again in a few seconds.")
}

// retryLater answers 503 with Retry-After: something a request needs (the
// IdP, the revocation list, the session storage) cannot be reached; the
// session, if any, is kept. It logs logMsg with the reason and err.
func (a *Authenticator) retryLater(w http.ResponseWriter, r *http.Request, err error, logMsg string, reason authz.Reason, message string) {
	a.cfg.Logger.Warn(logMsg, zap.String("reason", string(reason)),
		zap.String("host", r.Host), zap.String("uri", r.URL.RequestURI()), zap.Error(err))
	w.Header().Set("Retry-After", "5")
	a.errorPage(w, r, http.StatusServiceUnavailable, string(reason), message)
}

func writeJSONError(w http.ResponseWriter, status int, reason, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": message, "reason": reason})
}

// errorPage is the one way authn refuses a request: through Config.Refuse
// when the server renders refusals itself, else as a page for browsers and
// JSON for others.
func (a *Authenticator) errorPage(w http.ResponseWriter, r *http.Request, status int, reason, message string) {
	if a.cfg.Refuse != nil {
		a.cfg.Refuse(w, r, status, reason, message)
		return
	}
	if !WantsHTML(r) {
		writeJSONError(w, status, reason, message)
		return
	}
	setPageHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "error", map[string]any{
		"Status": status, "Text": http.StatusText(status), "Reason": reason, "Message": message,
	})
}

// constantEqual compares secrets in constant time.
func constantEqual(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
