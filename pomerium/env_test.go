package pomerium

import (
	"encoding/base64"
	"fmt"
	"os"
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
	env := map[string]string{"DEBUG_ADDRESS": ":9090", "COOKIE_HTTP_ONLY": "false"}
	_, warnings, err := adaptWithEnv([]byte(minimalConfigs[1]), map[string]any{"filename": "config.yaml"},
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(warnings)
	for _, want := range []string{"debug_address", "cookie_http_only"} {
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

// envOf is an environment of the given NAME=value pairs.
func envOf(pairs ...string) func(string) (string, bool) {
	env := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		env[k] = v
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok && v != "" }
}

// Issue 13 part 2: every global setting is read from the environment
// variable of its upper-case name, as Pomerium binds them: a warned one
// warns (without a line: there is none), an error one is an error naming
// the variable; their Pomerium default asks for nothing.
func TestEveryGlobalSettingFromTheEnvironment(t *testing.T) {
	for _, s := range globalSettings {
		if s.support == works {
			continue
		}
		name := strings.ToUpper(s.name)
		_, warnings, err := adaptWithEnv([]byte(minimalConfigs[2]), map[string]any{"filename": "config.yaml"}, envOf(name+"=not-the-default"))
		switch s.support {
		case warned:
			if err != nil || len(warnings) != 1 || warnings[0].Line != 0 ||
				!strings.Contains(warnings[0].Message, s.name+" (from the environment variable "+name+") is ignored: ") {
				t.Errorf("%s: warnings %v, error %v", name, warnings, err)
			}
		case refused:
			if err == nil || !strings.Contains(err.Error(), "the environment variable "+name+": "+s.refusal()) {
				t.Errorf("%s: error %v", name, err)
			}
		}
		if s.dflt != "" {
			if _, warnings, err := adaptWithEnv([]byte(minimalConfigs[2]), map[string]any{"filename": "config.yaml"}, envOf(name+"="+s.dflt)); err != nil || len(warnings) > 0 {
				t.Errorf("%s=%s (the default): %v %v", name, s.dflt, warnings, err)
			}
		}
	}
}

// The settings that work, from the environment: single values (the *_FILE
// ones read their file), lists as values separated by commas or as JSON,
// maps as JSON, POLICY and ROUTES as base64-encoded YAML or JSON, and
// CERTIFICATES as a JSON list of {cert, key}.
func TestWorkingSettingsFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	secretFile := dir + "/secret"
	if err := os.WriteFile(secretFile, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cookieFile := dir + "/cookie"
	if err := os.WriteFile(cookieFile, []byte("V2JBZk0zWGtsL29UcFUvWjVDWC9qK1JKS3Jhc0RaSmQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	routesJSON := base64.StdEncoding.EncodeToString([]byte(`[{"from": "https://json.example", "to": "http://up", "allow_public_unauthenticated_access": true, "allow_websockets": true}]`))
	for _, c := range []struct {
		env  []string
		want []string
	}{
		{[]string{"IDP_CLIENT_SECRET_FILE=" + secretFile, "COOKIE_SECRET_FILE=" + cookieFile},
			[]string{`"client_secret":"from-a-file"`, `"cookie_secret":"V2JBZk0zWGtsL29UcFUvWjVDWC9qK1JKS3Jhc0RaSmQ="`}},
		{[]string{`IDP_SCOPES=["openid","groups"]`, `JWT_CLAIMS_HEADERS={"X-Mail":"email"}`},
			[]string{`"scopes":["openid","groups"]`, `"jwt_claims_headers":{"X-Mail":"email"}`}},
		{[]string{"ROUTES=" + routesJSON}, []string{`"host":["json.example"]`, `"route":"https://json.example","url":"https://json.example"}`}},
		{[]string{"POLICY=" + routesJSON, "ALLOW_UPGRADES=[\"websocket\"]"}, []string{`"host":["json.example"]`}},
		{[]string{`CERTIFICATES=[{"cert": "/c.pem", "key": "/k.pem"}]`}, []string{`"load_files":[{"certificate":"/c.pem","key":"/k.pem"}]`}},
		{[]string{"HEADERS=X-Frame-Options:DENY,X-Team: blue"}, []string{`"X-Frame-Options":["DENY"]`, `"X-Team":["blue"]`}},
		{[]string{`SET_RESPONSE_HEADERS={"X-Frame-Options":"DENY"}`}, []string{`"X-Frame-Options":["DENY"]`}},
		{[]string{"TIMEOUT_READ=10s", "CODEC_TYPE=http1", "INSECURE_SERVER=true", "ADDRESS=:8080"},
			[]string{`"read_timeout":"10s"`, `"protocols":["h1"]`, `"listen":[":8080"]`, `"automatic_https":{"disable":true}`}},
		{[]string{"DEFAULT_UPSTREAM_TIMEOUT=1m"}, []string{`"response_header_timeout":60000000000`}},
	} {
		out, warnings, err := adaptWithEnv([]byte(minimalConfigs[3]), map[string]any{"filename": "config.yaml"}, envOf(c.env...))
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		for _, w := range warnings {
			if !strings.Contains(w.Message, "needs signed-in users") {
				t.Errorf("%v: warning %s", c.env, w)
			}
		}
		for _, want := range c.want {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v: lacks %s:\n%s", c.env, want, out)
			}
		}
	}
	for _, c := range []struct{ env, want string }{
		{`CERTIFICATES=/c.pem,/k.pem`, "the environment variable CERTIFICATES is a JSON list"},
		{`HEADERS=nocolon`, `the environment variable HEADERS: "nocolon" is not Name:Value`},
		{`IDP_SCOPES=[openid`, "the environment variable IDP_SCOPES is not a JSON list or map"},
		{`ROUTES=not base64`, "the environment variable ROUTES is not base64"},
	} {
		if _, _, err := adaptWithEnv([]byte(minimalConfigs[3]), map[string]any{"filename": "config.yaml"}, envOf(c.env)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.env, err, c.want)
		}
	}
}
