package authn

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// testBrowser is one browser's cookie jar at https://app.test, in front of
// an Authenticator answered in process.
type testBrowser struct {
	t   *testing.T
	a   *Authenticator
	jar *cookiejar.Jar
}

func newTestBrowser(t *testing.T, a *Authenticator) *testBrowser {
	jar, _ := cookiejar.New(nil)
	return &testBrowser{t: t, a: a, jar: jar}
}

// get sends a browser's GET with the jar's cookies and keeps what the
// response sets.
func (b *testBrowser) get(rawURL string) *httptest.ResponseRecorder {
	b.t.Helper()
	u, _ := url.Parse(rawURL)
	req := httptest.NewRequest("GET", rawURL, nil)
	req.Header.Set("Accept", "text/html")
	for _, c := range b.jar.Cookies(u) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.a.Authenticate(rec, req)
	b.jar.SetCookies(u, rec.Result().Cookies())
	return rec
}

// startSignIn opens a page that needs a user and returns the IdP URL the
// browser is sent to.
func (b *testBrowser) startSignIn(page string) string {
	b.t.Helper()
	rec := b.get(page)
	if rec.Code != http.StatusFound {
		b.t.Fatalf("%s: no sign-in redirect: %d %s", page, rec.Code, rec.Body.String())
	}
	return rec.Header().Get("Location")
}

// loginCookies are the names of the login cookies the jar holds.
func (b *testBrowser) loginCookies() []string {
	u, _ := url.Parse("https://app.test/")
	var names []string
	for _, c := range b.jar.Cookies(u) {
		if strings.Contains(c.Name, "_iap_login") {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	return names
}

// dexCallback signs in at Dex (in its own jar, as the IdP's cookies are its
// own) and returns the callback URL Dex redirects to.
func dexCallback(t *testing.T, authURL, email, password string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var callback string
	client := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "app.test" {
			callback = r.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.PostForm(resp.Request.URL.String(), url.Values{"login": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if callback == "" {
		t.Fatalf("Dex did not redirect to the callback (status %d at %s)", resp.StatusCode, resp.Request.URL)
	}
	return callback
}

func startSignInDex(t *testing.T) *testenv.Dex {
	return testenv.StartDex(t, testenv.DexOptions{
		RedirectURIs: []string{"https://app.test/.iap/callback"},
		Users: []testenv.DexUser{
			{Email: "alice@example.com", Password: "pw", Name: "Alice"},
			{Email: "mallory@example.com", Password: "pw", Name: "Mallory"},
		},
	})
}

// expired are the names of the cookies a response expires.
func expired(rec *httptest.ResponseRecorder) []string {
	var names []string
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			names = append(names, c.Name)
		}
	}
	return names
}

// Two sign-ins started at once in one browser (two tabs) both complete,
// whichever comes back first, and neither's callback touches the other's
// login cookie (issue 18 #6: the second overwrote the one login cookie, the
// first failed with "state mismatch" and cleared the second's).
func TestTwoSignInsAtOnceBothComplete(t *testing.T) {
	dex := startSignInDex(t)
	a := newTestAuthenticator(t, dex.Issuer)
	a.Start()
	defer a.Stop()
	waitDiscovered(t, a)

	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		b := newTestBrowser(t, a)
		pages := []string{"https://app.test/first", "https://app.test/second"}
		var callbacks []string
		for _, p := range pages {
			callbacks = append(callbacks, b.startSignIn(p))
		}
		if got := b.loginCookies(); len(got) != 2 {
			t.Fatalf("two sign-ins in progress, login cookies %v", got)
		}
		for i, authURL := range callbacks {
			callbacks[i] = dexCallback(t, authURL, "alice@example.com", "pw")
		}
		for n, i := range order {
			before := b.loginCookies()
			rec := b.get(callbacks[i])
			if rec.Code != http.StatusFound || rec.Header().Get("Location") != pages[i] {
				t.Fatalf("order %v: callback of %s: %d to %q:\n%s", order, pages[i], rec.Code, rec.Header().Get("Location"), rec.Body.String())
			}
			cleared := expired(rec)
			if len(cleared) != 1 || !slices.Contains(before, cleared[0]) {
				t.Errorf("order %v: callback of %s cleared %v, want only its own of %v", order, pages[i], cleared, before)
			}
			if left := b.loginCookies(); len(left) != 1-n {
				t.Errorf("order %v: after %d callbacks the jar holds login cookies %v", order, n+1, left)
			}
		}
		if s, err := b.a.Session(httptest.NewRecorder(), sessionRequest(b)); err != nil || s.Email != "alice@example.com" {
			t.Errorf("order %v: no session after both callbacks: %+v %v", order, s, err)
		}
	}
}

func sessionRequest(b *testBrowser) *http.Request {
	u, _ := url.Parse("https://app.test/")
	req := httptest.NewRequest("GET", u.String(), nil)
	for _, c := range b.jar.Cookies(u) {
		req.AddCookie(c)
	}
	return req
}

// A browser keeps at most five sign-ins in progress: the sixth expires
// the oldest login cookie, whose callback then fails, and the others
// still complete.
func TestASixthSignInDropsTheOldest(t *testing.T) {
	dex := startSignInDex(t)
	clock := &fakeClock{now: time.Now()}
	a := newTestAuthenticator(t, dex.Issuer)
	a.cfg.Now = clock.Now
	a.idp = newIdP(&a.cfg)
	a.Start()
	defer a.Stop()
	waitDiscovered(t, a)

	b := newTestBrowser(t, a)
	var authURLs, names []string
	for i := range 6 {
		before := b.loginCookies()
		rec := b.get("https://app.test/page" + string(rune('1'+i)))
		if rec.Code != http.StatusFound {
			t.Fatalf("sign-in %d: %d", i+1, rec.Code)
		}
		authURLs = append(authURLs, rec.Header().Get("Location"))
		var added string
		for _, c := range rec.Result().Cookies() {
			if c.MaxAge > 0 {
				added = c.Name
			}
		}
		if added == "" || slices.Contains(before, added) {
			t.Fatalf("sign-in %d set login cookie %q over %v", i+1, added, before)
		}
		names = append(names, added)
		if i < 5 && len(expired(rec)) != 0 {
			t.Errorf("sign-in %d of 5 expired %v", i+1, expired(rec))
		}
		if i == 5 && !slices.Equal(expired(rec), names[:1]) {
			t.Errorf("the sixth sign-in expired %v, want the oldest, %s", expired(rec), names[0])
		}
		clock.Advance(time.Second)
	}
	want := slices.Clone(names[1:])
	slices.Sort(want)
	if got := b.loginCookies(); !slices.Equal(got, want) {
		t.Errorf("login cookies %v, want the five newest %v", got, want)
	}

	if rec := b.get(dexCallback(t, authURLs[0], "alice@example.com", "pw")); rec.Code != http.StatusBadRequest {
		t.Errorf("the dropped sign-in completed: %d", rec.Code)
	}
	if rec := b.get(dexCallback(t, authURLs[1], "alice@example.com", "pw")); rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://app.test/page2" {
		t.Errorf("the second sign-in: %d to %q: %s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
}

// A request carrying many login cookies (never more than five from this
// server, but a client may send any) gets at most five of them expired and
// the new one set, not a Set-Cookie header for each.
func TestManyLoginCookiesExpireFew(t *testing.T) {
	op := startTestOP(t)
	a := startAuthenticatorAt(t, op, &fakeClock{now: time.Now()}, nil)
	var cookies []string
	for i := range 200 {
		cookies = append(cookies, a.loginName(string(rune(i)))+"=x")
	}
	req := httptest.NewRequest("GET", "https://app.test/page", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Cookie", strings.Join(cookies, "; "))
	rec := httptest.NewRecorder()
	a.Authenticate(rec, req)
	if rec.Code != http.StatusFound {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	if n, set := len(expired(rec)), len(rec.Result().Cookies()); n != maxLogins || set != maxLogins+1 {
		t.Errorf("%d expired of %d Set-Cookie headers, want %d and %d", n, set, maxLogins, maxLogins+1)
	}
}
