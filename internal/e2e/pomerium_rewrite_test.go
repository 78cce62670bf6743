package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// Issue 13 part 3, end to end: a Pomerium config.yaml run by the built
// Caddy, with Dex and a real upstream. A route's regex_rewrite_* and
// host_path_regex_rewrite_* reach the upstream after sign-in, with the
// assertion; and normalize_path: false and merge_slashes: false, which in
// Pomerium would let a path's dot segments reach the upstream, weaken
// nothing here: a public prefix cannot be climbed out of into a route
// that needs a user, and an encoded slash is refused.
func TestPomeriumConfigRewritesAndPathRules(t *testing.T) {
	rec := newRecorder(t)
	httpsPort := testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice},
		RedirectURIs: []string{fmt.Sprintf("https://authenticate.pomerium.test:%d/oauth2/callback", httpsPort)}})
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
authenticate_service_url: https://authenticate.pomerium.test:%d
idp_provider: oidc
idp_provider_url: %s
idp_client_id: caddy
idp_client_secret: caddy-secret
cookie_secret: %s
normalize_path: false
merge_slashes: false
routes:
  - from: https://app.pomerium.test
    prefix: /public/
    to: %s
    allow_public_unauthenticated_access: true
  - from: https://app.pomerium.test
    to: %s
    regex_rewrite_pattern: ^/service/([^/]+)(/.*)$
    regex_rewrite_substitution: \2/instance/\1
    host_path_regex_rewrite_pattern: ^/service/([^/]+)/.*$
    host_path_regex_rewrite_substitution: \1.internal
    pass_identity_headers: true
    allow_any_authenticated_user: true
    description: billing services
`, httpsPort, testenv.FreePort(t), httpsPort, dex.Issuer, randomSecret(t), rec.URL, rec.URL)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)

	t.Run("a signed-in request is rewritten as Envoy would", func(t *testing.T) {
		ua := caddy.NewUserAgent(t)
		id := testID()
		resp, body := ua.SignIn(t, ua.URL("app.pomerium.test", "/service/billing/v1/invoices?x=1"), alice.Email, alice.Password)
		if resp.StatusCode != 200 {
			t.Fatalf("after sign-in: %d\n%s", resp.StatusCode, body)
		}
		// Again, now signed in, with an ID the recorder knows it by.
		resp, body = ua.Get(t, ua.URL("app.pomerium.test", "/service/billing/v1/invoices?x=1"), http.Header{"X-Test-Id": {id}})
		got, ok := rec.got(id)
		if resp.StatusCode != 200 || !ok {
			t.Fatalf("%d, upstream saw it: %v\n%s", resp.StatusCode, ok, body)
		}
		if got.URI != "/v1/invoices/instance/billing?x=1" || got.Host != "billing.internal" {
			t.Errorf("the upstream got %s for Host %s, want /v1/invoices/instance/billing?x=1 for billing.internal", got.URI, got.Host)
		}
		if got.Header.Get("X-Pomerium-Jwt-Assertion") == "" {
			t.Errorf("no assertion upstream: %v", got.Header)
		}
		// The access log (on, as in Pomerium) names the route's
		// description for the request.
		if !caddy.WaitLog(`"iap_route_description":"billing services"`) {
			t.Errorf("the access log has no iap_route_description:\n%s", caddy.Log())
		}
	})

	rc := newRawClient(t, caddy)
	for _, c := range []struct {
		name, path string
		want       int // the status; 200 only from the public route
	}{
		{"a dot segment out of the public prefix needs a user", "/public/../service/billing/x", 401},
		{"merged slashes do not skip the public prefix's check", "//service/billing/x", 401},
		{"an encoded slash is refused", "/public/a%2F..%2F..%2Fservice/billing/x", 400},
		{"the public prefix itself is open", "/public/page", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := testID()
			r := rc.do(t, 1, "GET", "app.pomerium.test", c.path, http.Header{"X-Test-Id": {id}, "Accept": {"application/json"}}, "")
			got, reached := rec.got(id)
			if r.Status != c.want {
				t.Errorf("%s: %d, want %d\n%s", c.path, r.Status, c.want, r.Body)
			}
			if c.want != 200 && reached {
				t.Errorf("%s reached the upstream as %s", c.path, got.URI)
			}
			if c.want == 200 {
				var echo map[string]any
				if err := json.Unmarshal([]byte(r.Body), &echo); err != nil || !strings.HasPrefix(got.URI, "/public/") {
					t.Errorf("%s: the upstream got %q (%v)", c.path, got.URI, err)
				}
			}
		})
	}
}
