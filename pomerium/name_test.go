package pomerium

import (
	"encoding/json"
	"testing"
)

// Issue 13: a route's name was read and dropped, so logs named the route
// by its from URL only. It now names the route in logs (iap_authorize's
// route) and errors; without one, from does, as before.
func TestRouteNameNamesTheRouteInLogs(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"    name: Grafana\n    description: dashboards\n", "Grafana"},
		{"    description: dashboards\n", "https://a.example"},
		{"    name: ''\n", "https://a.example"},
	} {
		out, warnings, err := adapt(t, "routes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n"+c.extra, "config.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) > 0 {
			t.Errorf("warnings: %v", warnings)
		}
		var cfg any
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		var got []any
		walk(cfg, func(o map[string]any) {
			if o["handler"] == "iap_authorize" {
				got = append(got, o["route"])
			}
		})
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%q: iap_authorize route %v, want %q", c.extra, got, c.want)
		}
	}
}
