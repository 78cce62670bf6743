package pomerium

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue 13: authenticate_service_url was ignored with a warning, so every
// route host signed users in on its own callback and the IdP had to list
// each. It is now the iap app's authenticate_url (central sign-in, as
// Pomerium's authenticate service): the IdP lists that host's
// /oauth2/callback only, and the host has a route that answers there.
func TestAuthenticateServiceURLIsCentralSignIn(t *testing.T) {
	const idp = "idp_provider_url: https://idp.example\nidp_client_id: x\n"
	const routes = "routes:\n  - from: https://app.example\n    to: http://b\n    allow_any_authenticated_user: true\n" +
		"  - from: https://*.wild.example\n    to: http://c\n    allow_any_authenticated_user: true\n"
	out, warnings, err := adapt(t, idp+"authenticate_service_url: https://authenticate.example:8443\n"+routes, "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	if !strings.Contains(string(out), `"authenticate_url":"https://authenticate.example:8443"`) {
		t.Errorf("no authenticate_url:\n%s", out)
	}
	// The sign-in host gets a certificate like the route hosts, and a
	// route of its own, before the wildcard routes, whose handler is
	// iap_authenticate for that host.
	if !strings.Contains(string(out), `"subjects":["app.example","*.wild.example","authenticate.example"]`) {
		t.Errorf("the sign-in host gets no certificate:\n%s", out)
	}
	if got := reach(t, idp+"authenticate_service_url: https://authenticate.example:8443\n"+routes, "GET", "authenticate.example", "/.pomerium/x"); got != "iap_authenticate" {
		t.Errorf("the sign-in host's endpoints: %s", got)
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	found := false
	walk(cfg, func(o map[string]any) {
		if hosts, _ := o["hosts"].([]any); o["handler"] == "iap_authenticate" && len(hosts) == 1 && hosts[0] == "authenticate.example" && o["sign_in"] == nil {
			found = true
		}
	})
	if !found {
		t.Errorf("no iap_authenticate for the sign-in host:\n%s", out)
	}

	// From the environment too; a URL that is not one is an error.
	if out, _, err := adaptWithEnv([]byte(idp+routes), map[string]any{"filename": "config.yaml"}, envOf("AUTHENTICATE_SERVICE_URL=https://login.example")); err != nil ||
		!strings.Contains(string(out), `"authenticate_url":"https://login.example"`) {
		t.Errorf("from the environment: %v\n%s", err, out)
	}
	for _, bad := range []string{"authenticate.example", "ftp://a.example", "https://a.example/path"} {
		if _, _, err := adapt(t, idp+"authenticate_service_url: "+bad+"\n"+routes, "config.yaml"); err == nil || !strings.Contains(err.Error(), "authenticate_service_url: ") {
			t.Errorf("%s: error %v", bad, err)
		}
	}
}
