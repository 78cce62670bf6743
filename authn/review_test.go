package authn

// Attacks on central sign-in, several IdPs and logout, written by a
// reviewer from the README and the code (review of 2026-12-01).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// reviewNamedIdP is a second Authenticator as the iap app makes a named
// IdP: the default's cookie secret, its cookie name with "_<name>", no
// central sign-in.
func reviewNamedIdP(t *testing.T, def *Authenticator, op *testOP, clock *fakeClock, name string) *Authenticator {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, err := New(Config{ProviderURL: op.URL, ClientID: "caddy", ClientSecret: "caddy-secret",
		CookieSecret: def.cfg.CookieSecret, CookieName: def.CookieName() + "_" + name, IDPName: name,
		SigningKey: key, Now: clock.Now,
		AllowedRedirectHosts: def.cfg.AllowedRedirectHosts})
	if err != nil {
		t.Fatal(err)
	}
	b.Start()
	t.Cleanup(b.Stop)
	waitDiscovered(t, b)
	return b
}

// A programmatic login token is bound to its IdP as the session cookie is:
// one minted by a partner IdP's route opens nothing on a route of the
// default IdP on the same host (and the other way round), as a bearer ID
// token or a renamed cookie would not.
func TestReviewProgrammaticTokenOfAnotherIdP(t *testing.T) {
	op, partnerOP := startTestOP(t), startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	def := startAuthenticatorAt(t, op, clock, nil)
	partners := reviewNamedIdP(t, def, partnerOP, clock, "partners")
	s := &Session{ID: randomID(), Subject: "mallory", Email: "mallory@partner.example", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
	for _, c := range []struct {
		name     string
		from, to *Authenticator
	}{{"partner token on the default IdP's route", partners, def}, {"default token on the partner route", def, partners}} {
		token, err := c.from.programmaticToken(s, "app.test")
		if err != nil {
			t.Fatal(err)
		}
		// Its own IdP accepts it.
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		r.Header.Set("Authorization", "IAP "+token)
		if got, err := c.from.Session(httptest.NewRecorder(), r); err != nil || got.Subject != "mallory" {
			t.Fatalf("%s: its own IdP refuses it: %v", c.name, err)
		}
		if got, err := c.to.Session(httptest.NewRecorder(), r); err == nil {
			t.Errorf("%s: accepted as %q", c.name, got.Subject)
		}
	}
}

// A hand-off of a session revoked while it travelled (signed out on
// another host within the minute) starts nothing: no cookie and, for a
// programmatic login, no token, whose new ID the revocation would not name.
func TestReviewHandoffOfARevokedSession(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startCentralAuthenticator(t, op, clock, "")
	for _, programmatic := range []bool{false, true} {
		b := newTestBrowser(t, a)
		var to string
		if programmatic {
			rec := b.get("https://app.test/.iap/api/v1/login?redirect_uri=" + url.QueryEscape("http://127.0.0.1:9/cb"))
			if rec.Code != http.StatusOK {
				t.Fatalf("login API: %d %s", rec.Code, rec.Body)
			}
			to = b.startSignIn(rec.Body.String())
		} else {
			to = b.startSignIn("https://app.test/page")
		}
		u, _ := url.Parse(to)
		s := Session{ID: randomID(), Subject: "alice", Email: "alice@example.com", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
		token, err := a.handoff.seal(handoffName, handoff{Session: s, Host: "app.test", State: u.Query().Get("state"), ID: randomID(), Expires: clock.Now().Add(handoffTTL)})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.RevokeSession(s.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		rec := b.get("https://app.test/.iap/handoff?token=" + url.QueryEscape(token))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("programmatic=%v: a revoked session's hand-off: %d to %q, want 400", programmatic, rec.Code, rec.Header().Get("Location"))
		}
		if loc, _ := url.Parse(rec.Header().Get("Location")); loc != nil && loc.Query().Get("iap_token") != "" {
			r := httptest.NewRequest("GET", "https://app.test/", nil)
			r.Header.Set("Authorization", "IAP "+loc.Query().Get("iap_token"))
			if got, err := a.Session(httptest.NewRecorder(), r); err == nil {
				t.Errorf("a token minted from the revoked session works: %s", got.Subject)
			}
		}
	}
}

// The sign-in host hands off only to a host of this server on its own
// port, and the hand-off URL is the one checked, however the host is
// spelt: encodings, user info, backslashes, other ports, trailing dots,
// IDN, IPv6 literals, case.
func TestReviewHandoffTargets(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startCentralAuthenticator(t, op, clock, "")
	cookie := reviewSignInHostSession(t, a, clock)
	for _, host := range []string{
		"evil.test", "app.test.", "APP.TEST.", "app.test%2F@evil.test", "app.test@evil.test", "evil.test#@app.test",
		"app.test\\@evil.test", "app.test/evil.test", "app.test:8443", "app.test:0443", "app.test:", "app.test:443:1",
		"[::1]", "[::ffff:7f00:1]", "xn--pp-qla.test", "аpp.test", "app.test\x00", "app.test\t", " app.test",
		"auth.test", "AUTH.test:443", "app.test?x=1", "//evil.test", "https://evil.test", "",
		"app。test", "app%2etest", "other.test\u3002", "*.test", "app.test;evil.test", "app.test,evil.test",
	} {
		rec := reviewGet(a, "https://auth.test/.iap/authenticate?"+url.Values{"host": {host}, "state": {"00"}}.Encode(), cookie)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("host %q: %d to %q, want 400", host, rec.Code, rec.Header().Get("Location"))
		}
	}
	for host, want := range map[string]string{
		"app.test": "app.test:443", "APP.test": "app.test:443", "app.test:443": "app.test:443", "other.test": "other.test:443",
	} {
		rec := reviewGet(a, "https://auth.test/.iap/authenticate?"+url.Values{"host": {host}, "state": {"00"}}.Encode(), cookie)
		got, err := browserNavigate(rec.Header().Get("Location"), "https://auth.test/")
		if rec.Code != http.StatusFound || err != nil || got.hostport != want || !strings.HasPrefix(rec.Header().Get("Location"), "https://") {
			t.Errorf("host %q: %d to %q, want the hand-off on %s", host, rec.Code, rec.Header().Get("Location"), want)
		}
	}
	// State: hex only, at most 64 digits.
	for _, state := range []string{"", "0G", "AB", strings.Repeat("0", 65), "00\n", "00&host=evil.test"} {
		rec := reviewGet(a, "https://auth.test/.iap/authenticate?"+url.Values{"host": {"app.test"}, "state": {state}}.Encode(), cookie)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("state %q: %d, want 400", state, rec.Code)
		}
	}
}

// reviewSignInHostSession is a session cookie of the sign-in host.
func reviewSignInHostSession(t testing.TB, a *Authenticator, clock *fakeClock) *http.Cookie {
	s := Session{ID: randomID(), Subject: "alice", Email: "alice@example.com", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
	v, err := a.session.seal(a.jar.name, &s)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: a.jar.name, Value: v}
}

func reviewGet(a *Authenticator, rawURL string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", rawURL, nil)
	req.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	a.Authenticate(rec, req)
	return rec
}

// A hand-off for one host, taken there, opens nothing on another host, on
// the sign-in host, after a cookie_secret rotation that dropped its secret,
// or when its login cookie is of another IdP.
func TestReviewHandoffConfusion(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startCentralAuthenticator(t, op, clock, "")
	b := newTestBrowser(t, a)
	u, _ := url.Parse(b.startSignIn("https://app.test/page"))
	state := u.Query().Get("state")
	s := Session{ID: randomID(), Subject: "alice", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
	seal := func(host string) string {
		tok, err := a.handoff.seal(handoffName, handoff{Session: s, Host: host, State: state, ID: randomID(), Expires: clock.Now().Add(handoffTTL)})
		if err != nil {
			t.Fatal(err)
		}
		return url.QueryEscape(tok)
	}
	// The login cookie's value, as the route host set it.
	var login *http.Cookie
	for _, c := range b.jar.Cookies(&url.URL{Scheme: "https", Host: "app.test", Path: "/"}) {
		if a.isLoginName(c.Name) {
			login = c
		}
	}
	if login == nil {
		t.Fatal("no login cookie")
	}
	for name, c := range map[string]struct {
		url    string
		cookie *http.Cookie
	}{
		"another host's hand-off":        {"https://app.test/.iap/handoff?token=" + seal("other.test"), login},
		"on the other host":              {"https://other.test/.iap/handoff?token=" + seal("app.test"), login},
		"on the sign-in host":            {"https://auth.test/.iap/handoff?token=" + seal("auth.test"), login},
		"the host with a trailing dot":   {"https://app.test./.iap/handoff?token=" + seal("app.test."), login},
		"a session cookie as hand-off":   {"https://app.test/.iap/handoff?token=" + url.QueryEscape(reviewSignInHostSession(t, a, clock).Value), login},
		"a login cookie as hand-off":     {"https://app.test/.iap/handoff?token=" + url.QueryEscape(login.Value), login},
		"the login cookie under a name":  {"https://app.test/.iap/handoff?token=" + seal("app.test"), &http.Cookie{Name: a.loginName("00"), Value: login.Value}},
		"the token twice in the query":   {"https://app.test/.iap/handoff?token=&token=" + seal("app.test"), login},
		"a POST-looking query parameter": {"https://app.test/.iap/handoff?token=" + seal("app.test") + "%00", login},
	} {
		rec := reviewGet(a, c.url, c.cookie)
		if rec.Code == http.StatusFound {
			t.Errorf("%s: %d to %q, want a refusal", name, rec.Code, rec.Header().Get("Location"))
		}
	}
	// Rotated out: sealed under a secret that is no longer listed.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rotated, err := New(Config{ProviderURL: op.URL, ClientID: "caddy", ClientSecret: "caddy-secret", CookieSecret: secret(t),
		SigningKey: key, AuthenticateURL: "https://auth.test", Now: clock.Now, AllowedRedirectHosts: a.cfg.AllowedRedirectHosts})
	if err != nil {
		t.Fatal(err)
	}
	old := seal("app.test")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "https://app.test/.iap/handoff?token="+old, nil)
	req.AddCookie(login)
	rotated.acceptHandoff(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("a hand-off under a dropped cookie_secret: %d", rec.Code)
	}
}

// A named IdP takes no hand-off (central sign-in is the default's), even
// one sealed by the default under the shared cookie secret.
func TestReviewNamedIdPTakesNoHandoff(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	def := startCentralAuthenticator(t, op, clock, "")
	partners := reviewNamedIdP(t, def, op, clock, "partners")
	b := newTestBrowser(t, def)
	u, _ := url.Parse(b.startSignIn("https://app.test/page"))
	s := Session{ID: randomID(), Subject: "alice", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
	tok, _ := def.handoff.seal(handoffName, handoff{Session: s, Host: "app.test", State: u.Query().Get("state"), ID: randomID(), Expires: clock.Now().Add(handoffTTL)})
	req := httptest.NewRequest("GET", "https://app.test/.iap/handoff?token="+url.QueryEscape(tok), nil)
	for _, c := range b.jar.Cookies(&url.URL{Scheme: "https", Host: "app.test", Path: "/"}) {
		req.AddCookie(c)
		req.AddCookie(&http.Cookie{Name: partners.loginName(u.Query().Get("state")), Value: c.Value})
	}
	rec := httptest.NewRecorder()
	partners.Authenticate(rec, req)
	if rec.Code != http.StatusBadRequest || len(rec.Result().Cookies()) > 0 && strings.Contains(rec.Header().Get("Set-Cookie"), "_partners=") {
		t.Errorf("a named IdP took a hand-off: %d %v", rec.Code, rec.Header()["Set-Cookie"])
	}
}

// reviewLogoutClaims are a logout token's claims, with more.
func reviewLogoutClaims(extra map[string]any) map[string]any {
	c := map[string]any{"events": map[string]any{backchannelLogoutEvent: map[string]any{}}, "jti": randomID()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func reviewPostLogout(auths []*Authenticator, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "https://app.test/.iap/backchannel_logout", strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	ServeBackchannelLogout(rec, r, auths)
	return rec
}

// Logout tokens that are not the IdP's for this client end nothing: alg
// none, HS256 keyed with the client secret, an unpublished kid, another
// client, an ID token, a nonce, no event, neither sid nor sub, a replay.
func TestReviewBackchannelLogoutForgeries(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startAuthenticatorAt(t, op, clock, nil)
	a.SetRevocations(NewRevocations(nil, 14*time.Hour, clock.Now, nil), 0)
	victim := &Session{ID: randomID(), Subject: "alice", IdPSessionID: "idp-1", IssuedAt: clock.Now().Add(-time.Minute)}
	unsigned := func(header, claims map[string]any, key []byte) string {
		h, _ := json.Marshal(header)
		c, _ := json.Marshal(claims)
		in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
		if key == nil {
			return in + "."
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	std := reviewLogoutClaims(map[string]any{"iss": op.URL, "aud": "caddy", "sub": "alice", "sid": "idp-1", "iat": clock.Now().Unix()})
	replayed := op.token(t, "k1", "logout+jwt", clock.Now(), reviewLogoutClaims(map[string]any{"sid": "other"}))
	if rec := reviewPostLogout([]*Authenticator{a}, replayed); rec.Code != http.StatusOK {
		t.Fatalf("a good logout token: %d %s", rec.Code, rec.Body)
	}
	for name, token := range map[string]string{
		"alg none":                   unsigned(map[string]any{"alg": "none", "typ": "logout+jwt"}, std, nil),
		"HS256 with the secret":      unsigned(map[string]any{"alg": "HS256", "typ": "logout+jwt", "kid": "k1"}, std, []byte("caddy-secret")),
		"unpublished kid":            op.token(t, "nope", "logout+jwt", clock.Now(), reviewLogoutClaims(map[string]any{"sid": "idp-1"})),
		"an ID token (nonce)":        op.token(t, "k1", "", clock.Now(), reviewLogoutClaims(map[string]any{"sid": "idp-1", "nonce": "n"})),
		"no event":                   op.token(t, "k1", "logout+jwt", clock.Now(), map[string]any{"sid": "idp-1", "jti": randomID()}),
		"event not an object":        op.token(t, "k1", "logout+jwt", clock.Now(), map[string]any{"sid": "idp-1", "jti": randomID(), "events": map[string]any{backchannelLogoutEvent: "x"}}),
		"typed at+jwt":               op.token(t, "k1", "at+jwt", clock.Now(), reviewLogoutClaims(map[string]any{"sid": "idp-1"})),
		"no jti":                     op.token(t, "k1", "logout+jwt", clock.Now(), map[string]any{"sid": "idp-1", "events": map[string]any{backchannelLogoutEvent: map[string]any{}}}),
		"a jti too long":             op.token(t, "k1", "logout+jwt", clock.Now(), reviewLogoutClaims(map[string]any{"sid": "idp-1", "jti": strings.Repeat("j", maxJTILength+1)})),
		"sid a number":               op.token(t, "k1", "logout+jwt", clock.Now(), reviewLogoutClaims(map[string]any{"sid": 1})),
		"iat an hour ago":            op.token(t, "k1", "logout+jwt", clock.Now().Add(-time.Hour), reviewLogoutClaims(map[string]any{"sid": "idp-1"})),
		"iat in the future":          op.token(t, "k1", "logout+jwt", clock.Now().Add(time.Hour), reviewLogoutClaims(map[string]any{"sid": "idp-1"})),
		"a replayed jti":             replayed,
		"the signature of another":   strings.Join(append(strings.Split(op.token(t, "k1", "logout+jwt", clock.Now(), reviewLogoutClaims(map[string]any{"sid": "idp-1"})), ".")[:2], strings.Split(replayed, ".")[2]), "."),
		"JWS JSON serialization":     `{"payload":"e30","signatures":[]}`,
		"five parts (JWE)":           "a.b.c.d.e",
		"a huge header":              base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("[", 5000))) + ".e30.x",
		"header typ not a string":    unsigned(map[string]any{"alg": "ES256", "typ": 1}, std, nil),
		"aud of another client only": reviewTokenFor(t, op, clock, "other-client"),
	} {
		rec := reviewPostLogout([]*Authenticator{a}, token)
		if rec.Code == http.StatusOK {
			t.Errorf("%s: 200", name)
		}
		if a.checkRevoked(victim) != nil {
			t.Fatalf("%s: revoked the victim's session", name)
		}
	}
}

// reviewTokenFor is a logout token of op for client aud alone.
func reviewTokenFor(t *testing.T, op *testOP, clock *fakeClock, aud string) string {
	// op.token's audience is "caddy"; re-sign with another by hand.
	tok := op.token(t, "k1", "logout+jwt", clock.Now(), reviewLogoutClaims(map[string]any{"sid": "idp-1", "aud": aud}))
	return tok
}

// canonicalAuthority's result is a fixed point, and what it accepts a
// browser reads as the same host and port.
func FuzzReviewCanonicalAuthority(f *testing.F) {
	for _, s := range []string{"app.test", "APP.test:443", "[::1]:8443", "a:0", "a:65536", "[::1]]", "a.:1", "xn--a", "[", "[]", ":443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := canonicalAuthority(s)
		if !ok {
			return
		}
		c2, ok2 := canonicalAuthority(c)
		if !ok2 || c2 != c {
			t.Fatalf("%q -> %q -> %q %v", s, c, c2, ok2)
		}
		got, err := browserNavigate("https://"+s+"/", "https://base.test/")
		if err != nil {
			return // a browser refuses it: no harm
		}
		want := c
		if !strings.Contains(strings.TrimPrefix(want, "["), ":") || strings.HasSuffix(want, "]") {
			want += ":443"
		}
		gotHost, _, _ := net.SplitHostPort(got.hostport)
		if got.hostport != want && (net.ParseIP(gotHost) == nil || strings.Contains(gotHost, ":")) {
			// A host that ends in a number is an IPv4 address to a
			// browser ("00" is 0.0.0.0): the same address either way,
			// and only ever a route host if one is named so.
			t.Fatalf("%q: canonical %q, a browser goes to %q", s, c, got.hostport)
		}
	})
}

// The new endpoints never panic, never redirect off this server's hosts
// and port, and never take a hand-off or logout token nobody sealed.
func FuzzReviewNewEndpoints(f *testing.F) {
	for _, s := range []string{"app.test", "evil.test", "app.test%2F@evil", "//evil", "/x", "https://other.test/x", "https://app.test:8443/", "\\\\evil", "https:\\\\evil"} {
		f.Add(uint8(0), s, "00")
		f.Add(uint8(1), s, "")
		f.Add(uint8(2), s, s)
		f.Add(uint8(3), "logout_token="+s, "")
	}
	op := startTestOP(f)
	clock := &fakeClock{now: time.Now()}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := New(Config{ProviderURL: op.URL, ClientID: "caddy", ClientSecret: "caddy-secret",
		CookieSecret: make([]byte, 32), SigningKey: key, AuthenticateURL: "https://auth.test", Now: clock.Now,
		AllowedRedirectHosts: func(h string) bool { return h == "app.test" || h == "other.test" }})
	if err != nil {
		f.Fatal(err)
	}
	a.Start()
	f.Cleanup(a.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for _, _, _, err := a.idp.get(); err != nil && time.Now().Before(deadline); _, _, _, err = a.idp.get() {
		time.Sleep(10 * time.Millisecond)
	}
	cookie := reviewSignInHostSession(f, a, clock)
	f.Fuzz(func(t *testing.T, which uint8, x, y string) {
		var rec *httptest.ResponseRecorder
		base := "https://auth.test/"
		switch which % 4 {
		case 0:
			rec = reviewGet(a, "https://auth.test/.iap/authenticate?"+url.Values{"host": {x}, "state": {y}}.Encode(), cookie)
		case 1:
			rec = reviewGet(a, "https://app.test/.iap/handoff?token="+url.QueryEscape(x), &http.Cookie{Name: a.loginName(y), Value: x})
			base = "https://app.test/"
			if rec.Code == http.StatusFound {
				t.Fatalf("a forged hand-off was taken: %q", x)
			}
		case 2:
			rec = reviewGet(a, "https://app.test/.iap/signed_out?"+url.Values{"state": {x}}.Encode())
			base = "https://app.test/"
		case 3:
			r := httptest.NewRequest(http.MethodPost, "https://app.test/.iap/backchannel_logout", strings.NewReader(x))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec = httptest.NewRecorder()
			ServeBackchannelLogout(rec, r, []*Authenticator{a, a})
			if rec.Code == http.StatusOK {
				t.Fatalf("a forged logout token was taken: %q", x)
			}
			return
		}
		loc := rec.Header().Get("Location")
		if rec.Code != http.StatusFound || loc == "" {
			return
		}
		got, err := browserNavigate(loc, base)
		if err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		if got.scheme != "https" {
			t.Fatalf("Location %q: scheme %s", loc, got.scheme)
		}
		switch got.hostport {
		case "app.test:443", "other.test:443", "auth.test:443":
		default:
			if !strings.HasPrefix(loc, op.URL) {
				t.Fatalf("Location %q takes a browser to %s", loc, got.hostport)
			}
		}
	})
}

// A back-channel logout token of one IdP ends only that IdP's sessions:
// a partner IdP that logs out its user "alice" (or its IdP session "s1")
// must not end the default IdP's alice, whose sub and sid are another
// issuer's.
func TestReviewBackchannelLogoutOfAnotherIdP(t *testing.T) {
	for _, claim := range []map[string]any{{}, {"sid": "s1"}} {
		op, partnerOP := startTestOP(t), startTestOP(t)
		clock := &fakeClock{now: time.Now()}
		def := startAuthenticatorAt(t, op, clock, nil)
		partners := reviewNamedIdP(t, def, partnerOP, clock, "partners")
		shared := NewRevocations(nil, 14*time.Hour, clock.Now, nil)
		def.SetRevocations(shared, 0)
		partners.SetRevocations(shared, 0)
		corpAlice := &Session{ID: randomID(), Subject: "alice", IdPSessionID: "s1", IssuedAt: clock.Now().Add(-time.Minute)}
		clock.Advance(time.Second)
		token := partnerOP.token(t, "k1", "logout+jwt", clock.Now(), reviewLogoutClaims(claim))
		if rec := reviewPostLogout([]*Authenticator{def, partners}, token); rec.Code != http.StatusOK {
			t.Fatalf("the partner's logout token: %d %s", rec.Code, rec.Body)
		}
		if err := def.checkRevoked(corpAlice); err != nil {
			t.Errorf("the partner IdP's logout (%v) ended the default IdP's session of the same sub/sid: %v", claim, err)
		}
		partnerAlice := *corpAlice
		partnerAlice.ID = randomID()
		if err := partners.checkRevoked(&partnerAlice); err == nil {
			t.Errorf("the partner IdP's logout (%v) did not end its own session", claim)
		}
		// The default IdP's own logout still ends its session.
		own := op.token(t, "k1", "logout+jwt", clock.Now(), reviewLogoutClaims(claim))
		if rec := reviewPostLogout([]*Authenticator{def, partners}, own); rec.Code != http.StatusOK {
			t.Fatalf("the default IdP's logout token: %d %s", rec.Code, rec.Body)
		}
		if err := def.checkRevoked(corpAlice); err == nil {
			t.Errorf("the default IdP's logout (%v) did not end its session", claim)
		}
	}
}

// Login as the victim through a hand-off for the attacker's state: anyone
// can start a sign-in on a route host (a login cookie and its state, no
// account needed) and send a signed-in victim the sign-in host's
// /.iap/authenticate link with that state. The victim's browser is handed
// off at once, and refused at the route host (no login cookie of that
// state); the hand-off URL it opened (the route host's access log, the
// browser's history) must not then sign the attacker in as the victim.
func TestReviewHandoffForTheAttackersState(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startCentralAuthenticator(t, op, clock, "")
	attacker := newTestBrowser(t, a)
	link := attacker.startSignIn("https://app.test/page")
	victim := reviewSignInHostSession(t, a, clock)
	rec := reviewGet(a, link, victim)
	handoffURL := rec.Header().Get("Location")
	if rec.Code != http.StatusFound || !strings.Contains(handoffURL, "/.iap/handoff?token=") {
		t.Fatalf("the victim's browser was not handed off: %d %q", rec.Code, handoffURL)
	}
	if rec := reviewGet(a, handoffURL); rec.Code != http.StatusBadRequest {
		t.Fatalf("the victim's browser took a hand-off it did not start: %d", rec.Code)
	}
	clock.Advance(5 * time.Second)
	if rec := attacker.get(handoffURL); rec.Code != http.StatusBadRequest {
		t.Errorf("the attacker, with the hand-off URL the victim opened, is signed in as the victim: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

// A signed-out session stays revoked however its cookie comes back:
// sealed under a cookie_secret since rotated (opened with
// cookie_secret_previous, and what a reseal would make of it), on another
// instance sharing the storage, or as a programmatic token of the same
// user revoked by subject.
func TestReviewRevokedSessionStaysRevoked(t *testing.T) {
	store := newMemStore()
	clock := &fakeClock{now: time.Now()}
	old := instance(t, store, clock, 0)
	s := &Session{ID: randomID(), Subject: "alice", Email: "alice@example.com", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
	cookie := revCookie(t, old, s)
	signOut(t, old, cookie, s)
	// The new instance: a new secret, the old one previous.
	cfg := old.cfg
	cfg.CookieSecret, cfg.PreviousCookieSecrets = secret(t), [][]byte{old.cfg.CookieSecret}
	rotated, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rotated.SetRevocations(NewRevocations(store, cfg.CookieExpire, cfg.Now, nil), 0)
	if err := rotated.Revocations().Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := use(rotated, cookie); err == nil {
		t.Errorf("a revoked cookie sealed under the previous secret opened after the rotation")
	}
	if err := use(rotated, revCookie(t, rotated, s)); err == nil {
		t.Errorf("a revoked session resealed under the new secret opened")
	}
	// By subject: the user's programmatic tokens end too.
	token, err := rotated.programmaticToken(s, "app.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := rotated.RevokeSubject("alice", clock.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Authorization", "IAP "+token)
	if _, err := rotated.Session(httptest.NewRecorder(), r); err == nil {
		t.Errorf("a programmatic token of a user revoked by subject still works")
	}
}

// One IdP's chunked session cookie, renamed chunk by chunk to another's
// names, and one IdP's login cookie under another's login cookie name,
// open nothing; nor do an oversized hand-off or a hand-off query of
// another shape.
func TestReviewCookiesRenamedAcrossIdPs(t *testing.T) {
	op, partnerOP := startTestOP(t), startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	def := startAuthenticatorAt(t, op, clock, nil)
	partners := reviewNamedIdP(t, def, partnerOP, clock, "partners")
	s := bigSession()
	s.IssuedAt, s.IDTokenExpiry = clock.Now(), clock.Now().Add(time.Hour)
	rec := httptest.NewRecorder()
	if err := partners.writeSession(rec, httptest.NewRequest("GET", "https://app.test/", nil), s); err != nil {
		t.Fatal(err)
	}
	var renamed []string
	for _, c := range rec.Result().Cookies() {
		if !strings.HasPrefix(c.Name, partners.CookieName()) {
			t.Fatalf("partner cookie %q", c.Name)
		}
		renamed = append(renamed, def.CookieName()+strings.TrimPrefix(c.Name, partners.CookieName())+"="+c.Value)
	}
	if len(renamed) < 2 {
		t.Fatalf("the big session was not chunked: %d cookies", len(renamed))
	}
	if err := use(def, strings.Join(renamed, "; ")); err == nil {
		t.Errorf("a partner's chunked session opened as the default IdP's")
	}
	// A default login cookie under the partner's login name, with its state.
	b := newTestBrowser(t, def)
	idpURL, _ := url.Parse(b.startSignIn("https://app.test/page"))
	state := idpURL.Query().Get("state")
	var login *http.Cookie
	for _, c := range b.jar.Cookies(&url.URL{Scheme: "https", Host: "app.test", Path: "/"}) {
		login = c
	}
	req := httptest.NewRequest("GET", "https://app.test/.iap/callback?code=x&state="+state, nil)
	req.AddCookie(&http.Cookie{Name: partners.loginName(state), Value: login.Value})
	rec = httptest.NewRecorder()
	partners.ServeEndpoint(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "cookie is not valid") {
		t.Errorf("the partner callback with the default's login cookie: %d %s", rec.Code, rec.Body)
	}
	// Oversized and odd hand-offs, on a central Authenticator.
	central := startCentralAuthenticator(t, op, clock, "")
	for _, q := range []string{"token=" + strings.Repeat("A", maxHandoffLen+1), "token=", "", "token=%zz", "token=v1." + strings.Repeat("_", 5000)} {
		if rec := reviewGet(central, "https://app.test/.iap/handoff?"+q); rec.Code != http.StatusBadRequest {
			t.Errorf("hand-off %.30q: %d", q, rec.Code)
		}
	}
	req = httptest.NewRequest("POST", "https://app.test/.iap/handoff?token=x", nil)
	rec = httptest.NewRecorder()
	central.ServeEndpoint(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST hand-off: %d", rec.Code)
	}
}
