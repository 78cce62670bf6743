package authn

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// Attack (found by review): an administrator's "sign out everywhere"
// (RevokeSubject, RevokeEmail) and an IdP's back-channel logout ended the
// user's cookies, but an ID token the user (or whoever copied it) sends as
// a bearer token kept working until it expired: bearer sessions were
// given IssuedAt = now and never checked. They are now checked with the
// token's own iat, so tokens issued before the revocation are refused and
// a token issued after it works.
func TestRevocationsEndEarlierBearerIDTokens(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startAuthenticatorAt(t, op, clock, nil)
	a.SetRevocations(NewRevocations(newMemStore(), a.cfg.CookieExpire, a.cfg.Now, nil), 0)
	if err := a.Revocations().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	use := func(tok string) error {
		_, err := a.Session(httptest.NewRecorder(), bearerRequest(tok))
		return err
	}
	peek := func(tok string) error {
		_, err := a.Peek(bearerRequest(tok))
		return err
	}
	old := op.token(t, "k1", "", clock.Now().Add(-time.Minute), nil)
	withSID := op.token(t, "k1", "", clock.Now().Add(-time.Minute), map[string]any{"sid": "idp-session-1", "sub": "carol"})
	if err := use(old); err != nil {
		t.Fatalf("before any revocation: %v", err)
	}

	if err := a.RevokeSubject("alice", time.Time{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	fresh := op.token(t, "k1", "", clock.Now(), nil)
	if err := use(old); !errors.Is(err, ErrBadBearer) || !errors.Is(err, errSessionRevoked) {
		t.Errorf("an ID token issued before the user was revoked: %v, want refused as revoked", err)
	}
	if err := peek(old); err == nil {
		t.Error("Peek (the matcher's view) still takes it")
	}
	if err := use(fresh); err != nil {
		t.Errorf("an ID token issued after the revocation: %v", err)
	}

	// By email, in another case, the same.
	b := startAuthenticatorAt(t, op, clock, nil)
	b.SetRevocations(NewRevocations(newMemStore(), b.cfg.CookieExpire, b.cfg.Now, nil), 0)
	if err := b.RevokeEmail("ALICE@example.com", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Session(httptest.NewRecorder(), bearerRequest(old)); !errors.Is(err, errSessionRevoked) {
		t.Errorf("by email: %v, want revoked", err)
	}

	// A back-channel logout of the IdP session (sid) ends its ID tokens.
	if err := a.revokeLoggedOut(&logoutToken{SID: "idp-session-1"}); err != nil {
		t.Fatal(err)
	}
	if err := use(withSID); !errors.Is(err, errSessionRevoked) {
		t.Errorf("an ID token of an IdP session logged out: %v, want revoked", err)
	}
}
