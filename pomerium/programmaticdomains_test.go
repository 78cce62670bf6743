package pomerium

import (
	"strings"
	"testing"
)

// programmatic_redirect_domain_whitelist becomes the iap app's list, from
// the file or PROGRAMMATIC_REDIRECT_DOMAIN_WHITELIST; [] stays an empty
// list (programmatic login off), and an entry that could never match a
// host is an error naming its line.
func TestProgrammaticRedirectDomainWhitelist(t *testing.T) {
	const head = "idp_provider_url: https://idp.example\nidp_client_id: x\n"
	for _, c := range []struct {
		what, yaml string
		env        map[string]string
		want, err  string
	}{
		{"a list", "programmatic_redirect_domain_whitelist: [localhost, example.com]\n", nil,
			`"programmatic_redirect_domain_whitelist":["localhost","example.com"]`, ""},
		{"Pomerium's default, spelled out", "programmatic_redirect_domain_whitelist: [localhost]\n", nil,
			`"programmatic_redirect_domain_whitelist":["localhost"]`, ""},
		{"an empty list turns programmatic login off", "programmatic_redirect_domain_whitelist: []\n", nil,
			`"programmatic_redirect_domain_whitelist":[]`, ""},
		{"from the environment, separated by commas", "programmatic_redirect_domain_whitelist: [localhost]\n",
			map[string]string{"PROGRAMMATIC_REDIRECT_DOMAIN_WHITELIST": "example.com, apps.example.org"},
			`"programmatic_redirect_domain_whitelist":["example.com","apps.example.org"]`, ""},
		{"a wildcard is an error", "programmatic_redirect_domain_whitelist:\n  - localhost\n  - '*.example.com'\n", nil, "",
			`config.yaml:5: programmatic_redirect_domain_whitelist: "*.example.com": wildcards are not supported: each entry is a whole host name, as in Pomerium`},
		{"a URL is an error", "programmatic_redirect_domain_whitelist: [https://example.com]\n", nil, "",
			`config.yaml:3: programmatic_redirect_domain_whitelist: "https://example.com": want a host name or IP address alone, such as example.com or localhost (no scheme, port or path)`},
	} {
		t.Run(c.what, func(t *testing.T) {
			out, warnings, err := adaptWithEnv([]byte(head+c.yaml), map[string]any{"filename": "config.yaml"},
				func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error\n got %v\nwant %s", err, c.err)
				}
				return
			}
			if err != nil || len(warnings) > 0 {
				t.Fatal(err, warnings)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("want %s in\n%s", c.want, out)
			}
		})
	}
	// Unset, the app's default (localhost) applies: nothing is written.
	out, _, err := adapt(t, head, "config.yaml")
	if err != nil || strings.Contains(string(out), "programmatic_redirect_domain_whitelist") {
		t.Errorf("%v\n%s", err, out)
	}
}
