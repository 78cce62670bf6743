package authn

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/authz"
)

// A sign-out changes nothing unless it is a same-origin POST carrying the
// session's form token (issue 11: a cross-site form POST, which arrives
// without the SameSite=Lax cookie, cleared _iap anyway).
func TestSignOutNeedsTheSessionsTokenFromTheSameOrigin(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused") // never started: no end_session_endpoint
	now := time.Now()
	live := &Session{ID: "sid-1", Subject: "u1", Email: "a@example.com", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}
	expired := &Session{ID: "sid-2", Subject: "u1", IssuedAt: now, IDTokenExpiry: now.Add(-time.Hour)}
	// Signing out revokes the session, so each row that signs out has its own.
	live2 := &Session{ID: "sid-3", Subject: "u1", Email: "a@example.com", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}
	cookie := func(s *Session) string {
		v, err := a.session.seal(a.jar.name, s)
		if err != nil {
			t.Fatal(err)
		}
		return a.jar.name + "=" + v
	}
	for _, c := range []struct {
		name, method, cookie, token string
		header                      map[string]string
		status                      int
		clears                      bool
	}{
		{"a cross-site form post without the session cookie clears nothing and is refused", "POST", "", "guess",
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403, false},
		{"a post with no session and no browser headers clears nothing and is refused", "POST", "", "",
			nil, 403, false},
		{"a post with a broken session cookie clears nothing and is refused", "POST", "__Host-_iap=v1.garbage", "",
			map[string]string{"Sec-Fetch-Site": "same-origin"}, 403, false},
		{"a post with the session and a wrong token clears nothing and is refused", "POST", cookie(live), "wrong",
			map[string]string{"Sec-Fetch-Site": "same-origin"}, 403, false},
		{"a post with the session and its token from another site is refused", "POST", cookie(live), a.csrfToken(live),
			map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, false},
		{"a post with the session and its token from another origin is refused", "POST", cookie(live), a.csrfToken(live),
			map[string]string{"Origin": "https://evil.example"}, 403, false},
		{"a same-origin post with the session and its token signs out", "POST", cookie(live), a.csrfToken(live),
			map[string]string{"Sec-Fetch-Site": "same-origin"}, 302, true},
		{"a post with the session and its token from our own Origin signs out", "POST", cookie(live2), a.csrfToken(live2),
			map[string]string{"Origin": "https://app.test"}, 302, true},
		{"a session whose ID token expired can still sign out", "POST", cookie(expired), a.csrfToken(expired),
			map[string]string{"Sec-Fetch-Site": "same-origin"}, 302, true},
		{"opening the sign-out page with a broken cookie sets no cookie", "GET", "__Host-_iap=v1.garbage", "",
			nil, 200, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body *strings.Reader
			if c.method == "POST" {
				body = strings.NewReader(url.Values{"csrf_token": {c.token}}.Encode())
			} else {
				body = strings.NewReader("")
			}
			r := httptest.NewRequest(c.method, "https://app.test/.iap/sign_out", body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.cookie != "" {
				r.Header.Set("Cookie", c.cookie)
			}
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			a.ServeEndpoint(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body.String())
			}
			setCookies := w.Result().Cookies()
			if c.clears {
				if len(setCookies) == 0 || setCookies[0].Name != a.jar.name || setCookies[0].MaxAge >= 0 {
					t.Errorf("the session was not cleared: %v", setCookies)
				}
				if loc := w.Header().Get("Location"); loc != "https://app.test/" {
					t.Errorf("Location %q", loc)
				}
				return
			}
			if len(setCookies) != 0 {
				t.Errorf("cookies were changed: %v", w.Header().Values("Set-Cookie"))
			}
			if c.status == 403 {
				var e struct{ Reason string }
				_ = json.Unmarshal(w.Body.Bytes(), &e)
				if e.Reason != string(authz.ReasonCSRF) {
					t.Errorf("reason %q, want %s", e.Reason, authz.ReasonCSRF)
				}
			}
		})
	}
}
