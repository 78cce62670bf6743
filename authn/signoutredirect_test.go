package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Sign-out ends at sign_out_redirect_url when no return URL is given, or
// when the one given (or the state the IdP sends back to signed_out) is
// refused; an accepted return URL wins. It is never an open redirect: the
// fallback is the administrator's URL.
func TestSignOutRedirectURL(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := New(Config{ProviderURL: "http://127.0.0.1:1/unused", ClientID: "caddy", CookieSecret: secret(t), SigningKey: key,
		SignOutRedirectURL: "https://www.example.com/signed-out"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []struct{ query, want string }{
		{"", "https://www.example.com/signed-out"},
		{"?redirect_uri=%2Fdocs", "https://app.test/docs"},
		{"?redirect_uri=https%3A%2F%2Fevil.example%2F", "https://www.example.com/signed-out"},
	} {
		s := &Session{ID: randomID(), Subject: "u", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}
		v, _ := a.session.seal(a.jar.name, s)
		req := httptest.NewRequest("POST", "https://app.test/.iap/sign_out"+c.query, strings.NewReader(url.Values{"csrf_token": {a.csrfToken(s)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(&http.Cookie{Name: a.jar.name, Value: v})
		rec := httptest.NewRecorder()
		a.ServeEndpoint(rec, req)
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != c.want {
			t.Errorf("sign-out%s: %d to %q, want %q", c.query, rec.Code, rec.Header().Get("Location"), c.want)
		}
	}
	rec := httptest.NewRecorder()
	a.ServeEndpoint(rec, httptest.NewRequest("GET", "https://app.test/.iap/signed_out?state=https%3A%2F%2Fevil.example", nil))
	if loc := rec.Header().Get("Location"); loc != "https://www.example.com/signed-out" {
		t.Errorf("signed_out with a foreign state: to %q", loc)
	}
	for _, bad := range []string{"www.example.com/bye", "javascript:alert(1)", "https://"} {
		if _, err := New(Config{ProviderURL: "http://127.0.0.1:1/unused", ClientID: "caddy", CookieSecret: secret(t), SigningKey: key,
			SignOutRedirectURL: bad}); err == nil || !strings.Contains(err.Error(), "sign_out_redirect_url") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
