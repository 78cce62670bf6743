package authn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serverInstance is an instance of a cluster keeping sessions in store.
func serverInstance(t *testing.T, store *memStore) *Authenticator {
	t.Helper()
	a := instance(t, store, nil, 0)
	if err := a.SetSessionStore(store); err != nil {
		t.Fatal(err)
	}
	return a
}

// signInServer keeps s as a new sign-in would, and returns the cookie a
// browser sends back.
func signInServer(t *testing.T, a *Authenticator, s *Session) string {
	t.Helper()
	w := httptest.NewRecorder()
	if err := a.writeSession(w, httptest.NewRequest("GET", "https://app.test/.iap/callback", nil), s); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, c := range w.Result().Cookies() {
		if c.MaxAge >= 0 {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	return strings.Join(parts, "; ")
}

// With sessions in storage, the cookie carries only a random reference:
// a user with 900 groups, whose session cannot fit in cookies (see
// toolarge_test.go), signs in; another instance sharing the storage
// serves the session; what the storage holds is sealed (neither the
// email nor a group is readable there) and opens only under its own key
// and cookie.
func TestServerSideSessionsRemoveTheSizeLimit(t *testing.T) {
	store := newMemStore()
	a, b := serverInstance(t, store), serverInstance(t, store)
	now := time.Now()
	groups := uuidGroups(900)
	s := &Session{ID: randomID(), Subject: "u900", Email: "many@example.com", Groups: groups, IssuedAt: now,
		IDTokenExpiry: now.Add(time.Hour), RefreshToken: strings.Repeat("r", 80)}

	// The attack on the old code: in cookies, this session is refused.
	cookieMode := instance(t, newMemStore(), nil, 0)
	if err := cookieMode.writeSession(httptest.NewRecorder(), httptest.NewRequest("GET", "https://app.test/", nil), s); !errors.Is(err, ErrSessionTooLarge) {
		t.Fatalf("in cookies, the 900-group session: %v, want ErrSessionTooLarge", err)
	}

	cookie := signInServer(t, a, s)
	if len(cookie) > 100 || strings.Contains(cookie, "many@") || strings.Count(cookie, "=") != 1 {
		t.Errorf("the cookie is not a bare reference (%d bytes): %s", len(cookie), cookie)
	}
	for name, inst := range map[string]*Authenticator{"a": a, "b": b} {
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		r.Header.Set("Cookie", cookie)
		got, err := inst.Session(httptest.NewRecorder(), r)
		if err != nil || len(got.Groups) != 900 || got.Email != s.Email || got.ID != s.ID {
			t.Fatalf("instance %s: %v, %+v", name, err, got)
		}
	}
	store.mu.Lock()
	var stored []byte
	var key string
	for k, v := range store.m {
		if strings.HasPrefix(k, SessionPrefix+"/") {
			key, stored = k, v
		}
	}
	store.mu.Unlock()
	if stored == nil || strings.Contains(string(stored), "many@") || strings.Contains(string(stored), groups[0]) {
		t.Fatalf("the stored session is readable, or missing, at %q", key)
	}

	// A record copied under another session's key does not open there.
	other := signInServer(t, a, &Session{ID: randomID(), Subject: "u2", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)})
	otherKey := a.sessionKey(strings.SplitN(other, "=", 2)[1])
	if err := store.Store(context.Background(), otherKey, stored); err != nil {
		t.Fatal(err)
	}
	c := serverInstance(t, store) // nothing in memory yet
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Cookie", other)
	if got, err := c.Session(httptest.NewRecorder(), r); err == nil {
		t.Errorf("a record moved to another session's key opened, as %s", got.Subject)
	}
}

// Sign-out deletes the stored session: a copy of the cookie no longer
// opens anywhere, on an instance that never saw it and (through the
// revocation list) on one that had it in memory.
func TestServerSideSignOutDeletesTheSession(t *testing.T) {
	store := newMemStore()
	a, b := serverInstance(t, store), serverInstance(t, store)
	now := time.Now()
	s := &Session{ID: randomID(), Subject: "u1", Email: "a@example.com", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}
	cookie := signInServer(t, a, s)
	if err := use(b, cookie); err != nil {
		t.Fatalf("before sign-out: %v", err)
	}
	before := store.len()
	signOut(t, a, cookie, s)
	if store.len() != before { // one session deleted, one revocation stored
		t.Errorf("%d records before sign-out, %d after; want the session gone and its revocation added", before, store.len())
	}
	for _, k := range func() []string {
		keys, _ := store.List(context.Background(), a.sessionDir())
		return keys
	}() {
		t.Errorf("a session is still stored: %s", k)
	}
	if err := use(a, cookie); err == nil {
		t.Error("the instance that signed out still takes a copy of the cookie")
	}
	if err := use(serverInstance(t, store), cookie); err == nil {
		t.Error("a fresh instance takes a copy of the signed-out cookie")
	}
	if err := b.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := use(b, cookie); err == nil {
		t.Error("an instance that had the session in memory still takes it after its refresh")
	}
}

// A session refreshed on one instance is seen by the others: an instance
// whose copy is due for a refresh reads the storage again first.
func TestServerSideSessionsFollowARefreshElsewhere(t *testing.T) {
	store := newMemStore()
	clock := &fakeClock{now: time.Now()}
	a, b := serverInstance(t, store), serverInstance(t, store)
	a.cfg.Now, b.cfg.Now = clock.Now, clock.Now
	a.server.now, b.server.now = clock.Now, clock.Now
	s := &Session{ID: randomID(), Subject: "u1", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(10 * time.Minute), RefreshToken: "rt"}
	cookie := signInServer(t, a, s)
	if err := use(b, cookie); err != nil {
		t.Fatal(err)
	}
	clock.Advance(9*time.Minute + 30*time.Second) // due for a refresh
	refreshed := *s
	refreshed.IDTokenExpiry = clock.Now().Add(time.Hour)
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Cookie", cookie)
	if err := a.writeSession(httptest.NewRecorder(), r, &refreshed); err != nil { // a's refresh, same reference
		t.Fatal(err)
	}
	// b must not refresh (its IdP is unreachable here): it reads a's.
	r = httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Cookie", cookie)
	got, err := b.Session(httptest.NewRecorder(), r)
	if err != nil || !got.IDTokenExpiry.Equal(refreshed.IDTokenExpiry) {
		t.Errorf("b after a's refresh: %v, expiry %v, want %v", err, got, refreshed.IDTokenExpiry)
	}
}

// While the storage cannot be read, a session not in memory is refused
// with 503 session-store-unavailable and its cookie is kept.
func TestServerSideSessionsWhileStorageIsDown(t *testing.T) {
	store := newMemStore()
	a := serverInstance(t, store)
	now := time.Now()
	cookie := signInServer(t, a, &Session{ID: randomID(), Subject: "u1", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)})
	b := serverInstance(t, store)
	store.setDown(true)
	if err := use(a, cookie); err != nil {
		t.Errorf("a session in memory needs no storage: %v", err)
	}
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Cookie", cookie)
	w := httptest.NewRecorder()
	_, err := b.Session(w, r)
	if !errors.Is(err, ErrSessionStoreUnavailable) {
		t.Fatalf("%v, want ErrSessionStoreUnavailable", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Errorf("the cookie was changed: %v", w.Header().Values("Set-Cookie"))
	}
	w = httptest.NewRecorder()
	b.Challenge(w, r, err)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "session-store-unavailable") {
		t.Errorf("%d %s, want 503 session-store-unavailable", w.Code, w.Body)
	}
	store.setDown(false)
	if err := use(b, cookie); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

// Sessions past cookie_expire, and those no secret opens, are swept.
func TestSweepSessions(t *testing.T) {
	store := newMemStore()
	a := serverInstance(t, store)
	now := time.Now()
	signInServer(t, a, &Session{ID: "old", Subject: "u1", IssuedAt: now.Add(-a.cfg.CookieExpire - time.Minute), IDTokenExpiry: now.Add(time.Hour)})
	live := signInServer(t, a, &Session{ID: "live", Subject: "u2", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)})
	if err := store.Store(context.Background(), a.sessionDir()+"/junk", []byte("v1.garbage")); err != nil {
		t.Fatal(err)
	}
	n, err := a.SweepSessions(context.Background())
	if err != nil || n != 2 {
		t.Errorf("swept %d (%v), want 2", n, err)
	}
	if err := use(serverInstance(t, store), live); err != nil {
		t.Errorf("the live session was swept: %v", err)
	}
}

// The cost of a signed-in request with a server-side session already in
// memory: no storage read.
func BenchmarkServerSessionCached(b *testing.B) {
	store := newMemStore()
	a := newTestAuthenticator(b, "http://127.0.0.1:1/unused")
	if err := a.SetSessionStore(store); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	w := httptest.NewRecorder()
	if err := a.writeSession(w, httptest.NewRequest("GET", "https://app.test/", nil), &Session{ID: randomID(), Subject: "u1",
		Groups: uuidGroups(900), IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	ref := w.Result().Cookies()[0].Value
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := a.openSession(ref); err != nil {
			b.Fatal(err)
		}
	}
}
