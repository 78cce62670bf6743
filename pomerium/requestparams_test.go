package pomerium

import (
	"strings"
	"testing"
)

// idp_request_params, from the file or the environment (a JSON map), become
// the IdP's request_params.
func TestIDPRequestParams(t *testing.T) {
	const idp = "idp_provider_url: https://idp.example\nidp_client_id: x\n"
	out, warnings, err := adapt(t, idp+"idp_request_params:\n  prompt: select_account\n  hd: example.com\n", "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	if !strings.Contains(string(out), `"request_params":{"hd":"example.com","prompt":"select_account"}`) {
		t.Errorf("no request_params:\n%s", out)
	}
	if _, _, err := adapt(t, idp+"idp_request_params: [a, b]\n", "config.yaml"); err == nil || !strings.Contains(err.Error(), "config.yaml:3") {
		t.Errorf("a list: %v", err)
	}
	out, _, err = adaptWithEnv([]byte(idp), map[string]any{"filename": "config.yaml"}, envOf(`IDP_REQUEST_PARAMS={"prompt":"login"}`))
	if err != nil || !strings.Contains(string(out), `"request_params":{"prompt":"login"}`) {
		t.Errorf("from the environment: %v\n%s", err, out)
	}
}
