package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The IdP's sign-in page gets the extra parameters (Pomerium's
// idp_request_params); the sign-in's own cannot be replaced by them.
func TestAuthParamsReachTheIdP(t *testing.T) {
	op := startTestOP(t)
	a := startAuthenticatorAt(t, op, &fakeClock{now: time.Now()}, func(c *Config) {
		c.AuthParams = map[string]string{"prompt": "select_account", "hd": "example.com"}
	})
	u, err := url.Parse(newTestBrowser(t, a).startSignIn("https://app.test/page"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("prompt") != "select_account" || q.Get("hd") != "example.com" || q.Get("state") == "" || q.Get("code_challenge") == "" {
		t.Errorf("the authorization request: %s", u.RawQuery)
	}
	for _, k := range []string{"state", "Nonce", "redirect_uri", "client_id", "response_type", "scope", "code_challenge", "code_challenge_method"} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, err := New(Config{ProviderURL: op.URL, ClientID: "caddy", CookieSecret: secret(t), SigningKey: key, AuthParams: map[string]string{k: "x"}})
		if err == nil || !strings.Contains(err.Error(), "is set by the sign-in itself") {
			t.Errorf("request param %q: %v", k, err)
		}
	}
}
