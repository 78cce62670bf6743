package authn

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// A bearer token must be an ID token: a JWT of the IdP for this client
// that declares itself something else (an RFC 9068 access token, a logout
// token, any security event token) is refused even though its issuer,
// audience, signature and expiry are right (issue 11 #9).
func TestBearerTokensThatAreNotIDTokens(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startAuthenticatorAt(t, op, clock, nil)
	logout := map[string]any{"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}, "sid": "s1"}
	for _, c := range []struct {
		name, typ string
		claims    map[string]any
		ok        bool
	}{
		{"an ID token typed JWT is accepted", "JWT", nil, true},
		{"an ID token with no typ is accepted", "", nil, true},
		{"an ID token typed application/jwt is accepted", "application/jwt", nil, true},
		{"an access token typed at+jwt (RFC 9068) is refused", "at+jwt", map[string]any{"client_id": "caddy", "scope": "openid"}, false},
		{"an access token typed application/at+jwt is refused", "application/at+jwt", map[string]any{"client_id": "caddy"}, false},
		{"a back-channel logout token is refused", "logout+jwt", logout, false},
		{"a logout token without its typ is refused by its events claim", "JWT", logout, false},
		{"a token of another explicit type is refused", "secevent+jwt", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := a.Session(httptest.NewRecorder(), bearerRequest(op.token(t, "k1", c.typ, clock.Now(), c.claims)))
			if c.ok && (err != nil || s.Email != "alice@example.com") {
				t.Fatalf("session %+v, err %v", s, err)
			}
			if !c.ok && !errors.Is(err, ErrBadBearer) {
				t.Fatalf("session %+v, err %v; want an invalid bearer token", s, err)
			}
		})
	}
}
