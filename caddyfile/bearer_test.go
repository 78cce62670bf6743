package caddyfile_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The bearer token options: the iap app's default, iap_route's and
// iap_authenticate's own, in the JSON they become.
func TestBearerTokenOptions(t *testing.T) {
	out, err := adapt(t, `{
	iap {
		bearer_token_format idp_access_token
		idp_access_token_allowed_audiences caddy cli
	}
}
app.example {
	iap_route {
		to http://127.0.0.1:1
		bearer_token_format idp_identity_token
		idp_access_token_allowed_audiences api
		allow_any_authenticated_user
	}
}
site.example {
	iap_authenticate {
		bearer_token_format passthrough
		pass_bearer_token
	}
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"iap":{"bearer_token_format":"idp_access_token","idp_access_token_allowed_audiences":["caddy","cli"]}`,
		`"bearer_token_format":"idp_identity_token","handler":"iap_authenticate","hosts":["app.example"],"idp_access_token_allowed_audiences":["api"],"sign_in":"policy"`,
		`"bearer_token_format":"passthrough","handler":"iap_authenticate","hosts":["site.example"],"pass_bearer_token":true`,
	} {
		if !strings.Contains(compact(t, out), want) {
			t.Errorf("no %s in:\n%s", want, out)
		}
	}
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// A bad value fails at adapt (and so at caddy validate), naming the option
// and why.
func TestBearerTokenOptionErrors(t *testing.T) {
	route := func(lines string) string {
		return "app.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\tallow_any_authenticated_user\n" + lines + "\t}\n}"
	}
	for _, c := range []struct{ name, src, want string }{
		{"Pomerium's default, which is not ours", route("\t\tbearer_token_format default\n"),
			`bearer_token_format "default": write passthrough for Pomerium's default`},
		{"workload JWTs without an identity_provider", route("\t\tbearer_token_format jwt\n"), `bearer_token_format jwt: the global iap option has no identity_provider block, so no workload JWT could be verified, at Caddyfile:5`},
		{"a made-up format", route("\t\tbearer_token_format opaque\n"), `bearer_token_format "opaque": want idp_identity_token, idp_access_token, jwt or passthrough`},
		{"a route's format is named with its line", route("\t\tbearer_token_format opaque\n"), "Caddyfile:5"},
		{"audiences without a value", route("\t\tidp_access_token_allowed_audiences\n"), "idp_access_token_allowed_audiences takes one or more audiences"},
		{"a bad global format", "{\n\tiap {\n\t\tbearer_token_format opaque\n\t}\n}\n" + route(""), `bearer_token_format "opaque": want idp_identity_token, idp_access_token, jwt or passthrough, at Caddyfile:3`},
		{"global audiences without a value", "{\n\tiap {\n\t\tidp_access_token_allowed_audiences\n\t}\n}\n" + route(""), "idp_access_token_allowed_audiences takes one or more"},
		{"a bad format on iap_authenticate", "site.example {\n\tiap_authenticate {\n\t\tbearer_token_format opaque\n\t}\n}", `bearer_token_format "opaque"`},
		{"an unknown iap_authenticate option", "site.example {\n\tiap_authenticate {\n\t\tcookie_name x\n\t}\n}", `unrecognized iap_authenticate option "cookie_name"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := adapt(t, c.src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
		})
	}
}
