package authn

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/authz"
)

// The login API answers a sign-in URL only for a loopback redirect URI
// (Pomerium's default programmatic_redirect_domain_whitelist, localhost):
// anything a browser could read as another host is 400 invalid-callback,
// so the token can only go to the machine the browser runs on.
func TestProgrammaticLoginAcceptsOnlyLoopbackRedirectURIs(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	for _, c := range []struct {
		redirect string
		ok       bool
	}{
		{"http://127.0.0.1:8000/callback", true},
		{"http://[::1]:8000/", true},
		{"http://localhost:8000/cb?state=xyz", true},
		{"HTTP://LOCALHOST:1/", true},
		{"http://127.0.0.1", true},
		{"http://127.0.0.2:9/", true},
		{"https://127.0.0.1:8443/cb", true},
		{"", false},
		{"https://evil.example/cb", false},
		{"http://evil.example:8000/", false},
		{"http://127.0.0.1.evil.example/", false},
		{"http://localhost.evil.example/", false},
		{"http://localhost./", false},
		{"http://127.0.0.1@evil.example/", false},
		{"http://evil.example@127.0.0.1/", false},
		{"http://127.0.0.1:80@evil.example/", false},
		{"http://127.0.0.1:8000\\@evil.example/", false},
		{"http://evil.example\\@127.0.0.1/", false},
		{"http://127.0.0.1#@evil.example/", false},
		{"http://127.0.0.1:8000/#frag", false},
		{"http://%6c%6fcalhost/", false},
		{"http://127.1/", false},
		{"http://0x7f000001/", false},
		{"http://2130706433/", false},
		{"http://0177.0.0.1/", false},
		{"http://10.0.0.1/", false},
		{"http://[::2]/", false},
		{"http://[::ffff:10.0.0.1]/", false},
		{"http://[::1/", false},
		{"http:/127.0.0.1/", false},
		{"//127.0.0.1:8000/", false},
		{"/callback", false},
		{"javascript:alert(1)//127.0.0.1", false},
		{"ftp://127.0.0.1/", false},
		{"http://127.0.0.1 /", false},
		{"http://127.0.0.1:8000/\t", false},
		{"http://127.0.0.1:0/", false},
		{"http://127.0.0.1:99999/", false},
		{"http://lоcalhost/", false}, // Cyrillic o
		{"http://127.0.0.1:8000/" + strings.Repeat("a", maxRedirectURI), false},
	} {
		t.Run(c.redirect, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://app.test/.iap/api/v1/login?redirect_uri="+url.QueryEscape(c.redirect), nil)
			w := httptest.NewRecorder()
			if !a.ServeEndpoint(w, r) {
				t.Fatal("not answered")
			}
			if len(w.Result().Cookies()) != 0 {
				t.Errorf("the login API set cookies: %v", w.Result().Cookies())
			}
			if !c.ok {
				if w.Code != 400 || !strings.Contains(w.Body.String(), `"reason":"`+string(authz.ReasonBadCallback)+`"`) {
					t.Fatalf("got %d %s, want 400 invalid-callback", w.Code, w.Body)
				}
				return
			}
			if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("got %d %v %s", w.Code, w.Header(), w.Body)
			}
			u, err := url.Parse(w.Body.String())
			if err != nil || u.Scheme != "https" || u.Host != "app.test" || u.Path != "/.iap/sign_in" || u.Query().Get("programmatic") == "" {
				t.Fatalf("sign-in URL %q: %v", w.Body.String(), err)
			}
			var pr programmaticRequest
			if _, err := a.login.open(programmaticName("app.test"), u.Query().Get("programmatic"), &pr); err != nil || pr.RedirectURI != c.redirect {
				t.Fatalf("sealed request %+v: %v", pr, err)
			}
			if strings.Contains(w.Body.String(), "iap_token") {
				t.Errorf("the login API answered a token: %s", w.Body)
			}
		})
	}
}

// The login API takes GET only, and needs no session.
func TestProgrammaticLoginMethodsAndNames(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	w := httptest.NewRecorder()
	a.ServeEndpoint(w, httptest.NewRequest("POST", "https://app.test/.iap/api/v1/login?redirect_uri=http://127.0.0.1:1/", nil))
	if w.Code != 405 || w.Header().Get("Allow") != "GET" {
		t.Errorf("POST: %d %v", w.Code, w.Header())
	}

	p, err := New(Config{ProviderURL: "http://127.0.0.1:1/unused", ClientID: "caddy", CookieSecret: secret(t),
		SigningKey: a.cfg.SigningKeys[0].Key, Compat: "pomerium"})
	if err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	p.ServeEndpoint(w, httptest.NewRequest("GET", "https://app.test/.pomerium/api/v1/login?pomerium_redirect_uri=http://127.0.0.1:5/cb", nil))
	if w.Code != 200 || !strings.HasPrefix(w.Body.String(), "https://app.test/.pomerium/sign_in?programmatic=") {
		t.Errorf("compat pomerium: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	p.ServeEndpoint(w, httptest.NewRequest("GET", "https://app.test/.pomerium/api/v1/login?redirect_uri=http://127.0.0.1:5/cb", nil))
	if w.Code != 400 {
		t.Errorf("compat pomerium with our parameter name: %d %s", w.Code, w.Body)
	}
}

// A sign-in URL of the login API starts a sign-in only on the host it was
// issued for, unaltered and within loginTTL; the sign-in remembers the
// redirect URI in its login cookie.
func TestProgrammaticSignInURL(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startAuthenticatorAt(t, op, clock, nil)
	signInURL := func(host string) string {
		w := httptest.NewRecorder()
		a.ServeEndpoint(w, httptest.NewRequest("GET", "https://"+host+"/.iap/api/v1/login?redirect_uri=http://127.0.0.1:7/cb", nil))
		if w.Code != 200 {
			t.Fatalf("login API: %d %s", w.Code, w.Body)
		}
		return w.Body.String()
	}
	open := func(rawURL, host string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", rawURL, nil)
		r.Host = host
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		a.ServeEndpoint(w, r)
		return w
	}

	w := open(signInURL("app.test"), "app.test")
	if w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), op.URL+"/auth") {
		t.Fatalf("sign-in: %d %v", w.Code, w.Header())
	}
	var ls loginState
	for _, c := range w.Result().Cookies() {
		if a.isLoginName(c.Name) {
			if _, err := a.login.open(c.Name, c.Value, &ls); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ls.Programmatic != "http://127.0.0.1:7/cb" || ls.Host != "app.test" {
		t.Errorf("login state %+v", ls)
	}

	t.Run("on another host", func(t *testing.T) {
		u := signInURL("app.test")
		if w := open(u, "other.test"); w.Code != 400 || len(w.Result().Cookies()) != 0 {
			t.Errorf("got %d %v", w.Code, w.Result().Cookies())
		}
	})
	t.Run("tampered", func(t *testing.T) {
		u, _ := url.Parse(signInURL("app.test"))
		v := []byte(u.Query().Get("programmatic"))
		v[len(v)-3] ^= 1
		if w := open("https://app.test/.iap/sign_in?programmatic="+url.QueryEscape(string(v)), "app.test"); w.Code != 400 {
			t.Errorf("got %d", w.Code)
		}
	})
	t.Run("made for a non-loopback URI under the key", func(t *testing.T) {
		v, _ := a.login.seal(programmaticName("app.test"), programmaticRequest{RedirectURI: "https://evil.example/", Host: "app.test", Expires: clock.Now().Add(time.Minute)})
		if w := open("https://app.test/.iap/sign_in?programmatic="+url.QueryEscape(v), "app.test"); w.Code != 400 {
			t.Errorf("got %d", w.Code)
		}
	})
	t.Run("expired", func(t *testing.T) {
		u := signInURL("app.test")
		clock.Advance(loginTTL + time.Second)
		if w := open(u, "app.test"); w.Code != 400 {
			t.Errorf("got %d", w.Code)
		}
	})
}

// The callback of a programmatic sign-in sends the browser to the
// loopback redirect URI with the token, which holds neither the refresh
// token nor the raw ID token.
func TestProgrammaticCallbackRedirectsWithTheToken(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	now := time.Now()
	s := &Session{ID: "sid", Subject: "alice", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour), RefreshToken: "rt", RawIDToken: "idt"}
	for redirect, prefix := range map[string]string{
		"http://127.0.0.1:7/cb":       "http://127.0.0.1:7/cb?iap_token=",
		"http://localhost:7/cb?x=1&y": "http://localhost:7/cb?x=1&y&iap_token=",
	} {
		w := httptest.NewRecorder()
		a.finishProgrammatic(w, httptest.NewRequest("GET", "https://app.test/.iap/callback", nil), s, redirect)
		loc := w.Header().Get("Location")
		if w.Code != 302 || !strings.HasPrefix(loc, prefix) || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d %q", w.Code, loc)
		}
		u, _ := url.Parse(loc)
		var got Session
		if _, err := a.session.open(programmaticName("app.test"), u.Query().Get("iap_token"), &got); err != nil {
			t.Fatal(err)
		}
		if got.Subject != "alice" || got.RefreshToken != "" || got.RawIDToken != "" || got.ID == "sid" || got.ID == "" {
			t.Errorf("token session %+v", got)
		}
	}
}

// A programmatic token authenticates on the route host it was issued for,
// as a bearer session, until cookie_expire; on another host, altered, in
// place of a session cookie (or a session cookie in its place) it is 401
// invalid-bearer-token.
func TestProgrammaticToken(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startAuthenticatorAt(t, op, clock, nil)
	s := &Session{ID: "sid", Subject: "alice", Email: "alice@example.com", Groups: []string{"eng"},
		IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour), RefreshToken: "rt"}
	token, err := a.programmaticToken(s, "app.test")
	if err != nil {
		t.Fatal(err)
	}
	cookieValue, _ := a.session.seal(a.jar.name, s)
	session := func(host, authorization, cookie string) (*Session, error) {
		r := httptest.NewRequest("GET", "https://"+host+"/", nil)
		r.Header.Set("Authorization", authorization)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		return a.Session(httptest.NewRecorder(), r)
	}
	for _, auth := range []string{"IAP " + token, "Bearer IAP-" + token, "bearer iap-" + token, "iap " + token} {
		got, err := session("app.test", auth, "")
		if err != nil || got.Subject != "alice" || !got.Bearer || got.RefreshToken != "" || strings.Join(got.Groups, ",") != "eng" {
			t.Fatalf("%.20s...: %+v %v", auth, got, err)
		}
	}
	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 1
	for name, c := range map[string]struct{ host, auth, cookie string }{
		"on another route host":           {"other.test", "IAP " + token, ""},
		"on another port of the host":     {"app.test:8443", "Bearer IAP-" + token, ""},
		"tampered":                        {"app.test", "IAP " + string(tampered), ""},
		"truncated":                       {"app.test", "IAP " + token[:len(token)-4], ""},
		"a session cookie as the token":   {"app.test", "IAP " + cookieValue, ""},
		"empty":                           {"app.test", "IAP ", ""},
		"with a valid session cookie too": {"app.test", "IAP " + string(tampered), a.jar.name + "=" + cookieValue},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := session(c.host, c.auth, c.cookie)
			if got != nil || !errors.Is(err, ErrBadBearer) {
				t.Fatalf("got %+v %v, want ErrBadBearer", got, err)
			}
		})
	}
	t.Run("the token as a session cookie", func(t *testing.T) {
		if got, err := session("app.test", "", a.jar.name+"="+token); got != nil || err == nil {
			t.Fatalf("got %+v %v", got, err)
		}
	})
	t.Run("refused with 401 invalid-bearer-token", func(t *testing.T) {
		r := httptest.NewRequest("GET", "https://other.test/", nil)
		r.Header.Set("Authorization", "IAP "+token)
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		if _, done := a.Authenticate(w, r); !done || w.Code != 401 || !strings.Contains(w.Body.String(), string(authz.ReasonBadToken)) {
			t.Fatalf("got %d %s", w.Code, w.Body)
		}
	})
	t.Run("the user endpoint tells how", func(t *testing.T) {
		r := httptest.NewRequest("GET", "https://app.test/.iap/user", nil)
		r.Header.Set("Authorization", "Bearer IAP-"+token)
		w := httptest.NewRecorder()
		a.ServeEndpoint(w, r)
		var u map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &u)
		if w.Code != 200 || u["authenticated_via"] != "programmatic-token" || u["sub"] != "alice" {
			t.Fatalf("got %d %s", w.Code, w.Body)
		}
	})
	t.Run("Peek, which does not know the host, refuses it", func(t *testing.T) {
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		r.Header.Set("Authorization", "Bearer IAP-"+token)
		if got, err := a.Peek(r); got != nil || !errors.Is(err, ErrBadBearer) {
			t.Fatalf("got %+v %v", got, err)
		}
	})
	t.Run("it expires with the session", func(t *testing.T) {
		clock.Advance(a.cfg.CookieExpire - time.Minute)
		if _, err := session("app.test", "IAP "+token, ""); err != nil {
			t.Fatalf("before cookie_expire: %v", err)
		}
		clock.Advance(2 * time.Minute)
		if got, err := session("app.test", "IAP "+token, ""); got != nil || !errors.Is(err, ErrBadBearer) {
			t.Fatalf("after cookie_expire: %+v %v", got, err)
		}
	})
}

// Under compat pomerium the token is sent as Pomerium's clients send
// theirs; IAP's scheme is then an ordinary (refused) credential.
func TestProgrammaticTokenPomeriumNames(t *testing.T) {
	op := startTestOP(t)
	a := startAuthenticatorAt(t, op, &fakeClock{now: time.Now()}, nil)
	a.names = namesFor("pomerium")
	s := &Session{ID: "sid", Subject: "alice", IssuedAt: time.Now(), IDTokenExpiry: time.Now().Add(time.Hour)}
	token, _ := a.programmaticToken(s, "app.test")
	for _, auth := range []string{"Pomerium " + token, "Bearer Pomerium-" + token} {
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		r.Header.Set("Authorization", auth)
		if got, err := a.Session(httptest.NewRecorder(), r); err != nil || !got.Bearer || got.Subject != "alice" {
			t.Fatalf("%.20s: %+v %v", auth, got, err)
		}
	}
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Authorization", "IAP "+token)
	if got, _ := a.Session(httptest.NewRecorder(), r); got != nil {
		t.Fatalf("IAP scheme under compat pomerium: %+v", got)
	}
	w := httptest.NewRecorder()
	a.finishProgrammatic(w, httptest.NewRequest("GET", "https://app.test/.pomerium/callback", nil), s, "http://127.0.0.1:7/")
	if !strings.HasPrefix(w.Header().Get("Location"), "http://127.0.0.1:7/?pomerium_jwt=") {
		t.Fatalf("Location %q", w.Header().Get("Location"))
	}
}

func TestStripTokensKeepsTheOtherAuthorizationHeaders(t *testing.T) {
	h := http.Header{"Authorization": {"Basic Zm9v", "IAP abc", "Bearer\tIAP-x", "Bearer eyJ.x.y"}}
	StripTokens(h)
	if got := h.Values("Authorization"); len(got) != 2 || got[0] != "Basic Zm9v" || got[1] != "Bearer eyJ.x.y" {
		t.Errorf("got %q", got)
	}
}

func TestStripTokensRemovesEveryProgrammaticToken(t *testing.T) {
	for value, stripped := range map[string]bool{
		"IAP abc":                true,
		"iap abc":                true,
		"Bearer IAP-abc":         true,
		"bearer   iap-abc":       true,
		"Pomerium abc":           true,
		"Bearer Pomerium-abc":    true,
		"Bearer eyJhbGciOi.x.y":  false,
		"Basic YWxpY2U6c2VjcmV0": false,
		"Bearer IAPish-not-ours": false,
		"IAPX abc":               false,
		"IAP\tabc":               true,
		"Bearer\tIAP-abc":        true,
		"Pomerium\t abc":         true,
	} {
		h := http.Header{"Authorization": {value}}
		StripTokens(h)
		if got := h.Get("Authorization") == ""; got != stripped {
			t.Errorf("%q: stripped %v, want %v", value, got, stripped)
		}
	}
}

// authn's pages cannot be framed by another site: a framed sign-out form
// would post same-origin with a valid token.
func TestPagesRefuseFraming(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	for _, path := range []string{"/.iap/sign_out", "/.iap/no-such-page"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "https://app.test"+path, nil)
		r.Header.Set("Accept", "text/html")
		a.ServeEndpoint(w, r)
		if w.Header().Get("Content-Security-Policy") != "frame-ancestors 'none'" || w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %d, headers %v", path, w.Code, w.Header())
		}
	}
}
