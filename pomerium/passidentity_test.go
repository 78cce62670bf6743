package pomerium

import (
	"encoding/json"
	"fmt"
	"testing"
)

// walk calls f on every JSON object in v.
func walk(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		for _, x := range v {
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

// passesIdentity reads what the adapted config does on its one route: the
// route's iap_authorize pass_identity_headers if set, else the app's, else
// the app's default (true).
func passesIdentity(t *testing.T, out []byte) bool {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	pass := true
	if v, ok := cfg["apps"].(map[string]any)["iap"].(map[string]any)["pass_identity_headers"].(bool); ok {
		pass = v
	}
	walk(cfg, func(o map[string]any) {
		if o["handler"] == "iap_authorize" {
			if v, ok := o["pass_identity_headers"].(bool); ok {
				pass = v
			}
		}
	})
	return pass
}

// Issue 13: Pomerium sends the assertion and claim headers only when
// pass_identity_headers is true: the route's if set, else the global
// one, else not (Policy.GetPassIdentityHeaders). The adapter sent them
// unless the global was false, and ignored a route's true.
func TestPassIdentityHeadersAsPomerium(t *testing.T) {
	for _, global := range []string{"", "true", "false"} {
		for _, perRoute := range []string{"", "true", "false"} {
			want := perRoute == "true" || perRoute == "" && global == "true"
			t.Run(fmt.Sprintf("global %q route %q", global, perRoute), func(t *testing.T) {
				src := "idp_provider_url: https://idp.example\nidp_client_id: x\n"
				if global != "" {
					src += "pass_identity_headers: " + global + "\n"
				}
				src += "routes:\n  - from: https://a.example\n    to: http://b\n    allow_any_authenticated_user: true\n"
				if perRoute != "" {
					src += "    pass_identity_headers: " + perRoute + "\n"
				}
				out, warnings, err := adapt(t, src, "config.yaml")
				if err != nil {
					t.Fatal(err)
				}
				if len(warnings) > 0 {
					t.Errorf("warnings: %v", warnings)
				}
				if got := passesIdentity(t, out); got != want {
					t.Errorf("identity headers passed: %v, want %v (as Pomerium)", got, want)
				}
			})
		}
	}
	// PASS_IDENTITY_HEADERS is the global one.
	env := map[string]string{"PASS_IDENTITY_HEADERS": "true"}
	out, _, err := adaptWithEnv([]byte("idp_provider_url: https://idp.example\nidp_client_id: x\nroutes:\n  - from: https://a.example\n    to: http://b\n    allow_any_authenticated_user: true\n"),
		map[string]any{"filename": "config.yaml"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if !passesIdentity(t, out) {
		t.Error("PASS_IDENTITY_HEADERS=true did not pass the identity headers")
	}
}
