package authn

import (
	"errors"
	"fmt"
	"net/http"
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
}

func (a *Authenticator) callbackURL(host string) string {
	return "https://" + host + a.names.prefix + "callback"
}

// startLogin binds a new state, nonce and PKCE verifier to a login cookie
// and redirects to the IdP.
func (a *Authenticator) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	_, oauth, _, err := a.idp.get()
	if err == nil {
		err = a.idp.reachable()
	}
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	ls := loginState{
		State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: returnTo, Host: r.Host, Expires: a.cfg.Now().Add(loginTTL),
	}
	v, err := a.login.seal(a.loginJ.name, ls)
	if err != nil {
		a.errorPage(w, r, http.StatusInternalServerError, string(authz.ReasonInternal), "Could not start the sign-in.")
		return
	}
	http.SetCookie(w, a.loginJ.cookie(a.loginJ.name, v, int(loginTTL.Seconds()), ls.Expires))
	oauth.RedirectURL = a.callbackURL(r.Host)
	target := oauth.AuthCodeURL(ls.State, oidc.Nonce(ls.Nonce), oauth2.S256ChallengeOption(ls.Verifier))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// callback completes the sign-in. A missing, reused or mismatched state,
// or any failure of the exchange, is a 400 page: never a session.
func (a *Authenticator) callback(w http.ResponseWriter, r *http.Request) {
	bad := func(detail string, err error) {
		a.cfg.Logger.Warn("sign-in callback refused", zap.String("reason", string(authz.ReasonBadCallback)), zap.String("detail", detail),
			zap.String("host", r.Host), zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		a.loginJ.clear(w, r)
		a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonBadCallback),
			"This sign-in link is not valid ("+detail+"). Go back to the page you wanted and sign in again.")
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		bad("the identity provider answered "+e, errors.New(q.Get("error_description")))
		return
	}
	c, err := r.Cookie(a.loginJ.name)
	if err != nil {
		bad("no sign-in in progress in this browser", err)
		return
	}
	var ls loginState
	if err := a.login.open(a.loginJ.name, c.Value, &ls); err != nil {
		bad("the sign-in cookie is not valid", err)
		return
	}
	if !constantEqual(q.Get("state"), ls.State) || ls.State == "" {
		bad("state mismatch", errors.New("the state parameter does not match the sign-in cookie"))
		return
	}
	if ls.Host != r.Host || a.cfg.Now().After(ls.Expires) {
		bad("the sign-in expired or started on another host", nil)
		return
	}
	verifier, oauth, _, err := a.idp.get()
	if err != nil {
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
	a.loginJ.clear(w, r)
	if err := a.writeSession(w, r, s); err != nil {
		if !errors.Is(err, ErrSessionTooLarge) {
			bad("the session could not be kept", err)
			return
		}
		// 400, as for the callback's other refusals: the sign-in cannot
		// complete and trying again will not help, yet the server is not
		// failing (no 5xx for a property of one account), and 431 would
		// blame a request that was small.
		a.cfg.Logger.Warn("sign-in refused", zap.String("reason", string(authz.ReasonSessionTooLarge)),
			zap.String("user_id", s.Subject), zap.String("email", s.Email), zap.Int("groups", len(s.Groups)),
			zap.String("host", r.Host), zap.Error(err))
		a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonSessionTooLarge), fmt.Sprintf(
			"You signed in, but your account carries more than this site can keep in its session cookies (%d groups), "+
				"so no session was started: browsers would send more than the server accepts. "+
				"Ask the administrator to send fewer groups or claims to this application.", len(s.Groups)))
		return
	}
	a.cfg.Logger.Info("signed in", zap.String("user_id", s.Subject), zap.String("email", s.Email), zap.String("host", r.Host))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.returnURL(ls.ReturnTo, r.Host), http.StatusFound)
}
