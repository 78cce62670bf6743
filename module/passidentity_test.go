package module

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
)

// A route's pass_identity_headers (iap_authorize's) overrides the app's:
// the Pomerium adapter maps Pomerium's per-route setting onto it.
func TestRoutePassIdentityHeadersOverridesTheApp(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authn.New(authn.Config{ProviderURL: "https://idp.example", ClientID: "x",
		CookieSecret: make([]byte, 32), SigningKey: key, Compat: "pomerium",
		ClaimHeaders: map[string]string{"X-Pomerium-Claim-Email": "email"}})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := authz.Shortcuts{AllowAnyAuthenticatedUser: true}.Policy(nil)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := authz.Compile(policy)
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	for _, c := range []struct {
		app, route *bool
		want       bool
	}{
		{nil, nil, true}, {&no, nil, false}, {&yes, nil, true},
		{&no, &yes, true}, {&yes, &no, false}, {nil, &no, false},
	} {
		name := func(b *bool) string {
			if b == nil {
				return "unset"
			}
			return fmt.Sprint(*b)
		}
		t.Run("app "+name(c.app)+" route "+name(c.route), func(t *testing.T) {
			app := &App{PassIdentityHeaders: c.app, JWTClaimsHeaders: map[string]string{"X-Pomerium-Claim-Email": "email"}, Compat: "pomerium", auth: auth}
			a := &Authorize{Route: "a.example", PassIdentityHeaders: c.route, eval: eval, app: app, logger: zap.NewNop()}
			ctx := context.WithValue(context.Background(), caddyhttp.VarsCtxKey, map[string]any{})
			r := httptest.NewRequest("GET", "https://a.example/", nil).WithContext(ctx)
			st, refused := begin(r, app)
			if refused != nil {
				t.Fatal("refused")
			}
			st.Session, st.identified = &authn.Session{ID: "s", Subject: "u", Email: "alice@example.com"}, true
			var assertion, email string
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				assertion, email = r.Header.Get("X-Pomerium-Jwt-Assertion"), r.Header.Get("X-Pomerium-Claim-Email")
				return nil
			})
			if err := a.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
				t.Fatal(err)
			}
			if got := assertion != "" && email == "alice@example.com"; got != c.want || (!c.want && (assertion != "" || email != "")) {
				t.Errorf("assertion %q, claim header %q; want passed: %v", assertion, email, c.want)
			}
		})
	}
}
