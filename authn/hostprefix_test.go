package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Login fixation (issue 18 #7): a sibling subdomain can set cookies with
// Domain=example.com that the browser sends to app.example.com, but not
// __Host- ones. A login cookie or a session planted under a name without
// the prefix signs nobody in.
func TestPlantedCookiesAreIgnored(t *testing.T) {
	dex := startSignInDex(t)
	a := newTestAuthenticator(t, dex.Issuer)
	a.Start()
	defer a.Stop()
	waitDiscovered(t, a)

	// Mallory starts a sign-in in her own browser and signs in at Dex,
	// stopping before the callback.
	mallory := newTestBrowser(t, a)
	rec := mallory.get("https://app.test/page")
	var loginCookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		loginCookie = c
	}
	if loginCookie == nil {
		t.Fatal("no login cookie")
	}
	callback := dexCallback(t, rec.Header().Get("Location"), "mallory@example.com", "pw")
	var ls loginState
	if _, err := a.login.open(loginCookie.Name, loginCookie.Value, &ls); err != nil {
		t.Fatal(err)
	}

	// She plants her login state in the victim's browser under a name a
	// sibling can set, sealed as the server would seal it under that name,
	// and sends the victim to her callback.
	for _, name := range []string{strings.TrimPrefix(loginCookie.Name, "__Host-"), "_iap_login"} {
		planted, _ := a.login.seal(name, ls)
		req := httptest.NewRequest("GET", callback, nil)
		req.Header.Set("Accept", "text/html")
		req.AddCookie(&http.Cookie{Name: name, Value: planted})
		w := httptest.NewRecorder()
		a.Authenticate(w, req)
		if w.Code != http.StatusBadRequest {
			t.Errorf("a login cookie planted as %s: %d to %q, want 400", name, w.Code, w.Header().Get("Location"))
		}
		for _, c := range w.Result().Cookies() {
			if c.MaxAge >= 0 {
				t.Errorf("a login cookie planted as %s set %s", name, c.Name)
			}
		}
	}

	// A session planted under the unprefixed name is not a session.
	s := &Session{ID: randomID(), Subject: "mallory", Email: "mallory@example.com", IssuedAt: time.Now(), IDTokenExpiry: time.Now().Add(time.Hour)}
	for _, name := range []string{"_iap", strings.TrimPrefix(a.jar.name, "__Host-")} {
		v, _ := a.session.seal(name, s)
		for _, cookies := range []string{name + "=" + v, name + "=chunks.1; " + name + "_0=" + v} {
			req := httptest.NewRequest("GET", "https://app.test/", nil)
			req.Header.Set("Cookie", cookies)
			if got, err := a.Session(httptest.NewRecorder(), req); err == nil {
				t.Errorf("a session planted as %q signed in %s", cookies[:20], got.Email)
			}
		}
	}
}

// The cookies' names carry the __Host- prefix, which browsers accept only
// with Secure, Path=/ and no Domain: the login cookies always, the session
// cookie and its chunks unless cookie_domain is set or cookie_name is
// chosen.
func TestCookieNamesAreHostPrefixed(t *testing.T) {
	op := startTestOP(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	big := bigSession()
	for _, c := range []struct {
		name                   string
		edit                   func(*Config)
		session, login, domain string
	}{
		{"default", nil, "__Host-_iap", "__Host-_iap_login_", ""},
		{"compat pomerium", func(c *Config) { c.Compat = "pomerium" }, "__Host-_pomerium", "__Host-_pomerium_login_", ""},
		{"cookie_domain", func(c *Config) { c.CookieDomain = "example.com" }, "_iap", "__Host-_iap_login_", "example.com"},
		{"compat pomerium and cookie_domain", func(c *Config) { c.Compat, c.CookieDomain = "pomerium", "example.com" }, "_pomerium", "__Host-_pomerium_login_", "example.com"},
		{"cookie_name", func(c *Config) { c.CookieName = "sess" }, "sess", "__Host-sess_login_", ""},
		{"a __Host- cookie_name", func(c *Config) { c.CookieName = "__Host-sess" }, "__Host-sess", "__Host-sess_login_", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{ProviderURL: op.URL, ClientID: "caddy", ClientSecret: "s", CookieSecret: secret(t), SigningKey: key}
			if c.edit != nil {
				c.edit(&cfg)
			}
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a.Start()
			defer a.Stop()
			waitDiscovered(t, a)

			check := func(what, header, prefix, domain string) {
				t.Helper()
				name, _, _ := strings.Cut(header, "=")
				attrs := strings.ToLower(header)
				if !strings.HasPrefix(name, prefix) || !strings.Contains(attrs, "; path=/;") && !strings.HasSuffix(attrs, "; path=/") || !strings.Contains(attrs, "; secure") {
					t.Errorf("%s: Set-Cookie %s, want the name %s... with Path=/ and Secure", what, header, prefix)
				}
				if got := strings.Contains(attrs, "; domain="); got != (domain != "") || domain != "" && !strings.Contains(attrs, "; domain="+domain) {
					t.Errorf("%s: Set-Cookie %s, want Domain %q", what, header, domain)
				}
			}

			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "https://app.test/page", nil)
			req.Header.Set("Accept", "text/html")
			a.Authenticate(rec, req)
			if h := rec.Header().Values("Set-Cookie"); rec.Code != 302 || len(h) != 1 {
				t.Fatalf("sign-in: %d, Set-Cookie %q", rec.Code, h)
			} else {
				check("the login cookie", h[0], c.login, "")
			}

			for _, s := range []*Session{{ID: "s", Subject: "u", IssuedAt: time.Now()}, big} {
				rec = httptest.NewRecorder()
				if err := a.writeSession(rec, httptest.NewRequest("GET", "https://app.test/", nil), s); err != nil {
					t.Fatal(err)
				}
				h := rec.Header().Values("Set-Cookie")
				if s == big && len(h) < 2 {
					t.Fatalf("a big session was not chunked: %q", h)
				}
				if len(h) == 0 || !strings.HasPrefix(h[0], c.session+"=") {
					t.Fatalf("session: Set-Cookie %q, want %s first", h, c.session)
				}
				for i, line := range h {
					want := c.session
					if i > 0 {
						want += "_" + string(rune('0'+i-1))
					}
					check("the session", line, want, c.domain)
				}
			}
		})
	}
}

// An explicit __Host- cookie_name with a cookie_domain would make cookies
// that browsers refuse: New says so.
func TestHostPrefixedCookieNameWithADomainIsRefused(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := New(Config{ProviderURL: "http://127.0.0.1:1", ClientID: "caddy", CookieSecret: secret(t), SigningKey: key,
		CookieName: "__Host-sess", CookieDomain: "example.com"})
	if err == nil || !strings.Contains(err.Error(), "__Host-") || !strings.Contains(err.Error(), "cookie_domain") {
		t.Fatalf("err = %v", err)
	}
}
