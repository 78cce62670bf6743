package authn

import (
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwt_issuer_format uri writes iss as https://<host>/; aud stays the host,
// and each format has its own cached assertion.
func TestAssertionIssuerFormats(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	s := &Session{ID: "sid", Subject: "u", Email: "u@example.com", IssuedAt: time.Now()}
	for _, c := range []struct {
		uri  bool
		want string
	}{{false, "app.test"}, {true, "https://app.test/"}, {false, "app.test"}} {
		raw, err := a.AssertionFor(s, "App.test:8443", c.uri)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var claims jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Issuer != c.want || len(claims.Audience) != 1 || claims.Audience[0] != "app.test" {
			t.Errorf("uri %v: iss %q aud %v, want iss %q aud app.test", c.uri, claims.Issuer, claims.Audience, c.want)
		}
	}
}
