package authn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Bearer tokens: what an "Authorization: Bearer <token>" header is, as
// Pomerium's bearer_token_format says. Programmatic login tokens
// ("Authorization: IAP <token>", "Bearer IAP-<token>", programmatic.go)
// are caddy-iap's own and are read under every format.
const (
	// BearerIDToken: the token is an ID token of the IdP for this client,
	// verified locally (signature, issuer, audience, expiry). The default.
	BearerIDToken = "idp_identity_token"
	// BearerAccessToken: the token is an access token of the IdP, opaque
	// or not: it is verified by calling the IdP's userinfo endpoint with
	// it, and the user's claims are userinfo's.
	BearerAccessToken = "idp_access_token"
	// BearerPassthrough: the token is not a credential of caddy-iap's; it
	// is not read, and it reaches the upstream as it came (Pomerium's
	// "default"). The user is whoever the session cookie says, or nobody.
	BearerPassthrough = "passthrough"
	// BearerJWT: the token is a workload JWT of one of the
	// identity_providers (workload.go), verified here against its
	// issuer's keys. The identity is the workload's, "<name>/<sub>".
	BearerJWT = "jwt"
)

// BearerTokens says how a route reads bearer tokens.
type BearerTokens struct {
	// Format is BearerIDToken, BearerAccessToken or BearerPassthrough;
	// empty follows the Config's (whose own default is BearerIDToken).
	Format string
	// AllowedAudiences, with BearerAccessToken, are the audiences an
	// access token may be for: userinfo's "aud" must be a string in the
	// list (Pomerium's idp_access_token_allowed_audiences). nil follows
	// the Config's; nil there accepts any access token the IdP vouches
	// for, whichever client it was issued to.
	AllowedAudiences []string
	// Workloads, with BearerJWT, verifies the tokens; nil follows the
	// Config's. IdentityProviders names the issuers of Workloads that
	// are accepted; nil accepts all of them.
	Workloads         *Workloads
	IdentityProviders []string
}

// CheckBearerFormat checks a bearer_token_format; "" is allowed (it
// follows the default).
func CheckBearerFormat(f string) error {
	switch f {
	case "", BearerIDToken, BearerAccessToken, BearerPassthrough, BearerJWT:
		return nil
	case "default":
		return fmt.Errorf("bearer_token_format %q: write %s for Pomerium's default (bearer tokens are not read and reach the upstream); caddy-iap's own default is %s",
			f, BearerPassthrough, BearerIDToken)
	}
	return fmt.Errorf("bearer_token_format %q: want %s, %s, %s or %s", f, BearerIDToken, BearerAccessToken, BearerJWT, BearerPassthrough)
}

type bearerKey struct{}

// WithBearerTokens returns ctx carrying a route's reading of bearer
// tokens: Session, Peek, ServeEndpoint and Challenge on a request with
// this context use it instead of the Config's.
func WithBearerTokens(ctx context.Context, b BearerTokens) context.Context {
	return context.WithValue(ctx, bearerKey{}, b)
}

// bearerTokens is the request's reading of bearer tokens: its context's,
// with what it leaves unset taken from the Config.
func (a *Authenticator) bearerTokens(r *http.Request) BearerTokens {
	b, _ := r.Context().Value(bearerKey{}).(BearerTokens)
	if b.Format == "" {
		b.Format = a.cfg.Bearer.Format
	}
	if b.AllowedAudiences == nil {
		b.AllowedAudiences = a.cfg.Bearer.AllowedAudiences
	}
	if b.Workloads == nil {
		b.Workloads = a.cfg.Bearer.Workloads
	}
	if b.IdentityProviders == nil {
		b.IdentityProviders = a.cfg.Bearer.IdentityProviders
	}
	return b
}

// bearerToken returns the request's bearer token, when its format makes
// it a credential: "Authorization: Bearer <token>" under BearerIDToken or
// BearerAccessToken.
func (a *Authenticator) bearerToken(r *http.Request, b BearerTokens) (string, bool) {
	if b.Format == BearerPassthrough {
		return "", false
	}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:]), true
	}
	return "", false
}

// maxAccessToken bounds an access token: a longer one is refused before
// the IdP is asked (many servers refuse request headers over 8 KB anyway).
// Access tokens of real IdPs are a few kilobytes at most. An ID token,
// verified here, is bounded by the server's header limit alone, as before.
const maxAccessToken = 8192

// bearerError is a refused bearer token: it wraps ErrBadBearer and says
// which format refused it, for the message the client gets.
type bearerError struct {
	format string
	err    error
}

func (e *bearerError) Error() string { return ErrBadBearer.Error() + ": " + e.err.Error() }

func (e *bearerError) Unwrap() []error { return []error{ErrBadBearer, e.err} }

func badBearer(format string, err error) error { return &bearerError{format: format, err: err} }

// bearerRefusal is what a client whose bearer token was refused is told.
func bearerRefusal(cause error) string {
	if isWorkloadRefusal(cause) {
		return workloadRefusal
	}
	var be *bearerError
	if errors.As(cause, &be) && be.format == BearerAccessToken {
		return "The bearer token is not an access token the identity provider accepts for this route (expired, revoked, for another audience, or not the identity provider's). Send a current access token, or sign in with a browser."
	}
	return "The bearer token is not a valid ID token of the identity provider for this client. Send a current ID token, or sign in with a browser."
}

// sentCredential reports whether a request carries an Authorization
// header that is (or claims to be) a credential of caddy-iap's: any, but
// only a programmatic login token under BearerPassthrough, where the
// header is the upstream's. A client that sent one is an API client: it
// gets 401 rather than a redirect to sign in.
func (a *Authenticator) sentCredential(r *http.Request) bool {
	if a.bearerTokens(r).Format == BearerPassthrough {
		_, ok := a.programmaticCredential(r)
		return ok
	}
	return r.Header.Get("Authorization") != ""
}

// signInMessage is what a client without a credential is told: how to
// sign in, and which bearer token the route takes.
func (a *Authenticator) signInMessage(r *http.Request) string {
	switch a.bearerTokens(r).Format {
	case BearerAccessToken:
		return "Sign in first: open this URL in a browser, or send an access token from the identity provider as 'Authorization: Bearer <token>'."
	case BearerPassthrough:
		return "Sign in first: open this URL in a browser."
	case BearerJWT:
		return "Sign in first: send a workload JWT from one of this route's identity providers as 'Authorization: Bearer <token>', or open this URL in a browser."
	}
	return "Sign in first: open this URL in a browser, or send an ID token from the identity provider as 'Authorization: Bearer <token>'."
}

// bearer reads the user out of a bearer token under the format b says.
func (a *Authenticator) bearer(ctx context.Context, raw string, b BearerTokens) (*Session, error) {
	if a.isProgrammaticToken(raw) {
		// Reached without the request (Peek): a programmatic token is bound
		// to the route host it was issued for, which is not known here, so
		// it is refused rather than opened for any host.
		return nil, badBearer(b.Format, errors.New("a programmatic login token is accepted only where the request's host is known"))
	}
	if b.Format == BearerJWT {
		// A workload's token: verified against its issuer's keys, never
		// the sign-in IdP's, and never made a session cookie.
		return b.Workloads.Verify(ctx, raw, b.IdentityProviders)
	}
	if b.Format == BearerAccessToken {
		if len(raw) > maxAccessToken {
			return nil, badBearer(b.Format, fmt.Errorf("the token is %d bytes, over the %d accepted", len(raw), maxAccessToken))
		}
		return a.accessTokenSession(ctx, raw, b.AllowedAudiences)
	}
	verifier, _, _, err := a.idp.get()
	if err != nil {
		return nil, err
	}
	tok, err := verifier.Verify(a.idp.ctx(ctx), raw)
	if err != nil {
		return nil, badBearer(b.Format, err)
	}
	if err := notAnIDToken(raw, tok); err != nil {
		return nil, badBearer(b.Format, err)
	}
	s, err := a.sessionFrom(tok)
	if err != nil {
		return nil, err
	}
	s.Bearer = true
	s.ID = "bearer-" + tok.Subject
	if !tok.IssuedAt.IsZero() {
		s.IssuedAt = tok.IssuedAt
	}
	return a.bearerNotRevoked(s, b.Format)
}

// bearerNotRevoked refuses a bearer session its user's revocations end,
// as they end the user's cookies: an administrator's revocation of the
// user (by sub or email) ends the tokens issued before it (IssuedAt is
// the token's iat where it says one), and a back-channel logout ends the
// tokens of its IdP session (sid) or user. A revocation list that is
// too stale refuses it as it refuses cookies (503).
func (a *Authenticator) bearerNotRevoked(s *Session, format string) (*Session, error) {
	if err := a.checkRevoked(s); err != nil {
		if errors.Is(err, ErrRevocationsUnavailable) {
			return nil, err
		}
		return nil, badBearer(format, err)
	}
	return s, nil
}

// Access tokens are verified by the IdP (its userinfo endpoint), and what
// it answered is kept for accessTokenTTL, and never past the token's own
// expiry when it says one, so that a client's requests do not each cost an
// IdP call. Only tokens the IdP accepted are kept, by the SHA-256 of the
// token; the audience is checked on every use, since routes may allow
// different ones.
const (
	accessTokenTTL = time.Minute
	// maxAccessTokens bounds the cache; it is emptied when full.
	maxAccessTokens = 10000
	// maxUserinfo bounds the userinfo answer read.
	maxUserinfo = 1 << 20
	// maxUserinfoCalls bounds the userinfo calls in flight: a flood of
	// made-up tokens (each a call, since none is kept) gets 503 beyond it
	// rather than becoming a flood on the IdP. Tokens already verified are
	// served from the cache meanwhile.
	maxUserinfoCalls = 64
)

// userinfo is what the IdP said of an access token.
type userinfo struct {
	subject string
	claims  map[string]any
	expiry  time.Time // when the token expires, if it says; else zero
	until   time.Time // when this answer is no longer used
}

// accessTokens caches userinfo answers (see accessTokenTTL).
type accessTokens struct {
	mu     sync.Mutex
	m      map[[sha256.Size]byte]*userinfo
	flight singleflight.Group
	calls  atomic.Int64 // userinfo calls in flight
}

// get returns the answer kept for a token, if it is still to be used.
func (c *accessTokens) get(key [sha256.Size]byte, now time.Time) *userinfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.m[key]
	if u != nil && !now.Before(u.until) {
		delete(c.m, key)
		return nil
	}
	return u
}

// put keeps an answer; a full cache is emptied first.
func (c *accessTokens) put(key [sha256.Size]byte, u *userinfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxAccessTokens {
		c.m = map[[sha256.Size]byte]*userinfo{}
	}
	c.m[key] = u
}

// accessTokenSession verifies an access token with the IdP's userinfo
// endpoint (or the cache) and reads the user out of what it answered.
func (a *Authenticator) accessTokenSession(ctx context.Context, raw string, audiences []string) (*Session, error) {
	key := sha256.Sum256([]byte(raw))
	now := a.cfg.Now()
	u := a.access.get(key, now)
	if u == nil {
		// Concurrent requests with one token make one call, and the answer
		// is kept before the call ends, so a request arriving just after
		// finds it. The call is not the first request's alone: its client
		// going away does not fail the others.
		v, err, _ := a.access.flight.Do(string(key[:]), func() (any, error) {
			if u := a.access.get(key, a.cfg.Now()); u != nil {
				return u, nil
			}
			if n := a.access.calls.Add(1); n > maxUserinfoCalls {
				a.access.calls.Add(-1)
				return nil, fmt.Errorf("%w: %d access tokens are being verified with the IdP already", ErrIdPUnavailable, maxUserinfoCalls)
			}
			defer a.access.calls.Add(-1)
			u, err := a.fetchUserinfo(context.WithoutCancel(ctx), raw)
			if err == nil {
				a.access.put(key, u)
			}
			return u, err
		})
		if err != nil {
			return nil, err
		}
		u = v.(*userinfo)
	}
	if !u.expiry.IsZero() && !now.Before(u.expiry) {
		return nil, badBearer(BearerAccessToken, fmt.Errorf("the access token expired at %s", u.expiry.UTC().Format(time.RFC3339)))
	}
	if audiences != nil {
		aud, ok := u.claims["aud"].(string)
		if !ok || !slices.Contains(audiences, aud) {
			return nil, badBearer(BearerAccessToken, fmt.Errorf("the access token's audience %v is not one of idp_access_token_allowed_audiences %q", u.claims["aud"], audiences))
		}
	}
	s := a.sessionFromClaims(u.subject, u.expiry, u.claims)
	if s.IDTokenExpiry.IsZero() {
		s.IDTokenExpiry = u.until
	}
	s.Bearer = true
	s.ID = "bearer-" + u.subject
	if iat, ok := u.claims["iat"].(float64); ok && iat > 0 {
		s.IssuedAt = time.Unix(int64(iat), 0)
	}
	// An opaque token's userinfo says no iat: it counts as issued now, so
	// only a revocation of its IdP session (sid) ends it here; the IdP
	// revokes the token itself.
	return a.bearerNotRevoked(s, BearerAccessToken)
}

// fetchUserinfo calls the IdP's userinfo endpoint with the access token.
// The IdP refusing it (a 4xx) is ErrBadBearer; the IdP not answering, or
// answering 5xx or 429, is ErrIdPUnavailable.
func (a *Authenticator) fetchUserinfo(ctx context.Context, raw string) (*userinfo, error) {
	provider, err := a.idp.oidcProvider()
	if err != nil {
		return nil, err
	}
	if provider.UserInfoEndpoint() == "" {
		return nil, badBearer(BearerAccessToken, errors.New("the identity provider has no userinfo endpoint, so access tokens cannot be verified"))
	}
	rec := &statusRecorder{base: a.cfg.HTTPClient.Transport}
	client := *a.cfg.HTTPClient
	client.Transport = rec
	if client.Timeout == 0 || client.Timeout > 10*time.Second {
		client.Timeout = 10 * time.Second
	}
	ui, err := provider.UserInfo(oidc.ClientContext(ctx, &client),
		oauth2.StaticTokenSource(&oauth2.Token{AccessToken: raw, TokenType: "Bearer"}))
	// down: the IdP did not answer, or not as it should; the token may be
	// good.
	down := func(err error) error {
		a.cfg.observe(EventIdPFetchError, FetchUserinfo, a.cfg.ProviderURL)
		return fmt.Errorf("%w: userinfo: %v", ErrIdPUnavailable, firstLine(err.Error()))
	}
	switch {
	case err != nil && (rec.status == 0 || rec.status >= 500 || rec.status == http.StatusTooManyRequests):
		return nil, down(err)
	case err != nil && rec.status != http.StatusOK:
		return nil, badBearer(BearerAccessToken, fmt.Errorf("the identity provider's userinfo refused it: %v", firstLine(err.Error())))
	case err != nil:
		// A 200 that is not a userinfo answer: the IdP's fault, not the token's.
		return nil, down(err)
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		return nil, down(err)
	}
	if ui.Subject == "" {
		return nil, badBearer(BearerAccessToken, errors.New("the identity provider's userinfo names no subject (sub)"))
	}
	now := a.cfg.Now()
	u := &userinfo{subject: ui.Subject, claims: claims, until: now.Add(accessTokenTTL)}
	if exp, ok := claims["exp"].(float64); ok {
		u.expiry = time.Unix(int64(exp), 0)
	} else if exp, ok := jwtExpiry(raw); ok {
		// The IdP need not repeat exp in userinfo: a JWT access token's
		// own (unverified) exp can only shorten the answer's life.
		u.expiry = exp
	}
	if !u.expiry.IsZero() && u.expiry.Before(u.until) {
		u.until = u.expiry
	}
	a.cfg.Logger.Debug("access token verified with the identity provider's userinfo",
		zap.String("user_id", ui.Subject), zap.Time("until", u.until))
	return u, nil
}

// jwtExpiry reads the exp of a token that is a JWT, without verifying it.
func jwtExpiry(raw string) (time.Time, bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*c.Exp), 0), true
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// statusRecorder is one userinfo call's transport: it notes the answer's
// status, and bounds the body read.
type statusRecorder struct {
	base   http.RoundTripper
	status int
}

func (s *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	base := s.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	s.status = resp.StatusCode
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxUserinfo), resp.Body}
	return resp, nil
}
