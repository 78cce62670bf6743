package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// logoutEnv is Ory Hydra (which has an end_session_endpoint and
// Back-Channel Logout, where Dex has neither) and a Caddy signing users in
// against it: app.test and other.test for users, and localhost, the
// client's backchannel_logout_uri, under iap_mtls policy_with_default_deny
// (Hydra sends no client certificate).
type logoutEnv struct {
	hydra  *testenv.Hydra
	caddy  *testenv.Caddy
	port   int // Caddy's HTTPS port
	client *http.Client
}

func startLogout(t *testing.T) *logoutEnv {
	t.Helper()
	httpPort, httpsPort, hydraPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	e := &logoutEnv{port: httpsPort}
	caFile := testpki.NewCA(t, "logout test clients").WriteCert(t, t.TempDir(), "ca.pem")
	globals := fmt.Sprintf(`	iap {
		idp {
			provider_url http://127.0.0.1:%d
			client_id caddy
			client_secret caddy-secret
			scopes openid email profile offline_access
		}
		cookie_secret %s
	}`, hydraPort, randomSecret(t))
	route := "\tiap_route {\n\t\tto " + echoUpstream(t) + "\n\t\tallow_any_authenticated_user\n\t}\n"
	sites := "app.test, other.test {\n\ttls internal\n" + route + "}\n" +
		"localhost {\n\ttls internal\n\tiap_mtls {\n\t\tca_file " + caFile + "\n\t\tenforcement policy_with_default_deny\n\t}\n" + route + "}\n"
	// Caddy first: Hydra must trust its local CA to reach the
	// backchannel_logout_uri. Caddy retries discovery until Hydra is up.
	e.caddy = testenv.StartCaddyOn(t, httpPort, httpsPort, globals, sites)
	e.caddy.WaitCertificates(t, "app.test", "other.test", "localhost")
	e.hydra = testenv.StartHydra(t, testenv.HydraOptions{Port: hydraPort, RootsFile: e.caddy.RootFile(t)})
	e.hydra.CreateClient(t, testenv.HydraClient{
		ID: "caddy", Secret: "caddy-secret",
		RedirectURIs: redirectURIs(httpsPort, "app.test", "other.test"),
		PostLogoutRedirectURIs: []string{
			fmt.Sprintf("https://app.test:%d/.iap/signed_out", httpsPort),
			fmt.Sprintf("https://other.test:%d/.iap/signed_out", httpsPort),
		},
		BackchannelLogoutURI:             fmt.Sprintf("https://localhost:%d/.iap/backchannel_logout", httpsPort),
		BackchannelLogoutSessionRequired: true,
	})
	e.client = e.caddy.Client(t)
	// Wait until Caddy has discovered Hydra: a sign-in meanwhile is 503
	// and nudges the discovery.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := e.caddy.Get(t, "app.test", "/.iap/sign_in", nil)
		if r.Status == http.StatusFound {
			break
		}
		if r.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("caddy does not send sign-ins to hydra: %d %s", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return e
}

// signIn signs the browser in on host through Hydra, and returns the
// Cookie header of its session there: a copy, as a thief would hold it.
func (e *logoutEnv) signIn(t *testing.T, ua *testenv.UserAgent, host string) string {
	t.Helper()
	resp, body := ua.Get(t, ua.URL(host, "/"), nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Hostname() != host || !strings.Contains(body, "X-Iap-Jwt-Assertion") {
		t.Fatalf("signing in on %s through hydra: %d at %s:\n%s\n--- hydra ---\n%s", host, resp.StatusCode, resp.Request.URL, body, e.hydra.Log())
	}
	var parts []string
	for _, c := range ua.Client.Jar.Cookies(&url.URL{Scheme: "https", Host: fmt.Sprintf("%s:%d", host, e.port), Path: "/"}) {
		if strings.HasPrefix(c.Name, "__Host-_iap") && !strings.Contains(c.Name, "_login") {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		t.Fatalf("no session cookie for %s after signing in", host)
	}
	return strings.Join(parts, "; ")
}

// status is what a request to host with the copied session cookie gets:
// 200 while the session lives, 401 once it is refused.
func (e *logoutEnv) status(t *testing.T, host, cookie string) int {
	t.Helper()
	r := e.caddy.Get(t, host, "/", http.Header{"Cookie": {cookie}, "Accept": {"application/json"}})
	return r.Status
}

// backchannel sends a request to localhost's back-channel endpoint
// (query: "" or "?..."), without a client certificate, as Hydra does.
func (e *logoutEnv) backchannel(t *testing.T, method, query, contentType, body string) testenv.Response {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("https://localhost:%d/.iap/backchannel_logout%s", e.port, query), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s back-channel logout: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return testenv.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// mint signs a logout token's claims with key, under the key ID kid, as
// Hydra signs its own (RS256), with extra header fields.
func mint(t *testing.T, key any, kid string, claims map[string]any, header map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	for k, v := range header {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomJTI(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestLogoutRPInitiatedAndBackChannel: signing out on one host sends the
// browser to Hydra's end_session_endpoint with id_token_hint; Hydra's
// logout then reaches Caddy by back-channel logout, which ends the session
// of the same Hydra session on another host, whose copied cookie is
// refused from then on.
func TestLogoutRPInitiatedAndBackChannel(t *testing.T) {
	e := startLogout(t)
	ua := e.caddy.NewUserAgent(t)
	appCookie := e.signIn(t, ua, "app.test")
	otherCookie := e.signIn(t, ua, "other.test") // the same Hydra session, so the same sid
	if s := e.status(t, "other.test", otherCookie); s != http.StatusOK {
		t.Fatalf("the copied other.test cookie before any sign-out: %d", s)
	}

	// Sign out on app.test: the confirmation page, then its form.
	_, page := ua.Get(t, ua.URL("app.test", "/.iap/sign_out"), nil)
	token := between(page, `name="csrf_token" value="`, `"`)
	if token == "" {
		t.Fatalf("no CSRF token on the sign-out page:\n%s", page)
	}
	noFollow := *ua.Client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest(http.MethodPost, ua.URL("app.test", "/.iap/sign_out"), strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", fmt.Sprintf("https://app.test:%d", e.port))
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	signedOut := fmt.Sprintf("https://app.test:%d/.iap/signed_out", e.port)
	t.Run("sign-out redirects to Hydra's end_session_endpoint with id_token_hint", func(t *testing.T) {
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != e.hydra.Issuer+"/oauth2/sessions/logout" {
			t.Fatalf("sign-out: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := loc.Query()
		if strings.Count(q.Get("id_token_hint"), ".") != 2 {
			t.Errorf("id_token_hint %q is not a JWT", q.Get("id_token_hint"))
		}
		if q.Get("client_id") != "caddy" || q.Get("post_logout_redirect_uri") != signedOut || q.Get("state") != fmt.Sprintf("https://app.test:%d/", e.port) {
			t.Errorf("end-session parameters: %v", q)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	if s := e.status(t, "app.test", appCookie); s != http.StatusUnauthorized {
		t.Errorf("the copied app.test cookie after signing out there: %d, want 401", s)
	}

	// Follow the browser through Hydra's logout (its logout page accepts)
	// back to app.test.
	next := loc.String()
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("no way back from hydra's logout to %s", signedOut)
		}
		resp, body := getNoFollow(t, &noFollow, next)
		if strings.HasPrefix(next, signedOut) {
			want := fmt.Sprintf("https://app.test:%d/", e.port)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
				t.Fatalf("signed_out: %d to %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
			}
			break
		}
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("on the way through hydra's logout, %s answered %d:\n%s\n--- hydra ---\n%s", next, resp.StatusCode, body, e.hydra.Log())
		}
		u, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		next = u.String()
	}
	if n := e.hydra.Logouts.Load(); n != 1 {
		t.Errorf("hydra's logout page was asked %d times, want 1", n)
	}

	t.Run("Hydra's back-channel logout ends the same Hydra session on another host", func(t *testing.T) {
		// Hydra posts the logout token in the background as the logout
		// completes: wait for Caddy to have taken it.
		if !e.caddy.WaitLog(`"back-channel logout"`) {
			t.Fatalf("no back-channel logout reached caddy:\n%s\n--- hydra ---\n%s", e.caddy.Log(), e.hydra.Log())
		}
		if s := e.status(t, "other.test", otherCookie); s != http.StatusUnauthorized {
			t.Fatalf("the copied other.test cookie after hydra's back-channel logout: %d, want 401", s)
		}
	})
}

// TestBackChannelLogoutAttacks: logout tokens that are not Hydra's, or
// not for us, or not logout tokens, or seen before, and requests that are
// not a logout form, are 400 and end no session; the back-channel endpoint
// alone answers without a client certificate on the mTLS site.
func TestBackChannelLogoutAttacks(t *testing.T) {
	e := startLogout(t)
	ua := e.caddy.NewUserAgent(t)
	cookie := e.signIn(t, ua, "other.test")
	key := e.hydra.SigningKey(t)
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// Every token names alice by sub: one accepted would end every session
	// of hers, the one above included.
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": e.hydra.Issuer, "aud": []string{"caddy"}, "iat": time.Now().Unix(), "jti": randomJTI(t),
			"sub":    e.hydra.User.Subject,
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		}
		if change != nil {
			change(c)
		}
		return c
	}
	form := func(token string) string { return url.Values{"logout_token": {token}}.Encode() }
	const formType = "application/x-www-form-urlencoded"
	valid := mint(t, key.Key, key.KeyID, claims(nil), nil)

	cases := []struct {
		name, method, contentType, body, reason string
	}{
		{"a token signed with another key under Hydra's key ID", "POST", formType,
			form(mint(t, forger, key.KeyID, claims(nil), nil)), "invalid-logout-token"},
		{"a token for another client (aud)", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) { c["aud"] = []string{"other"} }), nil)), "invalid-logout-token"},
		{"a token of another issuer", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) { c["iss"] = "https://evil.example" }), nil)), "invalid-logout-token"},
		{"a token with a nonce", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) { c["nonce"] = "n" }), nil)), "invalid-logout-token"},
		{"a token without events", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) { delete(c, "events") }), nil)), "invalid-logout-token"},
		{"a token with another event", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) {
				c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
			}), nil)), "invalid-logout-token"},
		{"a token naming neither sid nor sub", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) { delete(c, "sub") }), nil)), "invalid-logout-token"},
		{"a token without jti", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) { delete(c, "jti") }), nil)), "invalid-logout-token"},
		{"a token issued an hour ago", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }), nil)), "invalid-logout-token"},
		{"a token typed as an access token", "POST", formType,
			form(mint(t, key.Key, key.KeyID, claims(nil), map[jose.HeaderKey]any{"typ": "at+jwt"})), "invalid-logout-token"},
		{"GET with a valid token", "GET", "", "", "invalid-logout-request"},
		{"a valid token as JSON", "POST", "application/json",
			`{"logout_token":"` + valid + `"}`, "invalid-logout-request"},
		{"a valid token in a body over 16 KB", "POST", formType,
			form(valid) + "&pad=" + strings.Repeat("a", 16<<10), "invalid-logout-request"},
		{"two logout tokens", "POST", formType,
			form(valid) + "&" + form(valid), "invalid-logout-request"},
	}
	for _, c := range cases {
		t.Run(c.name+" is 400 and ends nothing", func(t *testing.T) {
			path := ""
			if c.method == "GET" {
				path = "?" + form(valid)
			}
			r := e.backchannel(t, c.method, path, c.contentType, c.body)
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `"reason":"`+c.reason+`"`) || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("got %d (Cache-Control %q) %s, want 400 %s", r.Status, r.Header.Get("Cache-Control"), r.Body, c.reason)
			}
			if s := e.status(t, "other.test", cookie); s != http.StatusOK {
				t.Fatalf("the session after the refused logout: %d, want 200", s)
			}
		})
	}

	t.Run("without a client certificate, only the back-channel endpoint answers on the mTLS site", func(t *testing.T) {
		r := e.caddy.Get(t, "localhost", "/.iap/sign_out", http.Header{"Accept": {"application/json"}})
		if r.Status != 495 {
			t.Fatalf("/.iap/sign_out without a client certificate: %d %s, want 495", r.Status, r.Body)
		}
	})

	t.Run("Hydra's valid token is 200 and ends the session", func(t *testing.T) {
		r := e.backchannel(t, "POST", "", formType, form(valid))
		if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d (Cache-Control %q) %s, want 200", r.Status, r.Header.Get("Cache-Control"), r.Body)
		}
		if s := e.status(t, "other.test", cookie); s != http.StatusUnauthorized {
			t.Fatalf("the session after the logout: %d, want 401", s)
		}
	})

	t.Run("the same token again is 400 and ends nothing", func(t *testing.T) {
		fresh := e.signIn(t, ua, "other.test") // signed in after the logout
		r := e.backchannel(t, "POST", "", formType, form(valid))
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `"reason":"invalid-logout-token"`) {
			t.Errorf("the replay: %d %s, want 400 invalid-logout-token", r.Status, r.Body)
		}
		if s := e.status(t, "other.test", fresh); s != http.StatusOK {
			t.Fatalf("the new session after the replay: %d, want 200", s)
		}
	})
}

// getNoFollow fetches a URL with client, without following redirects.
func getNoFollow(t *testing.T, client *http.Client, rawURL string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
