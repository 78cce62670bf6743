package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
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

// cookieBytes is what a response's cookies add to the Cookie header a
// browser sends back: name=value and a separator for each.
func cookieBytes(cookies []*http.Cookie) int {
	n := 0
	for _, c := range cookies {
		if c.MaxAge >= 0 {
			n += len(c.Name) + 1 + len(c.Value) + 2
		}
	}
	return n
}

func uuidGroups(n int) []string {
	groups := make([]string, n)
	for i := range groups {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		groups[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
	}
	return groups
}

// A session never sets more cookie bytes than the budget (default 8 KB),
// so that a browser's requests stay under Caddy's 16 KB header limit
// (issue 11: 900 groups made 9 chunks, ~25 KB, and every request got 431
// until cookie_expire).
func TestSessionCookiesStayWithinTheBudget(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	now := time.Now()
	session := func(groups []string, idToken string) *Session {
		return &Session{ID: randomID(), Subject: "u1", Email: "a@example.com", Groups: groups, IssuedAt: now,
			IDTokenExpiry: now.Add(time.Hour), RefreshToken: strings.Repeat("r", 80), RawIDToken: idToken}
	}
	for _, c := range []struct {
		name      string
		s         *Session
		fits      bool
		keepsIDTk bool
	}{
		{"a small session is kept whole", session([]string{"admins"}, randomString(1000)), true, true},
		{"a session whose ID token would overflow the budget is kept without the ID token",
			session(uuidGroups(20), randomString(12000)), true, false},
		{"a session whose groups alone overflow the budget is not set at all",
			session(uuidGroups(900), ""), false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			groups := len(c.s.Groups)
			err := a.writeSession(w, httptest.NewRequest("GET", "https://app.test/", nil), c.s)
			set := w.Result().Cookies()
			if !c.fits {
				if !errors.Is(err, ErrSessionTooLarge) {
					t.Fatalf("err = %v, want a session-too-large error", err)
				}
				if len(set) != 0 {
					t.Fatalf("%d cookies set (%d bytes) for a session that does not fit", len(set), cookieBytes(set))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := cookieBytes(set); n > DefaultCookieBudget {
				t.Fatalf("the session takes %d bytes of cookies in %d cookies, over %d", n, len(set), DefaultCookieBudget)
			}
			r := httptest.NewRequest("GET", "https://app.test/", nil)
			for _, ck := range set {
				r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			}
			got, err := a.Session(httptest.NewRecorder(), r)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Groups) != groups || (got.RawIDToken != "") != c.keepsIDTk {
				t.Errorf("read back %d groups and an ID token of %d bytes", len(got.Groups), len(got.RawIDToken))
			}
		})
	}
}

// signInAtDex starts a sign-in at a, signs in at Dex as email and returns
// the request of Dex's redirect back to the callback, with the login
// cookie.
func signInAtDex(t *testing.T, a *Authenticator, email, password string) *http.Request {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "https://app.test/page", nil)
	req.Header.Set("Accept", "text/html")
	if _, done := a.Authenticate(rec, req); !done || rec.Code != 302 {
		t.Fatalf("no sign-in redirect: %d %s", rec.Code, rec.Body.String())
	}
	var login *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if strings.HasPrefix(c.Name, a.loginJ.name+"_") {
			login = c
		}
	}
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
	resp, err = client.PostForm(resp.Request.URL.String(), url.Values{"login": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if callback == nil {
		t.Fatalf("Dex did not redirect to the callback (status %d at %s)", resp.StatusCode, resp.Request.URL)
	}
	r := httptest.NewRequest("GET", callback.String(), nil)
	r.Header.Set("Accept", "text/html")
	r.AddCookie(&http.Cookie{Name: login.Name, Value: login.Value})
	return r
}

// Users in 900 groups sign in at a real IdP: with short group names the
// session fits the budget; with 900 UUIDs it cannot, and the user gets a
// page that says so, and no session cookie, rather than a cookie that makes
// every later request fail with 431.
func TestSignInWithManyGroups(t *testing.T) {
	short := make([]string, 900)
	for i := range short {
		short[i] = fmt.Sprintf("team-%03d", i)
	}
	dex := testenv.StartDex(t, testenv.DexOptions{
		RedirectURIs: []string{"https://app.test/.iap/callback"},
		Users: []testenv.DexUser{
			{Email: "short@example.com", Password: "pw", Name: "Short", Groups: short},
			{Email: "uuids@example.com", Password: "pw", Name: "UUIDs", Groups: uuidGroups(900)},
		},
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := New(Config{ProviderURL: dex.Issuer, ClientID: "caddy", ClientSecret: "caddy-secret",
		Scopes: []string{"openid", "email", "profile", "groups", "offline_access"}, CookieSecret: secret(t), SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop()
	waitDiscovered(t, a)

	for _, c := range []struct {
		name, email string
		fits        bool
	}{
		{"a user in 900 groups with short names signs in within the budget", "short@example.com", true},
		{"a user whose 900 groups cannot fit gets a session-too-large page and no session", "uuids@example.com", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			a.Authenticate(w, signInAtDex(t, a, c.email, "pw"))
			set := w.Result().Cookies()
			var session []*http.Cookie
			for _, ck := range set {
				if a.jar.owns(ck.Name) && ck.MaxAge >= 0 {
					session = append(session, ck)
				}
			}
			if c.fits {
				if w.Code != 302 || len(session) == 0 {
					t.Fatalf("status %d, %d session cookies: %s", w.Code, len(session), w.Body.String())
				}
				if n := cookieBytes(session); n > DefaultCookieBudget {
					t.Errorf("the session takes %d bytes of cookies, over %d", n, DefaultCookieBudget)
				}
				return
			}
			if w.Code != 400 || !strings.Contains(w.Body.String(), "session-too-large") {
				t.Errorf("status %d: %s", w.Code, w.Body.String())
			}
			if len(session) != 0 {
				t.Errorf("%d session cookies set (%d bytes)", len(session), cookieBytes(session))
			}
		})
	}
}

func TestCookieBudgetBelowOneChunkIsAConfigError(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := New(Config{ProviderURL: "http://127.0.0.1:1", ClientID: "caddy", CookieSecret: secret(t), SigningKey: key, CookieBudget: 1000})
	if err == nil || !strings.Contains(err.Error(), "cookie budget") {
		t.Fatalf("err = %v", err)
	}
}
