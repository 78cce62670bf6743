package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

var bob = testenv.DexUser{Email: "bob@example.org", Name: "Bob", Password: "builder"}

// Policies decide with a real signed-in user and a real client
// certificate: allow, deny, and the order 495 (certificate), sign-in, 403.
func TestPolicyWithUsersAndCertificates(t *testing.T) {
	certs := newClientCerts(t)
	up := echoUpstream(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	hosts := []string{"admins.test", "pinned.test", "matcher.test", "yaml.test"}
	var redirects []string
	for _, h := range hosts {
		redirects = append(redirects, fmt.Sprintf("https://%s:%d/.iap/callback", h, httpsPort))
	}
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob}, RedirectURIs: redirects})
	globals := fmt.Sprintf("\tiap {\n\t\tidp {\n\t\t\tprovider_url %s\n\t\t\tclient_id caddy\n\t\t\tclient_secret caddy-secret\n\t\t\tscopes openid email profile groups\n\t\t}\n\t\tcookie_secret %s\n\t}", dex.Issuer, randomSecret(t))
	valid := certs.certs["valid"].Cert
	fp := sha256.Sum256(valid.Raw)
	policyFile := writeFile(t, "policy.yaml", "allow:\n  or:\n    - email:\n        ends_with: \"@example.com\"\n")

	mtls := "\tiap_mtls {\n\t\tca_file " + certs.caFile + "\n\t\tmax_verify_depth 2\n\t}\n"
	mtlsPolicy := "\tiap_mtls {\n\t\tca_file " + certs.caFile + "\n\t\tenforcement policy\n\t\tmax_verify_depth 2\n\t}\n"
	sites := "admins.test {\n\ttls internal\n" + mtls + "\tiap_route {\n\t\tto " + up + "\n\t\tpolicy {\n\t\t\tallow {\n\t\t\t\tor {\n\t\t\t\t\tgroups has admins\n\t\t\t\t}\n\t\t\t}\n\t\t\tdeny {\n\t\t\t\tor {\n\t\t\t\t\thttp_method is DELETE\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}\n" +
		"pinned.test {\n\ttls internal\n" + mtlsPolicy + "\tiap_route {\n\t\tto " + up + "\n\t\tpolicy {\n\t\t\tallow {\n\t\t\t\tand {\n\t\t\t\t\tauthenticated_user\n\t\t\t\t\tclient_certificate fingerprint " + hex.EncodeToString(fp[:]) + "\n\t\t\t\t}\n\t\t\t}\n\t\t\tdeny {\n\t\t\t\tor {\n\t\t\t\t\tinvalid_client_certificate\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}\n" +
		"matcher.test {\n\ttls internal\n\tiap_authenticate\n\t@admins iap_policy {\n\t\tallow {\n\t\t\tor {\n\t\t\t\tgroups has admins\n\t\t\t}\n\t\t}\n\t}\n" +
		"\t@eng expression iap_policy('{\"allow\": {\"or\": [{\"groups\": \"eng\"}]}}')\n\trespond @admins \"admin\"\n\trespond @eng \"eng\"\n\trespond \"neither\"\n}\n" +
		"yaml.test {\n\ttls internal\n\tiap_route {\n\t\tto " + up + "\n\t\tpolicy_file " + policyFile + "\n\t}\n}\n"
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, globals, sites)

	aliceUA := caddy.NewUserAgent(t, certs.tlsCert(t, "valid"))
	bobUA := caddy.NewUserAgent(t, certs.tlsCert(t, "valid"))
	aliceOtherCert := caddy.NewUserAgent(t, certs.tlsCert(t, "via-intermediate"))
	noCert := caddy.NewUserAgent(t)
	url := func(host, path string) string { return fmt.Sprintf("https://%s:%d%s", host, httpsPort, path) }

	t.Run("a certificate comes first: no certificate is 495, never a sign-in", func(t *testing.T) {
		resp, body := noCert.Get(t, url("admins.test", "/"), nil)
		if resp.StatusCode != 495 || strings.Contains(resp.Request.URL.String(), "/dex/") {
			t.Errorf("got %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
		}
	})
	t.Run("an admin is allowed", func(t *testing.T) {
		resp, body := aliceUA.SignIn(t, url("admins.test", "/"), alice.Email, alice.Password)
		if resp.StatusCode != 200 || echoed(t, body).Get("X-Iap-Jwt-Assertion") == "" {
			t.Errorf("got %d:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("deny wins over allow", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, url("admins.test", "/"), nil)
		req.Header.Set("Accept", "application/json")
		resp, err := aliceUA.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("DELETE: %d", resp.StatusCode)
		}
		if !caddy.WaitLog(`"reason":"denied"`) || !strings.Contains(logLinesWith(caddy.Log(), `"reason":"denied"`), `"email":"alice@example.com"`) {
			t.Errorf("the refusal log lacks the user or reason:\n%s", logLinesWith(caddy.Log(), "request refused"))
		}
	})
	t.Run("a user outside the group is refused after signing in", func(t *testing.T) {
		resp, body := bobUA.SignIn(t, url("admins.test", "/"), bob.Email, bob.Password)
		if resp.StatusCode != 403 || !strings.Contains(body, "not-allowed") {
			t.Errorf("got %d:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("a pinned certificate: the right one passes, another valid one is 403", func(t *testing.T) {
		if resp, body := aliceUA.SignIn(t, url("pinned.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
			t.Errorf("pinned certificate: %d %s", resp.StatusCode, body)
		}
		if resp, body := aliceOtherCert.SignIn(t, url("pinned.test", "/"), alice.Email, alice.Password); resp.StatusCode != 403 {
			t.Errorf("another valid certificate: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("under enforcement policy, a deny rule refuses an absent certificate with 495 before any sign-in (TC-CC-13)", func(t *testing.T) {
		resp, body := noCert.Get(t, url("pinned.test", "/"), nil)
		if resp.StatusCode != 495 || !strings.Contains(body, "client-certificate-required") || strings.Contains(resp.Request.URL.Path, "/dex/") {
			t.Errorf("got %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
		}
	})
	t.Run("the iap_policy matcher and its CEL function", func(t *testing.T) {
		if _, body := aliceUA.SignIn(t, url("matcher.test", "/"), alice.Email, alice.Password); body != "admin" {
			t.Errorf("alice: %q", body)
		}
		if _, body := bobUA.SignIn(t, url("matcher.test", "/"), bob.Email, bob.Password); body != "neither" {
			t.Errorf("bob: %q", body)
		}
	})
	t.Run("a policy_file in YAML", func(t *testing.T) {
		if resp, _ := aliceUA.SignIn(t, url("yaml.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
			t.Errorf("alice: %d", resp.StatusCode)
		}
		if resp, _ := bobUA.SignIn(t, url("yaml.test", "/"), bob.Email, bob.Password); resp.StatusCode != 403 {
			t.Errorf("bob: %d", resp.StatusCode)
		}
	})
}
