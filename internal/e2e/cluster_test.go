package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
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
}

func startInstances(t *testing.T, n int, extraIAP ...string) (*instances, *rotationEnv) {
	t.Helper()
	var https, http_ []int
	for range n {
		http_, https = append(http_, testenv.FreePort(t)), append(https, testenv.FreePort(t))
	}
	e := newRotationEnv(t, https...)
	secret, shared := randomSecret(t), t.TempDir()
	in := &instances{}
	for i := range n {
		admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		globals := e.globals(fmt.Sprintf("\tstorage file_system %s\n\tadmin %s\n", shared, admin),
			append([]string{"cookie_secret " + secret}, extraIAP...)...)
		c := testenv.StartCaddyOn(t, http_[i], https[i], globals, e.sites())
		shareLocalCA(t, shared, c)
		in.caddys, in.admins = append(in.caddys, c), append(in.admins, admin)
	}
	return in, e
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
	ua = in.caddys[i].NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in through instance %d: %d %s", i+1, resp.StatusCode, body)
	}
	return ua, "__Host-_iap=" + ua.Cookie("app.test", "__Host-_iap")
}

// Two instances sharing file_system storage serve the same users: a
// sign-in through one is good on both, they publish one JWKS, and a
// sign-out or an admin revocation through one ends the session on both,
// a copy of the cookie included. The times are reported, not asserted.
func TestTwoInstancesShareSessionsAndRevocations(t *testing.T) {
	in, _ := startInstances(t, 2)

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
		time.Sleep(10 * time.Millisecond) // the revocation's time is after the session's
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
