package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// centralEnv is Dex, which lists one redirect URI (auth.test's callback),
// and a Caddy with the sign-in host auth.test and three route hosts.
type centralEnv struct {
	dex   *testenv.Dex
	caddy *testenv.Caddy
	auth  string // https://auth.test:<port>
}

var centralHosts = []string{"app1.test", "app2.test", "app3.test"}

func startCentral(t *testing.T) *centralEnv {
	t.Helper()
	return startCentralWith(t, []testenv.DexUser{alice}, "")
}

// startCentralWith is startCentral with these users, extra in the global
// iap option, and app1Lines in app1's iap_route.
func startCentralWith(t *testing.T, users []testenv.DexUser, extra string, app1Lines ...string) *centralEnv {
	t.Helper()
	up := echoUpstream(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	e := &centralEnv{auth: fmt.Sprintf("https://auth.test:%d", httpsPort)}
	e.dex = testenv.StartDex(t, testenv.DexOptions{Users: users, RedirectURIs: []string{e.auth + "/.iap/callback"}})
	globals := fmt.Sprintf(`	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
			scopes openid email profile groups offline_access
		}
		cookie_secret %s
		authenticate_url %s
%s	}`, e.dex.Issuer, e.dex.ClientID, e.dex.ClientSecret, randomSecret(t), e.auth, extra)
	sites := "auth.test {\n\ttls internal\n\tiap_authenticate\n}\n"
	for _, h := range centralHosts {
		lines := []string{"to " + up, "allow_any_authenticated_user"}
		if h == "app1.test" {
			lines = append(lines, app1Lines...)
		}
		sites += site(h, lines...)
	}
	e.caddy = testenv.StartCaddyOn(t, httpPort, httpsPort, globals, sites)
	return e
}

// hostsVisited records the hosts a user agent's redirects go through.
func hostsVisited(ua *testenv.UserAgent) *[]string {
	var hosts []string
	ua.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		hosts = append(hosts, req.URL.Hostname()+req.URL.Path)
		if len(via) > 10 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}
	return &hosts
}

// handoffURL runs a sign-in for host in ua up to the hand-off, and returns
// the hand-off URL without following it.
func handoffURL(t *testing.T, ua *testenv.UserAgent, host string) string {
	t.Helper()
	jarDrop(t, ua, host)
	ua.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/.iap/handoff" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	defer func() { ua.Client.CheckRedirect = nil }()
	resp, body := ua.Get(t, ua.URL(host, "/x"), nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/.iap/handoff?token=") {
		t.Fatalf("%s: want a redirect to the hand-off, got %d %q\n%s", host, resp.StatusCode, loc, body)
	}
	return loc
}

// TestCentralSignIn: one IdP login, on the sign-in host, signs a browser in
// on three route hosts; the IdP lists only the sign-in host's callback.
func TestCentralSignIn(t *testing.T) {
	e := startCentral(t)
	ua := e.caddy.NewUserAgent(t)
	visited := hostsVisited(ua)

	resp, body := ua.SignIn(t, ua.URL("app1.test", "/hello"), alice.Email, alice.Password)
	if resp.StatusCode != 200 || resp.Request.URL.String() != ua.URL("app1.test", "/hello") {
		t.Fatalf("after sign-in: %d at %s (via %v)\n%s", resp.StatusCode, resp.Request.URL, *visited, body)
	}
	if h := echoed(t, body); h.Get("X-Iap-Jwt-Assertion") == "" {
		t.Errorf("app1's upstream got no assertion: %v", h)
	} else if a := verifyAssertion(t, ua, "app1.test", h.Get("X-Iap-Jwt-Assertion")); a.Email != alice.Email {
		t.Errorf("app1's assertion is for %q", a.Email)
	}
	if !strings.Contains(strings.Join(*visited, " "), "auth.test/.iap/callback") {
		t.Errorf("the IdP did not come back to the sign-in host's callback: %v", *visited)
	}
	// Each route host has its own session cookie; none is shared.
	for _, h := range []string{"auth.test", "app1.test"} {
		if ua.Cookie(h, "__Host-_iap") == "" {
			t.Errorf("%s has no session cookie", h)
		}
	}

	// The other hosts sign in through the sign-in host's session: no IdP.
	for _, h := range centralHosts[1:] {
		*visited = nil
		resp, body := ua.Get(t, ua.URL(h, "/page"), nil)
		if resp.StatusCode != 200 || resp.Request.URL.String() != ua.URL(h, "/page") {
			t.Fatalf("%s: %d at %s (via %v)\n%s", h, resp.StatusCode, resp.Request.URL, *visited, body)
		}
		for _, v := range *visited {
			if strings.HasPrefix(v, "127.0.0.1") || strings.Contains(v, "/dex/") {
				t.Errorf("%s went to the IdP again: %v", h, *visited)
			}
		}
		if got := strings.Join(*visited, " "); !strings.Contains(got, "auth.test/.iap/authenticate") || !strings.Contains(got, h+"/.iap/handoff") {
			t.Errorf("%s did not go through the hand-off: %v", h, got)
		}
	}

	// The sign-in host's other pages are the user page.
	resp, body = ua.Get(t, e.auth+"/anything", http.Header{"Accept": {"application/json"}})
	if resp.Request.URL.Path != "/.iap/" {
		t.Errorf("auth.test/anything ended at %s (%d)\n%s", resp.Request.URL, resp.StatusCode, body)
	}

	// Sign-out on a route host ends this sign-in on every host (Dex has no
	// end_session_endpoint: the browser goes back to the return URL).
	ua.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	_, page := ua.Get(t, ua.URL("app2.test", "/.iap/sign_out"), nil)
	token := csrfFromPage(t, page)
	req, _ := http.NewRequest(http.MethodPost, ua.URL("app2.test", "/.iap/sign_out"), strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://"+req.URL.Host)
	resp, err := ua.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != ua.URL("app2.test", "/") {
		t.Errorf("route host sign-out: %d to %q, want app2's root", resp.StatusCode, loc)
	}
	if ua.Cookie("app2.test", "__Host-_iap") != "" {
		t.Errorf("app2's session cookie is still set after its sign-out")
	}
	for _, h := range []string{"auth.test", "app1.test", "app3.test"} {
		resp, body := ua.Get(t, ua.URL(h, "/.iap/user"), http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s after signing out on app2: %d, want 401\n%s", h, resp.StatusCode, body)
		}
	}
}

// csrfFromPage reads the sign-out form's token.
func csrfFromPage(t *testing.T, page string) string {
	t.Helper()
	const marker = `name="csrf_token" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("no sign-out form token in:\n%s", page)
	}
	rest := page[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestCentralSignInAttacks: a hand-off opens one host, once, in the browser
// that started the sign-in; the sign-in host is no open redirect.
func TestCentralSignInAttacks(t *testing.T) {
	e := startCentral(t)
	attacker := e.caddy.NewUserAgent(t)
	if resp, body := attacker.SignIn(t, attacker.URL("app1.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
	noFollow := func(ua *testenv.UserAgent) *testenv.UserAgent {
		ua.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return ua
	}
	refused := func(t *testing.T, ua *testenv.UserAgent, rawURL, wantDetail string) {
		t.Helper()
		resp, body := ua.Get(t, rawURL, http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: got %d %q, want 400\n%s", rawURL, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		var j struct{ Reason, Error string }
		_ = json.Unmarshal([]byte(body), &j)
		if j.Reason != "invalid-handoff" || !strings.Contains(j.Error, wantDetail) {
			t.Errorf("%s: reason %q error %q, want invalid-handoff with %q", rawURL, j.Reason, j.Error, wantDetail)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "__Host-_iap" && c.MaxAge >= 0 {
				t.Errorf("%s set a session cookie", rawURL)
			}
		}
	}

	t.Run("login fixation: another browser opens a hand-off", func(t *testing.T) {
		h := handoffURL(t, attacker, "app2.test")
		victim := noFollow(e.caddy.NewUserAgent(t))
		refused(t, victim, h, "no sign-in in progress in this browser")
	})
	t.Run("replay", func(t *testing.T) {
		h := handoffURL(t, attacker, "app2.test")
		ua := noFollow(attacker)
		if resp, body := ua.Get(t, h, nil); resp.StatusCode != http.StatusFound {
			t.Fatalf("the first use: %d\n%s", resp.StatusCode, body)
		}
		refused(t, ua, h, "")
		ua.Client.CheckRedirect = nil
	})
	t.Run("replay with a new sign-in in progress", func(t *testing.T) {
		// The browser starts a new sign-in on app3, and an old hand-off
		// of app3 is replayed into it: its state is not the new one's.
		old := handoffURL(t, attacker, "app3.test")
		if resp, _ := noFollow(attacker).Get(t, old, nil); resp.StatusCode != http.StatusFound {
			t.Fatal("the first use failed")
		}
		attacker.Client.CheckRedirect = nil
		// Drop app3's session, and start again.
		_ = handoffURL(t, attacker, "app3.test")
		refused(t, noFollow(attacker), old, "")
		attacker.Client.CheckRedirect = nil
	})
	t.Run("another host's hand-off", func(t *testing.T) {
		h := handoffURL(t, attacker, "app2.test")
		token := h[strings.Index(h, "token=")+len("token="):]
		refused(t, noFollow(attacker), attacker.URL("app3.test", "/.iap/handoff?token="+token), "for another host")
		attacker.Client.CheckRedirect = nil
	})
	t.Run("forged", func(t *testing.T) {
		h := handoffURL(t, attacker, "app2.test")
		i := strings.Index(h, "token=") + len("token=") + 20
		flipped := "A"
		if h[i] == 'A' {
			flipped = "B"
		}
		refused(t, noFollow(attacker), h[:i]+flipped+h[i+1:], "not authentic")
		attacker.Client.CheckRedirect = nil
	})
	t.Run("no open redirect", func(t *testing.T) {
		ua := noFollow(attacker)
		defer func() { ua.Client.CheckRedirect = nil }()
		port := e.caddy.HTTPSPort
		for _, host := range []string{
			"evil.example",
			fmt.Sprintf("evil.example:%d", port),
			fmt.Sprintf("app1.test:%d", port+1),
			fmt.Sprintf("evil.example@app1.test:%d", port),
			fmt.Sprintf("app1.test:%d/@evil.example", port),
			fmt.Sprintf("app1.test:%d\\@evil.example", port),
			"",
			fmt.Sprintf("auth.test:%d", port),
		} {
			q := url.Values{"host": {host}, "state": {"0123456789abcdef"}}
			refused(t, ua, e.auth+"/.iap/authenticate?"+q.Encode(), "")
		}
		q := url.Values{"host": {fmt.Sprintf("app1.test:%d", port)}, "state": {"<script>"}}
		refused(t, ua, e.auth+"/.iap/authenticate?"+q.Encode(), "state")
	})
	t.Run("route hosts take no sign-in of their own", func(t *testing.T) {
		// The IdP's redirect to a route host's callback is refused there:
		// only the sign-in host has one.
		ua := noFollow(attacker)
		defer func() { ua.Client.CheckRedirect = nil }()
		resp, body := ua.Get(t, ua.URL("app1.test", "/.iap/callback?state=x&code=y"), http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("route host callback: %d\n%s", resp.StatusCode, body)
		}
	})
}

// jarDrop removes the session cookie the user agent holds for host.
func jarDrop(t *testing.T, ua *testenv.UserAgent, host string) {
	t.Helper()
	u, err := url.Parse(ua.URL(host, "/"))
	if err != nil {
		t.Fatal(err)
	}
	ua.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-_iap", Value: "", Path: "/", MaxAge: -1, Secure: true}})
}

// TestCentralSignInInChromium: three route hosts, one registered callback,
// one IdP login for all three, in a real browser.
func TestCentralSignInInChromium(t *testing.T) {
	e := startCentral(t)
	browser := testenv.StartChromium(t)
	url := func(h string) string { return fmt.Sprintf("https://%s:%d/hello", h, e.caddy.HTTPSPort) }

	browser.Navigate(url("app1.test"))
	browser.WaitFor(`document.querySelector("input[name=login]")`)
	browser.Eval(fmt.Sprintf(`document.querySelector("input[name=login]").value = %q;
		document.querySelector("input[name=password]").value = %q;
		document.querySelector("form").submit(); "ok"`, alice.Email, alice.Password))
	browser.WaitFor(fmt.Sprintf(`location.href === %q`, url("app1.test")))
	for _, h := range centralHosts {
		browser.Navigate(url(h))
		browser.WaitFor(fmt.Sprintf(`location.href === %q && document.body.innerText.includes("X-Iap-Jwt-Assertion")`, url(h)))
	}
}

// TestCentralSignInProgrammaticLogin: a CLI's programmatic login on a route
// host signs in through the sign-in host too, and the token works on that
// route.
func TestCentralSignInProgrammaticLogin(t *testing.T) {
	e := startCentral(t)
	var mu sync.Mutex
	var received []url.Values
	loopback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.URL.Query())
		mu.Unlock()
		fmt.Fprintln(w, "Signed in")
	}))
	t.Cleanup(loopback.Close)
	app := fmt.Sprintf("app2.test:%d", e.caddy.HTTPSPort)
	cli := e.caddy.Client(t)
	r, err := e.caddy.Do(t, cli, app, "/.iap/api/v1/login?redirect_uri="+url.QueryEscape(loopback.URL+"/cb"), nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("login API: %v %d %s", err, r.Status, r.Body)
	}
	browser := e.caddy.NewUserAgent(t)
	resp, body := browser.SignIn(t, strings.TrimSpace(r.Body), alice.Email, alice.Password)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.String(), loopback.URL+"/cb?") {
		t.Fatalf("landed at %s with %d:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	mu.Lock()
	token := received[0].Get("iap_token")
	mu.Unlock()
	r, err = e.caddy.Do(t, cli, app, "/api", http.Header{"Authorization": {"IAP " + token}, "Accept": {"application/json"}})
	if err != nil || r.Status != 200 {
		t.Fatalf("the route with the token: %v %d %s", err, r.Status, r.Body)
	}
}

// With session_store storage, a user in 900 groups signs in on the sign-in
// host and is handed off to a route host: the hand-off URL carries a short
// reference to a record in the storage, not the session.
func TestCentralSignInWithSessionsInStorage(t *testing.T) {
	many := testenv.DexUser{Email: "many@example.com", Password: "pw", Name: "Many", Groups: uuidGroups(900)}
	e := startCentralWith(t, []testenv.DexUser{many}, "\t\tsession_store storage\n")
	ua := e.caddy.NewUserAgent(t)
	var handoffs []string
	ua.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/.iap/handoff" {
			handoffs = append(handoffs, req.URL.String())
		}
		return nil
	}
	resp, body := ua.SignIn(t, ua.URL("app1.test", "/x"), many.Email, many.Password)
	if resp.StatusCode != 200 || resp.Request.URL.String() != ua.URL("app1.test", "/x") {
		t.Fatalf("after sign-in: %d at %s\n%.300s", resp.StatusCode, resp.Request.URL, body)
	}
	if a := verifyAssertion(t, ua, "app1.test", echoed(t, body).Get("X-Iap-Jwt-Assertion")); len(a.Groups) != 900 {
		t.Errorf("the assertion has %d groups", len(a.Groups))
	}
	if len(handoffs) != 1 || len(handoffs[0]) > 200 {
		t.Errorf("hand-off URLs %v: want one, short", handoffs)
	}
	// Taken once: the same URL again, in the same browser, is refused.
	ua.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := ua.Get(t, handoffs[0], http.Header{"Accept": {"application/json"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the hand-off replayed: %d", resp.StatusCode)
	}
}

// depends_on: a sign-in on app1, whose pages call app2, goes through
// app2's sign-in too (through the sign-in host, asking nothing more), and
// lands on the page asked for, with a session on both.
func TestCentralSignInDependsOn(t *testing.T) {
	e := startCentralWith(t, []testenv.DexUser{alice}, "", "depends_on app2.test")
	ua := e.caddy.NewUserAgent(t)
	visited := hostsVisited(ua)
	resp, body := ua.SignIn(t, ua.URL("app1.test", "/dashboard?tab=1"), alice.Email, alice.Password)
	if resp.StatusCode != 200 || resp.Request.URL.String() != ua.URL("app1.test", "/dashboard?tab=1") {
		t.Fatalf("after sign-in: %d at %s (via %v)\n%s", resp.StatusCode, resp.Request.URL, *visited, body)
	}
	if !strings.Contains(strings.Join(*visited, " "), "app2.test/.iap/sign_in") {
		t.Errorf("the sign-in did not go through app2: %v", *visited)
	}
	if ua.Cookie("app2.test", "__Host-_iap") == "" {
		t.Errorf("app2 has no session after app1's sign-in")
	}
	// app2 now answers without any redirect.
	ua.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := ua.Get(t, ua.URL("app2.test", "/api"), http.Header{"Accept": {"application/json"}}); resp.StatusCode != 200 {
		t.Errorf("app2 after app1's sign-in: %d", resp.StatusCode)
	}
	if ua.Cookie("app3.test", "__Host-_iap") != "" {
		t.Errorf("app3, which app1 does not depend on, got a session")
	}
}
