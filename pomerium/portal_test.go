package pomerium

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue 13: logo_url and show_error_details were ignored with a warning.
// They now land on the route's iap_authorize, with description and from,
// for the routes portal and the 403 page; a logo_url of another scheme
// than http(s) or data:image is an error naming its line.
func TestPortalSettingsLandOnTheRoute(t *testing.T) {
	out, warnings, err := adapt(t, `routes:
  - from: https://wiki.example.com
    to: http://b
    name: Wiki
    description: "  the <b>team's</b> wiki  "
    logo_url: data:image/png;base64,iVBORw0KGgo=
    show_error_details: true
    allow_any_authenticated_user: true
`, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "needs signed-in users") && !strings.HasPrefix(w.Message, "show_error_details: ") {
			t.Errorf("warning: %v", w)
		}
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	walk(cfg, func(o map[string]any) {
		if o["handler"] == "iap_authorize" {
			got = append(got, o)
		}
	})
	if len(got) != 1 {
		t.Fatalf("iap_authorize handlers: %v", got)
	}
	for k, want := range map[string]any{"route": "Wiki", "url": "https://wiki.example.com", "description": "the <b>team's</b> wiki",
		"logo_url": "data:image/png;base64,iVBORw0KGgo=", "show_error_details": true} {
		if got[0][k] != want {
			t.Errorf("%s = %v, want %v", k, got[0][k], want)
		}
	}

	for _, bad := range []struct{ logo, cause string }{
		{"javascript:alert(1)", `scheme "javascript" is not allowed`},
		{"data:text/html;base64,PHNjcmlwdD4=", "a data: URL must hold an image"},
		{"'//evil.example/x.png'", "must be an http(s) URL or a data:image URL"},
	} {
		_, _, err := adapt(t, "routes:\n  - from: https://wiki.example.com\n    to: http://b\n    allow_public_unauthenticated_access: true\n    logo_url: "+bad.logo+"\n", "config.yaml")
		if err == nil || !strings.Contains(err.Error(), "config.yaml:5: logo_url ") || !strings.Contains(err.Error(), bad.cause) {
			t.Errorf("logo_url %s: %v", bad.logo, err)
		}
	}
}
