package module

// Review of 2026-12-01: the iap app's named IdPs beside central sign-in.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Named IdPs take no part in central sign-in, share the default's
// revocation list (a revocation made through any ends the session
// everywhere), have their own cookie names, and every IdP's cookies are
// stripped before an upstream whatever the route's IdP.
func TestReviewNamedIdPsBesideCentralSignIn(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	a := &App{
		SigningKey:      base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		IDP:             &IDP{ProviderURL: "http://127.0.0.1:1/dex", ClientID: "caddy"},
		IDPs:            map[string]*IDP{"partners": {ProviderURL: "http://127.0.0.1:1/partner", ClientID: "p"}, "b2": {ProviderURL: "http://127.0.0.1:1/b2", ClientID: "b"}},
		CookieSecret:    base64.StdEncoding.EncodeToString(make([]byte, 32)),
		AuthenticateURL: "https://auth.example.com",
	}
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	all := a.authenticators()
	if len(all) != 3 || all[0] != a.auth {
		t.Fatalf("authenticators: %d, default first: %v", len(all), all[0] == a.auth)
	}
	if !a.auth.SignInHost("auth.example.com") {
		t.Errorf("the default IdP has no central sign-in")
	}
	names := map[string]bool{}
	for _, auth := range all[1:] {
		if auth.SignInHost("auth.example.com") {
			t.Errorf("a named IdP (%s) signs in centrally", auth.CookieName())
		}
		if auth.Revocations() != a.auth.Revocations() {
			t.Errorf("%s has a revocation list of its own", auth.CookieName())
		}
		names[auth.CookieName()] = true
	}
	if !names["__Host-_iap_partners"] || !names["__Host-_iap_b2"] {
		t.Errorf("cookie names %v", names)
	}
	h := http.Header{"Cookie": {"__Host-_iap=a; __Host-_iap_partners=b; __Host-_iap_partners_0=c; __Host-_iap_b2_1=d; " +
		"__Host-_iap_b2_login_0123456789ab=e; __Host-_iap_partners_login_0123456789ab=f; __Host-_iap_login_0123456789ab=g; theme=dark"}}
	a.stripCookies(h)
	if got := h.Get("Cookie"); got != "theme=dark" {
		t.Errorf("left for the upstream: %q", got)
	}
	for name, ok := range map[string]bool{"partners": true, "b2": true, "login": false, "login-x": true, "a_b": false, "Partners": false, "2a": false, "": false, "a.b": false} {
		if validIDPName(name) != ok {
			t.Errorf("validIDPName(%q) = %v", name, !ok)
		}
	}
}
