package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/authz"
)

// memStore is a Store in memory, shared by the test's instances as
// Caddy's storage is shared by a cluster's (module's tests use Caddy's
// own file_system storage); down makes every call fail, as a storage that
// cannot be reached.
type memStore struct {
	mu   sync.Mutex
	m    map[string][]byte
	down bool
}

var errStoreDown = errors.New("storage unreachable")

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) setDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

func (s *memStore) Store(_ context.Context, key string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errStoreDown
	}
	s.m[key] = append([]byte(nil), v...)
	return nil
}

func (s *memStore) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errStoreDown
	}
	v, ok := s.m[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return v, nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errStoreDown
	}
	delete(s.m, key)
	return nil
}

func (s *memStore) List(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errStoreDown
	}
	var keys []string
	for k := range s.m {
		if rest, ok := strings.CutPrefix(k, prefix+"/"); ok && !strings.Contains(rest, "/") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fs.ErrNotExist
	}
	return keys, nil
}

func (s *memStore) len() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.m) }

// clusterSecret is the cookie_secret every instance of a test shares.
var clusterSecret = []byte("0123456789abcdef0123456789abcdef")

// instance is one Authenticator of a cluster sharing store and secret.
func instance(t *testing.T, store Store, clock *fakeClock, failClosed time.Duration) *Authenticator {
	t.Helper()
	cfg := Config{ProviderURL: "http://127.0.0.1:1/unused", ClientID: "caddy", CookieSecret: clusterSecret,
		SigningKey: newTestAuthenticator(t, "http://127.0.0.1:1/unused").cfg.SigningKeys[0].Key}
	if clock != nil {
		cfg.Now = clock.Now
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.SetRevocations(NewRevocations(store, a.cfg.CookieExpire, a.cfg.Now, nil), failClosed)
	if err := a.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

func revCookie(t *testing.T, a *Authenticator, s *Session) string {
	t.Helper()
	v, err := a.session.seal(a.jar.name, s)
	if err != nil {
		t.Fatal(err)
	}
	return a.jar.name + "=" + v
}

// use sends a request with the cookie and returns the session's error.
func use(a *Authenticator, cookie string) error {
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Cookie", cookie)
	_, err := a.Session(httptest.NewRecorder(), r)
	return err
}

func signOut(t *testing.T, a *Authenticator, cookie string, s *Session) {
	t.Helper()
	r := httptest.NewRequest("POST", "https://app.test/.iap/sign_out",
		strings.NewReader(url.Values{"csrf_token": {a.csrfToken(s)}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Cookie", cookie)
	w := httptest.NewRecorder()
	a.ServeEndpoint(w, r)
	if w.Code != http.StatusFound {
		t.Fatalf("sign-out: status %d: %s", w.Code, w.Body)
	}
}

// Attack: a copy of the session cookie (kept by another browser, stolen
// from a shared machine) outlived sign-out: signing out only cleared the
// browser's own cookie. Sign-out now revokes the session, on the instance
// that signed out at once and on every instance sharing the storage at its
// next refresh.
func TestSignOutRevokesACopiedCookie(t *testing.T) {
	store := newMemStore()
	a, b := instance(t, store, nil, 0), instance(t, store, nil, 0)
	now := time.Now()
	s := &Session{ID: "sid-copied", Subject: "u1", Email: "a@example.com", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}
	cookie := revCookie(t, a, s)
	for name, inst := range map[string]*Authenticator{"a": a, "b": b} {
		if err := use(inst, cookie); err != nil {
			t.Fatalf("before sign-out, instance %s refused the session: %v", name, err)
		}
	}
	signOut(t, a, cookie, s)
	if err := use(a, cookie); err == nil {
		t.Error("the instance that signed out still takes a copy of the cookie")
	}
	if err := b.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := use(b, cookie); err == nil {
		t.Error("another instance still takes a copy of the cookie after its refresh")
	}
	// The matcher's view (Peek) agrees.
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Cookie", cookie)
	if s, _ := b.Peek(r); s != nil {
		t.Error("Peek returns the revoked session")
	}
	// Another session of the same user is not touched.
	other := &Session{ID: "sid-other", Subject: "u1", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}
	if err := use(b, revCookie(t, b, other)); err != nil {
		t.Errorf("the user's other session was refused: %v", err)
	}
}

// Revoking a user ends every session issued before the revocation, by
// subject or by email, and programmatic tokens with them; a session signed
// in afterwards works.
func TestRevokeUserEndsEarlierSessionsOnly(t *testing.T) {
	store := newMemStore()
	clock := &fakeClock{now: time.Now()}
	a, b := instance(t, store, clock, 0), instance(t, store, clock, 0)
	t0 := clock.Now()
	old1 := &Session{ID: "s1", Subject: "u1", Email: "Alice@Example.com", IssuedAt: t0.Add(-time.Hour), IDTokenExpiry: t0.Add(time.Hour)}
	old2 := &Session{ID: "s2", Subject: "u2", Email: "bob@example.com", IssuedAt: t0.Add(-time.Hour), IDTokenExpiry: t0.Add(time.Hour)}
	token, err := a.programmaticToken(old1, "app.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeSubject("u1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeEmail("BOB@example.com", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	fresh := &Session{ID: "s3", Subject: "u1", Email: "alice@example.com", IssuedAt: clock.Now(), IDTokenExpiry: t0.Add(time.Hour)}
	for name, inst := range map[string]*Authenticator{"a": a, "b": b} {
		if err := use(inst, revCookie(t, inst, old1)); err == nil {
			t.Errorf("%s: a session of the revoked subject still works", name)
		}
		if err := use(inst, revCookie(t, inst, old2)); err == nil {
			t.Errorf("%s: a session of the revoked email (other case) still works", name)
		}
		if err := use(inst, revCookie(t, inst, fresh)); err != nil {
			t.Errorf("%s: a session signed in after the revocation was refused: %v", name, err)
		}
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		r.Header.Set("Authorization", "IAP "+token)
		if _, err := inst.Session(httptest.NewRecorder(), r); !errors.Is(err, ErrBadBearer) {
			t.Errorf("%s: the revoked user's programmatic token: %v, want refused", name, err)
		}
	}
	list, pending := b.Revocations().List()
	if len(list) != 2 || pending != 0 {
		t.Fatalf("list %+v pending %d, want the two revocations", list, pending)
	}
	if list[0].Kind != RevokeByEmail || list[0].ID != "bob@example.com" { // same time: by kind
		t.Errorf("email revocation listed as %+v", list[0])
	}
}

// A revocation is forgotten, and deleted from the storage, once the
// sessions it names would have expired anyway (cookie_expire after issue).
func TestRevocationsExpireWithTheirSessions(t *testing.T) {
	store := newMemStore()
	clock := &fakeClock{now: time.Now()}
	a, b := instance(t, store, clock, 0), instance(t, store, clock, 0)
	issued := clock.Now().Add(-time.Hour)
	if err := a.RevokeSession("s1", issued.Add(a.cfg.CookieExpire)); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeSubject("u1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := store.len(); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}
	clock.Advance(a.cfg.CookieExpire - time.Hour + time.Second) // s1 is past cookie_expire; u1's sessions are not
	if err := b.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if list, _ := b.Revocations().List(); len(list) != 1 || list[0].Kind != RevokeBySubject {
		t.Errorf("after s1's expiry: %+v, want only the subject's", list)
	}
	if n := store.len(); n != 1 {
		t.Errorf("%d records stored after s1's expiry, want 1", n)
	}
	clock.Advance(time.Hour)
	if err := a.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if list, _ := a.Revocations().List(); len(list) != 0 {
		t.Errorf("after cookie_expire: %+v, want none", list)
	}
	if n := store.len(); n != 0 {
		t.Errorf("%d records stored after cookie_expire, want 0", n)
	}
}

// While the storage cannot be reached, each instance keeps the list it
// last read, a new revocation applies where it was made and is written
// once the storage is back; the other instances then see it. With
// fail-closed set, sessions are refused (503 revocations-unavailable)
// once the list is older than the bound; by default they are not.
func TestRevocationsWhileStorageIsDown(t *testing.T) {
	store := newMemStore()
	clock := &fakeClock{now: time.Now()}
	a, b := instance(t, store, clock, 0), instance(t, store, clock, 0)
	closed := instance(t, store, clock, time.Minute)
	now := clock.Now()
	s1 := &Session{ID: "s1", Subject: "u1", IssuedAt: now, IDTokenExpiry: now.Add(24 * time.Hour)}
	s2 := &Session{ID: "s2", Subject: "u2", IssuedAt: now, IDTokenExpiry: now.Add(24 * time.Hour)}
	if err := a.RevokeSession("s1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []*Authenticator{b, closed} {
		if err := inst.Revocations().Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	store.setDown(true)
	if err := a.RevokeSession("s2", time.Time{}); !errors.Is(err, ErrRevocationPending) {
		t.Fatalf("revoking while storage is down: %v, want ErrRevocationPending", err)
	}
	if err := use(a, revCookie(t, a, s2)); err == nil {
		t.Error("a revocation made while storage is down does not apply where it was made")
	}
	if err := b.Revocations().Refresh(context.Background()); err == nil {
		t.Error("a refresh against unreachable storage reported no error")
	}
	if err := use(b, revCookie(t, b, s1)); err == nil {
		t.Error("the list read before the outage was dropped")
	}
	if _, pending := a.Revocations().List(); pending != 1 {
		t.Errorf("%d pending, want 1", pending)
	}
	clock.Advance(2 * time.Minute)
	if err := use(b, revCookie(t, b, s2)); err != nil {
		t.Errorf("by default (fail open) a live session is refused during the outage: %v", err)
	}
	err := use(closed, revCookie(t, closed, s2))
	if !errors.Is(err, ErrRevocationsUnavailable) {
		t.Fatalf("fail closed, 2 minutes into the outage: %v, want ErrRevocationsUnavailable", err)
	}
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	w := httptest.NewRecorder()
	closed.Challenge(w, r, err)
	var body struct{ Reason string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusServiceUnavailable || body.Reason != string(authz.ReasonRevocationsUnavailable) {
		t.Errorf("fail closed: %d %q, want 503 %s", w.Code, body.Reason, authz.ReasonRevocationsUnavailable)
	}

	store.setDown(false)
	if err := a.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, pending := a.Revocations().List(); pending != 0 {
		t.Errorf("%d still pending after storage came back", pending)
	}
	for name, inst := range map[string]*Authenticator{"b": b, "closed": closed} {
		if err := inst.Revocations().Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := use(inst, revCookie(t, inst, s2)); err == nil || errors.Is(err, ErrRevocationsUnavailable) {
			t.Errorf("%s: the revocation made during the outage: %v, want revoked", name, err)
		}
	}
}

// Checking a session against the list reads no storage: 10,000 live
// revocations, a session that is not among them.
func BenchmarkRevocationCheck(b *testing.B) {
	a := newTestAuthenticator(b, "http://127.0.0.1:1/unused")
	a.SetRevocations(benchRevocations(b), 0)
	s := &Session{ID: randomID(), Subject: "someone", Email: "someone@example.com", IssuedAt: time.Now()}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if a.checkRevoked(s) != nil {
				b.Fatal("revoked")
			}
		}
	})
}

var (
	benchRevocationsOnce sync.Once
	benchRevocationsList *Revocations
)

// benchRevocations is a list of 10,000 live revocations, made once per
// test binary (each Revoke publishes a new snapshot of the whole list).
func benchRevocations(b *testing.B) *Revocations {
	benchRevocationsOnce.Do(func() {
		store := newMemStore()
		now := time.Now()
		for i := range 10000 {
			kind := []string{RevokeBySession, RevokeBySubject, RevokeByEmail}[i%3]
			v, _ := json.Marshal(Revocation{Kind: kind, ID: fmt.Sprint("id-", i), Before: now, Expires: now.Add(time.Hour), Created: now})
			_ = store.Store(context.Background(), fmt.Sprintf("%s/%s-%d", RevocationPrefix, kind, i), v)
		}
		benchRevocationsList = NewRevocations(store, 14*time.Hour, nil, nil)
		if err := benchRevocationsList.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	if list, _ := benchRevocationsList.List(); len(list) != 10000 {
		b.Fatalf("%d revocations, want 10000", len(list))
	}
	return benchRevocationsList
}

// A Store that lost its records (a Redis restarted without persistence)
// gets them back from the instances that knew them, and a new instance
// then learns them: no revocation is forgotten before it expires.
func TestRevocationsSurviveAStorageThatLostThem(t *testing.T) {
	store := newMemStore()
	a := instance(t, store, nil, 0)
	if err := a.RevokeSubject("u1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	clear(store.m)
	store.mu.Unlock()
	for range 2 { // the first refresh notices, the second writes it again
		if err := a.Revocations().Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if list, _ := instance(t, store, nil, 0).Revocations().List(); len(list) != 1 || list[0].ID != "u1" {
		t.Errorf("a new instance after the storage lost its records: %+v, want the subject's revocation", list)
	}
}

// The back-channel logouts' revocation IDs are split by the prefixes the
// check uses, so that a logout's revocation is found without building a
// key (BenchmarkRevocationCheck allocates nothing).
func TestIdPScopedRevocationIDsSplit(t *testing.T) {
	if issuer, sid, ok := byIssuer(IdPSessionRevocationID("https://idp.example.com/", "s 1"), idpSIDPrefix); !ok || issuer != "https://idp.example.com/" || sid != "s 1" {
		t.Errorf("IdP sid: %q %q %v", issuer, sid, ok)
	}
	if issuer, sub, ok := byIssuer(IdPSubjectRevocationID("https://idp.example.com/", "u 1"), idpSubPrefix); !ok || issuer != "https://idp.example.com/" || sub != "u 1" {
		t.Errorf("IdP sub: %q %q %v", issuer, sub, ok)
	}
	r := NewRevocations(nil, time.Hour, nil, nil)
	ctx := context.Background()
	_ = r.Revoke(ctx, Revocation{Kind: RevokeBySession, ID: IdPSessionRevocationID("https://a/", "sid-a")})
	_ = r.Revoke(ctx, Revocation{Kind: RevokeBySubject, ID: IdPSubjectRevocationID("https://a/", "alice")})
	now := time.Now()
	for _, c := range []struct {
		s       Session
		issuer  string
		revoked bool
	}{
		{Session{ID: "x", Subject: "bob", IdPSessionID: "sid-a", IssuedAt: now.Add(-time.Minute)}, "https://a/", true},
		{Session{ID: "x", Subject: "bob", IdPSessionID: "sid-a", IssuedAt: now.Add(-time.Minute)}, "https://b/", false},
		{Session{ID: "x", Subject: "alice", IssuedAt: now.Add(-time.Minute)}, "https://a/", true},
		{Session{ID: "x", Subject: "alice", IssuedAt: now.Add(-time.Minute)}, "https://b/", false},
		{Session{ID: "x", Subject: "alice", IssuedAt: now.Add(time.Minute)}, "https://a/", false},
	} {
		if got := r.revokedSession(&c.s, c.issuer); got != c.revoked {
			t.Errorf("%+v at %s: revoked %v, want %v", c.s, c.issuer, got, c.revoked)
		}
	}
}
