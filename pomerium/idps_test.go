package pomerium

import (
	"encoding/json"
	"strings"
	"testing"
)

// A route's idp_client_id (Pomerium's per-route identity provider) becomes
// a named IdP of the app, with the global provider URL and scopes; routes
// with the same client share it, and the global client stays the default.
func TestRouteIDPClientIsANamedIdP(t *testing.T) {
	const src = "idp_provider_url: https://idp.example\nidp_client_id: main\nidp_client_secret: s0\nidp_scopes: [openid, email, groups]\nroutes:\n" +
		"  - from: https://a.example\n    to: http://a\n    allow_any_authenticated_user: true\n" +
		"  - from: https://b.example\n    to: http://b\n    idp_client_id: partners\n    idp_client_secret: s1\n    allow_any_authenticated_user: true\n" +
		"  - from: https://c.example\n    to: http://c\n    idp_client_id: partners\n    idp_client_secret: s1\n    allow_any_authenticated_user: true\n" +
		"  - from: https://d.example\n    to: http://d\n    idp_client_id: main\n    allow_any_authenticated_user: true\n"
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	var cfg struct {
		Apps struct {
			IAP struct {
				IDP  map[string]any            `json:"idp"`
				IDPs map[string]map[string]any `json:"idps"`
			} `json:"iap"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps.IAP.IDPs) != 1 {
		t.Fatalf("idps %v, want one for the partners client", cfg.Apps.IAP.IDPs)
	}
	var name string
	for n, idp := range cfg.Apps.IAP.IDPs {
		name = n
		if idp["provider_url"] != "https://idp.example" || idp["client_id"] != "partners" || idp["client_secret"] != "s1" ||
			len(idp["scopes"].([]any)) != 3 {
			t.Errorf("idp %s: %v", n, idp)
		}
	}
	// Every iap_authenticate of b and c (the route's and the host's own
	// endpoints') names it; those of a and d use the default.
	seen := map[string]int{}
	var walkAny func(v any)
	walkAny = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "iap_authenticate" {
				idp, _ := x["idp"].(string)
				hosts, _ := x["hosts"].([]any)
				for _, h := range hosts {
					if idp == name {
						seen[h.(string)]++
					} else if idp == "" {
						seen[h.(string)] += 10
					}
				}
			}
			for _, c := range x {
				walkAny(c)
			}
		case []any:
			for _, c := range x {
				walkAny(c)
			}
		}
	}
	var all any
	_ = json.Unmarshal(out, &all)
	walkAny(all)
	if seen["b.example"] != 2 || seen["c.example"] != 2 || seen["a.example"] != 20 || seen["d.example"] != 20 {
		t.Errorf("iap_authenticate handlers per host (1 for each naming %s, 10 for each with the default): %v", name, seen)
	}
}

func TestRouteIDPClientErrors(t *testing.T) {
	const twoOnOneHost = "idp_provider_url: https://idp.example\nidp_client_id: main\nroutes:\n" +
		"  - from: https://b.example\n    prefix: /x\n    to: http://b\n    allow_any_authenticated_user: true\n    idp_client_id: p\n" +
		"  - from: https://b.example\n    to: http://b\n    allow_any_authenticated_user: true\n"
	if _, _, err := adapt(t, twoOnOneHost, "config.yaml"); err == nil || !strings.Contains(err.Error(), "routes of one host sign in with one identity provider") {
		t.Errorf("two IdPs on one host: %v", err)
	}
	const route = "routes:\n  - from: https://b.example\n    to: http://b\n    allow_any_authenticated_user: true\n"
	for _, c := range []struct{ name, src, want string }{
		{"no global IdP", route + "    idp_client_id: partners\n", "needs the global identity provider"},
		{"a secret without a client", "idp_provider_url: https://idp.example\nidp_client_id: main\n" + route + "    idp_client_secret: s1\n", "needs the route's idp_client_id"},
		{"the global client with another secret", "idp_provider_url: https://idp.example\nidp_client_id: main\nidp_client_secret: s0\n" + route + "    idp_client_id: main\n    idp_client_secret: other\n", "is the global client, with another idp_client_secret"},
		{"one client with two secrets", "idp_provider_url: https://idp.example\nidp_client_id: main\n" + route + "    idp_client_id: p\n    idp_client_secret: s1\n" +
			"  - from: https://c.example\n    to: http://c\n    allow_any_authenticated_user: true\n    idp_client_id: p\n    idp_client_secret: s2\n", "used by another route with another idp_client_secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := adapt(t, c.src, "config.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "config.yaml:") {
				t.Errorf("err %v, want %q with the file and line", err, c.want)
			}
		})
	}
}
