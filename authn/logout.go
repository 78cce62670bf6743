package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
)

// Signing out at the IdP, and the IdP's logouts reaching us.
//
// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): sign-out
// sends the browser to the IdP's end_session_endpoint (from discovery)
// with id_token_hint, or client_id alone when the session was kept without
// its raw ID token (over the cookie budget), as the spec allows; and
// post_logout_redirect_uri, the host's /.iap/signed_out, with the return
// URL as state. The IdP sends the browser back there, and /.iap/signed_out
// redirects to the return URL after the same check as sign-in's.
//
// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the IdP
// POSTs a logout token to /.iap/backchannel_logout (the client's
// backchannel_logout_uri). A token that verifies ends, on every instance
// sharing the revocation storage, the sessions of the IdP session it names
// (sid, matched against Session.IdPSessionID, the ID token's sid), or else
// every session of the user it names (sub) issued before it arrived.

// The endpoints under the prefix (/.iap/).
const (
	backchannelLogoutPath = "backchannel_logout"
	signedOutPath         = "signed_out"
)

// backchannelLogoutEvent is the events member a logout token must have.
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

const (
	// maxLogoutRequestBytes bounds a back-channel logout request's body;
	// a logout token is about 1 KB.
	maxLogoutRequestBytes = 16 << 10
	// maxLogoutTokenAge is how long after its iat a logout token is
	// accepted, and so how long its jti is kept.
	maxLogoutTokenAge = 10 * time.Minute
	// logoutClockSkew is how far in the future an iat may be, and how
	// long after an exp a token is still accepted.
	logoutClockSkew = time.Minute
	// maxLogoutJTIs bounds the jti kept per Authenticator; maxJTILength
	// bounds each.
	maxLogoutJTIs = 10000
	maxJTILength  = 256
)

// BackchannelLogoutPath is the path of the back-channel logout endpoint
// under the given compat mode (/.iap/backchannel_logout), the client's
// backchannel_logout_uri at the IdP. It answers without a session and,
// under downstream mTLS, without a client certificate: the IdP has
// neither, and the logout token authenticates the request.
func BackchannelLogoutPath(compat string) string {
	return namesFor(compat).prefix + backchannelLogoutPath
}

// endSessionURL is where sign-out sends the browser: the IdP's
// end_session_endpoint with id_token_hint (client_id alone when the session
// has no raw ID token), and, on a host that can be named in a URL,
// post_logout_redirect_uri (this host's signed_out endpoint) with the
// return URL as state.
func (a *Authenticator) endSessionURL(endURL string, s *Session, host, returnTo string) string {
	q := url.Values{"client_id": {a.cfg.ClientID}}
	if s.RawIDToken != "" {
		q.Set("id_token_hint", s.RawIDToken)
	}
	if _, ok := canonicalAuthority(host); ok {
		q.Set("post_logout_redirect_uri", "https://"+host+a.names.prefix+signedOutPath)
		q.Set("state", returnTo)
	}
	sep := "?"
	if strings.Contains(endURL, "?") {
		sep = "&"
	}
	return endURL + sep + q.Encode()
}

// signedOut is where the IdP sends the browser back after signing out
// (post_logout_redirect_uri): it redirects to the return URL in state,
// checked as sign-in's redirect_uri is, or to the host's root.
func (a *Authenticator) signedOut(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		a.errorPage(w, r, http.StatusMethodNotAllowed, string(authz.ReasonMethodNotAllowed), "The identity provider sends browsers here with GET after signing out.")
		return
	}
	http.Redirect(w, r, a.signOutReturn(r.URL.Query().Get("state"), r.Host), http.StatusFound)
}

// backchannelLogout answers a back-channel logout request for this
// Authenticator alone; ServeBackchannelLogout says how.
func (a *Authenticator) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	ServeBackchannelLogout(w, r, []*Authenticator{a})
}

// ServeBackchannelLogout answers a back-channel logout request (the
// endpoint BackchannelLogoutPath names) for whichever of auths, the
// Authenticators of one server's IdPs, its logout token is for: the first
// whose provider URL is the token's iss and whose client ID is in its aud
// (read unverified, only to choose; the one chosen verifies everything),
// else the first. It answers 200 when the token verified and its sessions
// were revoked, 400 otherwise (not a POST, not a form, too large, no token,
// or a token that does not verify or was seen before), with
// Cache-Control: no-store. Nothing is revoked unless the token verified.
func ServeBackchannelLogout(w http.ResponseWriter, r *http.Request, auths []*Authenticator) {
	if len(auths) == 0 {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	a := auths[0]
	refuse := func(reason authz.Reason, message string, err error) {
		a.cfg.Logger.Warn("back-channel logout refused", zap.String("reason", string(reason)),
			zap.String("host", r.Host), zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		a.errorPage(w, r, http.StatusBadRequest, string(reason), message)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		refuse(authz.ReasonBadLogoutRequest, "A back-channel logout is a POST of a logout_token form.", fmt.Errorf("method %s", r.Method))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		refuse(authz.ReasonBadLogoutRequest, "A back-channel logout is a POST of a logout_token form (application/x-www-form-urlencoded).",
			fmt.Errorf("content type %q", r.Header.Get("Content-Type")))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLogoutRequestBytes+1))
	if err != nil {
		refuse(authz.ReasonBadLogoutRequest, "The request body could not be read.", err)
		return
	}
	if len(body) > maxLogoutRequestBytes {
		refuse(authz.ReasonBadLogoutRequest, fmt.Sprintf("The request body is over %d bytes.", maxLogoutRequestBytes),
			errors.New("request body too large"))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form["logout_token"]) != 1 || form.Get("logout_token") == "" {
		refuse(authz.ReasonBadLogoutRequest, "The request must carry exactly one logout_token.", err)
		return
	}
	token := form.Get("logout_token")
	a = logoutTokenFor(auths, token)
	lt, err := a.verifyLogoutToken(r.Context(), token)
	if err != nil {
		if errors.Is(err, ErrIdPUnavailable) {
			a.unavailable(w, r, err)
			return
		}
		why := err.Error()
		if errors.Is(err, errLogoutTokenUnverified) {
			why = errLogoutTokenUnverified.Error() // the details, for the log only
		}
		refuse(authz.ReasonBadLogoutToken, "The logout token is not valid: "+why+".", err)
		return
	}
	if err := a.revokeLoggedOut(lt); err != nil && !errors.Is(err, ErrRevocationPending) {
		a.cfg.Logger.Error("back-channel logout: revoking the sessions failed", zap.String("idp_sid", lt.SID),
			zap.String("user_id", lt.Subject), zap.Error(err))
		a.errorPage(w, r, http.StatusInternalServerError, string(authz.ReasonInternal), "The sessions could not be revoked.")
		return
	}
	a.cfg.Logger.Info("back-channel logout", zap.String("provider_url", a.cfg.ProviderURL), zap.String("idp_sid", lt.SID),
		zap.String("user_id", lt.Subject), zap.String("jti", lt.JTI), zap.String("remote_addr", r.RemoteAddr))
	w.WriteHeader(http.StatusOK)
}

// logoutTokenFor is the Authenticator a logout token says it is for (by
// its unverified iss and aud), or else the first.
func logoutTokenFor(auths []*Authenticator, token string) *Authenticator {
	if len(auths) > 1 {
		var c struct {
			Iss string          `json:"iss"`
			Aud json.RawMessage `json:"aud"`
		}
		parts := strings.Split(token, ".")
		if len(parts) == 3 {
			if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &c) == nil {
				var aud []string
				if json.Unmarshal(c.Aud, &aud) != nil {
					var one string
					_ = json.Unmarshal(c.Aud, &one)
					aud = []string{one}
				}
				for _, a := range auths {
					if a.cfg.ProviderURL == c.Iss && slices.Contains(aud, a.cfg.ClientID) {
						return a
					}
				}
			}
		}
	}
	return auths[0]
}

// errLogoutTokenUnverified is a logout token whose signature, issuer or
// audience is not the IdP's for this client.
var errLogoutTokenUnverified = errors.New("it is not signed by the identity provider for this client (signature, iss or aud)")

// logoutToken is what a verified logout token says.
type logoutToken struct {
	Subject, SID, JTI string
}

// verifyLogoutToken checks a logout token as Back-Channel Logout 1.0
// section 2.6 asks: the signature by a key of the IdP's JWKS (an algorithm
// it announces), iss, aud (this client), iat (not in the future, at most
// maxLogoutTokenAge old), exp when present, the backchannel-logout event,
// a sid or a sub, no nonce, an explicit type if any of logout+jwt, and a
// jti not seen before. The jti is recorded only when all else holds.
func (a *Authenticator) verifyLogoutToken(ctx context.Context, raw string) (*logoutToken, error) {
	a.idp.mu.RLock()
	verifier, jtis := a.idp.logoutVerifier, a.idp.logoutJTIs
	a.idp.mu.RUnlock()
	if verifier == nil {
		return nil, ErrIdPUnavailable
	}
	if err := logoutTokenType(raw); err != nil {
		return nil, err
	}
	tok, err := verifier.Verify(a.idp.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errLogoutTokenUnverified, err)
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	switch {
	case tok.IssuedAt.IsZero():
		return nil, errors.New("it has no iat")
	case tok.IssuedAt.After(now.Add(logoutClockSkew)):
		return nil, errors.New("its iat is in the future")
	case now.After(tok.IssuedAt.Add(maxLogoutTokenAge)):
		return nil, fmt.Errorf("it was issued more than %s ago", maxLogoutTokenAge)
	case !tok.Expiry.IsZero() && now.After(tok.Expiry.Add(logoutClockSkew)):
		return nil, errors.New("it expired")
	}
	if _, ok := claims["nonce"]; ok {
		return nil, errors.New("it has a nonce, which logout tokens must not have")
	}
	var events map[string]json.RawMessage
	if err := json.Unmarshal(claims["events"], &events); err != nil || events == nil {
		return nil, errors.New("it has no events object")
	}
	if ev, ok := events[backchannelLogoutEvent]; !ok || !strings.HasPrefix(strings.TrimSpace(string(ev)), "{") {
		return nil, fmt.Errorf("its events do not hold %s as an object", backchannelLogoutEvent)
	}
	lt := &logoutToken{Subject: tok.Subject}
	if rawSID, ok := claims["sid"]; ok {
		if err := json.Unmarshal(rawSID, &lt.SID); err != nil {
			return nil, errors.New("its sid is not a string")
		}
	}
	if lt.SID == "" && lt.Subject == "" {
		return nil, errors.New("it names neither a sid nor a sub")
	}
	if err := json.Unmarshal(claims["jti"], &lt.JTI); err != nil || lt.JTI == "" || len(lt.JTI) > maxJTILength {
		return nil, fmt.Errorf("it has no jti (a string of 1 to %d bytes)", maxJTILength)
	}
	if !jtis.add(lt.JTI, tok.IssuedAt.Add(maxLogoutTokenAge+logoutClockSkew), now) {
		return nil, errors.New("its jti was seen before (a replay)")
	}
	return lt, nil
}

// logoutTokenType refuses a token whose header declares a type other than
// logout+jwt (or plain JWT): an ID token or an access token is not a
// logout token.
func logoutTokenType(raw string) error {
	typ, declared, err := jwtType(raw)
	if err != nil {
		return fmt.Errorf("its header: %w", err)
	}
	if declared != nil && typ != "logout+jwt" && typ != "jwt" {
		return fmt.Errorf("it is typed %q, not logout+jwt", *declared)
	}
	return nil
}

// IdPSessionRevocationID is the ID under which a back-channel logout
// revokes the sessions of one IdP session (RevokeSession's sid): the
// issuer and its sid, prefixed so that it never equals a session's own ID.
// The issuer scopes it: the IdPs of one server share the revocation list,
// and one IdP's sid (or sub) says nothing about another's users.
func IdPSessionRevocationID(issuer, idpSID string) string {
	return "idp-sid:" + issuer + " " + idpSID
}

// IdPSubjectRevocationID is the subject under which a back-channel logout
// naming only a sub revokes that user's sessions: scoped to the issuer
// likewise (the admin API's revocations by sub are not).
func IdPSubjectRevocationID(issuer, sub string) string {
	return "idp-sub:" + issuer + " " + sub
}

// revokeLoggedOut revokes what a verified logout token names: the sessions
// of its IdP session, or else every session of its user issued until now,
// of this IdP only.
func (a *Authenticator) revokeLoggedOut(lt *logoutToken) error {
	if lt.SID != "" {
		return a.RevokeSession(IdPSessionRevocationID(a.cfg.ProviderURL, lt.SID), time.Time{})
	}
	return a.RevokeSubject(IdPSubjectRevocationID(a.cfg.ProviderURL, lt.Subject), time.Time{})
}

// signingAlgs are the IdP's ID token signing algorithms that go-oidc
// verifies, as oidc.NewProvider keeps them; none leaves go-oidc's default
// (RS256).
func signingAlgs(announced []string) []string {
	var out []string
	for _, alg := range announced {
		switch alg {
		case "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA":
			out = append(out, alg)
		}
	}
	return out
}

// jtiCache remembers the jti of accepted logout tokens until they expire,
// at most max of them: when full, the expired ones go, and then the ones
// closest to expiring. A jti pushed out this way could be accepted again
// (a replay ends the same sessions again).
type jtiCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time // jti -> until
}

func newJTICache(max int) *jtiCache {
	return &jtiCache{max: max, seen: map[string]time.Time{}}
}

// add records jti until then, and reports false if it was there already
// (and not expired).
func (c *jtiCache) add(jti string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.seen[jti]; ok && now.Before(t) {
		return false
	}
	if len(c.seen) >= c.max {
		for k, t := range c.seen {
			if !now.Before(t) {
				delete(c.seen, k)
			}
		}
		for len(c.seen) >= c.max {
			oldest, first := "", time.Time{}
			for k, t := range c.seen {
				if oldest == "" || t.Before(first) {
					oldest, first = k, t
				}
			}
			delete(c.seen, oldest)
		}
	}
	c.seen[jti] = until
	return true
}
