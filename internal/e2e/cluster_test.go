package e2e

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// instances are caddy-iap processes sharing one cookie_secret and one
// file_system storage, each with its own ports and admin listener, as a
// scaled-out deployment runs them.
type instances struct {
	caddys []*testenv.Caddy
	admins []string // admin listeners, host:port
	shared string   // the storage directory
	dex    *testenv.Dex
}

func startInstances(t *testing.T, n int, users []testenv.DexUser, extraIAP ...string) *instances {
	t.Helper()
	var https, http_ []int
	var uris []string
	for range n {
		http_, https = append(http_, testenv.FreePort(t)), append(https, testenv.FreePort(t))
		uris = append(uris, fmt.Sprintf("https://app.test:%d/.iap/callback", https[len(https)-1]))
	}
	e := &rotationEnv{dex: testenv.StartDex(t, testenv.DexOptions{RedirectURIs: uris, Users: users}), upstream: echoUpstream(t)}
	secret, shared := randomSecret(t), t.TempDir()
	in := &instances{shared: shared, dex: e.dex}
	for i := range n {
		admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		globals := e.globals(fmt.Sprintf("\tstorage file_system %s\n\tadmin %s\n", shared, admin),
			append([]string{"cookie_secret " + secret}, extraIAP...)...)
		c := testenv.StartCaddyOn(t, http_[i], https[i], globals, e.sites())
		shareLocalCA(t, shared, c)
		in.caddys, in.admins = append(in.caddys, c), append(in.admins, admin)
	}
	return in
}

// status is what instance i answers a JSON client sending cookie.
func (in *instances) status(t *testing.T, i int, cookie string) int {
	t.Helper()
	return in.caddys[i].Get(t, "app.test", "/", http.Header{"Cookie": {cookie}, "Accept": {"application/json"}}).Status
}

// refusedWithin polls every instance with cookie until each refuses it
// (401) and returns how long each took; it fails after a deadline far
// above the bound (revocation_refresh 2s plus one read: 5 s).
func (in *instances) refusedWithin(t *testing.T, cookie string, since time.Time) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(in.caddys))
	for left := len(in.caddys); left > 0; time.Sleep(20 * time.Millisecond) {
		if time.Since(since) > 60*time.Second {
			t.Fatalf("after 60 s, instances still take the revoked session (0: refused never): %v", took)
		}
		for i := range in.caddys {
			if took[i] == 0 && in.status(t, i, cookie) == http.StatusUnauthorized {
				took[i], left = time.Since(since), left-1
			}
		}
	}
	return took
}

func (in *instances) signIn(t *testing.T, i int) (ua *testenv.UserAgent, cookie string) {
	t.Helper()
	return in.signInAs(t, i, alice)
}

func (in *instances) signInAs(t *testing.T, i int, user testenv.DexUser) (ua *testenv.UserAgent, cookie string) {
	t.Helper()
	ua = in.caddys[i].NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("app.test", "/"), user.Email, user.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in through instance %d: %d %.300s", i+1, resp.StatusCode, body)
	}
	return ua, "__Host-_iap=" + ua.Cookie("app.test", "__Host-_iap")
}

// signOut signs ua out with the sign-out page's button.
func signOut(t *testing.T, ua *testenv.UserAgent) {
	t.Helper()
	resp, page := ua.Get(t, ua.URL("app.test", "/.iap/sign_out"), nil)
	token := between(page, `name="csrf_token" value="`, `"`)
	if resp.StatusCode != 200 || token == "" {
		t.Fatalf("the sign-out page: %d, no csrf_token", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", ua.URL("app.test", "/.iap/sign_out"), strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := ua.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// Two instances sharing file_system storage serve the same users: a
// sign-in through one is good on both, they publish one JWKS, and a
// sign-out or an admin revocation through one ends the session on both,
// a copy of the cookie included. The times are reported, not asserted.
func TestTwoInstancesShareSessionsAndRevocations(t *testing.T) {
	in := startInstances(t, 2, []testenv.DexUser{alice})

	ua, cookie := in.signIn(t, 0)
	for i := range in.caddys {
		if s := in.status(t, i, cookie); s != 200 {
			t.Fatalf("a session made through instance 1: instance %d answers %d", i+1, s)
		}
	}
	if k0, k1 := kids(fetchJWKS(t, in.caddys[0])), kids(fetchJWKS(t, in.caddys[1])); len(k0) == 0 || !slices.Equal(k0, k1) {
		t.Errorf("the instances publish different JWKS: %v and %v", k0, k1)
	}

	t.Run("sign-out through one instance ends the session on both", func(t *testing.T) {
		signOut(t, ua)
		start := time.Now()
		if s := in.status(t, 0, cookie); s != http.StatusUnauthorized {
			t.Errorf("the instance that signed out still takes a copy of the cookie: %d", s)
		}
		took := in.refusedWithin(t, cookie, start)
		t.Logf("a copy of the signed-out cookie refused: instance 1 after %s, instance 2 after %s (revocation_refresh 2s)", took[0], took[1])
	})

	t.Run("an admin revocation of the user through one instance ends the session on both", func(t *testing.T) {
		_, cookie := in.signIn(t, 1)
		if s := in.status(t, 0, cookie); s != 200 {
			t.Fatalf("a new session after the sign-out: %d", s)
		}
		// An ID token of the user's, sent as a bearer token (ID tokens are
		// the Caddyfile's default format): it too ends with the user.
		idToken := in.dex.PasswordGrant(t, in.dex.ClientID, in.dex.ClientSecret, alice.Email, alice.Password, "openid email profile").IDToken
		bearer := func(i int, tok string) int {
			return in.caddys[i].Get(t, "app.test", "/", http.Header{"Authorization": {"Bearer " + tok}, "Accept": {"application/json"}}).Status
		}
		if s := bearer(0, idToken); s != 200 {
			t.Fatalf("the user's ID token before the revocation: %d", s)
		}
		time.Sleep(1100 * time.Millisecond) // the revocation's time is after the session's, and after the token's iat (whole seconds)
		start := time.Now()
		resp, err := http.Post("http://"+in.admins[1]+"/iap/users/revoke", "application/json",
			strings.NewReader(`{"email": "`+alice.Email+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /iap/users/revoke: %d", resp.StatusCode)
		}
		took := in.refusedWithin(t, cookie, start)
		t.Logf("the revoked user's session refused: instance 1 after %s, instance 2 after %s", took[0], took[1])
		for i := range in.caddys {
			if s := bearer(i, idToken); s != http.StatusUnauthorized {
				t.Errorf("the revoked user's earlier ID token as a bearer token: instance %d answers %d, want 401", i+1, s)
			}
		}
		time.Sleep(1100 * time.Millisecond) // a token issued after the revocation (iat is in whole seconds)
		later := in.dex.PasswordGrant(t, in.dex.ClientID, in.dex.ClientSecret, alice.Email, alice.Password, "openid email profile").IDToken
		if s := bearer(0, later); s != 200 {
			t.Errorf("an ID token issued after the revocation: %d", s)
		}

		_, fresh := in.signIn(t, 0)
		for i := range in.caddys {
			if s := in.status(t, i, fresh); s != 200 {
				t.Errorf("signing in again after the revocation: instance %d answers %d", i+1, s)
			}
		}
		r, err := http.Get("http://" + in.admins[0] + "/iap/revocations")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || !strings.Contains(string(body), `"kind":"email","id":"`+alice.Email+`"`) ||
			!strings.Contains(string(body), `"kind":"session"`) {
			t.Errorf("GET /iap/revocations: %d %s, want the sign-out and the user's revocation", r.StatusCode, body)
		}
	})
}

// With session_store storage, a user in 900 groups (named by UUIDs, more
// than any cookie budget holds: in cookies the sign-in ends with
// session-too-large) signs in through one instance and is served by both;
// the cookie is a bare reference; sign-out deletes the session from the
// shared storage and both instances refuse a copy of the cookie.
func TestTwoInstancesWithSessionsInStorage(t *testing.T) {
	many := testenv.DexUser{Email: "many@example.com", Password: "pw", Name: "Many", Groups: uuidGroups(900)}
	in := startInstances(t, 2, []testenv.DexUser{many}, "session_store storage")
	ua, cookie := in.signInAs(t, 0, many)
	if len(cookie) > 100 {
		t.Errorf("the session cookie takes %d bytes", len(cookie))
	}
	for i := range in.caddys {
		r := in.caddys[i].Get(t, "app.test", "/", http.Header{"Cookie": {cookie}, "Accept": {"application/json"}})
		if r.Status != 200 || echoed(t, r.Body).Get("X-Iap-Jwt-Assertion") == "" {
			t.Fatalf("instance %d: %d %.200s", i+1, r.Status, r.Body)
		}
	}
	sessions, _ := filepath.Glob(filepath.Join(in.shared, "iap", "sessions", "*", "*"))
	if len(sessions) != 1 {
		t.Fatalf("%d sessions in the shared storage, want 1: %v", len(sessions), sessions)
	}
	signOut(t, ua)
	start := time.Now()
	if _, err := os.Stat(sessions[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the session is still in storage after sign-out: %v", err)
	}
	took := in.refusedWithin(t, cookie, start)
	t.Logf("a copy of the signed-out cookie refused: instance 1 after %s, instance 2 after %s", took[0], took[1])
}

func uuidGroups(n int) []string {
	groups := make([]string, n)
	for i := range groups {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		groups[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
	}
	return groups
}
