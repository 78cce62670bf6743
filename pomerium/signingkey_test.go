package pomerium

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/caddy-iap/caddy-iap/authn"
)

// Pomerium's signing_key may hold several PEM keys: the first signs and all
// are published. The adapted config, provisioned, publishes both at
// /.well-known/pomerium/jwks.json, the signing one first, so Pomerium's
// three-step rotation (add, put first, remove) works as it does there.
func TestSigningKeyWithSeveralKeys(t *testing.T) {
	var pemKeys bytes.Buffer
	var kids []string
	for range 2 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		_ = pem.Encode(&pemKeys, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		kid, _ := authn.KeyID(k.Public())
		kids = append(kids, kid)
	}
	yaml := fmt.Sprintf(`idp_provider_url: https://idp.example.com
idp_client_id: caddy
idp_client_secret: secret
cookie_secret: %s
signing_key: %s
routes:
  - from: https://app.localhost.pomerium.io
    to: http://127.0.0.1:1
    allow_any_authenticated_user: true
`, base64.StdEncoding.EncodeToString(make([]byte, 32)), base64.StdEncoding.EncodeToString(pemKeys.Bytes()))
	out, _, err := adapt(t, yaml, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, err := caddy.ProvisionContext(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	app, err := ctx.App("http")
	if err != nil {
		t.Fatal(err)
	}
	srv := app.(*caddyhttp.App).Servers["pomerium"]
	if srv == nil {
		t.Fatalf("no server named pomerium in:\n%s", out)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "https://app.localhost.pomerium.io/.well-known/pomerium/jwks.json", nil))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatalf("JWKS: %d %s", w.Code, w.Body)
	}
	var got []string
	for _, k := range set.Keys {
		got = append(got, k.KeyID)
	}
	if fmt.Sprint(got) != fmt.Sprint(kids) {
		t.Errorf("JWKS lists %v, want both keys %v", got, kids)
	}
}
