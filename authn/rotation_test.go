package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// cookieAuth is an Authenticator with the given cookie secrets and no IdP
// reached: enough to open, check and seal sessions.
func cookieAuth(t *testing.T, current []byte, previous ...[]byte) (*Authenticator, *observer.ObservedLogs) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	core, logs := observer.New(zap.DebugLevel)
	a, err := New(Config{ProviderURL: "http://127.0.0.1:1", ClientID: "caddy", CookieSecret: current,
		PreviousCookieSecrets: previous, SigningKey: key, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// sessionCookie is the session cookie a sign-in under a would set.
func sessionCookie(t *testing.T, a *Authenticator, s *Session) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := a.writeSession(w, httptest.NewRequest("GET", "https://app.test/", nil), s); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == a.jar.name {
			return c
		}
	}
	t.Fatal("no session cookie written")
	return nil
}

// withCookie is a request to app.test carrying one cookie.
func withCookie(c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Accept", "application/json")
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	return r
}

// setSession is the session cookie a response set, or nil.
func setSession(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestCookieSecretRotation(t *testing.T) {
	oldSecret, newSecret := secret(t), secret(t)
	before, _ := cookieAuth(t, oldSecret)
	alice := &Session{ID: randomID(), Subject: "alice", Email: "alice@example.com", IssuedAt: time.Now(),
		IDTokenExpiry: time.Now().Add(time.Hour), RefreshToken: "rt"}
	old := sessionCookie(t, before, alice)

	during, _ := cookieAuth(t, newSecret, oldSecret)
	var resealed *http.Cookie
	t.Run("a session sealed under a previous secret is served and sealed again under the current one", func(t *testing.T) {
		w := httptest.NewRecorder()
		s, err := during.Session(w, withCookie(old))
		if err != nil || s.Subject != "alice" {
			t.Fatalf("got %+v, %v", s, err)
		}
		resealed = setSession(w, during.jar.name)
		if resealed == nil || resealed.Value == old.Value || resealed.MaxAge <= 0 {
			t.Fatalf("not sealed again: %+v", w.Result().Cookies())
		}
		var got Session
		if stale, err := during.session.open(during.jar.name, resealed.Value, &got); err != nil || stale || got.ID != alice.ID {
			t.Errorf("the new cookie: stale %v, %v, %+v", stale, err, got)
		}
	})

	t.Run("the same old cookie again, now from the decoded-session cache, is sealed again too", func(t *testing.T) {
		w := httptest.NewRecorder()
		if _, err := during.Session(w, withCookie(old)); err != nil {
			t.Fatal(err)
		}
		if setSession(w, during.jar.name) == nil {
			t.Error("a cached session of a previous secret was served without being sealed again")
		}
	})

	t.Run("a session of the current secret is not written again", func(t *testing.T) {
		w := httptest.NewRecorder()
		if _, err := during.Session(w, withCookie(resealed)); err != nil {
			t.Fatal(err)
		}
		if c := w.Result().Cookies(); len(c) != 0 {
			t.Errorf("wrote %v", c)
		}
	})

	after, logs := cookieAuth(t, newSecret)
	t.Run("once the previous secret is removed, the re-sealed session still works", func(t *testing.T) {
		if s, err := after.Session(httptest.NewRecorder(), withCookie(resealed)); err != nil || s.ID != alice.ID {
			t.Fatalf("got %+v, %v", s, err)
		}
	})

	t.Run("a session sealed under a removed secret ends, with the reason logged", func(t *testing.T) {
		w := httptest.NewRecorder()
		if _, err := after.Session(w, withCookie(old)); err == nil {
			t.Fatal("a session sealed under a removed secret was accepted")
		}
		if c := setSession(w, after.jar.name); c == nil || c.MaxAge >= 0 {
			t.Errorf("the cookie was not cleared: %v", w.Result().Cookies())
		}
		entries := logs.FilterMessage("session cookie refused, and cleared").All()
		if len(entries) != 1 || !strings.Contains(entries[0].ContextMap()["error"].(string), "another cookie_secret") {
			t.Errorf("log: %+v", logs.All())
		}
	})

	t.Run("a removed secret also ends sessions an instance had cached before", func(t *testing.T) {
		// The same Authenticator keeps its secrets; a new list is a new
		// Authenticator, whose cache starts empty.
		if _, err := during.Session(httptest.NewRecorder(), withCookie(old)); err != nil {
			t.Fatal(err)
		}
		if _, err := after.Session(httptest.NewRecorder(), withCookie(old)); err == nil {
			t.Error("opened")
		}
	})

	t.Run("with several previous secrets, the reason names the list", func(t *testing.T) {
		several, _ := cookieAuth(t, secret(t), secret(t), secret(t))
		_, err := several.Session(httptest.NewRecorder(), withCookie(old))
		if err == nil || !strings.Contains(err.Error(), "previous cookie secret") {
			t.Errorf("got %v", err)
		}
	})

	t.Run("a login cookie sealed under a previous secret still opens", func(t *testing.T) {
		name := before.loginName("state-1")
		v, err := before.login.seal(name, loginState{State: "state-1"})
		if err != nil {
			t.Fatal(err)
		}
		var ls loginState
		if stale, err := during.login.open(name, v, &ls); err != nil || !stale || ls.State != "state-1" {
			t.Errorf("stale %v, %v, %+v", stale, err, ls)
		}
		if _, err := after.login.open(name, v, &ls); err == nil {
			t.Error("opened under a removed secret")
		}
	})

	t.Run("a sign-out form shown before the rotation is valid after it", func(t *testing.T) {
		token := before.csrfToken(alice)
		if !during.csrfValid(token, alice) {
			t.Error("refused during the rotation")
		}
		if after.csrfValid(token, alice) {
			t.Error("accepted once the secret was removed")
		}
	})
}

func TestPreviousCookieSecretsMustBe32Bytes(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := New(Config{ProviderURL: "http://127.0.0.1:1", ClientID: "caddy", CookieSecret: secret(t),
		PreviousCookieSecrets: [][]byte{make([]byte, 16)}, SigningKey: key})
	if err == nil || !strings.Contains(err.Error(), "previous cookie secret 1 must be 32 bytes") {
		t.Errorf("got %v", err)
	}
}

// jwksOf fetches the Authenticator's JWKS.
func jwksOf(t *testing.T, a *Authenticator) (jose.JSONWebKeySet, http.Header) {
	t.Helper()
	w := httptest.NewRecorder()
	if !a.ServeEndpoint(w, httptest.NewRequest("GET", "https://app.test/.well-known/iap/jwks.json", nil)) {
		t.Fatal("JWKS not served")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	return set, w.Header()
}

// kidOf is an assertion's key ID, after checking that it verifies against
// the set.
func kidOf(t *testing.T, raw string, set jose.JSONWebKeySet) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	kid := tok.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("the JWKS has no key %s", kid)
	}
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("does not verify against the JWKS: %v", err)
	}
	return kid
}

func TestSigningKeyRing(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kid1, _ := KeyID(k1.Public())
	kid2, _ := KeyID(k2.Public())
	alice := &Session{ID: "s1", Subject: "alice"}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	newAuth := func(keys []SigningKey, maxAge time.Duration) *Authenticator {
		a, err := New(Config{ProviderURL: "http://127.0.0.1:1", ClientID: "caddy", CookieSecret: secret(t),
			SigningKeys: keys, JWKSMaxAge: maxAge, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("of several keys the first signs and all are published", func(t *testing.T) {
		a := newAuth([]SigningKey{{Key: k1}, {Key: k2}}, 0)
		set, h := jwksOf(t, a)
		if len(set.Keys) != 2 || set.Keys[0].KeyID != kid1 || set.Keys[1].KeyID != kid2 {
			t.Fatalf("JWKS %+v", set.Keys)
		}
		if h.Get("Cache-Control") != "public, max-age=300" {
			t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
		}
		raw, err := a.Assertion(alice, "app.test")
		if err != nil || kidOf(t, raw, set) != kid1 || a.SigningKeyID() != kid1 {
			t.Errorf("signed by %s, %v", a.SigningKeyID(), err)
		}
	})

	t.Run("a scheduled key is published before it signs, and the one it replaces after", func(t *testing.T) {
		a := newAuth([]SigningKey{{Key: k1}, {Key: k2, SignsFrom: clock.Now().Add(10 * time.Second)}}, 20*time.Second)
		set, h := jwksOf(t, a)
		if len(set.Keys) != 2 || h.Get("Cache-Control") != "public, max-age=20" {
			t.Fatalf("JWKS %+v, %q", set.Keys, h.Get("Cache-Control"))
		}
		before, _ := a.Assertion(alice, "app.test")
		if kidOf(t, before, set) != kid1 {
			t.Fatal("the scheduled key signed before its time")
		}
		clock.Advance(10 * time.Second)
		after, _ := a.Assertion(alice, "app.test")
		if after == before || kidOf(t, after, set) != kid2 {
			t.Errorf("after the switch the assertion is still the old key's (reused: %v)", after == before)
		}
		set, _ = jwksOf(t, a)
		kidOf(t, before, set) // an assertion of the retired key still verifies
	})

	t.Run("SetSigningKeys replaces the ring while serving", func(t *testing.T) {
		a := newAuth([]SigningKey{{Key: k1}}, 0)
		if err := a.SetSigningKeys([]SigningKey{{Key: k2}, {Key: k1}}); err != nil {
			t.Fatal(err)
		}
		set, _ := jwksOf(t, a)
		raw, _ := a.Assertion(alice, "app.test")
		if len(set.Keys) != 2 || kidOf(t, raw, set) != kid2 {
			t.Errorf("JWKS %d keys", len(set.Keys))
		}
		if err := a.SetSigningKeys(nil); err == nil {
			t.Error("an empty ring was accepted")
		}
	})

	t.Run("a key other than P-256 is refused", func(t *testing.T) {
		k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, err := New(Config{ProviderURL: "http://127.0.0.1:1", ClientID: "caddy", CookieSecret: secret(t),
			SigningKeys: []SigningKey{{Key: k1}, {Key: k384}}})
		if err == nil || !strings.Contains(err.Error(), "signing key 2") {
			t.Errorf("got %v", err)
		}
	})
}
