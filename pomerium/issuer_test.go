package pomerium

import (
	"strings"
	"testing"
)

// jwt_issuer_format, globally and per route, in Pomerium's spellings.
func TestJWTIssuerFormat(t *testing.T) {
	const idp = "idp_provider_url: https://idp.example\nidp_client_id: x\n"
	const route = "routes:\n  - from: https://a.example\n    to: http://a\n    allow_any_authenticated_user: true\n"
	out, warnings, err := adapt(t, idp+"jwt_issuer_format: uri\n"+route+"    jwt_issuer_format: IssuerHostOnly\n", "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	if !strings.Contains(string(out), `"jwt_issuer_format":"uri"`) {
		t.Errorf("no global jwt_issuer_format:\n%s", out)
	}
	out, _, err = adapt(t, idp+route+"    jwt_issuer_format: uri\n", "config.yaml")
	if err != nil || strings.Count(string(out), `"jwt_issuer_format":"uri"`) != 1 {
		t.Errorf("the route's: %v\n%s", err, out)
	}
	if _, _, err := adapt(t, idp+route+"    jwt_issuer_format: url\n", "config.yaml"); err == nil || !strings.Contains(err.Error(), "config.yaml:7") || !strings.Contains(err.Error(), "want hostOnly or uri") {
		t.Errorf("a bad value: %v", err)
	}
}
