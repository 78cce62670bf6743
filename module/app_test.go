package module

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Secrets, URLs and paths of the iap app take Caddy's {env.*} and {file.*}
// placeholders, replaced at provision as Caddy's own modules do (issue 16:
// the README's own `cookie_secret {env.IAP_COOKIE_SECRET}` did not
// validate).
func TestAppTakesEnvAndFilePlaceholders(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IAP_TEST_COOKIE_SECRET", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	t.Setenv("IAP_TEST_ISSUER", "https://idp.example.com/dex")
	t.Setenv("IAP_TEST_KEY_FILE", keyFile)

	newApp := func() *App {
		return &App{
			IDP: &IDP{ProviderURL: "{env.IAP_TEST_ISSUER}", ClientID: "caddy",
				ClientSecret: "{file." + secretFile + "}"},
			CookieSecret:   "{env.IAP_TEST_COOKIE_SECRET}",
			SigningKeyFile: "{env.IAP_TEST_KEY_FILE}",
		}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	a := newApp()
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if a.auth == nil || a.IDP.ProviderURL != "https://idp.example.com/dex" || a.IDP.ClientSecret != "from-a-file" || a.SigningKeyFile != keyFile {
		t.Errorf("not replaced: %+v %+v", a, a.IDP)
	}

	for _, tc := range []struct {
		name, want string
		edit       func(*App)
	}{
		{"an unset variable is an error naming the option", "cookie_secret", func(a *App) { a.CookieSecret = "{env.IAP_TEST_UNSET}" }},
		{"a provider_url without a scheme is refused", "provider_url", func(a *App) { a.IDP.ProviderURL = "dex.example.com/dex" }},
		{"a provider_url of another scheme is refused", "provider_url", func(a *App) { a.IDP.ProviderURL = "ftp://dex.example.com" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp()
			tc.edit(a)
			err := a.Provision(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
