package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// workloadEnv is a real workload issuer (Ory Hydra issuing JWT access
// tokens through the client_credentials grant), Dex as the sign-in IdP
// (whose ID tokens are a second issuer), and a Caddy whose routes read
// bearer tokens as workload JWTs.
type workloadEnv struct {
	hydra     *testenv.Hydra
	dex       *testenv.Dex
	caddy     *testenv.Caddy
	hydraIss  string // the iss of Hydra's access tokens
	goodToken string // client ci, audience api
	globals   string
	up        string
}

func startWorkloads(t *testing.T) *workloadEnv {
	t.Helper()
	e := &workloadEnv{}
	e.hydra = testenv.StartHydra(t, testenv.HydraOptions{JWTAccessTokens: true})
	e.hydra.CreateWorkloadClient(t, "ci", "ci-secret", "api", "other")
	e.hydra.CreateWorkloadClient(t, "deploy", "deploy-secret", "api")
	e.goodToken = e.hydra.ClientCredentials(t, "ci", "ci-secret", "api")
	e.hydraIss, _ = jwtClaims(t, e.goodToken)["iss"].(string)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	e.dex = testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}, RedirectURIs: redirectURIs(httpsPort, "api.test", "any.test")})
	e.up = echoUpstream(t)
	e.globals = iapGlobals(e.dex, randomSecret(t), fmt.Sprintf(`		identity_provider hydra {
			issuer %s
			audiences api
		}
		identity_provider dex {
			issuer %s
			audiences %s
		}`, e.hydraIss, e.dex.Issuer, e.dex.ClientID))
	e.caddy = testenv.StartCaddyOn(t, httpPort, httpsPort, e.globals, e.sites("hydra"))
	e.caddy.WaitCertificates(t, "api.test", "any.test", "ci.test", "user.test", "site.test")
	return e
}

// sites are the test's sites; api.test accepts the identity providers
// named.
func (e *workloadEnv) sites(apiProviders string) string {
	route := func(host string, lines ...string) string {
		return routeSite(host, e.up, "\t\t"+strings.Join(lines, "\n\t\t"))
	}
	return route("api.test", "bearer_token_format jwt", "identity_providers "+apiProviders, "allow_any_authenticated_user") +
		route("any.test", "bearer_token_format jwt", "allow_any_authenticated_user") +
		route("ci.test", "bearer_token_format jwt", "identity_providers hydra",
			"policy {\n\t\t\tallow {\n\t\t\t\tand {\n\t\t\t\t\tclaim/client_id ci\n\t\t\t\t\tclaim/aud api\n\t\t\t\t}\n\t\t\t}\n\t\t}") +
		route("user.test", "bearer_token_format jwt", "allowed_users hydra/deploy") +
		// iap_authenticate alone, in front of respond: the placeholders
		// carry the workload.
		"site.test {\n\ttls internal\n\tiap_authenticate {\n\t\tbearer_token_format jwt\n\t\tidentity_providers hydra\n\t}\n\trespond \"user={http.auth.user.id} client={http.auth.user.claim.client_id}\"\n}\n"
}

func (e *workloadEnv) get(t *testing.T, host, auth string, extra ...string) testenv.Response {
	t.Helper()
	h := http.Header{"Accept": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return e.caddy.Get(t, host, "/", h)
}

// TestWorkloadJWTs runs Pomerium's bearer_token_format jwt with
// identity_providers through real Caddy, against tokens from real issuers
// and tokens an attacker makes from them.
func TestWorkloadJWTs(t *testing.T) {
	e := startWorkloads(t)
	dexID, _ := dexTokens(t, e.dex, alice)
	parts := strings.Split(e.goodToken, ".")
	header := map[string]any{}
	b, _ := base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(b, &header)
	kid, _ := header["kid"].(string)

	// Tokens made from Hydra's real one.
	hydraKey := e.hydra.AccessTokenKey(t)
	sign := func(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	claims := func(change func(map[string]any)) map[string]any {
		c := jwtClaims(t, e.goodToken)
		change(c)
		return c
	}
	expired := sign(jose.RS256, hydraKey.Key, hydraKey.KeyID, claims(func(c map[string]any) {
		c["iat"], c["nbf"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	}))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustMarshal(t, claims(func(c map[string]any) { c["client_id"], c["sub"] = "deploy", "deploy" }))) + "." + parts[2]
	pub, _ := x509.MarshalPKIXPublicKey(hydraKey.Public().Key)
	hs256 := sign(jose.HS256, pub, kid, jwtClaims(t, e.goodToken))
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`","typ":"JWT"}`)) + "." + parts[1] + "."
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	unknownKid := sign(jose.RS256, stranger, "rotated-in-by-nobody", jwtClaims(t, e.goodToken))

	t.Run("a workload's token from hydra reaches the upstream as hydra/ci", func(t *testing.T) {
		r := e.get(t, "api.test", "Bearer "+e.goodToken)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		h := echoed(t, r.Body)
		a := verifyAssertion(t, e.caddy.NewUserAgent(t), "api.test", h.Get("X-Iap-Jwt-Assertion"))
		if a.Subject != "hydra/ci" {
			t.Errorf("assertion sub %q, want hydra/ci (Pomerium's <provider>/<sub>)", a.Subject)
		}
		if h.Get("Authorization") != "" {
			t.Errorf("the upstream got the token without pass_bearer_token")
		}
		if c := r.Header.Values("Set-Cookie"); len(c) > 0 {
			t.Errorf("a workload token made cookies: %q", c)
		}
	})

	t.Run("a browser's request with a workload token gets no session either", func(t *testing.T) {
		r := e.get(t, "api.test", "Bearer "+e.goodToken, "Accept", "text/html")
		if r.Status != 200 || len(r.Header.Values("Set-Cookie")) > 0 {
			t.Errorf("%d, Set-Cookie %q", r.Status, r.Header.Values("Set-Cookie"))
		}
	})

	refused := []struct {
		name, host, token string
		status            int
		reason            string
	}{
		{"a token for another audience", "api.test", e.hydra.ClientCredentials(t, "ci", "ci-secret", "other"), 401, "invalid-bearer-token"},
		{"a token with no audience", "api.test", e.hydra.ClientCredentials(t, "ci", "ci-secret"), 401, "invalid-bearer-token"},
		{"the interactive IdP's ID token where only hydra's workloads are allowed", "api.test", dexID, 401, "invalid-bearer-token"},
		{"an expired token signed with hydra's own key", "api.test", expired, 401, "invalid-bearer-token"},
		{"claims changed under hydra's signature", "api.test", tampered, 401, "invalid-bearer-token"},
		{"HS256 signed with hydra's public key as the secret", "api.test", hs256, 401, "invalid-bearer-token"},
		{"alg none", "api.test", none, 401, "invalid-bearer-token"},
		{"a key ID hydra never published", "api.test", unknownKid, 401, "invalid-bearer-token"},
		{"a token over 16 KiB", "api.test", parts[0] + "." + strings.Repeat("A", 16<<10) + "." + parts[2], 401, "invalid-bearer-token"},
		{"no token at all", "api.test", "", 401, "user-unauthenticated"},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			auth := ""
			if c.token != "" {
				auth = "Bearer " + c.token
			}
			r := e.get(t, c.host, auth)
			if r.Status != c.status || !strings.Contains(r.Body, `"reason":"`+c.reason+`"`) {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, c.status, c.reason)
			}
			if strings.Contains(r.Body, "X-Iap-Jwt-Assertion") {
				t.Errorf("the upstream answered")
			}
		})
	}

	t.Run("50 tokens with made-up key IDs through Caddy make at most one key set fetch at hydra", func(t *testing.T) {
		// Hydra logs each request as it starts, so a fetch Caddy made is in
		// its log before Caddy answers.
		fetches := func() int { return strings.Count(e.hydra.Log(), "path:/.well-known/jwks.json") }
		before := fetches()
		for i := range 50 {
			forged := sign(jose.RS256, stranger, fmt.Sprintf("made-up-%d", i), jwtClaims(t, e.goodToken))
			if r := e.get(t, "api.test", "Bearer "+forged); r.Status != 401 {
				t.Fatalf("token %d: %d %s", i, r.Status, r.Body)
			}
		}
		n := fetches() - before
		// Each fetch is logged twice (started, completed).
		if n > 2 {
			t.Errorf("50 made-up key IDs made %d key set requests at hydra, want at most 1", n/2)
		}
		t.Logf("key set fetches at hydra for 50 made-up key IDs: %d", n/2)
	})

	t.Run("the refusals are logged with why", func(t *testing.T) {
		for _, want := range []string{
			`is none of its audiences [\"api\"]`,
			`identity provider \"dex\" (issuer \"` + e.dex.Issuer + `\") is not allowed on this route`,
			"token is expired",
			"unexpected signature algorithm",
			"over the 16384 accepted",
		} {
			if !strings.Contains(e.caddy.Log(), want) {
				t.Errorf("the log does not say %q", want)
			}
		}
	})

	t.Run("a route that lists no identity_providers takes every one: dex's ID token for its client", func(t *testing.T) {
		r := e.get(t, "any.test", "Bearer "+dexID)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		a := verifyAssertion(t, e.caddy.NewUserAgent(t), "any.test", echoed(t, r.Body).Get("X-Iap-Jwt-Assertion"))
		if !strings.HasPrefix(a.Subject, "dex/") || a.Email != alice.Email {
			t.Errorf("assertion %+v: want dex/<sub> and alice's email", a)
		}
		if r := e.get(t, "any.test", "Bearer "+e.goodToken); r.Status != 200 {
			t.Errorf("hydra's token: %d %s", r.Status, r.Body)
		}
	})

	t.Run("PPL claim rules decide on the workload's claims", func(t *testing.T) {
		if r := e.get(t, "ci.test", "Bearer "+e.goodToken); r.Status != 200 {
			t.Errorf("client ci: %d %s", r.Status, r.Body)
		}
		deploy := e.hydra.ClientCredentials(t, "deploy", "deploy-secret", "api")
		if r := e.get(t, "ci.test", "Bearer "+deploy); r.Status != 403 || !strings.Contains(r.Body, `"reason":"not-allowed"`) {
			t.Errorf("client deploy where claim/client_id is ci: %d %s", r.Status, r.Body)
		}
		if r := e.get(t, "user.test", "Bearer "+deploy); r.Status != 200 {
			t.Errorf("allowed_users hydra/deploy, client deploy: %d %s", r.Status, r.Body)
		}
		if r := e.get(t, "user.test", "Bearer "+e.goodToken); r.Status != 403 {
			t.Errorf("allowed_users hydra/deploy, client ci: %d %s", r.Status, r.Body)
		}
	})

	t.Run("a session cookie beside a workload token is refused with 400, as in Pomerium", func(t *testing.T) {
		r := e.get(t, "api.test", "Bearer "+e.goodToken, "Cookie", "__Host-_iap=forged")
		if r.Status != 400 || !strings.Contains(r.Body, `"reason":"cookie-and-bearer"`) {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("iap_authenticate alone: the placeholders carry the workload", func(t *testing.T) {
		r := e.get(t, "site.test", "Bearer "+e.goodToken)
		if r.Status != 200 || r.Body != "user=hydra/ci client=ci" {
			t.Errorf("%d %q", r.Status, r.Body)
		}
		if r := e.get(t, "site.test", "Bearer "+dexID); r.Status != 401 {
			t.Errorf("dex's token: %d %s", r.Status, r.Body)
		}
	})

	t.Run("forged identity headers beside a good token do not reach the upstream", func(t *testing.T) {
		r := e.get(t, "api.test", "Bearer "+e.goodToken, "X-Iap-Jwt-Assertion", "forged", "X-Pomerium-Jwt-Assertion", "forged")
		h := echoed(t, r.Body)
		if h.Get("X-Pomerium-Jwt-Assertion") != "" || h.Get("X-Iap-Jwt-Assertion") == "forged" {
			t.Errorf("forged headers reached the upstream: %v", h)
		}
	})

	// Last, as it changes the config: a reload that takes hydra off the
	// route refuses its tokens at once (nothing is kept of them).
	t.Run("a reload that takes hydra off api.test refuses its tokens at once", func(t *testing.T) {
		e.caddy.Reload(t, e.globals, e.sites("dex"))
		if r := e.get(t, "api.test", "Bearer "+e.goodToken); r.Status != 401 {
			t.Errorf("hydra's token after the reload: %d %s", r.Status, r.Body)
		}
		if r := e.get(t, "api.test", "Bearer "+dexID); r.Status != 200 {
			t.Errorf("dex's token after the reload: %d %s", r.Status, r.Body)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPomeriumConfigIdentityProviders runs a Pomerium config.yaml with
// identity_providers (Hydra's workload tokens, Dex's ID tokens) and
// bearer_token_format jwt set globally and per route, as Pomerium's own
// tests do (authorize/cookie_bearer_test.go): a route's identity_providers
// narrows whose tokens it takes, and PPL decides on their claims.
func TestPomeriumConfigIdentityProviders(t *testing.T) {
	hydra := testenv.StartHydra(t, testenv.HydraOptions{JWTAccessTokens: true})
	hydra.CreateWorkloadClient(t, "ci", "ci-secret", "api")
	hydra.CreateWorkloadClient(t, "deploy", "deploy-secret", "api")
	ci := hydra.ClientCredentials(t, "ci", "ci-secret", "api")
	deploy := hydra.ClientCredentials(t, "deploy", "deploy-secret", "api")
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}})
	dexID, _ := dexTokens(t, dex, alice)
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
bearer_token_format: jwt
identity_providers:
  hydra:
    issuer: %s
    audiences: [api]
    supported_algs: [RS256]
  dex:
    issuer: %s
    audiences: [caddy]
routes:
  - from: https://api.pomerium.test
    to: %s
    identity_providers: [hydra]
    policy:
      allow:
        and:
          - claim/client_id: ci
  - from: https://any.pomerium.test
    to: %s
    allow_any_authenticated_user: true
  - from: https://browser.pomerium.test
    to: %s
    bearer_token_format: idp_identity_token
    allow_any_authenticated_user: true
`, httpsPort, testenv.FreePort(t), dex.Issuer, randomSecret(t), jwtClaims(t, ci)["iss"], dex.Issuer, up, up, up)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	caddy.WaitCertificates(t, "api.pomerium.test", "any.pomerium.test", "browser.pomerium.test")
	for _, c := range []struct {
		name, host, token string
		status            int
	}{
		{"hydra's ci on a hydra-only route whose policy wants client_id ci", "api.pomerium.test", ci, 200},
		{"hydra's deploy there: the policy refuses it", "api.pomerium.test", deploy, 403},
		{"dex's ID token on the hydra-only route", "api.pomerium.test", dexID, 401},
		{"dex's ID token where the global jwt takes every provider", "any.pomerium.test", dexID, 200},
		{"hydra's token where the route reads ID tokens of the sign-in IdP", "browser.pomerium.test", ci, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := caddy.Get(t, c.host, "/", http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer " + c.token}})
			if r.Status != c.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, c.status)
			}
			if r.Status != 200 {
				return
			}
			h := echoed(t, r.Body)
			if h.Get("Authorization") != "Bearer "+c.token {
				t.Errorf("the upstream did not get the token, as Pomerium passes it on")
			}
			if h.Get("X-Pomerium-Jwt-Assertion") == "" {
				t.Errorf("no assertion upstream")
			}
		})
	}
}
