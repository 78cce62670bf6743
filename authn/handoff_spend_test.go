package authn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
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
