package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
)

// serveEndpoint answers the endpoints that need no session: the callback,
// sign-in, sign-out and the programmatic login API. It reports whether it
// answered.
func (a *Authenticator) serveEndpoint(w http.ResponseWriter, r *http.Request) bool {
	switch strings.TrimPrefix(r.URL.Path, a.names.prefix) {
	case "callback":
		if a.callbackPath != a.names.prefix+"callback" {
			return false
		}
		a.callback(w, r)
	case "authenticate":
		a.issueHandoff(w, r)
	case "handoff":
		a.acceptHandoff(w, r)
	case "sign_in":
		if r.URL.Query().Has(programmaticParam) {
			a.programmaticSignIn(w, r)
			return true
		}
		a.startLogin(w, r, a.returnURL(r.URL.Query().Get("redirect_uri"), r.Host))
	case loginAPIPath:
		a.programmaticLogin(w, r)
	case "sign_out":
		a.signOut(w, r)
	case signedOutPath:
		a.signedOut(w, r)
	case backchannelLogoutPath:
		a.backchannelLogout(w, r)
	default:
		return false
	}
	return true
}

// serveUserEndpoint answers the endpoints of a signed-in user: the user
// page, its JSON, and the current assertion.
func (a *Authenticator) serveUserEndpoint(w http.ResponseWriter, r *http.Request, s *Session) {
	w.Header().Set("Cache-Control", "no-store")
	switch strings.TrimPrefix(r.URL.Path, a.names.prefix) {
	case "":
		setPageHeaders(w)
		_ = pages.ExecuteTemplate(w, "user", a.userInfo(r, s))
	case "user":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.userInfo(r, s))
	case "jwt":
		jwt, err := a.Assertion(s, r.Host)
		if err != nil {
			a.errorPage(w, r, http.StatusInternalServerError, string(authz.ReasonInternal), "Could not sign the assertion.")
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(jwt))
	case "routes", portalAPIPath:
		if a.cfg.Routes == nil {
			a.errorPage(w, r, http.StatusNotFound, string(authz.ReasonNotFound), "There is no such page.")
			return
		}
		a.servePortal(w, r, s)
	default:
		a.errorPage(w, r, http.StatusNotFound, string(authz.ReasonNotFound), "There is no such page.")
	}
}

type userInfo struct {
	Subject          string          `json:"sub"`
	Email            string          `json:"email,omitempty"`
	Name             string          `json:"name,omitempty"`
	Groups           []string        `json:"groups"`
	Claims           map[string]any  `json:"claims,omitempty"`
	SessionExpires   time.Time       `json:"session_expires"`
	IDTokenExpires   time.Time       `json:"id_token_expires"`
	ClientCert       *clientCertInfo `json:"client_certificate,omitempty"`
	SignOutURL       string          `json:"sign_out_url"`
	CSRFToken        string          `json:"-"`
	AssertionHeader  string          `json:"-"`
	AuthenticatedVia string          `json:"authenticated_via"`
	Version          string          `json:"version,omitempty"` // the plugin's
}

type clientCertInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	Fingerprint string    `json:"fingerprint_sha256"`
	NotAfter    time.Time `json:"not_after"`
}

func (a *Authenticator) userInfo(r *http.Request, s *Session) userInfo {
	u := userInfo{
		Subject: s.Subject, Email: s.Email, Name: s.Name, Groups: s.Groups, Claims: s.Claims,
		SessionExpires: a.sessionEnds(s.IssuedAt), IDTokenExpires: s.IDTokenExpiry,
		SignOutURL: a.names.prefix + "sign_out", CSRFToken: a.csrfToken(s), AuthenticatedVia: "cookie",
		Version: a.cfg.Version,
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	if s.Bearer {
		u.AuthenticatedVia = "bearer"
		u.SessionExpires = s.IDTokenExpiry
	}
	if s.viaToken {
		u.AuthenticatedVia = "programmatic-token"
		u.SessionExpires = a.sessionEnds(s.IssuedAt)
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		u.ClientCert = certInfo(r.TLS.PeerCertificates[0])
	}
	return u
}

func certInfo(c *x509.Certificate) *clientCertInfo {
	sum := sha256.Sum256(c.Raw)
	return &clientCertInfo{Subject: c.Subject.String(), Issuer: c.Issuer.String(), Fingerprint: hex.EncodeToString(sum[:]), NotAfter: c.NotAfter}
}

// csrfToken binds the sign-out form to the session.
func (a *Authenticator) csrfToken(s *Session) string {
	return csrfTokenWith(a.csrfKeys[0], s)
}

func csrfTokenWith(key []byte, s *Session) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("sign_out " + s.ID))
	return hex.EncodeToString(mac.Sum(nil))
}

// csrfValid reports whether a sign-out form's token is the session's,
// under the current cookie secret or a previous one: a sign-out page shown
// before a rotation still works after it.
func (a *Authenticator) csrfValid(token string, s *Session) bool {
	ok := false
	for _, k := range a.csrfKeys {
		ok = constantEqual(token, csrfTokenWith(k, s)) || ok
	}
	return ok
}

// crossOrigin refuses what browsers mark as cross-site: Sec-Fetch-Site
// other than same-origin or none, or else an Origin of another host.
var crossOrigin = http.NewCrossOriginProtection()

// signOut shows a confirmation page on GET; on a same-origin POST with the
// page's CSRF token it clears the session and, when the IdP has an
// end_session_endpoint, redirects there with id_token_hint and
// post_logout_redirect_uri. Any other POST changes nothing and is refused:
// a cross-site form arrives without the SameSite=Lax cookie, so "no
// session" must not mean "clear it anyway" (issue 11).
func (a *Authenticator) signOut(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s := a.cookieSession(r)
	returnTo := a.signOutReturn(r.URL.Query().Get("redirect_uri"), r.Host)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		setPageHeaders(w)
		token := ""
		if s != nil {
			token = a.csrfToken(s)
		}
		_ = pages.ExecuteTemplate(w, "sign_out", map[string]any{"Session": s, "CSRFToken": token, "Action": r.URL.RequestURI()})
	case http.MethodPost:
		refuse := func(detail string, err error) {
			a.cfg.Logger.Warn("sign-out refused", zap.String("reason", string(authz.ReasonCSRF)), zap.String("detail", detail),
				zap.String("host", r.Host), zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
			a.errorPage(w, r, http.StatusForbidden, string(authz.ReasonCSRF),
				"This sign-out form is not valid here. Open the sign-out page of this site again and use its button.")
		}
		if err := crossOrigin.Check(r); err != nil {
			refuse("cross-origin request", err)
			return
		}
		if s == nil {
			refuse("no session", nil)
			return
		}
		if !a.csrfValid(r.PostFormValue("csrf_token"), s) {
			refuse("the form token does not match the session", nil)
			return
		}
		a.deleteServerSession(r)
		a.sessionJar().clear(w, r)
		// A copy of the cookie (another browser, a stolen one) ends too, on
		// every instance sharing the revocation storage.
		if err := a.RevokeSession(s.ID, a.sessionEnds(s.IssuedAt)); err != nil {
			a.cfg.Logger.Warn("sign-out: revoking the session", zap.String("user_id", s.Subject), zap.Error(err))
		}
		a.cfg.Logger.Info("signed out", zap.String("user_id", s.Subject), zap.String("host", r.Host))
		if _, _, endURL, err := a.idp.get(); err == nil && endURL != "" {
			// Under central sign-in the session's ID is the sign-in host's
			// and every route host's too (hand-offs keep it), so revoking it
			// ended this sign-in on all of them; the IdP sends the browser
			// back to the sign-in host's signed_out, the one
			// post_logout_redirect_uri to register.
			back := r.Host
			if a.central(r) {
				back = a.authHost
			}
			http.Redirect(w, r, a.endSessionURL(endURL, s, back, returnTo), http.StatusFound)
			return
		}
		http.Redirect(w, r, returnTo, http.StatusFound)
	default:
		w.Header().Set("Allow", "GET, POST")
		a.errorPage(w, r, http.StatusMethodNotAllowed, string(authz.ReasonMethodNotAllowed), "Use GET to see the sign-out page, and its button to sign out.")
	}
}

// signOutReturn is where sign-out ends: raw (redirect_uri, or the state
// the IdP sends back) when the return-URL rules accept it, else
// sign_out_redirect_url when set, else the host's root.
func (a *Authenticator) signOutReturn(raw, host string) string {
	if u, ok := a.safeReturnURL(raw, host); ok {
		return u
	}
	if a.cfg.SignOutRedirectURL != "" {
		return a.cfg.SignOutRedirectURL
	}
	return a.returnURL("", host)
}

// cookieSession is the session in the request's cookie as it is: not
// refreshed, and nothing written whatever its state. nil when there is no
// valid session.
func (a *Authenticator) cookieSession(r *http.Request) *Session {
	raw, err := a.jar.read(r)
	if err != nil {
		return nil
	}
	s, _, err := a.openSession(raw)
	if err != nil || a.cfg.Now().After(a.sessionEnds(s.IssuedAt)) || a.checkRevoked(&s) != nil {
		return nil
	}
	return &s
}

// serveJWKS answers the public keys of every key in the ring: the one
// that signs, those scheduled to sign next, and those retired while their
// assertions may live.
func (a *Authenticator) serveJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(a.cfg.JWKSMaxAge.Seconds())))
	_, _ = w.Write(a.signer.ring.Load().jwks)
}
