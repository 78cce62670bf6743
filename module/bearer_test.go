package module

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// JSON configs with a bad bearer_token_format fail at provision or
// validation (so at caddy validate), naming the option and why, as the
// Caddyfile's and the Pomerium adapter's do at adapt.
func TestBearerTokenFormatIsCheckedInJSON(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for _, c := range []struct{ format, want string }{
		{"default", `iap: bearer_token_format "default": write passthrough`},
		{"Bearer", `iap: bearer_token_format "Bearer": want idp_identity_token, idp_access_token, jwt or passthrough`},
	} {
		// Checked even without an IdP, which a typo should not hide behind.
		err := (&App{BearerTokenFormat: c.format}).Provision(ctx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("app %q: %v, want %q", c.format, err, c.want)
		}
		err = (&Authenticate{BearerTokenFormat: c.format}).Validate()
		if want := strings.Replace(c.want, "iap:", "iap_authenticate:", 1); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("iap_authenticate %q: %v, want %q", c.format, err, want)
		}
	}
	for _, ok := range []string{"", "idp_identity_token", "idp_access_token", "jwt", "passthrough"} {
		if err := (&Authenticate{BearerTokenFormat: ok}).Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
