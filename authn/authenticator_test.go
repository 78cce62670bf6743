package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

func newTestAuthenticator(t testing.TB, providerURL string) *Authenticator {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := New(Config{ProviderURL: providerURL, ClientID: "caddy", ClientSecret: "caddy-secret",
		CookieSecret: secret(t), SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A code obtained for one nonce cannot complete a sign-in whose cookie
// holds another: the test reseals the login cookie with a different nonce,
// which only a holder of cookie_secret could do.
func TestCallbackRefusesANonceMismatch(t *testing.T) {
	dex := testenv.StartDex(t, testenv.DexOptions{
		RedirectURIs: []string{"https://app.test/.iap/callback"},
		Users:        []testenv.DexUser{{Email: "alice@example.com", Password: "pw", Name: "Alice"}},
	})
	a := newTestAuthenticator(t, dex.Issuer)
	a.Start()
	defer a.Stop()
	waitDiscovered(t, a)

	// Start a sign-in.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "https://app.test/page", nil)
	req.Header.Set("Accept", "text/html")
	if _, done := a.Authenticate(rec, req); !done || rec.Code != 302 {
		t.Fatalf("no sign-in redirect: %d", rec.Code)
	}
	var loginCookie *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if strings.HasPrefix(c.Name, a.loginJ.name) {
			loginCookie = c
		}
	}

	// Sign in at Dex, stopping at the redirect back to the callback.
	jar, _ := cookiejar.New(nil)
	var callback *url.URL
	client := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "app.test" {
			callback = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := client.Get(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.PostForm(resp.Request.URL.String(), url.Values{"login": {"alice@example.com"}, "password": {"pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if callback == nil {
		t.Fatalf("Dex did not redirect to the callback (status %d at %s)", resp.StatusCode, resp.Request.URL)
	}

	// Reseal the login cookie with another nonce.
	var ls loginState
	if _, err := a.login.open(loginCookie.Name, loginCookie.Value, &ls); err != nil {
		t.Fatal(err)
	}
	ls.Nonce = "not-the-nonce-dex-saw"
	forged, _ := a.login.seal(loginCookie.Name, ls)

	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", callback.String(), nil)
	req.Header.Set("Accept", "text/html")
	req.AddCookie(&http.Cookie{Name: loginCookie.Name, Value: forged})
	a.Authenticate(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "nonce mismatch") {
		t.Fatalf("got %d:\n%s", rec.Code, rec.Body.String())
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == a.jar.name && c.MaxAge >= 0 {
			t.Errorf("a session cookie was set: %+v", c)
		}
	}
}

// The hot path of a signed-in request: read and check the session cookie,
// for a session as Dex issues it (an ID token of ~1 KB kept for sign-out,
// so the payload is deflated), the first time and then from the cache.
func BenchmarkSessionCookie(b *testing.B) {
	s := &Session{ID: randomID(), Subject: "CgZ1c2VyLTASBWxvY2Fs", Email: "alice@example.com", Groups: []string{"admins", "eng"},
		IDTokenExpiry: time.Now().Add(time.Hour), IssuedAt: time.Now(), RefreshToken: strings.Repeat("r", 80),
		RawIDToken: randomString(1000)}
	for _, cached := range []bool{false, true} {
		name := "first-sight"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			a := newTestAuthenticator(b, "http://127.0.0.1:1/unused")
			v, _ := a.session.seal(a.jar.name, s)
			req := httptest.NewRequest("GET", "https://app.test/", nil)
			req.Header.Set("Cookie", a.jar.name+"="+v)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !cached {
					clear(a.decoded)
				}
				if _, err := a.Session(nil, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The assertion of a session already signed once: a cache hit.
func BenchmarkAssertionCached(b *testing.B) {
	a := newTestAuthenticator(b, "http://127.0.0.1:1/unused")
	s := &Session{ID: randomID(), Subject: "u1", Email: "alice@example.com", Groups: []string{"admins", "eng"}}
	if _, err := a.Assertion(s, "app.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Assertion(s, "app.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// The same from many goroutines at once, as Caddy serves requests.
func BenchmarkAssertionCachedParallel(b *testing.B) {
	a := newTestAuthenticator(b, "http://127.0.0.1:1/unused")
	s := &Session{ID: randomID(), Subject: "u1", Email: "alice@example.com", Groups: []string{"admins", "eng"}}
	if _, err := a.Assertion(s, "app.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Assertion(s, "app.test"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Signing a fresh assertion, for comparison with the cached path.
func BenchmarkAssertionSign(b *testing.B) {
	a := newTestAuthenticator(b, "http://127.0.0.1:1/unused")
	s := &Session{Subject: "u1", Email: "alice@example.com", Groups: []string{"admins", "eng"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.ID = randomID()
		if _, err := a.Assertion(s, "app.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// A bearer ID token is refused once expired: the clock of the
// Authenticator is moved past the token's 24h life.
func TestBearerTokenExpiry(t *testing.T) {
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{{Email: "alice@example.com", Password: "pw"}}})
	tok := dex.PasswordGrant(t, "caddy", "caddy-secret", "alice@example.com", "pw", "openid email")

	for _, c := range []struct {
		name   string
		offset time.Duration
		ok     bool
	}{{"a fresh token", 0, true}, {"the same token a day later", 25 * time.Hour, false}} {
		a := newTestAuthenticator(t, dex.Issuer)
		a.cfg.Now = func() time.Time { return time.Now().Add(c.offset) }
		a.idp = newIdP(&a.cfg)
		a.Start()
		waitDiscovered(t, a)
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		r.Header.Set("Authorization", "Bearer "+tok.IDToken)
		s, err := a.Session(httptest.NewRecorder(), r)
		a.Stop()
		if (err == nil) != c.ok || (c.ok && s.Email != "alice@example.com") {
			t.Errorf("%s: session %+v, err %v", c.name, s, err)
		}
		if !c.ok && !strings.Contains(fmt.Sprint(err), "expired") {
			t.Errorf("%s: want an expiry error, got %v", c.name, err)
		}
	}
}

// waitDiscovered waits for the background discovery of the IdP; a loaded
// machine (CI runs every package's tests at once) can take seconds.
func waitDiscovered(t *testing.T, a *Authenticator) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, _, err := a.idp.get(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the IdP was not discovered in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
