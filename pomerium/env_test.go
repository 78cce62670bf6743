package pomerium

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// envNames are the environment variables the adapter reads: the upper-case
// name of every global setting of Pomerium's (Pomerium binds one to each),
// and downstream_mtls's own.
func envNames() []string {
	var names []string
	for _, s := range globalSettings {
		names = append(names, strings.ToUpper(s.name))
	}
	for _, k := range []string{"ca", "ca_file", "crl", "crl_file", "enforcement", "match_subject_alt_names", "max_verify_depth"} {
		names = append(names, "DOWNSTREAM_MTLS_"+strings.ToUpper(k))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// oddValues are values an operator's environment may hold by mistake.
var oddValues = []string{"", "false", "true", "x", "1", "0", "[]", "{", "https://authenticate.example.com", "-1", "a,b", "e30="}

// minimalConfigs are config files the variables land on: none of the
// settings, an IdP, and a route.
var minimalConfigs = []string{
	"{}\n",
	"idp_provider_url: https://idp.example\nidp_client_id: x\nidp_client_secret: y\n",
	"routes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n",
	"idp_provider_url: https://idp.example\nidp_client_id: x\nroutes:\n  - from: https://a.example\n    to: http://b\n    pass_identity_headers: true\n    allow_any_authenticated_user: true\n",
}

// adaptNoPanic adapts src with env, turning a panic into a test failure
// that names the environment.
func adaptNoPanic(t *testing.T, src string, env map[string]string) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic with env %v and config %q: %v", env, src, p)
		}
	}()
	_, _, _ = adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok && v != ""
	})
}

// Issue 13: with the environment of Pomerium's integration clusters the
// adapter died on a nil pointer (AUTHENTICATE_SERVICE_URL, and
// COOKIE_HTTP_ONLY=false: warnings about a setting from the environment
// alone). Every variable, with every odd value, on every minimal config,
// gives a config or an error.
func TestEnvironmentVariablesNeverPanic(t *testing.T) {
	for _, name := range envNames() {
		for _, v := range oddValues {
			for _, src := range minimalConfigs {
				adaptNoPanic(t, src, map[string]string{name: v})
			}
		}
	}
	// And the two of the report, together, as the clusters set them.
	for _, src := range minimalConfigs {
		adaptNoPanic(t, src, map[string]string{"AUTHENTICATE_SERVICE_URL": "https://authenticate.localhost.pomerium.io",
			"COOKIE_HTTP_ONLY": "false", "IDP_PROVIDER": "oidc", "IDP_PROVIDER_URL": "https://mock-idp.localhost.pomerium.io/",
			"IDP_CLIENT_ID": "CLIENT_ID", "IDP_CLIENT_SECRET": "CLIENT_SECRET"})
	}
}

// The two variables of the report give their warning, without a line.
func TestEnvironmentOnlySettingsWarnWithoutALine(t *testing.T) {
	env := map[string]string{"AUTHENTICATE_SERVICE_URL": "https://authenticate.example.com", "COOKIE_HTTP_ONLY": "false"}
	_, warnings, err := adaptWithEnv([]byte(minimalConfigs[1]), map[string]any{"filename": "config.yaml"},
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(warnings)
	for _, want := range []string{"authenticate_service_url", "cookie_http_only"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %s lack %s", got, want)
		}
	}
	for _, w := range warnings {
		if w.Line != 0 {
			t.Errorf("warning %v names a line for a setting from the environment", w)
		}
	}
}

// Issue 13: IDP_SCOPES and JWT_CLAIMS_HEADERS, lists in Pomerium's
// environment, were not read. They replace the file's settings, as
// values separated by commas (claims also by spaces).
func TestListSettingsFromTheEnvironment(t *testing.T) {
	env := map[string]string{"IDP_SCOPES": "openid,email,groups", "JWT_CLAIMS_HEADERS": "email, groups user"}
	out, warnings, err := adaptWithEnv([]byte("idp_provider_url: https://idp.example\nidp_client_id: x\nidp_scopes: [openid]\njwt_claims_headers: [name]\n"),
		map[string]any{"filename": "config.yaml"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	for _, want := range []string{`"scopes":["openid","email","groups"]`, `"X-Pomerium-Claim-email":"email"`, `"X-Pomerium-Claim-groups":"groups"`, `"X-Pomerium-Claim-user":"user"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "X-Pomerium-Claim-name") {
		t.Errorf("the file's jwt_claims_headers is kept:\n%s", out)
	}
}
