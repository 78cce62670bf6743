package pomerium

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// bearerOf reads what the adapted config does with bearer tokens on its
// one route: the effective format (the route's iap_authenticate's, else
// the app's), audiences, and whether an accepted token is kept for the
// upstream.
func bearerOf(t *testing.T, out []byte) (format string, audiences []string, pass bool) {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	app := cfg["apps"].(map[string]any)["iap"].(map[string]any)
	format, _ = app["bearer_token_format"].(string)
	list := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	if v, ok := app["idp_access_token_allowed_audiences"]; ok {
		audiences = list(v)
	}
	// The route's own iap_authenticate: the one before its iap_authorize
	// (the host's fallback for /.pomerium/ has none).
	walk(cfg, func(o map[string]any) {
		handlers, _ := o["handle"].([]any)
		if len(handlers) < 2 || handlers[1].(map[string]any)["handler"] != "iap_authorize" {
			return
		}
		h := handlers[0].(map[string]any)
		if v, ok := h["bearer_token_format"].(string); ok {
			format = v
		}
		if v, ok := h["idp_access_token_allowed_audiences"]; ok {
			audiences = list(v)
		}
		pass, _ = h["pass_bearer_token"].(bool)
	})
	return format, audiences, pass
}

// Pomerium's bearer_token_format and idp_access_token_allowed_audiences,
// globally and per route (config/session.go GetBearerTokenFormatForPolicy,
// config/identity.go): the route's value wins, even "" (which is
// Pomerium's unknown, passthrough); unset is default, passthrough. A route
// that reads bearer tokens passes them on, as Pomerium removes only its
// own "Authorization: Pomerium" tokens upstream.
func TestBearerTokenFormatAsPomerium(t *testing.T) {
	for _, c := range []struct {
		name, global, route string
		format              string
		audiences           []string
		pass                bool
	}{
		{"unset is Pomerium's default: passthrough", "", "", "passthrough", nil, false},
		{"global default", "bearer_token_format: default\n", "", "passthrough", nil, false},
		{"global idp_access_token with audiences", "bearer_token_format: idp_access_token\nidp_access_token_allowed_audiences: [caddy, cli]\n", "",
			"idp_access_token", []string{"caddy", "cli"}, true},
		{"global idp_identity_token", "bearer_token_format: idp_identity_token\n", "", "idp_identity_token", nil, true},
		{"the enum's full name, any case", "bearer_token_format: BEARER_TOKEN_FORMAT_IDP_ACCESS_TOKEN\n", "", "idp_access_token", nil, true},
		{"a suffix of the enum's name, as Pomerium's decoder takes it", "bearer_token_format: identity_token\n", "", "idp_identity_token", nil, true},
		{"the route overrides the global format", "bearer_token_format: idp_access_token\n", "    bearer_token_format: idp_identity_token\n",
			"idp_identity_token", nil, true},
		{"the route turns a global format off with default", "bearer_token_format: idp_access_token\n", "    bearer_token_format: default\n",
			"passthrough", nil, false},
		{"the route's empty value is Pomerium's unknown: passthrough", "bearer_token_format: idp_identity_token\n", "    bearer_token_format: \"\"\n",
			"passthrough", nil, false},
		{"the route's audiences replace the global ones", "bearer_token_format: idp_access_token\nidp_access_token_allowed_audiences: [caddy]\n",
			"    idp_access_token_allowed_audiences: [api]\n", "idp_access_token", []string{"api"}, true},
		{"a route reads access tokens on its own", "", "    bearer_token_format: idp_access_token\n    idp_access_token_allowed_audiences: api\n",
			"idp_access_token", []string{"api"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "idp_provider_url: https://idp.example\nidp_client_id: x\n" + c.global +
				"routes:\n  - from: https://a.example\n    to: http://b\n    allow_any_authenticated_user: true\n" + c.route
			out, warnings, err := adapt(t, src, "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			format, audiences, pass := bearerOf(t, out)
			if format != c.format || !slices.Equal(audiences, c.audiences) || pass != c.pass {
				t.Errorf("format %q, audiences %q, pass_bearer_token %v; want %q, %q, %v", format, audiences, pass, c.format, c.audiences, c.pass)
			}
		})
	}

	t.Run("BEARER_TOKEN_FORMAT and IDP_ACCESS_TOKEN_ALLOWED_AUDIENCES from the environment win over the file", func(t *testing.T) {
		env := map[string]string{"BEARER_TOKEN_FORMAT": "idp_access_token", "IDP_ACCESS_TOKEN_ALLOWED_AUDIENCES": "a,b"}
		out, _, err := adaptWithEnv([]byte("idp_provider_url: https://idp.example\nidp_client_id: x\nbearer_token_format: default\n"+
			"routes:\n  - from: https://a.example\n    to: http://b\n    allow_any_authenticated_user: true\n"),
			map[string]any{"filename": "config.yaml"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		if format, audiences, _ := bearerOf(t, out); format != "idp_access_token" || !slices.Equal(audiences, []string{"a", "b"}) {
			t.Errorf("format %q, audiences %q", format, audiences)
		}
	})
}

// Bad values fail at adapt, naming the line (or the environment variable)
// and the cause.
func TestBearerTokenFormatErrors(t *testing.T) {
	route := "routes:\n  - from: https://a.example\n    to: http://b\n    allow_any_authenticated_user: true\n"
	for _, c := range []struct{ name, yaml, want string }{
		{"an unknown global format", "bearer_token_format: opaque\n" + route,
			`config.yaml:1: bearer_token_format "opaque": want default, idp_access_token, idp_identity_token or jwt`},
		{"the global jwt format without identity_providers", "bearer_token_format: jwt\n" + route,
			`config.yaml:1: bearer_token_format jwt requires at least one identity_providers entry`},
		{"an unknown route format", route + "    bearer_token_format: id_tokens\n",
			`config.yaml:5: bearer_token_format "id_tokens": want default`},
		{"the route jwt format without identity_providers", route + "    bearer_token_format: BEARER_TOKEN_FORMAT_JWT\n",
			`config.yaml:5: bearer_token_format jwt requires at least one identity_providers entry`},
		{"a route format that is not a value", route + "    bearer_token_format: [idp_access_token]\n", "config.yaml:5:"},
		{"an empty global audience list", "bearer_token_format: idp_access_token\nidp_access_token_allowed_audiences: []\n" + route,
			"config.yaml:2: idp_access_token_allowed_audiences: an empty list would refuse every access token"},
		{"an empty route audience list", route + "    idp_access_token_allowed_audiences: []\n",
			"config.yaml:5: idp_access_token_allowed_audiences: an empty list"},
		{"an empty audience", route + "    idp_access_token_allowed_audiences: [caddy, \"\"]\n",
			"config.yaml:5: idp_access_token_allowed_audiences: an empty audience"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "idp_provider_url: https://idp.example\nidp_client_id: x\n" + c.yaml
			// Two lines of IdP settings come first.
			want := c.want
			if strings.HasPrefix(want, "config.yaml:") {
				var line int
				rest := ""
				if _, err := fmt.Sscanf(want, "config.yaml:%d:", &line); err == nil {
					_, rest, _ = strings.Cut(want[len("config.yaml:"):], ":")
					want = fmt.Sprintf("config.yaml:%d:%s", line+2, rest)
				}
			}
			_, _, err := adapt(t, src, "config.yaml")
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
		})
	}
	t.Run("a bad BEARER_TOKEN_FORMAT names the variable", func(t *testing.T) {
		_, _, err := adaptWithEnv([]byte(route), map[string]any{"filename": "config.yaml"}, func(k string) (string, bool) {
			return "opaque", k == "BEARER_TOKEN_FORMAT"
		})
		if err == nil || !strings.Contains(err.Error(), "the environment variable BEARER_TOKEN_FORMAT: bearer_token_format \"opaque\"") {
			t.Fatalf("error %v", err)
		}
	})
}

// Under idp_provider azure, Pomerium verifies access tokens locally; here
// they go to userinfo, which refuses tokens for the application's own API:
// the adapter says so where the format is set.
func TestBearerTokenFormatAzureWarns(t *testing.T) {
	src := "idp_provider: azure\nidp_provider_url: https://login.microsoftonline.com/tenant/v2.0\nidp_client_id: x\nbearer_token_format: idp_access_token\n" +
		"routes:\n  - from: https://a.example\n    to: http://b\n    allow_any_authenticated_user: true\n" +
		"  - from: https://c.example\n    to: http://b\n    allow_any_authenticated_user: true\n    bearer_token_format: idp_access_token\n"
	_, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, w := range warnings {
		if strings.Contains(w.Message, "idp_provider azure") {
			lines = append(lines, w.Line)
		}
	}
	if !slices.Equal(lines, []int{4, 12}) {
		t.Errorf("azure warnings at lines %v, want [4 12]: %v", lines, warnings)
	}
	_, warnings, _ = adapt(t, strings.Replace(src, "azure", "oidc", 1), "config.yaml")
	for _, w := range warnings {
		if strings.Contains(w.Message, "azure") {
			t.Errorf("warned without azure: %v", w)
		}
	}
}
