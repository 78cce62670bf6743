package pomerium

import (
	"strings"
	"testing"
)

// A route's kubernetes_service_account_token(_file) reaches its
// iap_authorize.
func TestKubernetesServiceAccountToken(t *testing.T) {
	const src = "idp_provider_url: https://idp.example\nidp_client_id: x\nroutes:\n" +
		"  - from: https://k8s.example\n    to: https://kubernetes.default.svc\n    allow_any_authenticated_user: true\n" +
		"    kubernetes_service_account_token: sa-token\n"
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	if !strings.Contains(string(out), `"kubernetes_service_account_token":"sa-token"`) {
		t.Errorf("no token:\n%s", out)
	}
}

// A route's depends_on reaches its iap_authorize.
func TestDependsOn(t *testing.T) {
	const src = "idp_provider_url: https://idp.example\nidp_client_id: x\nroutes:\n" +
		"  - from: https://app.example\n    to: http://a\n    allow_any_authenticated_user: true\n    depends_on: [api.example]\n" +
		"  - from: https://api.example\n    to: http://b\n    allow_any_authenticated_user: true\n"
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	if !strings.Contains(string(out), `"depends_on":["api.example"]`) {
		t.Errorf("no depends_on:\n%s", out)
	}
}
