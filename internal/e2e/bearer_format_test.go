package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// bearerEnv is Dex (with its metrics, to count userinfo calls), a second
// Dex whose tokens live two seconds (a named IdP, "short"), and a Caddy
// whose routes read bearer tokens in each format, in front of a
// header-echoing upstream.
type bearerEnv struct {
	dex, short *testenv.Dex
	caddy      *testenv.Caddy
}

func startBearer(t *testing.T) *bearerEnv {
	t.Helper()
	e := &bearerEnv{}
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	e.dex = testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob}, Telemetry: true,
		RedirectURIs: redirectURIs(httpsPort, "pass.test", "passpub.test")})
	e.short = testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}, IDTokenTTL: 2 * time.Second})
	up := echoUpstream(t)
	globals := iapGlobals(e.dex, randomSecret(t), fmt.Sprintf(`		idp short {
			provider_url %s
			client_id caddy
			client_secret caddy-secret
		}`, e.short.Issuer))
	route := func(host string, lines ...string) string {
		return routeSite(host, up, "\t\t"+strings.Join(lines, "\n\t\t"))
	}
	e.caddy = testenv.StartCaddyOn(t, httpPort, httpsPort, globals,
		route("id.test", "allow_any_authenticated_user")+
			route("access.test", "bearer_token_format idp_access_token", "idp_access_token_allowed_audiences caddy", "allow_any_authenticated_user")+
			route("access-any.test", "bearer_token_format idp_access_token", "allow_any_authenticated_user")+
			route("access-pass.test", "bearer_token_format idp_access_token", "idp_access_token_allowed_audiences caddy", "pass_bearer_token", "allow_any_authenticated_user")+
			route("admins.test", "bearer_token_format idp_access_token", "idp_access_token_allowed_audiences caddy",
				"policy {\n\t\t\tallow {\n\t\t\t\tand {\n\t\t\t\t\tgroups {\n\t\t\t\t\t\thas admins\n\t\t\t\t\t}\n\t\t\t\t\temail {\n\t\t\t\t\t\tis "+alice.Email+"\n\t\t\t\t\t}\n\t\t\t\t}\n\t\t\t}\n\t\t}")+
			route("short.test", "idp short", "bearer_token_format idp_access_token", "allow_any_authenticated_user")+
			route("pass.test", "bearer_token_format passthrough", "allow_any_authenticated_user")+
			route("passpub.test", "bearer_token_format passthrough", "allow_public_unauthenticated_access"))
	e.caddy.WaitCertificates(t, "id.test", "access.test", "access-any.test", "access-pass.test", "admins.test", "short.test", "pass.test", "passpub.test")
	return e
}

// get requests host as an API client with the Authorization header auth
// ("" for none).
func (e *bearerEnv) get(t *testing.T, host, auth string) testenv.Response {
	t.Helper()
	h := http.Header{"Accept": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return e.caddy.Get(t, host, "/", h)
}

// userinfoCalls is how many requests Dex's userinfo endpoint has served.
func userinfoCalls(t *testing.T, dex *testenv.Dex) int {
	t.Helper()
	total := 0
	for _, l := range strings.Split(dex.Metrics(t), "\n") {
		if !strings.HasPrefix(l, "http_requests_total{") || !regexp.MustCompile(`handler="[^"]*/userinfo"`).MatchString(l) {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q", l)
		}
		total += int(v)
	}
	return total
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40s", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBearerTokenFormats runs Pomerium's bearer_token_format against a real
// Dex: access tokens verified by its userinfo endpoint (with audiences,
// policy, expiry, the IdP down), ID tokens, and passthrough, where the
// token is the upstream's and not a credential.
func TestBearerTokenFormats(t *testing.T) {
	e := startBearer(t)
	idToken, accessToken := dexTokens(t, e.dex, alice)
	otherTok := e.dex.PasswordGrant(t, "other", "other-secret", alice.Email, alice.Password, "openid email profile groups")
	_, bobAccess := dexTokens(t, e.dex, bob)
	tamper := func(tok string) string { return tok[:len(tok)-6] + "AAAAAA" }

	t.Run("idp_access_token: the access token is verified by Dex's userinfo and the upstream gets alice", func(t *testing.T) {
		r := e.get(t, "access.test", "Bearer "+accessToken)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		h := echoed(t, r.Body)
		a := verifyAssertion(t, e.caddy.NewUserAgent(t), "access.test", h.Get("X-Iap-Jwt-Assertion"))
		if a.Email != alice.Email || len(a.Groups) != 2 || a.Subject == "" {
			t.Errorf("assertion %+v", a)
		}
		if h.Get("Authorization") != "" {
			t.Errorf("the upstream got the access token without pass_bearer_token: %q", h.Get("Authorization"))
		}
	})

	t.Run("idp_access_token: one userinfo call serves many requests with the same token", func(t *testing.T) {
		_, fresh := dexTokens(t, e.dex, alice)
		before := userinfoCalls(t, e.dex)
		for i := range 5 {
			if r := e.get(t, "access.test", "Bearer "+fresh); r.Status != 200 {
				t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
			}
		}
		if n := userinfoCalls(t, e.dex) - before; n != 1 {
			t.Errorf("5 requests made %d userinfo calls, want 1", n)
		}
	})

	t.Run("idp_access_token: refused tokens are 401 invalid-bearer-token, and are not remembered as accepted", func(t *testing.T) {
		for _, c := range []struct{ name, token string }{
			{"a tampered access token", tamper(accessToken)},
			{"not a token at all", "hello"},
			{"the other IdP's access token", func() string { _, a := dexTokens(t, e.short, alice); return a }()},
		} {
			for i := range 2 {
				r := e.get(t, "access.test", "Bearer "+c.token)
				if r.Status != 401 || !strings.Contains(r.Body, "invalid-bearer-token") || !strings.Contains(r.Body, "access token") {
					t.Errorf("%s (try %d): %d %s", c.name, i+1, r.Status, r.Body)
				}
			}
		}
	})

	t.Run("idp_access_token: an oversize token is refused without asking the IdP", func(t *testing.T) {
		before := userinfoCalls(t, e.dex)
		r := e.get(t, "access.test", "Bearer "+strings.Repeat("A", 9000))
		if r.Status != 401 || !strings.Contains(r.Body, "invalid-bearer-token") {
			t.Errorf("%d %s", r.Status, r.Body)
		}
		if n := userinfoCalls(t, e.dex) - before; n != 0 {
			t.Errorf("an oversize token made %d userinfo calls", n)
		}
		if !e.caddy.WaitLog("over the 8192 accepted") {
			t.Errorf("the refusal's reason is not logged")
		}
	})

	t.Run("idp_access_token_allowed_audiences: another client's access token is refused; without the list it is accepted", func(t *testing.T) {
		if aud := jwtClaims(t, otherTok.AccessToken)["aud"]; aud != "other" {
			t.Fatalf("the other client's access token has aud %v", aud)
		}
		if r := e.get(t, "access.test", "Bearer "+otherTok.AccessToken); r.Status != 401 || !strings.Contains(r.Body, "invalid-bearer-token") {
			t.Errorf("with audiences [caddy]: %d %s", r.Status, r.Body)
		}
		if !e.caddy.WaitLog(`is not one of idp_access_token_allowed_audiences [\"caddy\"]`) {
			t.Errorf("the audience refusal is not logged:\n%s", e.caddy.Log())
		}
		if r := e.get(t, "access-any.test", "Bearer "+otherTok.AccessToken); r.Status != 200 {
			t.Errorf("without audiences: %d %s", r.Status, r.Body)
		}
		if !e.caddy.WaitLog("without idp_access_token_allowed_audiences accepts an access token the identity provider issued to any client") {
			t.Errorf("no warning at start about the route without audiences")
		}
	})

	t.Run("idp_access_token: the policy decides on userinfo's email and groups", func(t *testing.T) {
		if r := e.get(t, "admins.test", "Bearer "+accessToken); r.Status != 200 {
			t.Errorf("alice (admins): %d %s", r.Status, r.Body)
		}
		if r := e.get(t, "admins.test", "Bearer "+bobAccess); r.Status != 403 {
			t.Errorf("bob (no groups): %d %s", r.Status, r.Body)
		}
	})

	t.Run("pass_bearer_token keeps an accepted access token for the upstream", func(t *testing.T) {
		r := e.get(t, "access-pass.test", "Bearer "+accessToken)
		if r.Status != 200 || echoed(t, r.Body).Get("Authorization") != "Bearer "+accessToken {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("idp_identity_token (the Caddyfile's default): the ID token is verified here, a tampered one or another client's is refused", func(t *testing.T) {
		if r := e.get(t, "id.test", "Bearer "+idToken); r.Status != 200 {
			t.Errorf("alice's ID token: %d %s", r.Status, r.Body)
		}
		if r := e.get(t, "id.test", "Bearer "+tamper(idToken)); r.Status != 401 || !strings.Contains(r.Body, "not a valid ID token") {
			t.Errorf("tampered: %d %s", r.Status, r.Body)
		}
		if r := e.get(t, "id.test", "Bearer "+otherTok.IDToken); r.Status != 401 {
			t.Errorf("the other client's ID token: %d %s", r.Status, r.Body)
		}
	})

	t.Run("passthrough: a bearer token is no credential; the user is anonymous and the header reaches the upstream", func(t *testing.T) {
		r := e.get(t, "pass.test", "Bearer "+idToken)
		if r.Status != 401 || !strings.Contains(r.Body, "user-unauthenticated") || strings.Contains(r.Body, "Authorization: Bearer") {
			t.Errorf("a route for signed-in users: %d %s", r.Status, r.Body)
		}
		r = e.get(t, "passpub.test", "Bearer "+idToken)
		if r.Status != 200 {
			t.Fatalf("a public route: %d %s", r.Status, r.Body)
		}
		h := echoed(t, r.Body)
		if h.Get("Authorization") != "Bearer "+idToken || h.Get("X-Iap-Jwt-Assertion") != "" || h.Get("X-Email") != "" {
			t.Errorf("the upstream got Authorization %.30q, an assertion %.30q", h.Get("Authorization"), h.Get("X-Iap-Jwt-Assertion"))
		}
	})

	t.Run("passthrough: the session cookie says who the user is, and the Authorization header still reaches the upstream", func(t *testing.T) {
		ua := e.caddy.NewUserAgent(t)
		if resp, body := ua.SignIn(t, ua.URL("pass.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
			t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
		}
		resp, body := ua.Get(t, ua.URL("pass.test", "/"), http.Header{"Authorization": {"Bearer app-specific-token"}, "Accept": {"application/json"}})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		h := echoed(t, body)
		if h.Get("Authorization") != "Bearer app-specific-token" {
			t.Errorf("the upstream got Authorization %q", h.Get("Authorization"))
		}
		if a := verifyAssertion(t, ua, "pass.test", h.Get("X-Iap-Jwt-Assertion")); a.Email != alice.Email {
			t.Errorf("assertion %+v", a)
		}
	})

	t.Run("idp_access_token: an expired access token is refused, however recently it was accepted", func(t *testing.T) {
		_, short := dexTokens(t, e.short, alice)
		if r := e.get(t, "short.test", "Bearer "+short); r.Status != 200 {
			t.Fatalf("while valid: %d %s", r.Status, r.Body)
		}
		exp, ok := jwtClaims(t, short)["exp"].(float64)
		if !ok {
			t.Fatal("no exp")
		}
		for time.Now().Unix() <= int64(exp) {
			time.Sleep(200 * time.Millisecond) // until it has expired: not a timing assertion
		}
		if r := e.get(t, "short.test", "Bearer "+short); r.Status != 401 || !strings.Contains(r.Body, "invalid-bearer-token") {
			t.Errorf("expired: %d %s", r.Status, r.Body)
		}
		if r := e.get(t, "short.test", "Bearer "+accessToken); r.Status != 401 {
			t.Errorf("the default IdP's token on the short IdP's route: %d %s", r.Status, r.Body)
		}
	})

	t.Run("idp_access_token: with the IdP down, a token not seen before gets 503 with Retry-After, not 401", func(t *testing.T) {
		_, fresh := dexTokens(t, e.dex, alice)
		e.dex.Stop()
		r := e.get(t, "access.test", "Bearer "+fresh)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "identity-provider-unavailable") {
			t.Errorf("%d Retry-After %q: %s", r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	})
}

// TestBearerTokenFormatsOpaqueAccessTokens runs the formats against Ory
// Hydra, whose access tokens are opaque (not JWTs) and whose userinfo
// refuses an ID token: unlike Dex's, each kind of token is accepted only
// where its format says.
func TestBearerTokenFormatsOpaqueAccessTokens(t *testing.T) {
	hydra := testenv.StartHydra(t, testenv.HydraOptions{})
	const redirect = "http://127.0.0.1:9/callback" // never called: the test takes the code from the redirect
	hydra.CreateClient(t, testenv.HydraClient{ID: "caddy", Secret: "caddy-secret", RedirectURIs: []string{redirect}})
	up := echoUpstream(t)
	globals := fmt.Sprintf("\tiap {\n\t\tidp {\n\t\t\tprovider_url %s\n\t\t\tclient_id caddy\n\t\t\tclient_secret caddy-secret\n\t\t}\n\t\tcookie_secret %s\n\t}",
		hydra.Issuer, randomSecret(t))
	caddy := testenv.StartCaddy(t, globals,
		routeSite("id.test", up, "\t\tallow_any_authenticated_user")+
			routeSite("access.test", up, "\t\tbearer_token_format idp_access_token\n\t\tallow_any_authenticated_user")+
			routeSite("aud.test", up, "\t\tbearer_token_format idp_access_token\n\t\tidp_access_token_allowed_audiences caddy\n\t\tallow_any_authenticated_user"))
	caddy.WaitCertificates(t, "id.test", "access.test", "aud.test")
	tok := hydra.CodeFlowTokens(t, "caddy", "caddy-secret", redirect, "openid email profile")
	if strings.Count(tok.AccessToken, ".") == 2 {
		t.Fatalf("hydra's access token is a JWT, not opaque: %.40s", tok.AccessToken)
	}
	get := func(host, token string) testenv.Response {
		t.Helper()
		return caddy.Get(t, host, "/", http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer " + token}})
	}

	t.Run("the opaque access token is accepted under idp_access_token, with userinfo's email", func(t *testing.T) {
		r := get("access.test", tok.AccessToken)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if a := verifyAssertion(t, caddy.NewUserAgent(t), "access.test", echoed(t, r.Body).Get("X-Iap-Jwt-Assertion")); a.Email != hydra.User.Email || a.Subject != hydra.User.Subject {
			t.Errorf("assertion %+v", a)
		}
	})
	t.Run("the ID token is refused under idp_access_token: Hydra's userinfo does not take it", func(t *testing.T) {
		if r := get("access.test", tok.IDToken); r.Status != 401 || !strings.Contains(r.Body, "invalid-bearer-token") {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("the ID token is accepted under idp_identity_token, and the opaque access token is refused", func(t *testing.T) {
		if r := get("id.test", tok.IDToken); r.Status != 200 {
			t.Errorf("ID token: %d %s", r.Status, r.Body)
		}
		if r := get("id.test", tok.AccessToken); r.Status != 401 || !strings.Contains(r.Body, "not a valid ID token") {
			t.Errorf("access token: %d %s", r.Status, r.Body)
		}
	})
	t.Run("with audiences, Hydra's aud (a list) matches none, as in Pomerium", func(t *testing.T) {
		if r := get("aud.test", tok.AccessToken); r.Status != 401 || !strings.Contains(r.Body, "invalid-bearer-token") {
			t.Errorf("%d %s", r.Status, r.Body)
		}
		if !caddy.WaitLog(`is not one of idp_access_token_allowed_audiences [\"caddy\"]`) {
			t.Errorf("the refusal does not say it is the audience:\n%s", caddy.Log())
		}
	})
}

// TestPomeriumConfigBearerTokenFormat runs a Pomerium config.yaml with
// bearer_token_format set globally and overridden per route, against Dex:
// each route reads the token as Pomerium would, and the upstream gets the
// Authorization header, as Pomerium passes it on.
func TestPomeriumConfigBearerTokenFormat(t *testing.T) {
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}})
	up := echoUpstream(t)
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
idp_provider: oidc
idp_provider_url: %s
idp_client_id: caddy
idp_client_secret: caddy-secret
cookie_secret: %s
pass_identity_headers: true
bearer_token_format: idp_access_token
idp_access_token_allowed_audiences: [caddy]
routes:
  - from: https://access.pomerium.test
    to: %s
    allow_any_authenticated_user: true
  - from: https://other-aud.pomerium.test
    to: %s
    idp_access_token_allowed_audiences: [cli]
    allow_any_authenticated_user: true
  - from: https://id.pomerium.test
    to: %s
    bearer_token_format: idp_identity_token
    allow_any_authenticated_user: true
  - from: https://pass.pomerium.test
    to: %s
    bearer_token_format: default
    allow_public_unauthenticated_access: true
`, httpsPort, testenv.FreePort(t), dex.Issuer, randomSecret(t), up, up, up, up)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	caddy.WaitCertificates(t, "access.pomerium.test", "other-aud.pomerium.test", "id.pomerium.test", "pass.pomerium.test")
	idToken, accessToken := dexTokens(t, dex, alice)
	get := func(host, auth string) testenv.Response {
		t.Helper()
		return caddy.Get(t, host, "/", http.Header{"Accept": {"application/json"}, "Authorization": {auth}})
	}
	for _, c := range []struct {
		name, host, auth string
		status           int
		signedIn         bool
	}{
		{"the global idp_access_token: Dex's userinfo vouches for the access token", "access.pomerium.test", "Bearer " + accessToken, 200, true},
		{"the global idp_access_token: a tampered token is refused", "access.pomerium.test", "Bearer " + accessToken[:len(accessToken)-4] + "AAAA", 401, false},
		{"the route's audiences replace the global ones", "other-aud.pomerium.test", "Bearer " + accessToken, 401, false},
		{"the route's idp_identity_token", "id.pomerium.test", "Bearer " + idToken, 200, true},
		{"the route's default passes the token on unread", "pass.pomerium.test", "Bearer not-even-a-jwt", 200, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := get(c.host, c.auth)
			if r.Status != c.status {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if c.status != 200 {
				return
			}
			h := echoed(t, r.Body)
			if h.Get("Authorization") != c.auth {
				t.Errorf("the upstream got Authorization %.40q, want the client's, as Pomerium passes it", h.Get("Authorization"))
			}
			if got := h.Get("X-Pomerium-Jwt-Assertion") != ""; got != c.signedIn {
				t.Errorf("assertion at the upstream: %v, want %v", got, c.signedIn)
			}
		})
	}
}
