package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

var partnerBob = testenv.DexUser{Email: "bob@partner.example", Name: "Bob", Password: "builder"}

// TestSeveralIdPs: a route of a named IdP signs its users in with that IdP,
// and a session or token of one IdP is never accepted on a route of
// another. Two Dex instances are the two IdPs.
func TestSeveralIdPs(t *testing.T) {
	corp, partner, caddy := startTwoIdPs(t)

	ua := caddy.NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("corp.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("corp sign-in: %d\n%s", resp.StatusCode, body)
	}
	// The partner route asks its own IdP, whatever session corp has.
	resp, _ := ua.Get(t, ua.URL("partner.test", "/"), nil)
	if !strings.HasPrefix(resp.Request.URL.String(), partner.Issuer) {
		t.Fatalf("partner.test with a corp session ended at %s, want the partner IdP", resp.Request.URL)
	}
	if resp, body := ua.SignIn(t, ua.URL("partner.test", "/who"), partnerBob.Email, partnerBob.Password); resp.StatusCode != 200 {
		t.Fatalf("partner sign-in: %d\n%s", resp.StatusCode, body)
	} else if a := verifyAssertion(t, ua, "partner.test", echoed(t, body).Get("X-Iap-Jwt-Assertion")); a.Email != partnerBob.Email || a.IDP != "partners" {
		t.Errorf("partner assertion for %q of idp %q, want %q of partners", a.Email, a.IDP, partnerBob.Email)
	}
	// Each keeps its own user.
	_, body := ua.Get(t, ua.URL("corp.test", "/who"), nil)
	if a := verifyAssertion(t, ua, "corp.test", echoed(t, body).Get("X-Iap-Jwt-Assertion")); a.Email != alice.Email || a.IDP != "" {
		t.Errorf("corp assertion for %q of idp %q after the partner sign-in", a.Email, a.IDP)
	}
	corpCookie, partnerCookie := ua.Cookie("corp.test", "__Host-_iap"), ua.Cookie("partner.test", "__Host-_iap_partners")
	if corpCookie == "" || partnerCookie == "" {
		t.Fatalf("cookies: corp %d bytes, partner %d bytes", len(corpCookie), len(partnerCookie))
	}
	// No cookie of either IdP reaches an upstream.
	if c := echoed(t, body).Get("Cookie"); strings.Contains(c, "_iap") {
		t.Errorf("the upstream got caddy-iap's cookies: %s", c)
	}

	// A session copied to the other IdP's cookie name opens nothing.
	api := http.Header{"Accept": {"application/json"}}
	for _, c := range []struct{ host, name, value string }{
		{"partner.test", "__Host-_iap_partners", corpCookie},
		{"corp.test", "__Host-_iap", partnerCookie},
		{"partner.test", "__Host-_iap", corpCookie},
	} {
		fresh := caddy.NewUserAgent(t)
		u, _ := url.Parse(fresh.URL(c.host, "/"))
		fresh.Client.Jar.SetCookies(u, []*http.Cookie{{Name: c.name, Value: c.value, Path: "/", Secure: true}})
		resp, body := fresh.Get(t, fresh.URL(c.host, "/"), api)
		var j struct{ Reason string }
		_ = json.Unmarshal([]byte(body), &j)
		if resp.StatusCode != http.StatusUnauthorized || j.Reason != "user-unauthenticated" {
			t.Errorf("%s with %s copied from the other IdP: %d %s, want 401 user-unauthenticated", c.host, c.name, resp.StatusCode, body)
		}
	}

	// A bearer ID token is accepted only by its own IdP's routes.
	corpToken := corp.PasswordGrant(t, corp.ClientID, corp.ClientSecret, alice.Email, alice.Password, "openid email").IDToken
	partnerToken := partner.PasswordGrant(t, partner.ClientID, partner.ClientSecret, partnerBob.Email, partnerBob.Password, "openid email").IDToken
	for _, c := range []struct {
		host, token string
		want        int
	}{
		{"corp.test", corpToken, 200},
		{"partner.test", partnerToken, 200},
		{"partner.test", corpToken, 401},
		{"corp.test", partnerToken, 401},
	} {
		resp, body := caddy.NewUserAgent(t).Get(t, ua.URL(c.host, "/"), http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer " + c.token}})
		if resp.StatusCode != c.want {
			t.Errorf("%s with a bearer token: %d, want %d\n%s", c.host, resp.StatusCode, c.want, body)
		}
	}
}

func TestSeveralIdPsConfigErrors(t *testing.T) {
	idp := "\t\tidp {\n\t\t\tprovider_url http://127.0.0.1:1/dex\n\t\t\tclient_id caddy\n\t\t}\n"
	secret := "\t\tcookie_secret " + randomSecret(t) + "\n"
	for _, c := range []struct{ name, globals, route, want string }{
		{"a route naming no such IdP", "\tiap {\n" + idp + secret + "\t}", "idp nope", `idp "nope": the iap app has no such identity provider`},
		{"a bad IdP name", "\tiap {\n" + idp + "\t\tidp Login {\n\t\t\tprovider_url http://127.0.0.1:1/x\n\t\t\tclient_id y\n\t\t}\n" + secret + "\t}", "", `idps: "Login" is not a valid name`},
		{"an IdP named twice", "\tiap {\n" + idp + "\t\tidp b {\n\t\t\tprovider_url http://127.0.0.1:1/x\n\t\t\tclient_id y\n\t\t}\n\t\tidp b {\n\t\t\tprovider_url http://127.0.0.1:1/x\n\t\t\tclient_id y\n\t\t}\n" + secret + "\t}", "", "idp b is set twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := testenv.Validate(t, testenv.WriteCaddyfile(t, t.TempDir(), c.globals, site("app.test", "to http://127.0.0.1:1", c.route, "allow_any_authenticated_user")))
			if ok || !strings.Contains(out, c.want) {
				t.Errorf("validate ok=%v, want %q:\n%s", ok, c.want, out)
			}
		})
	}
}

// TestSeveralIdPsInChromium: in one browser, each route signs in with its
// own IdP, and signing in with one does not sign in with the other.
func TestSeveralIdPsInChromium(t *testing.T) {
	corp, partner, caddy := startTwoIdPs(t)
	page := func(h string) string { return fmt.Sprintf("https://%s:%d/hello", h, caddy.HTTPSPort) }
	browser := testenv.StartChromium(t)
	signIn := func(dex *testenv.Dex, host string, u testenv.DexUser) {
		t.Helper()
		browser.Navigate(page(host))
		browser.WaitFor(`document.querySelector("input[name=login]")`)
		if at := browser.Eval("location.href"); !strings.HasPrefix(at, dex.Issuer) {
			t.Fatalf("%s: at %s, want the login page of %s", host, at, dex.Issuer)
		}
		browser.Eval(fmt.Sprintf(`document.querySelector("input[name=login]").value = %q;
			document.querySelector("input[name=password]").value = %q;
			document.querySelector("form").submit(); "ok"`, u.Email, u.Password))
		browser.WaitFor(fmt.Sprintf(`location.href === %q && document.body.innerText.includes("X-Iap-Jwt-Assertion")`, page(host)))
	}
	signIn(corp, "corp.test", alice)
	signIn(partner, "partner.test", partnerBob)
	for _, c := range []struct{ host, email string }{{"corp.test", alice.Email}, {"partner.test", partnerBob.Email}} {
		browser.Navigate(fmt.Sprintf("https://%s:%d/.iap/user", c.host, caddy.HTTPSPort))
		browser.WaitFor(`document.body.innerText.includes("email")`)
		if body := browser.Eval("document.body.innerText"); !strings.Contains(body, `"email":"`+c.email+`"`) {
			t.Errorf("%s's user is not %s: %s", c.host, c.email, body)
		}
	}
}

// startTwoIdPs starts two Dex instances and a Caddy whose corp.test signs
// in with the first (the default IdP) and partner.test with the second
// (idp partners).
func startTwoIdPs(t *testing.T) (corp, partner *testenv.Dex, caddy *testenv.Caddy) {
	t.Helper()
	up := echoUpstream(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	callback := func(h string) string { return fmt.Sprintf("https://%s:%d/.iap/callback", h, httpsPort) }
	corp = testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}, RedirectURIs: []string{callback("corp.test")}})
	partner = testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{partnerBob}, RedirectURIs: []string{callback("partner.test")}})
	globals := fmt.Sprintf(`	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
		}
		idp partners {
			provider_url %s
			client_id %s
			client_secret %s
		}
		cookie_secret %s
	}`, corp.Issuer, corp.ClientID, corp.ClientSecret, partner.Issuer, partner.ClientID, partner.ClientSecret, randomSecret(t))
	caddy = testenv.StartCaddyOn(t, httpPort, httpsPort, globals,
		site("corp.test", "to "+up, "allow_any_authenticated_user")+
			site("partner.test", "to "+up, "idp partners", "allow_any_authenticated_user"))
	return corp, partner, caddy
}
