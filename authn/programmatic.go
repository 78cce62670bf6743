package authn

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
)

// Programmatic login, for command-line and desktop clients, as Pomerium's
// /.pomerium/api/v1/login:
//
//  1. The client GETs /.iap/api/v1/login?redirect_uri=http://127.0.0.1:PORT/...
//     on the route, with no session. The answer (200, text/plain) is a
//     sign-in URL on the route's host: /.iap/sign_in?programmatic=<sealed>,
//     where <sealed> holds the redirect URI, the host and an expiry
//     (loginTTL), sealed under the login key with the host as associated
//     data. The token is never in this answer.
//  2. The client opens that URL in the user's browser. sign_in opens the
//     sealed request and starts an ordinary sign-in (login cookie, state,
//     nonce, PKCE) that remembers the redirect URI.
//  3. The callback signs the browser in as usual, then redirects it to the
//     redirect URI with iap_token=<token> added to its query.
//  4. The client sends the token to the route as "Authorization: IAP <token>"
//     or "Authorization: Bearer IAP-<token>".
//
// Under compat pomerium the names are Pomerium's: /.pomerium/api/v1/login,
// pomerium_redirect_uri, pomerium_jwt, "Authorization: Pomerium <token>"
// and "Authorization: Bearer Pomerium-<token>".
//
// The token is the session (without its refresh token and raw ID token)
// sealed by the session codec under the name "programmatic <host>": the
// route's host is the associated data, so a token issued for one route
// does not open on another. It lasts as long as the session would
// (IssuedAt + cookie_expire) and is not refreshed: its claims are those
// of the sign-in. A request that carries it is a bearer session
// (Session.Bearer), so its Authorization header never reaches the
// upstream unless pass_bearer_token is set.
//
// The redirect URI must be on a host of ProgrammaticRedirectDomains
// (Pomerium's programmatic_redirect_domain_whitelist; see
// programmaticRedirect). Its default, [localhost], allows loopback URLs
// only: the token goes only to the machine the browser runs on.

const (
	// loginAPIPath is the login API, below the prefix.
	loginAPIPath = "api/v1/login"
	// programmaticParam carries the sealed request on sign_in.
	programmaticParam = "programmatic"
	// maxRedirectURI bounds a programmatic redirect URI.
	maxRedirectURI = 2048
)

// programmaticRequest is what the sign-in URL of a programmatic login
// carries, sealed.
type programmaticRequest struct {
	RedirectURI string    `json:"u"`
	Host        string    `json:"h"`
	Expires     time.Time `json:"e"`
}

// programmaticLogin answers the login API: the sign-in URL for a loopback
// redirect URI, or 400 invalid-callback.
func (a *Authenticator) programmaticLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		a.errorPage(w, r, http.StatusMethodNotAllowed, string(authz.ReasonMethodNotAllowed),
			"Use GET "+a.names.prefix+loginAPIPath+"?"+a.names.redirectParam+"=<loopback URL>.")
		return
	}
	raw := r.URL.Query().Get(a.names.redirectParam)
	host, hostOK := canonicalAuthority(r.Host)
	redirect, ok := a.programmaticRedirect(raw)
	if !ok || !hostOK {
		a.cfg.Logger.Warn("programmatic login refused", zap.String("reason", string(authz.ReasonBadCallback)),
			zap.String("host", r.Host), zap.String(a.names.redirectParam, raw), zap.String("remote_addr", r.RemoteAddr))
		a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonBadCallback), a.redirectRule())
		return
	}
	v, err := a.login.seal(programmaticName(host), programmaticRequest{
		RedirectURI: redirect, Host: host, Expires: a.cfg.Now().Add(loginTTL),
	})
	if err != nil {
		a.errorPage(w, r, http.StatusInternalServerError, string(authz.ReasonInternal), "Could not start the sign-in.")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintf(w, "https://%s%ssign_in?%s=%s", r.Host, a.names.prefix, programmaticParam, url.QueryEscape(v))
}

// programmaticSignIn starts the sign-in of a sign-in URL the login API
// gave: one for this host, not expired, with a loopback redirect URI.
func (a *Authenticator) programmaticSignIn(w http.ResponseWriter, r *http.Request) {
	bad := func(err error) {
		a.cfg.Logger.Warn("programmatic sign-in refused", zap.String("reason", string(authz.ReasonBadCallback)),
			zap.String("host", r.Host), zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonBadCallback),
			"This sign-in link is not valid here or has expired. Start the sign-in again from the application that opened it.")
	}
	host, ok := canonicalAuthority(r.Host)
	if !ok {
		bad(errors.New("the Host is not a host name"))
		return
	}
	var pr programmaticRequest
	if _, err := a.login.open(programmaticName(host), r.URL.Query().Get(programmaticParam), &pr); err != nil {
		bad(err)
		return
	}
	if pr.Host != host || a.cfg.Now().After(pr.Expires) {
		bad(errors.New("the sign-in link expired or is for another host"))
		return
	}
	redirect, ok := a.programmaticRedirect(pr.RedirectURI)
	if !ok {
		bad(errors.New("the redirect URI is not on a host of programmatic_redirect_domain_whitelist"))
		return
	}
	a.beginLogin(w, r, "https://"+r.Host+"/", redirect)
}

// finishProgrammatic ends the callback of a programmatic login: it sends
// the browser to the redirect URI with the token for this host.
func (a *Authenticator) finishProgrammatic(w http.ResponseWriter, r *http.Request, s *Session, redirect string) {
	host, ok := canonicalAuthority(r.Host)
	redirect, allowed := a.programmaticRedirect(redirect)
	var token string
	var err error
	if !ok || !allowed {
		err = errors.New("the host or redirect URI is no longer acceptable")
	} else {
		token, err = a.programmaticToken(s, host)
	}
	if err != nil {
		a.cfg.Logger.Error("programmatic sign-in could not issue its token", zap.String("host", r.Host), zap.Error(err))
		a.errorPage(w, r, http.StatusInternalServerError, string(authz.ReasonInternal), "Could not issue the sign-in token.")
		return
	}
	a.cfg.Logger.Info("signed in (programmatic login)", zap.String("user_id", s.Subject), zap.String("email", s.Email),
		zap.String("host", r.Host))
	sep := "?"
	if strings.Contains(redirect, "?") {
		sep = "&"
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, redirect+sep+a.names.tokenParam+"="+url.QueryEscape(token), http.StatusFound)
}

// programmaticName is the associated data of a programmatic login's
// sealed values for a host (canonicalAuthority's form): the sign-in
// request (login key) and the token (session key).
func programmaticName(host string) string { return "programmatic " + host }

// programmaticToken seals a token for host from a new session: s without
// its refresh token and raw ID token, under an ID of its own.
func (a *Authenticator) programmaticToken(s *Session, host string) (string, error) {
	t := *s
	t.ID, t.RefreshToken, t.RawIDToken, t.Bearer, t.viaToken = randomID(), "", "", false, false
	return a.session.seal(a.tokenName(host), &t)
}

// tokenName is the associated data of a programmatic token: the host's
// programmaticName and, for a named IdP, its name, so a token of one IdP
// never opens as another's (the default's stays as it was).
func (a *Authenticator) tokenName(host string) string {
	if a.cfg.IDPName == "" {
		return programmaticName(host)
	}
	return programmaticName(host) + " idp " + a.cfg.IDPName
}

// programmaticCredential returns the programmatic token of a request:
// "Authorization: <scheme> <token>" or "Authorization: Bearer
// <scheme>-<token>" (scheme IAP, or Pomerium under compat pomerium).
func (a *Authenticator) programmaticCredential(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	if p := a.names.tokenScheme + " "; hasPrefixFold(auth, p) {
		return strings.TrimSpace(auth[len(p):]), true
	}
	if hasPrefixFold(auth, "bearer ") {
		if raw := strings.TrimSpace(auth[len("bearer "):]); a.isProgrammaticToken(raw) {
			return raw[len(a.names.tokenScheme)+1:], true
		}
	}
	return "", false
}

// isProgrammaticToken reports whether a bearer token is "<scheme>-...".
func (a *Authenticator) isProgrammaticToken(raw string) bool {
	return hasPrefixFold(raw, a.names.tokenScheme+"-")
}

// tokenSession opens a programmatic token for the request's host. Any
// failure wraps ErrBadBearer (401 invalid-bearer-token).
func (a *Authenticator) tokenSession(r *http.Request, token string) (*Session, error) {
	host, ok := canonicalAuthority(r.Host)
	if !ok {
		return nil, fmt.Errorf("%w: the request's Host is not a host name", ErrBadBearer)
	}
	var s Session
	if _, err := a.session.open(a.tokenName(host), token, &s); err != nil {
		return nil, fmt.Errorf("%w: the programmatic login token does not open for %s (issued for another route, sealed under another cookie_secret, or tampered with): %w",
			ErrBadBearer, host, err)
	}
	if a.cfg.Now().After(a.sessionEnds(s.IssuedAt)) {
		return nil, fmt.Errorf("%w: the programmatic login token expired with its session (cookie_expire)", ErrBadBearer)
	}
	if err := a.checkRevoked(&s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBearer, err)
	}
	if missing := a.unkeptClaim(&s); missing != "" {
		return nil, fmt.Errorf("%w: the programmatic login token predates the use of claim %q: sign in again", ErrBadBearer, missing)
	}
	s.Bearer, s.viaToken = true, true
	return &s, nil
}

// programmaticRedirect checks a programmatic login's redirect URI against
// ProgrammaticRedirectDomains and returns it as it was checked. Pomerium
// (urlutil.IsRedirectAllowed) accepts an http or https URL whose host name
// is one of the list, on any port, "localhost" standing for every loopback
// URL. Here the URL is also written strictly, so that a browser reads it
// as it was checked: the host is a name of [a-z0-9.-_], a dotted IPv4
// address or a bracketed IPv6 one, with an optional port; no user info,
// escapes, backslashes, fragment, spaces, controls or non-ASCII anywhere.
// A host other than loopback takes https only: the token in the URL would
// otherwise cross the network readable by anyone on the way.
func (a *Authenticator) programmaticRedirect(raw string) (string, bool) {
	if raw == "" || len(raw) > maxRedirectURI || strings.ContainsAny(raw, "\\#") {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return "", false
		}
	}
	var rest string
	https := false
	switch {
	case hasPrefixFold(raw, "http://"):
		rest = raw[len("http://"):]
	case hasPrefixFold(raw, "https://"):
		rest, https = raw[len("https://"):], true
	default:
		return "", false
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, ok := canonicalAuthority(rest[:end])
	if !ok {
		return "", false
	}
	host := authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := url.Parse(raw); err != nil {
		return "", false
	}
	for _, d := range a.cfg.ProgrammaticRedirectDomains {
		if redirectDomainMatches(d, host, https) {
			return raw, true
		}
	}
	return "", false
}

// redirectDomainMatches reports whether host (lowercase, without port or
// brackets) is the list entry d: "localhost" matches every loopback host,
// over http or https; any other entry matches its own host name, or the
// same IP address, over https.
func redirectDomainMatches(d, host string, https bool) bool {
	d = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(d), "["), "]")
	if d == "localhost" {
		if host == "localhost" {
			return true
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	if !https {
		return false
	}
	if ip, want := net.ParseIP(host), net.ParseIP(d); ip != nil || want != nil {
		return ip != nil && want != nil && ip.Equal(want)
	}
	return host == d
}

// CheckRedirectDomain checks an entry of Config.ProgrammaticRedirectDomains:
// a host name or IP address alone, which a redirect URI's host can equal.
func CheckRedirectDomain(d string) error {
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			return errors.New("write an internationalized name in its ASCII (xn--) form")
		}
	}
	switch bare := strings.TrimSuffix(strings.TrimPrefix(d, "["), "]"); {
	case d == "":
		return errors.New("an empty host name")
	case net.ParseIP(bare) != nil && (bare == d || strings.Contains(bare, ":") && d == "["+bare+"]"):
		return nil
	case strings.Contains(d, "*"):
		return errors.New("wildcards are not supported: each entry is a whole host name, as in Pomerium")
	case strings.HasSuffix(d, "."):
		return errors.New("write the host name without its final dot")
	}
	if h, ok := canonicalAuthority(d); !ok || h != strings.ToLower(d) || strings.Contains(d, ":") {
		return errors.New("want a host name or IP address alone, such as example.com or localhost (no scheme, port or path)")
	}
	return nil
}

// redirectRule says which redirect URIs the login API takes, for its
// refusal.
func (a *Authenticator) redirectRule() string {
	loopback, others := false, false
	for _, d := range a.cfg.ProgrammaticRedirectDomains {
		if strings.EqualFold(d, "localhost") {
			loopback = true
		} else {
			others = true
		}
	}
	p := a.names.redirectParam
	switch {
	case loopback && others:
		return p + " must be a loopback URL, such as http://127.0.0.1:8000/callback, or an https URL on a host this server allows " +
			"(programmatic_redirect_domain_whitelist): the sign-in sends its token there."
	case loopback:
		return p + " must be a loopback URL, such as http://127.0.0.1:8000/callback, http://[::1]:8000/ or http://localhost:8000/: " +
			"the sign-in sends its token there, so it may go only to the machine the browser runs on."
	case others:
		return p + " must be an https URL on a host this server allows (programmatic_redirect_domain_whitelist): the sign-in sends its token there."
	}
	return "Programmatic login is turned off on this server (its programmatic_redirect_domain_whitelist is empty)."
}

// StripTokens removes every Authorization header that carries a
// programmatic login token, under either mode's names ("IAP <token>",
// "Bearer IAP-...", "Pomerium <token>", "Bearer Pomerium-..."), whatever
// the whitespace and however many Authorization headers the request has,
// accepted or not: it is caddy-iap's credential, never the upstream's, and
// an upstream given one (say, a token for another route) could replay it.
// Other Authorization headers are kept.
func StripTokens(h http.Header) {
	values := h.Values("Authorization")
	if len(values) == 0 {
		return
	}
	kept := values[:0:0]
	for _, v := range values {
		if !isTokenCredential(v) {
			kept = append(kept, v)
		}
	}
	if len(kept) == len(values) {
		return
	}
	h.Del("Authorization")
	for _, v := range kept {
		h.Add("Authorization", v)
	}
}

func isTokenCredential(v string) bool {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return false
	}
	for _, compat := range []string{"", "pomerium"} {
		scheme := namesFor(compat).tokenScheme
		if strings.EqualFold(fields[0], scheme) ||
			strings.EqualFold(fields[0], "bearer") && len(fields) > 1 && hasPrefixFold(fields[1], scheme+"-") {
			return true
		}
	}
	return false
}
