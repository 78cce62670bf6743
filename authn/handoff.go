package authn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
)

// Central sign-in (Config.AuthenticateURL, Pomerium's
// authenticate_service_url): users sign in on one host, the only one whose
// callback the IdP lists, and every other host gets the session from it in
// a hand-off.
//
//  1. A route host without a session starts a sign-in as usual (a login
//     cookie of its own, holding a new state and the return URL), but sends
//     the browser to the sign-in host's /.iap/authenticate with its host and
//     that state, rather than to the IdP.
//  2. The sign-in host signs the user in if it has no session (the usual
//     sign-in, against its own callback), then seals a hand-off: the
//     session, the route host, the state, an ID and an expiry a minute
//     away, under a key derived from cookie_secret. It redirects to the
//     route host's /.iap/handoff with it, only for a host of this server on
//     the sign-in host's port (the return-URL rules).
//  3. The route host opens the hand-off, and takes it only if it is for this
//     host, not expired, not used before, and its state is that of a login
//     cookie of this browser. It clears that cookie, sets its own session
//     cookie, and sends the browser to the return URL.
//
// So a hand-off is good once, for one host, for a minute, and in the
// browser that started the sign-in: a hand-off URL that leaks (logs,
// history) opens nothing elsewhere, and one that an attacker got for
// their own account cannot be pushed into a victim's browser (login
// fixation). No cookie domain is shared.
//
// The hand-off carries the session with its ID, so that signing out on any
// host (a revocation of that ID) ends the sign-in on every host, and
// without its refresh token: refresh tokens that rotate could not be shared
// between hosts, so a route host's session lasts until the ID token expires
// and is then handed off again (one redirect through the sign-in host,
// which refreshes). The raw ID token goes along, for sign-out's
// id_token_hint, unless it would not fit the route host's cookie budget.

const (
	// handoffTTL is how long a hand-off may take to reach its host.
	handoffTTL = time.Minute
	// maxHandoffLen bounds the token a route host opens.
	maxHandoffLen = 16 << 10
	// maxUsedHandoffs bounds the replay memory: past it, hand-offs are
	// refused until used ones expire.
	maxUsedHandoffs = 100000
	handoffName     = "handoff"
)

// handoff is what a sign-in host hands a route host.
type handoff struct {
	Session Session   `json:"s"`
	Host    string    `json:"h"`
	State   string    `json:"st"`
	ID      string    `json:"id"`
	Expires time.Time `json:"e"`
}

// usedHandoffs remembers the hand-offs taken, until they expire.
type usedHandoffs struct {
	mu   sync.Mutex
	used map[string]time.Time
}

// take records id as used; false when it was used before or the memory is
// full.
func (u *usedHandoffs) take(id string, expires, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used == nil {
		u.used = map[string]time.Time{}
	}
	if _, seen := u.used[id]; seen {
		return false
	}
	if len(u.used) >= maxUsedHandoffs {
		for k, e := range u.used {
			if now.After(e) {
				delete(u.used, k)
			}
		}
		if len(u.used) >= maxUsedHandoffs {
			return false
		}
	}
	u.used[id] = expires
	return true
}

// handoffRef starts a hand-off token that names a hand-off kept in the
// session store (session_store storage), 64 hex digits after it.
const handoffRef = "ref."

// sealHandoff returns the token of a hand-off: the hand-off sealed, or,
// under session_store storage, a random reference to it sealed in the
// store, so that a session of any size is handed off (the URL of a sealed
// session with hundreds of groups would be far too long) and the route
// host deletes it as it takes it.
func (a *Authenticator) sealHandoff(ctx context.Context, h handoff) (string, error) {
	if a.server == nil {
		return a.handoff.seal(handoffName, h)
	}
	ref := handoffRef + randomID() + randomID()
	key := a.sessionKey(ref)
	v, err := a.handoff.seal(handoffName+" "+key, h)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, sessionStoreTimeout)
	defer cancel()
	if err := a.server.store.Store(ctx, key, []byte(v)); err != nil {
		return "", fmt.Errorf("%w: writing the hand-off: %v", ErrSessionStoreUnavailable, err)
	}
	return ref, nil
}

// openHandoff opens a token of sealHandoff. A reference is deleted from the
// store as it is read (fs.ErrNotExist: taken before, or swept); a record
// left behind is removed by the session sweep, which keeps only sessions.
func (a *Authenticator) openHandoff(ctx context.Context, token string, h *handoff) error {
	ref, isRef := strings.CutPrefix(token, handoffRef)
	if !isRef {
		_, err := a.handoff.open(handoffName, token, h)
		return err
	}
	if a.server == nil || len(ref) != 64 || !isLowerHex(ref) {
		return fmt.Errorf("%w: not a hand-off reference of this server", ErrCookie)
	}
	key := a.sessionKey(token)
	ctx, cancel := context.WithTimeout(ctx, sessionStoreTimeout)
	defer cancel()
	b, err := a.server.store.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: reading the hand-off: %v", ErrSessionStoreUnavailable, err)
	}
	if err := a.server.store.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: deleting the hand-off: %v", ErrSessionStoreUnavailable, err)
	}
	_, err = a.handoff.open(handoffName+" "+key, string(b), h)
	return err
}

// handoffRevocation prefixes the revocation record of a spent hand-off.
const handoffRevocation = "handoff:"

// spend marks a hand-off used, in this instance's memory at once and, as a
// revocation record of its ID until it expires, on every instance sharing
// the revocation storage (within their refresh, revocation_refresh). It
// returns false when it was spent before, here or elsewhere as far as the
// last refresh knows.
func (a *Authenticator) spend(h *handoff, now time.Time) bool {
	if !a.handoffs.take(h.ID, h.Expires, now) {
		return false
	}
	id := handoffRevocation + h.ID
	if r := a.revocations.Load(); r != nil {
		if _, spent := r.snap.Load().sessions[id]; spent {
			return false
		}
	}
	if err := a.Revocations().Revoke(context.Background(), Revocation{Kind: RevokeBySession, ID: id, Expires: h.Expires}); err != nil && !errors.Is(err, ErrRevocationPending) {
		a.cfg.Logger.Warn("hand-off: recording it as used", zap.Error(err))
	}
	return true
}

// parseAuthenticateURL checks Config.AuthenticateURL and returns its
// canonical authority ("auth.example.com", or with ":port" when not 443).
func parseAuthenticateURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must be https://host[:port] with no path, such as https://auth.example.com")
	}
	host, ok := canonicalAuthority(u.Host)
	if !ok {
		return "", errors.New("the host is not a host name")
	}
	return host, nil
}

// SignInHost reports whether host is the central sign-in host.
func (a *Authenticator) SignInHost(host string) bool {
	h, ok := canonicalAuthority(host)
	return a.authHost != "" && ok && h == a.authHost
}

// central reports whether a sign-in on this request's host goes through
// the sign-in host.
func (a *Authenticator) central(r *http.Request) bool {
	return a.authHost != "" && !a.SignInHost(r.Host)
}

// issueHandoff is step 2, on the sign-in host.
func (a *Authenticator) issueHandoff(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !a.SignInHost(r.Host) {
		a.errorPage(w, r, http.StatusNotFound, string(authz.ReasonNotFound), "There is no such page.")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		a.errorPage(w, r, http.StatusMethodNotAllowed, string(authz.ReasonMethodNotAllowed), "Open this page with GET.")
		return
	}
	q := r.URL.Query()
	host, state := q.Get("host"), q.Get("state")
	bad := func(detail string) {
		a.cfg.Logger.Warn("hand-off refused", zap.String("reason", string(authz.ReasonBadHandoff)), zap.String("detail", detail),
			zap.String("to", host), zap.String("host", r.Host), zap.String("remote_addr", r.RemoteAddr))
		a.cfg.observe(EventSignIn, ResultFailure, string(authz.ReasonBadHandoff))
		a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonBadHandoff),
			"This sign-in link is not valid ("+detail+"). Go back to the page you wanted and sign in again.")
	}
	to, ok := canonicalAuthority(host)
	if !ok || to == a.authHost {
		bad("the host to sign in to is not valid")
		return
	}
	// The route host's hand-off endpoint, under the return-URL rules: a
	// host of this server, on this port.
	target, ok := a.safeReturnURL("https://"+host+a.names.prefix+"handoff", r.Host)
	if !ok {
		bad("the host to sign in to is not one of this server's")
		return
	}
	if !validState(state) {
		bad("the state is not valid")
		return
	}
	var s *Session
	if raw, err := a.jar.read(r); err == nil && raw != "" {
		s, err = a.Session(w, r)
		if errors.Is(err, ErrIdPUnavailable) {
			a.unavailable(w, r, err)
			return
		}
	}
	if s == nil || s.Bearer {
		a.startLogin(w, r, "https://"+r.Host+r.URL.RequestURI())
		return
	}
	h := handoff{Session: *s, Host: to, State: state, ID: randomID(), Expires: a.cfg.Now().Add(handoffTTL)}
	h.Session.RefreshToken = ""
	token, err := a.sealHandoff(r.Context(), h)
	if err != nil {
		a.cfg.Logger.Error("hand-off: sealing it", zap.Error(err))
		a.errorPage(w, r, http.StatusInternalServerError, string(authz.ReasonInternal), "Could not hand the sign-in over.")
		return
	}
	a.cfg.Logger.Info("hand-off issued", zap.String("user_id", s.Subject), zap.String("to", to), zap.String("host", r.Host))
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target+"?token="+url.QueryEscape(token), http.StatusFound)
}

// validState is a state as randomID makes them: hex, at most 64 digits.
func validState(s string) bool {
	return s != "" && len(s) <= 64 && isLowerHex(s)
}

// acceptHandoff is step 3, on the route host.
func (a *Authenticator) acceptHandoff(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	var h handoff
	var loginCookie string
	bad := func(detail string, err error) {
		a.cfg.Logger.Warn("hand-off refused", zap.String("reason", string(authz.ReasonBadHandoff)), zap.String("detail", detail),
			zap.String("host", r.Host), zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		a.cfg.observe(EventSignIn, ResultFailure, string(authz.ReasonBadHandoff))
		if loginCookie != "" {
			http.SetCookie(w, a.loginJ.cookie(loginCookie, "", -1, time.Unix(0, 0)))
		}
		if h.ID != "" {
			// An authentic hand-off refused here is spent: one a victim's
			// browser was sent with for an attacker's state (anyone can
			// start a sign-in) must not sign the attacker in once its URL
			// leaks from this host's logs or the history.
			a.spend(&h, a.cfg.Now())
		}
		a.errorPage(w, r, http.StatusBadRequest, string(authz.ReasonBadHandoff),
			"This sign-in link is not valid ("+detail+"). Go back to the page you wanted and sign in again.")
	}
	if !a.central(r) {
		bad("no hand-off is taken on this host", nil)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		a.errorPage(w, r, http.StatusMethodNotAllowed, string(authz.ReasonMethodNotAllowed), "Open this page with GET.")
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > maxHandoffLen {
		bad("no hand-off", nil)
		return
	}
	if err := a.openHandoff(r.Context(), token, &h); errors.Is(err, fs.ErrNotExist) {
		bad("the hand-off was used before or expired", err)
		return
	} else if errors.Is(err, ErrSessionStoreUnavailable) {
		a.sessionStoreUnavailable(w, r, err)
		return
	} else if err != nil {
		bad("the hand-off is not authentic", err)
		return
	}
	now := a.cfg.Now()
	if self, _ := canonicalAuthority(r.Host); h.Host != self {
		bad("the hand-off is for another host", errors.New("for "+h.Host))
		return
	}
	if now.After(h.Expires) {
		bad("the hand-off expired", nil)
		return
	}
	name := a.loginName(h.State)
	c, err := r.Cookie(name)
	if err != nil {
		bad("no sign-in in progress in this browser", err)
		return
	}
	loginCookie = name
	var ls loginState
	if _, err := a.login.open(name, c.Value, &ls); err != nil {
		bad("the sign-in cookie is not valid", err)
		return
	}
	if !constantEqual(ls.State, h.State) || ls.Host != r.Host || now.After(ls.Expires) {
		bad("the sign-in expired or started on another host", nil)
		return
	}
	if !a.spend(&h, now) {
		bad("the hand-off was used before", nil)
		return
	}
	http.SetCookie(w, a.loginJ.cookie(name, "", -1, time.Unix(0, 0)))
	s := h.Session
	if now.After(a.sessionEnds(s.IssuedAt)) {
		bad("the session reached cookie_expire", nil)
		return
	}
	if err := a.checkRevoked(&s); errors.Is(err, errSessionRevoked) {
		// Signed out on another host while the hand-off travelled: no
		// cookie, and no programmatic token under a new ID.
		bad("the session was signed out", err)
		return
	}
	if !a.keepSession(w, r, &s, bad) {
		return
	}
	if ls.Programmatic != "" {
		a.finishProgrammatic(w, r, &s, ls.Programmatic)
		return
	}
	a.cfg.Logger.Info("signed in", zap.String("user_id", s.Subject), zap.String("email", s.Email), zap.String("host", r.Host), zap.String("via", a.authHost))
	http.Redirect(w, r, a.returnURL(ls.ReturnTo, r.Host), http.StatusFound)
}
