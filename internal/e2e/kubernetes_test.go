package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// A route to the Kubernetes API (kubernetes_service_account_token_file):
// through real Caddy and Dex, a signed-in user's request reaches the
// upstream with the service account's token and the user to impersonate,
// and the Impersonate-* headers the client forged never arrive.
func TestKubernetesServiceAccountToken(t *testing.T) {
	up := echoUpstream(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("sa-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice},
		RedirectURIs: []string{fmt.Sprintf("https://k8s.test:%d/.iap/callback", httpsPort)}})
	globals := fmt.Sprintf(`	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
			scopes openid email profile groups
		}
		cookie_secret %s
	}`, dex.Issuer, dex.ClientID, dex.ClientSecret, randomSecret(t))
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, globals,
		site("k8s.test", "to "+up, "kubernetes_service_account_token_file "+token, "allow_any_authenticated_user"))
	ua := caddy.NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("k8s.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
	resp, body := ua.Get(t, ua.URL("k8s.test", "/api/v1/namespaces"), http.Header{
		"Accept": {"application/json"}, "Impersonate-User": {"system:admin"}, "Impersonate-Group": {"system:masters"},
		"Impersonate-Extra-Scopes": {"all"}})
	if resp.StatusCode != 200 {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	h := echoed(t, body)
	if h.Get("Authorization") != "Bearer sa-token-1" || h.Get("Impersonate-User") != alice.Email ||
		!slices.Equal(h.Values("Impersonate-Group"), alice.Groups) || h.Get("Impersonate-Extra-Scopes") != "" {
		t.Errorf("upstream headers: Authorization %q, Impersonate-User %q, Impersonate-Group %v, Impersonate-Extra-Scopes %q",
			h.Get("Authorization"), h.Get("Impersonate-User"), h.Values("Impersonate-Group"), h.Get("Impersonate-Extra-Scopes"))
	}
}
