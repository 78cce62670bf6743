package module

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-iap/caddy-iap/authn"
)

// Several identity providers: the app's idp is the default, and idps names
// more. Each named IdP is an Authenticator of its own, sharing the cookie
// secret, settings and signing keys of the default, with its own session
// cookie, <cookie name>_<idp name>. A session cookie is sealed with its
// name as associated data, so a session made by one IdP never opens as
// another's, even renamed; a bearer ID token verifies only against its own
// issuer and client.

// authFor returns the Authenticator of the named IdP, the default for "".
func (a *App) authFor(name string) (*authn.Authenticator, error) {
	if name == "" {
		return a.auth, nil
	}
	if auth := a.auths[name]; auth != nil {
		return auth, nil
	}
	return nil, fmt.Errorf("idp %q: the iap app has no such identity provider (named ones: %s)", name,
		strings.Join(slices.Sorted(maps.Keys(a.IDPs)), ", "))
}

// authenticators returns every IdP's Authenticator, the default first:
// the list provisionIDPs made once, since every request's stripCookies
// walks it.
func (a *App) authenticators() []*authn.Authenticator {
	switch {
	case a == nil || a.auth == nil:
		return nil
	case a.all != nil:
		return a.all
	}
	return []*authn.Authenticator{a.auth} // an App not provisioned (tests)
}

// stripCookies removes every IdP's cookies from a request's headers: none
// of them is an upstream's, whichever IdP the route uses.
func (a *App) stripCookies(h http.Header) {
	for _, auth := range a.authenticators() {
		auth.StripCookies(h)
	}
}

// keepClaims keeps these claims in the sessions of every IdP.
func (a *App) keepClaims(names ...string) {
	for _, auth := range a.authenticators() {
		auth.KeepClaims(names...)
	}
}

// validIDPName: a letter, then letters, digits and dashes; not "login",
// which would be the default's login cookie name.
func validIDPName(n string) bool {
	if n == "" || n == "login" || n[0] < 'a' || n[0] > 'z' {
		return false
	}
	for _, c := range n {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// provisionIDPs makes the named IdPs' Authenticators from the default's
// configuration.
func (a *App) provisionIDPs(base authn.Config) error {
	a.all = []*authn.Authenticator{a.auth}
	if len(a.IDPs) == 0 {
		return nil
	}
	a.auths = make(map[string]*authn.Authenticator, len(a.IDPs))
	repl := caddy.NewReplacer()
	for name, idp := range a.IDPs {
		if !validIDPName(name) {
			return fmt.Errorf("idps: %q is not a valid name: a lowercase letter, then letters, digits and dashes (not \"login\")", name)
		}
		if idp == nil || idp.ProviderURL == "" || idp.ClientID == "" {
			return fmt.Errorf("idps %s: needs provider_url and client_id", name)
		}
		for _, f := range []struct {
			opt string
			v   *string
		}{{"provider_url", &idp.ProviderURL}, {"client_id", &idp.ClientID}, {"client_secret", &idp.ClientSecret}} {
			v, err := repl.ReplaceOrErr(*f.v, true, true)
			if err != nil {
				return fmt.Errorf("idps %s %s: %v", name, f.opt, err)
			}
			*f.v = v
		}
		if u, err := url.Parse(idp.ProviderURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("idps %s provider_url %q: must be the IdP's issuer URL, http(s)://host[/path]", name, idp.ProviderURL)
		}
		cfg := base
		cfg.ProviderURL, cfg.ClientID, cfg.ClientSecret = idp.ProviderURL, idp.ClientID, idp.ClientSecret
		cfg.Scopes, cfg.GroupsClaim, cfg.AuthParams = idp.Scopes, idp.GroupsClaim, idp.RequestParams
		cfg.CookieName = a.auth.CookieName() + "_" + name
		cfg.IDPName = name // binds its programmatic tokens
		// Central sign-in is the default IdP's: a named one signs in on
		// each route host's own callback.
		cfg.AuthenticateURL = ""
		auth, err := authn.New(cfg)
		if err != nil {
			return fmt.Errorf("idps %s: %v", name, err)
		}
		a.auths[name] = auth
	}
	for _, name := range slices.Sorted(maps.Keys(a.auths)) {
		a.all = append(a.all, a.auths[name])
	}
	return nil
}

// authn is the Authenticator of the request's route: the one of the IdP its
// iap_authenticate names, else the default.
func (st *request) authn() *authn.Authenticator {
	if st.auth != nil {
		return st.auth
	}
	if st.app != nil {
		return st.app.auth
	}
	return nil
}

// The values of jwt_issuer_format, as Pomerium writes them.
const (
	issuerHostOnly = "hostOnly"
	issuerURI      = "uri"
)

// checkIssuerFormat checks a jwt_issuer_format.
func checkIssuerFormat(f string) error {
	switch f {
	case "", issuerHostOnly, issuerURI:
		return nil
	}
	return fmt.Errorf("jwt_issuer_format %q: want %s or %s", f, issuerHostOnly, issuerURI)
}

// uriIssuer reports whether the request's assertion writes iss as a URI:
// the route's jwt_issuer_format, else the app's.
func (st *request) uriIssuer() bool {
	f := st.issuerFormat
	if f == "" && st.app != nil {
		f = st.app.JWTIssuerFormat
	}
	return f == issuerURI
}

// setSigningKeys gives every IdP's Authenticator the new key ring.
func (a *App) setSigningKeys(ring []authn.SigningKey) error {
	for _, auth := range a.authenticators() {
		if err := auth.SetSigningKeys(ring); err != nil {
			return err
		}
	}
	return nil
}
