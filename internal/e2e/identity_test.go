package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

var alice = testenv.DexUser{Email: "alice@example.com", Name: "Alice Liddell", Password: "wonderland", Groups: []string{"admins", "eng"}}

// idEnv is Dex plus a Caddy that signs users in against it.
type idEnv struct {
	dex      *testenv.Dex
	caddy    *testenv.Caddy
	upstream string
	secret   string
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// startIdentity starts Dex and Caddy with the sites app.test (any signed-in
// user), public.test (public) and closed.test (no policy), all proxying to
// a header-echoing upstream. extra goes into the global iap option.
func startIdentity(t *testing.T, dexOpts testenv.DexOptions, extra string) *idEnv {
	t.Helper()
	e := &idEnv{upstream: echoUpstream(t), secret: randomSecret(t)}
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	for _, h := range []string{"app.test", "closed.test"} {
		dexOpts.RedirectURIs = append(dexOpts.RedirectURIs, fmt.Sprintf("https://%s:%d/.iap/callback", h, httpsPort))
	}
	dexOpts.Users = append(dexOpts.Users, alice)
	if e.dex == nil {
		e.dex = testenv.StartDex(t, dexOpts)
	}
	globals := fmt.Sprintf(`	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
			scopes openid email profile groups offline_access
		}
		cookie_secret %s
		jwt_claims_headers X-Email=email X-Groups=groups
%s
	}`, e.dex.Issuer, e.dex.ClientID, e.dex.ClientSecret, e.secret, extra)
	e.caddy = testenv.StartCaddyOn(t, httpPort, httpsPort, globals,
		site("app.test", "to "+e.upstream, "allow_any_authenticated_user")+
			site("public.test", "to "+e.upstream, "allow_public_unauthenticated_access")+
			site("closed.test", "to "+e.upstream))
	return e
}

// echoed decodes the header-echoing upstream's answer.
func echoed(t *testing.T, body string) http.Header {
	t.Helper()
	var h http.Header
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("not the upstream's echo: %v\n%s", err, body)
	}
	return h
}

type assertion struct {
	jwt.Claims
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	SID    string   `json:"sid"`
	IDP    string   `json:"idp"`
}

// verifyAssertion checks an assertion against the JWKS that Caddy
// publishes for host.
func verifyAssertion(t *testing.T, ua *testenv.UserAgent, host, token string) assertion {
	t.Helper()
	resp, body := ua.Get(t, ua.URL(host, "/.well-known/iap/jwks.json"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("JWKS: %d %s", resp.StatusCode, body)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parsing the assertion: %v", err)
	}
	var a assertion
	if err := tok.Claims(jwks.Keys[0].Key, &a); err != nil {
		t.Fatalf("the assertion does not verify against the JWKS: %v", err)
	}
	if err := a.Claims.Validate(jwt.Expected{Issuer: host, AnyAudience: jwt.Audience{host}, Time: time.Now()}); err != nil {
		t.Fatalf("assertion claims: %v", err)
	}
	return a
}

func TestSignIn(t *testing.T) {
	e := startIdentity(t, testenv.DexOptions{}, "")
	ua := e.caddy.NewUserAgent(t)
	app := func(path string) string { return ua.URL("app.test", path) }

	t.Run("an API client without a session gets 401 JSON", func(t *testing.T) {
		r := e.caddy.Get(t, "app.test", "/", http.Header{"Accept": {"application/json"}})
		if r.Status != 401 || !strings.Contains(r.Body, `"reason":"user-unauthenticated"`) || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("got %d %v %s", r.Status, r.Header, r.Body)
		}
	})

	t.Run("a browser is sent to sign in", func(t *testing.T) {
		r := e.caddy.Get(t, "app.test", "/page", http.Header{"Accept": {"text/html"}})
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.Status != 302 || loc == nil || !strings.HasPrefix(loc.String(), e.dex.Issuer+"/auth") {
			t.Fatalf("got %d Location %q", r.Status, r.Header.Get("Location"))
		}
		q := loc.Query()
		for _, p := range []string{"state", "nonce", "code_challenge"} {
			if q.Get(p) == "" {
				t.Errorf("the authorization request lacks %s: %s", p, loc)
			}
		}
		if q.Get("code_challenge_method") != "S256" {
			t.Errorf("PKCE method %q, want S256", q.Get("code_challenge_method"))
		}
	})

	var session string
	t.Run("the sign-in lands on the page asked for, and the upstream gets a signed assertion", func(t *testing.T) {
		resp, body := ua.SignIn(t, app("/hello?x=1"), alice.Email, alice.Password)
		if resp.StatusCode != 200 || resp.Request.URL.String() != app("/hello?x=1") {
			t.Fatalf("landed at %s with %d:\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		h := echoed(t, body)
		a := verifyAssertion(t, ua, "app.test", h.Get("X-Iap-Jwt-Assertion"))
		if a.Subject == "" || a.Email != alice.Email || a.Name != alice.Name || strings.Join(a.Groups, ",") != "admins,eng" || a.SID == "" || a.ID == "" {
			t.Errorf("assertion claims: %+v", a)
		}
		if d := a.Expiry.Time().Sub(a.IssuedAt.Time()); d != 5*time.Minute {
			t.Errorf("assertion lifetime %v, want 5m", d)
		}
		if h.Get("X-Email") != alice.Email || h.Get("X-Groups") != "admins,eng" {
			t.Errorf("claim headers: X-Email %q X-Groups %q", h.Get("X-Email"), h.Get("X-Groups"))
		}
		session = ua.Cookie("app.test", "__Host-_iap")
		if session == "" {
			t.Fatal("no session cookie")
		}
	})

	t.Run("the session cookie is Secure and HttpOnly", func(t *testing.T) {
		ua2 := e.caddy.NewUserAgent(t)
		var setCookies []string
		ua2.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if resp := req.Response; resp != nil {
				setCookies = append(setCookies, resp.Header.Values("Set-Cookie")...)
			}
			return nil
		}
		ua2.SignIn(t, app("/"), alice.Email, alice.Password)
		found := false
		for _, c := range setCookies {
			if strings.HasPrefix(c, "__Host-_iap=") {
				found = true
				if !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") ||
					!strings.Contains(c, "Path=/;") || strings.Contains(c, "Domain=") {
					t.Errorf("session cookie attributes: %s", c)
				}
			}
		}
		if !found {
			t.Errorf("no __Host-_iap cookie set: %q", setCookies)
		}
	})

	t.Run("forged identity headers never reach the upstream", func(t *testing.T) {
		forged := http.Header{"X-Iap-Jwt-Assertion": {"forged"}, "X-Email": {"mallory@evil.example"}, "X-Iap-Anything": {"x"}}
		_, body := ua.Get(t, app("/"), forged)
		h := echoed(t, body)
		if h.Get("X-Iap-Jwt-Assertion") == "forged" || h.Get("X-Email") != alice.Email || h.Get("X-Iap-Anything") != "" {
			t.Errorf("signed-in route: %v", h)
		}
		r := e.caddy.Get(t, "public.test", "/", forged)
		if h := echoed(t, r.Body); h.Get("X-Iap-Jwt-Assertion") != "" || h.Get("X-Email") != "" || h.Get("X-Iap-Anything") != "" {
			t.Errorf("public route passed forged headers: %v", h)
		}
	})

	t.Run("the session cookie never reaches the upstream; other cookies do", func(t *testing.T) {
		_, body := ua.Get(t, app("/"), http.Header{"Cookie": {"theme=dark; __Host-_iap_login_0123456789ab=stale; __Host-_iap_7=leftover; _iap_login=old; _iap=old; _iapx=app-owned"}})
		h := echoed(t, body)
		if got := strings.Join(h.Values("Cookie"), " | "); got != "theme=dark; _iapx=app-owned" {
			t.Errorf("the upstream got Cookie %q, want only the app's own cookies", got)
		}
		if h.Get("X-Pomerium-Jwt-Assertion") == "" && h.Get("X-Iap-Jwt-Assertion") == "" {
			t.Errorf("no assertion: %v", h)
		}
		r := e.caddy.Get(t, "public.test", "/", http.Header{"Cookie": {"__Host-_iap=" + ua.Cookie("app.test", "__Host-_iap") + "; theme=dark"}})
		if got := strings.Join(echoed(t, r.Body).Values("Cookie"), " | "); got != "theme=dark" {
			t.Errorf("a public route passed Cookie %q", got)
		}
	})

	t.Run("the user page, its JSON and the assertion endpoint", func(t *testing.T) {
		_, page := ua.Get(t, app("/.iap/"), nil)
		if !strings.Contains(page, alice.Email) || !strings.Contains(page, "admins, eng") || !strings.Contains(page, "Sign out") {
			t.Errorf("user page:\n%s", page)
		}
		_, js := ua.Get(t, app("/.iap/user"), nil)
		var u struct {
			Email  string
			Groups []string
		}
		if err := json.Unmarshal([]byte(js), &u); err != nil || u.Email != alice.Email || len(u.Groups) != 2 {
			t.Errorf("user JSON %s (%v)", js, err)
		}
		_, tok := ua.Get(t, app("/.iap/jwt"), nil)
		verifyAssertion(t, ua, "app.test", tok)
	})

	t.Run("a route without a policy refuses everyone, without asking them to sign in", func(t *testing.T) {
		resp, body := ua.Get(t, ua.URL("closed.test", "/"), nil)
		if resp.StatusCode != 403 || !strings.Contains(body, "no-policy") || strings.Contains(resp.Request.URL.Path, "/dex/") {
			t.Errorf("got %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
		}
	})

	t.Run("bearer ID tokens", func(t *testing.T) {
		good := dexPasswordGrant(t, e.dex, "caddy", "caddy-secret")
		other := dexPasswordGrant(t, e.dex, "other", "other-secret")
		for _, c := range []struct {
			name, token string
			status      int
		}{
			{"a token for this client", good, 200},
			{"a token for another client", other, 401},
			{"a tampered token", good[:len(good)-4] + "AAAA", 401},
			{"not a JWT", "hello", 401},
		} {
			r := e.caddy.Get(t, "app.test", "/", http.Header{"Authorization": {"Bearer " + c.token}, "Accept": {"application/json"}})
			if r.Status != c.status {
				t.Errorf("%s: status %d, want %d: %s", c.name, r.Status, c.status, r.Body)
			}
			if c.status == 200 && echoed(t, r.Body).Get("X-Email") != alice.Email {
				t.Errorf("%s: upstream did not get the identity", c.name)
			}
		}
	})

	t.Run("a tampered, truncated or foreign session cookie is no session", func(t *testing.T) {
		for name, value := range map[string]string{
			"tampered":  session[:len(session)-6] + "AAAAAA",
			"truncated": session[:len(session)/2],
			"garbage":   "v1.%%%",
			"foreign":   foreignSession(t, e),
		} {
			r := e.caddy.Get(t, "app.test", "/", http.Header{"Cookie": {"__Host-_iap=" + value}, "Accept": {"application/json"}})
			if r.Status != 401 {
				t.Errorf("%s cookie: status %d: %s", name, r.Status, r.Body)
			}
		}
		r := e.caddy.Get(t, "app.test", "/", http.Header{"Cookie": {"__Host-_iap=chunks.3; __Host-_iap_0=" + session}, "Accept": {"application/json"}})
		if r.Status != 401 {
			t.Errorf("missing chunks: status %d", r.Status)
		}
		r = e.caddy.Get(t, "app.test", "/", http.Header{"Cookie": {"__Host-_iap=" + session}, "Accept": {"application/json"}})
		if r.Status != 200 {
			t.Errorf("the genuine cookie: status %d", r.Status)
		}
	})

	t.Run("callbacks that are not from this browser's sign-in are refused", func(t *testing.T) {
		fresh := e.caddy.NewUserAgent(t)
		resp, body := fresh.Get(t, app("/.iap/callback?code=abc&state=xyz"), nil)
		if resp.StatusCode != 400 || !strings.Contains(body, "invalid-callback") {
			t.Errorf("no sign-in in progress: %d %s", resp.StatusCode, body)
		}
		// Start a sign-in, then come back with another state.
		fresh.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		fresh.Get(t, app("/"), nil)
		resp, body = fresh.Get(t, app("/.iap/callback?code=abc&state=forged"), nil)
		if resp.StatusCode != 400 || !strings.Contains(body, "state mismatch") {
			t.Errorf("state mismatch: %d %s", resp.StatusCode, body)
		}
		// A callback that succeeded cannot be replayed.
		replay := e.caddy.NewUserAgent(t)
		var callback string
		replay.Client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/.iap/callback") {
				callback = req.URL.String()
			}
			return nil
		}
		replay.SignIn(t, app("/"), alice.Email, alice.Password)
		resp, body = replay.Get(t, callback, nil)
		if callback == "" || resp.StatusCode != 400 {
			t.Errorf("replayed callback %q: %d %s", callback, resp.StatusCode, body)
		}
	})

	t.Run("return URLs never leave this server's routes", func(t *testing.T) {
		for _, target := range []string{"https://evil.example/x", "//evil.example/x", "/\\evil.example/x", "/%2F%2Fevil.example", "http://app.test/", "javascript:alert(1)", "https://evil.example@app.test/"} {
			u := e.caddy.NewUserAgent(t)
			resp, _ := u.SignIn(t, app("/.iap/sign_in?redirect_uri="+url.QueryEscape(target)), alice.Email, alice.Password)
			if got := resp.Request.URL; got.Hostname() != "app.test" || got.Scheme != "https" {
				t.Errorf("redirect_uri %q led to %s", target, got)
			}
		}
		// Another signed-in route of this server is a fine return URL.
		u := e.caddy.NewUserAgent(t)
		var visited []string
		u.Client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			visited = append(visited, req.URL.Host)
			return nil
		}
		u.SignIn(t, app("/.iap/sign_in?redirect_uri="+url.QueryEscape(ua.URL("closed.test", "/welcome"))), alice.Email, alice.Password)
		if !strings.Contains(strings.Join(visited, " "), "closed.test") {
			t.Errorf("a return URL on another route of this server should be followed; went to %v", visited)
		}
	})

	t.Run("sign-out asks first, needs the form's token, and ends the session", func(t *testing.T) {
		resp, page := ua.Get(t, app("/.iap/sign_out"), nil)
		if resp.StatusCode != 200 || !strings.Contains(page, `name="csrf_token"`) {
			t.Fatalf("confirm page: %d %s", resp.StatusCode, page)
		}
		token := between(page, `name="csrf_token" value="`, `"`)
		post := func(form url.Values) *http.Response {
			req, _ := http.NewRequest(http.MethodPost, app("/.iap/sign_out"), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "text/html")
			ua.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			defer func() { ua.Client.CheckRedirect = nil }()
			resp, err := ua.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		if r := post(url.Values{"csrf_token": {"forged"}}); r.StatusCode != 403 {
			t.Errorf("forged token: %d", r.StatusCode)
		}
		if r := post(url.Values{"csrf_token": {token}}); r.StatusCode != 302 {
			t.Errorf("sign-out: %d", r.StatusCode)
		}
		if ua.Cookie("app.test", "__Host-_iap") != "" {
			t.Errorf("the session cookie survived sign-out")
		}
		r := e.caddy.Get(t, "app.test", "/", http.Header{"Cookie": {"__Host-_iap=" + session}, "Accept": {"application/json"}})
		if r.Status != 200 {
			// Cookies carry the session, so a copy kept elsewhere stays
			// valid until it expires: sign-out clears this browser.
			t.Logf("a copied cookie after sign-out: %d", r.Status)
		}
	})
}

func between(s, start, end string) string {
	_, rest, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(rest, end)
	return v
}

// dexPasswordGrant gets an ID token for alice straight from Dex.
func dexPasswordGrant(t *testing.T, dex *testenv.Dex, client, secret string) string {
	t.Helper()
	return dex.PasswordGrant(t, client, secret, alice.Email, alice.Password, "openid email profile groups").IDToken
}

// foreignSession signs in on a second Caddy with another cookie_secret and
// returns its session cookie.
func foreignSession(t *testing.T, e *idEnv) string {
	t.Helper()
	other := startIdentity(t, testenv.DexOptions{}, "")
	ua := other.caddy.NewUserAgent(t)
	ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password)
	c := ua.Cookie("app.test", "__Host-_iap")
	if c == "" {
		t.Fatal("no session on the second Caddy")
	}
	return c
}

// A short ID token lifetime makes every request refresh the session with
// the refresh token; a refresh the IdP refuses sends the user to sign in.
func TestSessionRefresh(t *testing.T) {
	e := startIdentity(t, testenv.DexOptions{IDTokenTTL: 30 * time.Second}, "")
	ua := e.caddy.NewUserAgent(t)
	resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	first := ua.Cookie("app.test", "__Host-_iap")

	// The ID token expires within a minute: the next request refreshes.
	resp, body = ua.Get(t, ua.URL("app.test", "/"), nil)
	if resp.StatusCode != 200 || echoed(t, body).Get("X-Email") != alice.Email {
		t.Fatalf("after refresh: %d %s", resp.StatusCode, body)
	}
	if second := ua.Cookie("app.test", "__Host-_iap"); second == first || second == "" {
		t.Errorf("the session cookie was not re-issued on refresh")
	}

	// Dex forgets its refresh tokens when restarted: the refresh fails and
	// the user must sign in again.
	e.dex.Restart()
	r := e.caddy.Get(t, "app.test", "/", http.Header{"Cookie": {"__Host-_iap=" + ua.Cookie("app.test", "__Host-_iap")}, "Accept": {"application/json"}})
	if r.Status != 401 {
		t.Errorf("after a failed refresh: %d %s", r.Status, r.Body)
	}
	resp, _ = ua.Get(t, ua.URL("app.test", "/"), nil)
	if !strings.Contains(resp.Request.URL.Path, "/dex/auth") {
		t.Errorf("a browser should be sent to sign in again, landed at %s", resp.Request.URL)
	}

	// The restarted Dex signs with new keys: the key set fetches them, at
	// most once per 10 s (key_set_refresh_interval), so a token with the new
	// key may be refused for that long, never longer.
	token := dexPasswordGrant(t, e.dex, "caddy", "caddy-secret")
	for deadline := time.Now().Add(25 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		r = e.caddy.Get(t, "app.test", "/", http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}})
		if r.Status == 200 {
			break
		}
		if r.Status != 401 || !strings.Contains(r.Body, "invalid-bearer-token") || time.Now().After(deadline) {
			t.Errorf("a token signed with the IdP's new key: %d %s", r.Status, r.Body)
			break
		}
	}
}

// cookie_expire caps a session, whatever its tokens say.
func TestCookieExpireCapsTheSession(t *testing.T) {
	e := startIdentity(t, testenv.DexOptions{}, "\t\tcookie_expire 3s")
	ua := e.caddy.NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	cookie := ua.Cookie("app.test", "__Host-_iap")
	time.Sleep(3500 * time.Millisecond)
	r := e.caddy.Get(t, "app.test", "/", http.Header{"Cookie": {"__Host-_iap=" + cookie}, "Accept": {"application/json"}})
	if r.Status != 401 {
		t.Errorf("an expired session: %d %s", r.Status, r.Body)
	}
}

// An IdP that is down when Caddy starts is not fatal: sign-in answers 503
// with Retry-After, and works as soon as the IdP is up.
func TestIdPDownAtStart(t *testing.T) {
	dexPort := testenv.FreePort(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d/dex", dexPort)
	globals := fmt.Sprintf("\tiap {\n\t\tidp {\n\t\t\tprovider_url %s\n\t\t\tclient_id caddy\n\t\t\tclient_secret caddy-secret\n\t\t}\n\t\tcookie_secret %s\n\t}", issuer, randomSecret(t))
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, globals, site("app.test", "to "+echoUpstream(t), "allow_any_authenticated_user"))

	r := caddy.Get(t, "app.test", "/", http.Header{"Accept": {"text/html"}})
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "identity-provider-unavailable") {
		t.Fatalf("with the IdP down: %d Retry-After %q\n%s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if !strings.Contains(caddy.Log(), "identity provider discovery failed; retrying") {
		t.Errorf("the discovery failure is not logged")
	}

	dex := testenv.StartDex(t, testenv.DexOptions{Port: dexPort, Users: []testenv.DexUser{alice},
		RedirectURIs: []string{fmt.Sprintf("https://app.test:%d/.iap/callback", httpsPort)}})
	deadline := time.Now().Add(45 * time.Second)
	for {
		r = caddy.Get(t, "app.test", "/", http.Header{"Accept": {"text/html"}})
		if r.Status == 302 && strings.HasPrefix(r.Header.Get("Location"), issuer) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign-in did not recover after the IdP came up: %d %s", r.Status, r.Body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	ua := caddy.NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Errorf("sign-in after recovery: %d %s", resp.StatusCode, body)
	}
	session := ua.Cookie("app.test", "__Host-_iap")

	// The IdP goes down: signed-in users keep access, new sign-ins get 503
	// once the health check notices, and all recovers when it is back.
	dex.Stop()
	for deadline := time.Now().Add(30 * time.Second); ; {
		r = caddy.Get(t, "app.test", "/", http.Header{"Accept": {"text/html"}})
		if r.Status == 503 && r.Header.Get("Retry-After") != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new sign-in with the IdP down: %d, want 503", r.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if r := caddy.Get(t, "app.test", "/", http.Header{"Cookie": {"__Host-_iap=" + session}, "Accept": {"application/json"}}); r.Status != 200 {
		t.Errorf("a signed-in user with the IdP down: %d %s", r.Status, r.Body)
	}
	dex.Restart()
	for deadline := time.Now().Add(30 * time.Second); ; {
		r = caddy.Get(t, "app.test", "/", http.Header{"Accept": {"text/html"}})
		if r.Status == 302 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign-in did not recover: %d", r.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A real browser signs in through Dex's login page, reaches the route, and
// opens the user page, which shows the email. The screenshot is kept in
// out/user-page.png.
func TestBrowserSignIn(t *testing.T) {
	e := startIdentity(t, testenv.DexOptions{}, "")
	browser := testenv.StartChromium(t)
	app := fmt.Sprintf("https://app.test:%d", e.caddy.HTTPSPort)

	browser.Navigate(app + "/hello")
	browser.WaitFor(`document.querySelector("input[name=login]")`)
	if !strings.HasPrefix(browser.Eval("location.href"), e.dex.Issuer) {
		t.Fatalf("not at Dex's login page: %s", browser.Eval("location.href"))
	}
	browser.Eval(fmt.Sprintf(`document.querySelector("input[name=login]").value = %q;
		document.querySelector("input[name=password]").value = %q;
		document.querySelector("form").submit(); "ok"`, alice.Email, alice.Password))
	browser.WaitFor(fmt.Sprintf(`location.href === %q`, app+"/hello"))
	if body := browser.Eval("document.body.innerText"); !strings.Contains(body, "X-Iap-Jwt-Assertion") {
		t.Errorf("the upstream's page lacks the assertion header:\n%s", body)
	}

	browser.Navigate(app + "/.iap/")
	browser.WaitFor(`document.getElementById("email")`)
	if got := browser.Eval(`document.getElementById("email").innerText`); got != alice.Email {
		t.Errorf("the user page shows %q, want %q", got, alice.Email)
	}
	if got := browser.Eval(`document.getElementById("groups").innerText`); got != "admins, eng" {
		t.Errorf("groups %q", got)
	}
	t.Logf("screenshot: %s", browser.Screenshot("user-page.png"))

	// The sign-out button ends the session: the next page asks to sign in.
	browser.Eval(`document.querySelector("form button").click(); "ok"`)
	browser.WaitFor(`location.href.startsWith(` + fmt.Sprintf("%q", e.dex.Issuer) + `) && document.querySelector("input[name=login]")`)
	browser.Navigate(app + "/.iap/")
	browser.WaitFor(`document.querySelector("input[name=login]")`)
}

// compat pomerium keeps upstreams written for Pomerium working; a site can
// use iap_authenticate alone, and Caddy's placeholders and access log carry
// the user.
func TestPomeriumCompatAndPlaceholders(t *testing.T) {
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}, RedirectURIs: []string{
		fmt.Sprintf("https://app.test:%d/.pomerium/callback", httpsPort),
		fmt.Sprintf("https://whoami.test:%d/.pomerium/callback", httpsPort),
	}})
	globals := fmt.Sprintf("\tiap {\n\t\tidp {\n\t\t\tprovider_url %s\n\t\t\tclient_id caddy\n\t\t\tclient_secret caddy-secret\n\t\t\tscopes openid email profile groups\n\t\t}\n\t\tcookie_secret %s\n\t\tcompat pomerium\n\t}",
		dex.Issuer, randomSecret(t))
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, globals,
		site("app.test", "to "+echoUpstream(t), "allow_any_authenticated_user", `set_request_headers Authorization "Bearer $pomerium.jwt"`)+
			"whoami.test {\n\ttls internal\n\tlog\n\tiap_authenticate\n\trespond \"{http.auth.user.email} [{http.auth.user.groups}] {http.auth.user.claim.name}\"\n}\n")
	ua := caddy.NewUserAgent(t)

	resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	h := echoed(t, body)
	if h.Get("X-Pomerium-Jwt-Assertion") == "" || h.Get("X-Iap-Jwt-Assertion") != "" {
		t.Errorf("want X-Pomerium-Jwt-Assertion only: %v", h)
	}
	// Pomerium's $pomerium.jwt in set_request_headers is the same assertion.
	if got := h.Get("Authorization"); got != "Bearer "+h.Get("X-Pomerium-Jwt-Assertion") {
		t.Errorf("set_request_headers with $pomerium.jwt: Authorization %q", got)
	}
	if r, jwks := ua.Get(t, ua.URL("app.test", "/.well-known/pomerium/jwks.json"), nil); r.StatusCode != 200 || !strings.Contains(jwks, `"ES256"`) {
		t.Errorf("Pomerium's JWKS path: %d %s", r.StatusCode, jwks)
	}
	if r, js := ua.Get(t, ua.URL("app.test", "/.pomerium/user"), nil); r.StatusCode != 200 || !strings.Contains(js, alice.Email) {
		t.Errorf("/.pomerium/user: %d %s", r.StatusCode, js)
	}

	resp, body = ua.SignIn(t, ua.URL("whoami.test", "/"), alice.Email, alice.Password)
	if want := alice.Email + " [admins,eng] " + alice.Name; resp.StatusCode != 200 || body != want {
		t.Errorf("placeholders: %d %q, want %q", resp.StatusCode, body, want)
	}
	// The signed-in request's access log line carries the user's ID.
	caddy.WaitLog(`"status":200`)
	var served string
	for _, l := range strings.Split(logLinesWith(caddy.Log(), `"logger":"http.log.access"`), "\n") {
		if strings.Contains(l, `"status":200`) && strings.Contains(l, `"uri":"/"`) {
			served = l
		}
	}
	if served == "" || strings.Contains(served, `"user_id":""`) || !strings.Contains(served, `"user_id":"`) {
		t.Errorf("the access log does not name the user:\n%s", served)
	}
}

// Sign-in configuration errors fail `caddy validate` and name the option.
func TestIdentityConfigErrors(t *testing.T) {
	site := site("app.test", "to http://127.0.0.1:1", "allow_any_authenticated_user")
	for _, c := range []struct{ name, globals, want string }{
		{"no cookie_secret", "\tiap {\n\t\tidp {\n\t\t\tprovider_url http://127.0.0.1:1/dex\n\t\t\tclient_id caddy\n\t\t}\n\t}", "cookie_secret: required once an idp is set"},
		{"a short cookie_secret", "\tiap {\n\t\tidp {\n\t\t\tprovider_url http://127.0.0.1:1/dex\n\t\t\tclient_id caddy\n\t\t}\n\t\tcookie_secret c2hvcnQ=\n\t}", "cookie_secret: must decode to 32 bytes, got 5"},
		{"an idp without client_id", "\tiap {\n\t\tidp {\n\t\t\tprovider_url http://127.0.0.1:1/dex\n\t\t}\n\t}", "idp needs provider_url and client_id"},
		{"a bad cookie_same_site", "\tiap {\n\t\tidp {\n\t\t\tprovider_url http://127.0.0.1:1/dex\n\t\t\tclient_id caddy\n\t\t}\n\t\tcookie_secret " + randomSecret(t) + "\n\t\tcookie_same_site sometimes\n\t}", `cookie_same_site: "sometimes" is not lax, strict or none`},
		{"scopes without openid", "\tiap {\n\t\tidp {\n\t\t\tprovider_url http://127.0.0.1:1/dex\n\t\t\tclient_id caddy\n\t\t\tscopes email\n\t\t}\n\t\tcookie_secret " + randomSecret(t) + "\n\t}", "idp scopes must include openid"},
		{"a missing signing_key_file", "\tiap {\n\t\tidp {\n\t\t\tprovider_url http://127.0.0.1:1/dex\n\t\t\tclient_id caddy\n\t\t}\n\t\tcookie_secret " + randomSecret(t) + "\n\t\tsigning_key_file /nonexistent/key.pem\n\t}", "signing_key_file: open /nonexistent/key.pem: no such file or directory"},
		{"a bad jwt_claims_headers pair", "\tiap {\n\t\tjwt_claims_headers X-Email\n\t}", `jwt_claims_headers: "X-Email" is not Header=claim`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := testenv.Validate(t, testenv.WriteCaddyfile(t, t.TempDir(), c.globals, site))
			if ok || !strings.Contains(out, c.want) {
				t.Errorf("validate ok=%v, want %q:\n%s", ok, c.want, out)
			}
		})
	}
	t.Run("iap_authenticate without an idp", func(t *testing.T) {
		out, ok := testenv.Validate(t, testenv.WriteCaddyfile(t, t.TempDir(), "", "app.test {\n\ttls internal\n\tiap_authenticate\n\trespond ok\n}\n"))
		if ok || !strings.Contains(out, "sign-in needs an identity provider") {
			t.Errorf("validate ok=%v:\n%s", ok, out)
		}
	})
}
