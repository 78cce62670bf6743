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

// startCentralAuthenticator is an Authenticator on op whose sign-in host is
// auth.test, with app.test and other.test as route hosts.
func startCentralAuthenticator(t *testing.T, op *testOP, clock *fakeClock, compat string) *Authenticator {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := New(Config{ProviderURL: op.URL, ClientID: "caddy", ClientSecret: "caddy-secret",
		CookieSecret: secret(t), SigningKey: key, AuthenticateURL: "https://auth.test", Compat: compat, Now: clock.Now,
		AllowedRedirectHosts: func(h string) bool { return h == "app.test" || h == "other.test" }})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	t.Cleanup(a.Stop)
	waitDiscovered(t, a)
	return a
}

// A hand-off is refused once it is a minute old, even in the browser that
// started the sign-in; before that it signs the browser in.
func TestHandoffExpires(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startCentralAuthenticator(t, op, clock, "")
	for _, tc := range []struct {
		wait time.Duration
		want int
	}{{59 * time.Second, http.StatusFound}, {61 * time.Second, http.StatusBadRequest}} {
		b := newTestBrowser(t, a)
		to := b.startSignIn("https://app.test/page")
		u, err := url.Parse(to)
		if err != nil || u.Host != "auth.test" || u.Path != "/.iap/authenticate" || u.Query().Get("host") != "app.test" {
			t.Fatalf("route host sends the browser to %q, want the sign-in host", to)
		}
		// What the sign-in host would seal for a signed-in user.
		s := Session{ID: randomID(), Subject: "alice", Email: "alice@example.com", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
		token, err := a.handoff.seal(handoffName, handoff{Session: s, Host: "app.test", State: u.Query().Get("state"), ID: randomID(), Expires: clock.Now().Add(handoffTTL)})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(tc.wait)
		rec := b.get("https://app.test/.iap/handoff?token=" + url.QueryEscape(token))
		if rec.Code != tc.want {
			t.Errorf("after %v: %d, want %d: %s", tc.wait, rec.Code, tc.want, rec.Body.String())
		}
		if tc.want == http.StatusFound {
			if loc := rec.Header().Get("Location"); loc != "https://app.test/page" {
				t.Errorf("hand-off lands at %q", loc)
			}
			if got := sessionRequest(b); got == nil {
				t.Errorf("no session after the hand-off")
			}
		} else if !strings.Contains(rec.Body.String(), "expired") {
			t.Errorf("the refusal does not say the hand-off expired: %s", rec.Body.String())
		}
	}
}

// The sign-in host hands off only to this server's hosts, and the sign-in
// host itself takes no hand-off.
func TestHandoffEndpointsPerHost(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startCentralAuthenticator(t, op, clock, "")
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"https://app.test/.iap/authenticate?host=other.test&state=00", http.StatusNotFound},
		{"https://auth.test/.iap/handoff?token=x", http.StatusBadRequest},
		{"https://auth.test/.iap/authenticate?host=evil.test&state=00", http.StatusBadRequest},
		{"https://auth.test/.iap/authenticate?host=app.test:8443&state=00", http.StatusBadRequest},
		// Without a session on the sign-in host: the IdP, with the
		// sign-in host's own callback.
		{"https://auth.test/.iap/authenticate?host=app.test&state=00", http.StatusFound},
	} {
		rec := newTestBrowser(t, a).get(tc.url)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.url, rec.Code, tc.want, rec.Body.String())
		}
		if tc.want == http.StatusFound {
			loc, _ := url.Parse(rec.Header().Get("Location"))
			if !strings.HasPrefix(loc.String(), op.URL) || loc.Query().Get("redirect_uri") != "https://auth.test/.iap/callback" {
				t.Errorf("%s: sent to %s, want the IdP with the sign-in host's callback", tc.url, loc)
			}
		}
	}
}

// Under compat pomerium the sign-in host's callback is /oauth2/callback,
// as Pomerium registers it at IdPs, and only there.
func TestHandoffPomeriumCallbackPath(t *testing.T) {
	op := startTestOP(t)
	a := startCentralAuthenticator(t, op, &fakeClock{now: time.Now()}, "pomerium")
	rec := newTestBrowser(t, a).get("https://auth.test/.pomerium/authenticate?host=app.test&state=00")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Query().Get("redirect_uri") != "https://auth.test/oauth2/callback" {
		t.Fatalf("%d to %s, want the IdP with https://auth.test/oauth2/callback", rec.Code, loc)
	}
	// The IdP's redirect is taken at /oauth2/callback on the sign-in host
	// only (a bad state there is a refused callback); elsewhere that path
	// is the route's, and /.pomerium/callback runs no callback.
	for u, wantCallback := range map[string]bool{
		"https://auth.test/oauth2/callback?state=x":    true,
		"https://app.test/oauth2/callback?state=x":     false,
		"https://auth.test/.pomerium/callback?state=x": false,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", u, nil)
		req.Header.Set("Accept", "application/json")
		answered := a.ServeEndpoint(rec, req)
		if got := answered && strings.Contains(rec.Body.String(), "invalid-callback"); got != wantCallback {
			t.Errorf("%s ran the callback: %v, want %v (%d %s)", u, got, wantCallback, rec.Code, rec.Body.String())
		}
	}
}

func TestParseAuthenticateURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://auth.example.com":       "auth.example.com",
		"https://Auth.Example.com:443/":  "auth.example.com",
		"https://auth.example.com:8443":  "auth.example.com:8443",
		"http://auth.example.com":        "",
		"https://auth.example.com/path":  "",
		"https://user@auth.example.com":  "",
		"https://auth.example.com/?a=b":  "",
		"auth.example.com":               "",
		"https://auth.example.com#frag":  "",
		"https://auth_example%2ecom":     "",
		"https://[::1]:8443":             "[::1]:8443",
		"https://auth.example.com:8443/": "auth.example.com:8443",
	} {
		got, err := parseAuthenticateURL(raw)
		if (err == nil) != (want != "") || got != want {
			t.Errorf("%q: %q, %v; want %q", raw, got, err, want)
		}
	}
}

func TestUsedHandoffsAreBounded(t *testing.T) {
	var u usedHandoffs
	now := time.Now()
	if !u.take("a", now.Add(time.Minute), now) || u.take("a", now.Add(time.Minute), now) {
		t.Fatal("a hand-off is taken once")
	}
	for i := 0; len(u.used) < maxUsedHandoffs; i++ {
		u.used[randomID()] = now.Add(time.Minute)
	}
	if u.take("b", now.Add(time.Minute), now) {
		t.Error("a full memory took one more hand-off")
	}
	if !u.take("b", now.Add(3*time.Minute), now.Add(2*time.Minute)) {
		t.Error("expired hand-offs were not forgotten")
	}
}
