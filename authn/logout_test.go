package authn

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The end-session URL: id_token_hint when the session kept the raw ID
// token, client_id alone when it did not (a session over the cookie
// budget), and the host's signed_out endpoint with the return URL as
// state; the IdP's own query parameters stay.
func TestEndSessionURL(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	for _, c := range []struct {
		name, endURL, idToken string
		want                  url.Values
	}{
		{"with the ID token", "https://idp.example/logout", "h.p.s", url.Values{
			"client_id": {"caddy"}, "id_token_hint": {"h.p.s"},
			"post_logout_redirect_uri": {"https://app.test/.iap/signed_out"}, "state": {"https://app.test/page"}}},
		{"without it", "https://idp.example/logout?tenant=x", "", url.Values{
			"client_id": {"caddy"}, "tenant": {"x"},
			"post_logout_redirect_uri": {"https://app.test/.iap/signed_out"}, "state": {"https://app.test/page"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := url.Parse(a.endSessionURL(c.endURL, &Session{RawIDToken: c.idToken}, "app.test", "https://app.test/page"))
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Query(); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("query %v, want %v", got, c.want)
			}
		})
	}
}

// signed_out sends the browser to the return URL in state only when
// sign-in's checks accept it: an open redirect otherwise.
func TestSignedOutRedirectsOnlyWhereSignInWould(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	for state, want := range map[string]string{
		"https://app.test/page":        "https://app.test/page",
		"https://evil.example/":        "https://app.test/",
		"//evil.example/":              "https://app.test/",
		"javascript:alert(1)":          "https://app.test/",
		"https://app.test@evil.test/x": "https://app.test/",
		"":                             "https://app.test/",
	} {
		rec := httptest.NewRecorder()
		a.ServeEndpoint(rec, httptest.NewRequest(http.MethodGet, "https://app.test/.iap/signed_out?state="+url.QueryEscape(state), nil))
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != want {
			t.Errorf("state %q: %d to %q, want 302 to %q", state, rec.Code, rec.Header().Get("Location"), want)
		}
	}
}

// The jti memory refuses a jti it holds, forgets one once it expires, and
// stays within its bound, pushing out the one closest to expiring.
func TestJTICache(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := newJTICache(3)
	if !c.add("a", now.Add(time.Minute), now) || c.add("a", now.Add(time.Minute), now) {
		t.Fatal("a jti is accepted once")
	}
	if !c.add("a", now.Add(3*time.Minute), now.Add(2*time.Minute)) {
		t.Fatal("an expired jti is forgotten")
	}
	c.add("b", now.Add(10*time.Minute), now)
	c.add("c", now.Add(20*time.Minute), now)
	c.add("d", now.Add(30*time.Minute), now) // full: "a" goes, the closest to expiring
	if len(c.seen) != 3 {
		t.Fatalf("%d jti kept, want at most 3", len(c.seen))
	}
	for _, jti := range []string{"b", "c", "d"} {
		if c.add(jti, now.Add(time.Hour), now) {
			t.Errorf("%s was forgotten", jti)
		}
	}
}

// A request that is not a logout form is 400 before any token is read,
// with Cache-Control: no-store; with no IdP discovered, a form is 503.
func TestBackchannelLogoutRequestShape(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused") // never started
	post := func(contentType, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "https://app.test/.iap/backchannel_logout", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		a.ServeEndpoint(rec, r)
		return rec
	}
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"JSON":          post("application/json", `{"logout_token":"x"}`),
		"no token":      post("application/x-www-form-urlencoded", "other=1"),
		"empty token":   post("application/x-www-form-urlencoded", "logout_token="),
		"two tokens":    post("application/x-www-form-urlencoded", "logout_token=a&logout_token=b"),
		"over 16 KB":    post("application/x-www-form-urlencoded", "logout_token=a&pad="+strings.Repeat("x", maxLogoutRequestBytes)),
		"bad form":      post("application/x-www-form-urlencoded", "logout_token=%zz"),
		"no media type": post("", "logout_token=a"),
	} {
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"reason":"invalid-logout-request"`) || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %q %s", name, rec.Code, rec.Header().Get("Cache-Control"), rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	a.ServeEndpoint(rec, httptest.NewRequest(http.MethodGet, "https://app.test/.iap/backchannel_logout?logout_token=a", nil))
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := post("application/x-www-form-urlencoded", "logout_token=a.b.c"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a token before discovery: %d %s, want 503", rec.Code, rec.Body)
	}
}

// A typ other than logout+jwt (or plain JWT) marks another kind of token.
func TestLogoutTokenType(t *testing.T) {
	enc := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30.sig" }
	for header, ok := range map[string]bool{
		`{"alg":"RS256"}`:                                true,
		`{"alg":"RS256","typ":"JWT"}`:                    true,
		`{"alg":"RS256","typ":"logout+jwt"}`:             true,
		`{"alg":"RS256","typ":"application/logout+jwt"}`: true,
		`{"alg":"RS256","typ":"at+jwt"}`:                 false,
		`{"alg":"RS256","typ":"secevent+jwt"}`:           false,
		`not json`:                                       false,
	} {
		if err := logoutTokenType(enc(header)); (err == nil) != ok {
			t.Errorf("%s: %v", header, err)
		}
	}
}

// With several IdPs, a logout token goes to the Authenticator of its iss
// and aud (then verified by it alone), anything else to the first.
func TestLogoutTokenFor(t *testing.T) {
	def := newTestAuthenticator(t, "https://idp.example")
	corp := newTestAuthenticator(t, "https://corp.example")
	corp.cfg.ClientID = "corp-client"
	token := func(claims string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
	}
	for claims, want := range map[string]*Authenticator{
		`{"iss":"https://corp.example","aud":["corp-client"]}`: corp,
		`{"iss":"https://corp.example","aud":"corp-client"}`:   corp,
		`{"iss":"https://corp.example","aud":["caddy"]}`:       def,
		`{"iss":"https://idp.example","aud":["caddy"]}`:        def,
		`{"iss":"https://evil.example","aud":["corp-client"]}`: def,
		`not json`: def,
	} {
		if got := logoutTokenFor([]*Authenticator{def, corp}, token(claims)); got != want {
			t.Errorf("%s: got the Authenticator of %s", claims, got.cfg.ProviderURL)
		}
	}
}
