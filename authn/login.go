package authn

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/caddy-iap/caddy-iap/authz"
)

// loginState is what the login cookie holds between the redirect to the IdP
// and the callback.
type loginState struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	ReturnTo string    `json:"r"`
	Host     string    `json:"h"`
	Expires  time.Time `json:"e"`
	// Programmatic is the loopback redirect URI of a programmatic login
	// (checked by programmaticRedirect): the callback sends the browser there
	// with a token instead of to ReturnTo.
	Programmatic string `json:"p,omitempty"`
}

// Each sign-in in progress has its own login cookie, named for its state
// (loginName), so that two started at once in one browser (two tabs that
// each met the sign-in) do not overwrite each other: each callback finds
// its own by the state the IdP sends back, and clears only that one. A
// browser keeps at most maxLogins of them; starting one more expires the
// oldest, as Pomerium's PKCE store does.
const (
	maxLogins    = 5
	loginIDBytes = 6 // 12 hex digits of SHA-256(state) in the name
)

// loginName is the name of the login cookie of the sign-in with this
// state: the login prefix, "_", and a short id derived from the state.
func (a *Authenticator) loginName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return a.loginJ.name + "_" + hex.EncodeToString(sum[:loginIDBytes])
}

// isLoginName reports whether name is one loginName makes.
func (a *Authenticator) isLoginName(name string) bool {
	id, ok := strings.CutPrefix(name, a.loginJ.name+"_")
	return ok && len(id) == 2*loginIDBytes && isLowerHex(id)
}

// isLowerHex reports whether s is lowercase hex digits only.
func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// dropOldLogins makes room for one more sign-in: when the request carries
// maxLogins login cookies or more, the oldest (by the expiry sealed in
// them; one that does not open counts as oldest) are expired, so that with
// the new one the browser keeps maxLogins. At most maxLogins are expired
// per response, whatever the request carries.
func (a *Authenticator) dropOldLogins(w http.ResponseWriter, r *http.Request) {
	type pending struct {
		name    string
		expires time.Time
	}
	var logins []pending
	seen := map[string]bool{}
	for _, c := range r.Cookies() {
		if !a.isLoginName(c.Name) || seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		var ls loginState
		_, _ = a.login.open(c.Name, c.Value, &ls) // a zero expiry when it does not open
		logins = append(logins, pending{c.Name, ls.Expires})
	}
	excess := len(logins) - (maxLogins - 1)
	if excess <= 0 {
		return
	}
	slices.SortFunc(logins, func(x, y pending) int {
		return cmp.Or(x.expires.Compare(y.expires), strings.Compare(x.name, y.name))
	})
	for _, p := range logins[:min(excess, maxLogins)] {
		http.SetCookie(w, a.loginJ.cookie(p.name, "", -1, time.Unix(0, 0)))
	}
}

// hasLogin reports whether the request carries any login cookie.
func (a *Authenticator) hasLogin(r *http.Request) bool {
	for _, c := range r.Cookies() {
		if a.isLoginName(c.Name) {
			return true
		}
	}
	return false
}

func (a *Authenticator) callbackURL(host string) string {
	return "https://" + host + a.callbackPath
}

// startLogin binds a new state, nonce and PKCE verifier to a login cookie
// of its own and redirects to the IdP.
func (a *Authenticator) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	a.beginLogin(w, r, returnTo, "")
}

// beginLogin is startLogin, for a programmatic login when programmatic
// (its loopback redirect URI) is set.
func (a *Authenticator) beginLogin(w http.ResponseWriter, r *http.Request, returnTo, programmatic string) {
	_, oauth, _, err := a.idp.get()
	if err == nil {
		err = a.idp.reachable()
	}
	if err != nil {
		a.cfg.observe(EventSignIn, ResultFailure, string(authz.ReasonIdPUnavailable))
		a.unavailable(w, r, err)
		return
	}
	ls := loginState{
		State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: returnTo, Host: r.Host, Expires: a.cfg.Now().Add(loginTTL), Programmatic: programmatic,
	}
	var target string
	if a.central(r) {
		// The sign-in host signs in with the IdP (handoff.go).
		ls.Nonce, ls.Verifier = "", ""
		target = "https://" + a.authHost + a.names.prefix + "authenticate?" + url.Values{"host": {r.Host}, "state": {ls.State}}.Encode()
	} else {
		oauth.RedirectURL = a.callbackURL(r.Host)
		opts := []oauth2.AuthCodeOption{oidc.Nonce(ls.Nonce), oauth2.S256ChallengeOption(ls.Verifier)}
		for _, k := range slices.Sorted(maps.Keys(a.cfg.AuthParams)) {
			opts = append(opts, oauth2.SetAuthURLParam(k, a.cfg.AuthParams[k]))
		}
		target = oauth.AuthCodeURL(ls.State, opts...)
	}
	name := a.loginName(ls.State)
	v, err := a.login.seal(name, ls)
	if err != nil {
		a.errorPage(w, r, http.StatusInternalServerError, string(authz.ReasonInternal), "Could not start the sign-in.")
		return
	}
	a.dropOldLogins(w, r)
	http.SetCookie(w, a.loginJ.cookie(name, v, int(loginTTL.Seconds()), ls.Expires))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// callback completes the sign-in whose login cookie the state names. A
// missing, reused or mismatched state, or any failure of the exchange, is
// a 400 page: never a session. It clears that sign-in's login cookie only,
// so other sign-ins of the browser still complete.
func (a *Authenticator) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	name := a.loginName(state)
	c, cookieErr := r.Cookie(name)
	bad := func(detail string, err error) {
		a.cfg.Logger.Warn("sign-in callback refused", zap.String("reason", string(authz.ReasonBadCallback)), zap.String("detail", detail),
			zap.String("host", r.Host), zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		a.cfg.observe(EventSignIn, ResultFailure, string(authz.ReasonBadCallback))
		if cookieErr == nil {
			http.SetCookie(w, a.loginJ.cookie(name, "", -1, time.Unix(0, 0)))
		}
		a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonBadCallback),
			"This sign-in link is not valid ("+detail+"). Go back to the page you wanted and sign in again.")
	}
	if e := q.Get("error"); e != "" {
		bad("the identity provider answered "+e, errors.New(q.Get("error_description")))
		return
	}
	if state == "" || cookieErr != nil {
		if a.hasLogin(r) {
			bad("state mismatch", errors.New("no sign-in in progress in this browser has this state"))
		} else {
			bad("no sign-in in progress in this browser", cookieErr)
		}
		return
	}
	var ls loginState
	// A login cookie sealed under a previous cookie secret still opens;
	// the callback clears it whatever it holds, so it is never sealed
	// again.
	if _, err := a.login.open(name, c.Value, &ls); err != nil {
		bad("the sign-in cookie is not valid", err)
		return
	}
	if !constantEqual(state, ls.State) || ls.State == "" {
		bad("state mismatch", errors.New("the state parameter does not match the sign-in cookie"))
		return
	}
	if ls.Host != r.Host || a.cfg.Now().After(ls.Expires) {
		bad("the sign-in expired or started on another host", nil)
		return
	}
	verifier, oauth, _, err := a.idp.get()
	if err != nil {
		a.cfg.observe(EventSignIn, ResultFailure, string(authz.ReasonIdPUnavailable))
		a.unavailable(w, r, err)
		return
	}
	oauth.RedirectURL = a.callbackURL(r.Host)
	ctx := a.idp.ctx(r.Context())
	tok, err := oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		bad("the code exchange failed", err)
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		bad("no ID token", errors.New("the token response has no id_token"))
		return
	}
	id, err := verifier.Verify(ctx, rawID)
	if err != nil {
		bad("the ID token does not verify", err)
		return
	}
	if !constantEqual(id.Nonce, ls.Nonce) {
		bad("nonce mismatch", fmt.Errorf("the ID token's nonce does not match the sign-in cookie"))
		return
	}
	s, err := a.sessionFrom(id)
	if err != nil {
		bad("the ID token's claims cannot be read", err)
		return
	}
	s.ID, s.RefreshToken = randomID(), tok.RefreshToken
	if a.keepIDToken() {
		s.RawIDToken = rawID
	}
	http.SetCookie(w, a.loginJ.cookie(name, "", -1, time.Unix(0, 0)))
	if !a.keepSession(w, r, s, bad) {
		return
	}
	a.cfg.observe(EventSignIn, ResultSuccess, "")
	if ls.Programmatic != "" {
		a.finishProgrammatic(w, r, s, ls.Programmatic)
		return
	}
	a.cfg.Logger.Info("signed in", zap.String("user_id", s.Subject), zap.String("email", s.Email), zap.String("host", r.Host))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.returnURL(ls.ReturnTo, r.Host), http.StatusFound)
}

// keepSession sets the session cookie of a sign-in that completed. When the
// session cannot be kept it answers the request (a 400 page, or bad) and
// returns false.
func (a *Authenticator) keepSession(w http.ResponseWriter, r *http.Request, s *Session, bad func(detail string, err error)) bool {
	err := a.writeSession(w, r, s)
	if err == nil {
		return true
	}
	if !errors.Is(err, ErrSessionTooLarge) {
		bad("the session could not be kept", err)
		return false
	}
	// 400, as for the callback's other refusals: the sign-in cannot
	// complete and trying again will not help, yet the server is not
	// failing (no 5xx for a property of one account), and 431 would
	// blame a request that was small.
	a.cfg.Logger.Warn("sign-in refused", zap.String("reason", string(authz.ReasonSessionTooLarge)),
		zap.String("user_id", s.Subject), zap.String("email", s.Email), zap.Int("groups", len(s.Groups)),
		zap.String("host", r.Host), zap.Error(err))
	a.cfg.observe(EventSignIn, ResultFailure, string(authz.ReasonSessionTooLarge))
	a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonSessionTooLarge), fmt.Sprintf(
		"You signed in, but your account carries more than this site can keep in its session cookies (%d groups), "+
			"so no session was started: browsers would send more than the server accepts. "+
			"Ask the administrator to send fewer groups or claims to this application.", len(s.Groups)))
	return false
}
