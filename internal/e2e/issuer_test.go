package e2e

import (
	"net/http"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// jwt_issuer_format uri in the global iap option: the upstream's
// assertion has iss https://<host>/ and aud the host.
func TestJWTIssuerFormatURI(t *testing.T) {
	e := startIdentity(t, testenv.DexOptions{}, "\t\tjwt_issuer_format uri\n")
	ua := e.caddy.NewUserAgent(t)
	resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
	tok, err := jwt.ParseSigned(echoed(t, body).Get("X-Iap-Jwt-Assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://app.test/" || len(c.Audience) != 1 || c.Audience[0] != "app.test" {
		t.Errorf("iss %q aud %v", c.Issuer, c.Audience)
	}
}
