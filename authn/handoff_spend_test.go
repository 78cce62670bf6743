package authn

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// twoInstances is two Authenticators with one cookie_secret and one
// revocation store, as two Caddy instances sharing storage.
func twoInstances(t *testing.T) (one, two *Authenticator, clock *fakeClock) {
	t.Helper()
	op := startTestOP(t)
	clock = &fakeClock{now: time.Now()}
	one = startCentralAuthenticator(t, op, clock, "")
	two, err := New(one.cfg)
	if err != nil {
		t.Fatal(err)
	}
	two.Start()
	t.Cleanup(two.Stop)
	waitDiscovered(t, two)
	store := newMemStore()
	for _, a := range []*Authenticator{one, two} {
		a.SetRevocations(NewRevocations(store, time.Hour, clock.Now, nil), 0)
	}
	return one, two, clock
}

// refresh reads the shared store, as every instance does each
// revocation_refresh.
func refresh(t *testing.T, a *Authenticator) {
	t.Helper()
	if err := a.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A hand-off is taken once across instances sharing the revocation
// storage: replayed with its login cookie on another instance after that
// one's refresh, it is refused.
func TestHandoffIsSpentOnEveryInstance(t *testing.T) {
	one, two, clock := twoInstances(t)
	b := newTestBrowser(t, one)
	u, _ := url.Parse(b.startSignIn("https://app.test/page"))
	var login *http.Cookie
	for _, c := range b.jar.Cookies(&url.URL{Scheme: "https", Host: "app.test", Path: "/"}) {
		login = c
	}
	s := Session{ID: randomID(), Subject: "alice", IssuedAt: clock.Now(), IDTokenExpiry: clock.Now().Add(time.Hour)}
	tok, _ := one.handoff.seal(handoffName, handoff{Session: s, Host: "app.test", State: u.Query().Get("state"), ID: randomID(), Expires: clock.Now().Add(handoffTTL)})
	target := "https://app.test/.iap/handoff?token=" + url.QueryEscape(tok)
	if rec := reviewGet(one, target, login); rec.Code != http.StatusFound {
		t.Fatalf("first use: %d", rec.Code)
	}
	refresh(t, two)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", target, nil)
	req.AddCookie(login)
	two.Authenticate(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("replay on another instance: %d to %q, want 400", rec.Code, rec.Header().Get("Location"))
	}
}

// The hand-off a victim's browser was sent with for an attacker's state is
// refused on the instance the victim reached, and so spent on every
// instance: the attacker, holding that state's login cookie, cannot take
// it on another.
func TestHandoffForTheAttackersStateIsSpentOnEveryInstance(t *testing.T) {
	one, two, clock := twoInstances(t)
	attacker := newTestBrowser(t, two)
	link := attacker.startSignIn("https://app.test/page")
	rec := reviewGet(one, link, reviewSignInHostSession(t, one, clock))
	handoffURL := rec.Header().Get("Location")
	if rec := reviewGet(one, handoffURL); rec.Code != http.StatusBadRequest {
		t.Fatalf("victim: %d", rec.Code)
	}
	refresh(t, two)
	if rec := attacker.get(handoffURL); rec.Code != http.StatusBadRequest {
		t.Errorf("the attacker is signed in as the victim on the other instance: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

// Under session_store storage a hand-off is a short reference to a record
// sealed in the store, taken once: the URL stays short whatever the
// session holds, and the record says nothing readable.
func TestHandoffByReferenceUnderSessionStore(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startCentralAuthenticator(t, op, clock, "")
	store := newMemStore()
	if err := a.SetSessionStore(store); err != nil {
		t.Fatal(err)
	}
	groups := make([]string, 900)
	for i := range groups {
		groups[i] = randomID() + randomID()
	}
	h := handoff{Session: Session{ID: randomID(), Subject: "many", Email: "many@example.com", Groups: groups, IssuedAt: clock.Now()},
		Host: "app.test", State: "00", ID: randomID(), Expires: clock.Now().Add(handoffTTL)}
	token, err := a.sealHandoff(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != len(handoffRef)+64 {
		t.Errorf("token %q: want a reference", token)
	}
	for k, v := range store.m {
		if strings.Contains(string(v), "many@example.com") {
			t.Errorf("the record %s is readable", k)
		}
	}
	var got handoff
	if err := a.openHandoff(context.Background(), token, &got); err != nil || len(got.Session.Groups) != 900 || got.ID != h.ID {
		t.Fatalf("open: %v, %d groups", err, len(got.Session.Groups))
	}
	if err := a.openHandoff(context.Background(), token, &got); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a second open: %v, want it gone", err)
	}
	for _, forged := range []string{handoffRef + strings.Repeat("0", 64), handoffRef + "../../x", handoffRef + strings.Repeat("A", 64)} {
		if err := a.openHandoff(context.Background(), forged, &got); err == nil {
			t.Errorf("%q opened", forged)
		}
	}
}
