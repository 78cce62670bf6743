package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

var carol = testenv.DexUser{Email: "carol@example.net", Name: "Carol", Password: "carolpass"}

// A Pomerium route whose users are listed in sub_policies, through real
// Caddy and Dex: alice (the route's own allowed_users), bob (a
// sub-policy's allowed_users) and members of a sub-policy's group
// (allowed_idp_claims) get in; carol, in none of them, gets 403; without a
// token, 401.
func TestPomeriumSubPoliciesAllowTheirUsers(t *testing.T) {
	rec := newRecorder(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob, carol}})
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
idp_provider: oidc
idp_provider_url: %s
idp_client_id: %s
idp_client_secret: %s
cookie_secret: %s
bearer_token_format: idp_identity_token
routes:
  - from: https://sub.pomerium.test
    to: %s
    allowed_users: [nobody@example.com]
    sub_policies:
      - id: contractors
        name: Contractors
        allowed_users: [%s]
      - id: eng
        allowed_idp_claims:
          groups: [eng]
`, httpsPort, testenv.FreePort(t), dex.Issuer, dex.ClientID, dex.ClientSecret, randomSecret(t), rec.URL, bob.Email)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	caddy.WaitCertificates(t, "sub.pomerium.test")
	rc := newRawClient(t, caddy)
	for _, c := range []struct {
		what   string
		user   *testenv.DexUser
		status int
	}{
		{"bob, a sub-policy's user", &bob, 200},
		{"alice, in a sub-policy's group (eng)", &alice, 200},
		{"carol, in no list", &carol, 403},
		{"no token", nil, 401},
	} {
		h := http.Header{"Accept": {"application/json"}, "X-Test-Id": {testID()}}
		if c.user != nil {
			idToken, _ := dexTokens(t, dex, *c.user)
			h.Set("Authorization", "Bearer "+idToken)
		}
		r := rc.do(t, 1, "GET", "sub.pomerium.test", "/", h, "")
		if r.Status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.what, r.Status, c.status, oneLine(r.Body))
		}
		if _, reached := rec.got(h.Get("X-Test-Id")); reached != (c.status == 200) {
			t.Errorf("%s: reached the upstream: %v", c.what, reached)
		}
	}
}
