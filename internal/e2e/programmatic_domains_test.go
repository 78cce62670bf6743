package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// Pomerium's programmatic_redirect_domain_whitelist, from a config.yaml,
// through real Caddy and Dex: with [cli.pomerium.test], the login API
// gives a sign-in URL for an https redirect URI on that host and refuses a
// loopback one (not in the list), plain http, a look-alike host and user
// info; the browser signs in at Dex and lands on cli.pomerium.test with the
// token, which then opens the route.
func TestPomeriumProgrammaticRedirectDomainWhitelist(t *testing.T) {
	rec := newRecorder(t)
	httpsPort := testenv.FreePort(t)
	app := fmt.Sprintf("app.pomerium.test:%d", httpsPort)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice},
		RedirectURIs: []string{fmt.Sprintf("https://%s/.pomerium/callback", app), fmt.Sprintf("https://%s/oauth2/callback", app)}})
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
idp_provider: oidc
idp_provider_url: %s
idp_client_id: %s
idp_client_secret: %s
cookie_secret: %s
programmatic_redirect_domain_whitelist: [cli.pomerium.test]
routes:
  - from: https://app.pomerium.test
    to: %s
    allow_any_authenticated_user: true
  - from: https://cli.pomerium.test
    to: %[7]s
    allow_public_unauthenticated_access: true
`, httpsPort, testenv.FreePort(t), dex.Issuer, dex.ClientID, dex.ClientSecret, randomSecret(t), rec.URL)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	caddy.WaitCertificates(t, "app.pomerium.test", "cli.pomerium.test")
	cli := caddy.Client(t)
	login := func(redirect string) testenv.Response {
		t.Helper()
		r, err := caddy.Do(t, cli, app, "/.pomerium/api/v1/login?pomerium_redirect_uri="+url.QueryEscape(redirect), nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	landing := fmt.Sprintf("https://cli.pomerium.test:%d/cb?state=cli", httpsPort)
	for _, refused := range []string{
		"http://127.0.0.1:8000/cb",
		fmt.Sprintf("http://cli.pomerium.test:%d/cb", httpsPort),
		"https://evil-cli.pomerium.test/cb",
		"https://cli.pomerium.test.evil.example/cb",
		"https://cli.pomerium.test@evil.example/cb",
		"https://evil.example\\@cli.pomerium.test/cb",
		"javascript://cli.pomerium.test/%0aalert(1)",
	} {
		if r := login(refused); r.Status != 400 || !strings.Contains(r.Body, "programmatic_redirect_domain_whitelist") {
			t.Errorf("%s: %d %s, want 400 naming the list", refused, r.Status, oneLine(r.Body))
		}
	}
	r := login(landing)
	if r.Status != 200 {
		t.Fatalf("the allowed host: %d %s", r.Status, r.Body)
	}
	signInURL := strings.TrimSpace(r.Body)

	browser := caddy.NewUserAgent(t)
	resp, body := browser.SignIn(t, signInURL, alice.Email, alice.Password)
	if resp.StatusCode != 200 || resp.Request.URL.Host != fmt.Sprintf("cli.pomerium.test:%d", httpsPort) ||
		resp.Request.URL.Query().Get("state") != "cli" {
		t.Fatalf("landed at %s with %d:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	token := resp.Request.URL.Query().Get("pomerium_jwt")
	if token == "" {
		t.Fatalf("no token at %s", resp.Request.URL)
	}

	id := testID()
	got := newRawClient(t, caddy).do(t, 1, "GET", "app.pomerium.test", "/", http.Header{"Authorization": {"Pomerium " + token}, "X-Test-Id": {id}}, "")
	if got.Status != 200 {
		t.Fatalf("the token on the route: %d %s", got.Status, oneLine(got.Body))
	}
	if _, ok := rec.got(id); !ok {
		t.Error("the upstream did not get the request")
	}
}
