package authn

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// passwordGrant gets tokens for a Dex user from the token endpoint.
func passwordGrant(t *testing.T, dex *testenv.Dex, email, password string) (idToken, refreshToken, subject string) {
	t.Helper()
	tok := dex.PasswordGrant(t, "caddy", "caddy-secret", email, password, "openid email profile offline_access")
	if tok.RefreshToken == "" {
		t.Fatalf("password grant: no refresh token: %+v", tok)
	}
	parts := strings.Split(tok.IDToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Sub string }
	_ = json.Unmarshal(payload, &claims)
	return tok.IDToken, tok.RefreshToken, claims.Sub
}

// A claim that policies or claim headers start to use after users signed
// in is never decided on for sessions that did not keep it: such a session
// is refreshed at the IdP first, or, without a refresh token, counts as
// signed out (issue 11: a new deny rule on claim/email_verified did not
// apply to existing cookies, which read the claim as empty).
func TestSessionsFromBeforeAClaimWasKept(t *testing.T) {
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{{Email: "alice@example.com", Password: "pw", Name: "Alice"}}})
	a := newTestAuthenticator(t, dex.Issuer)
	a.Start()
	defer a.Stop()
	waitDiscovered(t, a)
	_, refreshToken, subject := passwordGrant(t, dex, "alice@example.com", "pw")

	now := time.Now()
	fresh := func(refresh string, kept []string, claims map[string]any) *Session {
		return &Session{ID: randomID(), Subject: subject, Email: "alice@example.com", IssuedAt: now,
			IDTokenExpiry: now.Add(time.Hour), RefreshToken: refresh, Kept: kept, Claims: claims}
	}
	a.KeepClaims("email_verified", "department") // Dex sends the first, never the second

	for _, c := range []struct {
		name       string
		s          *Session
		signedIn   bool
		refreshed  bool
		wantClaims bool
	}{
		{"a session that kept the claims is used as it is",
			fresh("", []string{"department", "email_verified"}, map[string]any{"email_verified": true}), true, false, true},
		{"a session from before the claims were kept, without a refresh token, counts as signed out",
			fresh("", nil, nil), false, false, false},
		{"a session that kept only some of the claims, without a refresh token, counts as signed out",
			fresh("", []string{"email_verified"}, map[string]any{"email_verified": true}), false, false, false},
		{"a session from before the claims were kept is refreshed at the IdP and then has them",
			fresh(refreshToken, nil, nil), true, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := a.session.seal(a.jar.name, c.s)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "https://app.test/", nil)
			r.Header.Set("Cookie", a.jar.name+"="+v)
			w := httptest.NewRecorder()
			s, err := a.Session(w, r)
			set := w.Result().Cookies()
			if !c.signedIn {
				if err == nil {
					t.Fatalf("the session was used: claims %v", s.Claims)
				}
				if len(set) == 0 || set[0].Name != a.jar.name || set[0].MaxAge >= 0 {
					t.Errorf("the session was not cleared: %v", w.Header().Values("Set-Cookie"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if refreshed := len(set) > 0 && set[0].MaxAge > 0; refreshed != c.refreshed {
				t.Errorf("refreshed: %v, want %v", refreshed, c.refreshed)
			}
			if v, ok := s.Claim("email_verified"); !ok || v != true {
				t.Errorf("email_verified = %v, %v", v, ok)
			}
			if !c.refreshed {
				return
			}
			// The refreshed cookie is used as it is: a claim the IdP does
			// not send is kept as absent, not asked for again.
			r = httptest.NewRequest("GET", "https://app.test/", nil)
			for _, ck := range set {
				r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			}
			w = httptest.NewRecorder()
			if _, err := a.Session(w, r); err != nil || len(w.Header().Values("Set-Cookie")) != 0 {
				t.Errorf("the refreshed session: err %v, Set-Cookie %q", err, w.Header().Values("Set-Cookie"))
			}
		})
	}
}
