package pomerium

import (
	"strings"
	"testing"
)

// signout_redirect_url becomes the iap app's sign_out_redirect_url.
func TestSignOutRedirectURL(t *testing.T) {
	out, warnings, err := adapt(t, "idp_provider_url: https://idp.example\nidp_client_id: x\nsignout_redirect_url: https://www.example.com/bye\n", "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	if !strings.Contains(string(out), `"sign_out_redirect_url":"https://www.example.com/bye"`) {
		t.Errorf("no sign_out_redirect_url:\n%s", out)
	}
}
