package pomerium

import (
	"encoding/json"
	"strings"
	"testing"
)

// proxyOf returns the first reverse_proxy handler of adapted JSON,
// re-marshalled (keys sorted), without its headers (which every route has).
func proxyOf(t *testing.T, out []byte) string {
	t.Helper()
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var find func(v any) map[string]any
	find = func(v any) map[string]any {
		switch x := v.(type) {
		case map[string]any:
			if x["handler"] == "reverse_proxy" {
				return x
			}
			for _, e := range x {
				if m := find(e); m != nil {
					return m
				}
			}
		case []any:
			for _, e := range x {
				if m := find(e); m != nil {
					return m
				}
			}
		}
		return nil
	}
	rp := find(cfg)
	if rp == nil {
		t.Fatalf("no reverse_proxy in\n%s", out)
	}
	delete(rp, "headers")
	b, _ := json.Marshal(rp)
	return string(b)
}

const lbRoute = "routes:\n  - from: https://a.example\n    allow_public_unauthenticated_access: true\n"

// outlier_detection, circuit_breaker_thresholds (global and route) and
// healthy_panic_threshold become exactly this reverse_proxy, with exactly
// these warnings.
func TestHealthSettingsMapping(t *testing.T) {
	for _, c := range []struct {
		name, global, route, want string
		warnings                  []string
	}{
		{
			name:     "outlier detection with Envoy's defaults takes nothing out of a small route: 10% of 2 upstreams is none",
			route:    "    to: [http://b:80, http://c:80]\n    outlier_detection: {}\n",
			want:     `{"handler":"reverse_proxy","upstreams":[{"dial":"b:80"},{"dial":"c:80"}]}`,
			warnings: []string{"config.yaml:5: outlier_detection takes no upstream out, as in Envoy: max_ejection_percent 10 (Envoy's default) of 2 upstreams allows none"},
		},
		{
			name:  "with max_ejection_percent 100 it is 5 failures in 30s, with the panic threshold of 50 around Caddy's random policy",
			route: "    to: [http://b:80, http://c:80]\n    outlier_detection: {max_ejection_percent: 100}\n",
			want:  `{"handler":"reverse_proxy","health_checks":{"passive":{"fail_duration":30000000000,"max_fails":5,"unhealthy_status":[5]}},"load_balancing":{"selection_policy":{"policy":"iap_healthy_panic","threshold":50}},"upstreams":[{"dial":"b:80"},{"dial":"c:80"}]}`,
		},
		{
			name:  "more than 100% is 100%, as in Envoy",
			route: "    to: [http://b:80]\n    outlier_detection: {max_ejection_percent: 150}\n    healthy_panic_threshold: 0\n",
			want:  `{"handler":"reverse_proxy","health_checks":{"passive":{"fail_duration":30000000000,"max_fails":5,"unhealthy_status":[5]}},"upstreams":[{"dial":"b:80"}]}`,
		},
		{
			name:     "always_eject_one_host lets one of two go; Envoy would stop there, Caddy may not",
			route:    "    to: [http://b:80, http://c:80]\n    outlier_detection: {always_eject_one_host: true}\n    healthy_panic_threshold: 0\n",
			want:     `{"handler":"reverse_proxy","health_checks":{"passive":{"fail_duration":30000000000,"max_fails":5,"unhealthy_status":[5]}},"upstreams":[{"dial":"b:80"},{"dial":"c:80"}]}`,
			warnings: []string{"config.yaml:5: outlier_detection: max_ejection_percent 10 lets Envoy take out 1 of the 2 upstreams at most"},
		},
		{
			name: "consecutive_5xx and base_ejection_time (snake or camel case) set the count and window; the route's policy and threshold are kept",
			route: "    to: [http://b:80, http://c:80]\n    load_balancing_policy: LEAST_REQUEST\n    healthy_panic_threshold: 100\n" +
				"    outlier_detection: {consecutive_5xx: 2, baseEjectionTime: 1m, enforcing_consecutive_5xx: 100, enforcing_success_rate: 0, max_ejection_percent: 100}\n",
			want: `{"handler":"reverse_proxy","health_checks":{"passive":{"fail_duration":60000000000,"max_fails":2,"unhealthy_status":[5]}},"load_balancing":{"selection_policy":{"policy":"iap_healthy_panic","selection_policy":{"policy":"least_conn"},"threshold":100}},"upstreams":[{"dial":"b:80"},{"dial":"c:80"}]}`,
		},
		{
			name:  "the gateway failure detector alone counts 502, 503 and 504",
			route: "    to: http://b:80\n    outlier_detection: {enforcing_consecutive_5xx: 0, consecutive_gateway_failure: 3, enforcing_consecutive_gateway_failure: 100, max_ejection_percent: 100}\n    healthy_panic_threshold: 0\n",
			want:  `{"handler":"reverse_proxy","health_checks":{"passive":{"fail_duration":30000000000,"max_fails":3,"unhealthy_status":[502,503,504]}},"upstreams":[{"dial":"b:80"}]}`,
		},
		{
			name:  "active health checks get the panic threshold too",
			route: "    to: http://b:80\n    health_checks: [{http_health_check: {path: /healthz}}]\n    healthy_panic_threshold: 30\n",
			want:  `{"handler":"reverse_proxy","health_checks":{"active":{"expect_status":200,"uri":"/healthz"}},"load_balancing":{"selection_policy":{"policy":"iap_healthy_panic","threshold":30}},"upstreams":[{"dial":"b:80"}]}`,
		},
		{
			name:  "a panic threshold without health checks changes nothing",
			route: "    to: http://b:80\n    healthy_panic_threshold: 30\n",
			want:  `{"handler":"reverse_proxy","upstreams":[{"dial":"b:80"}]}`,
		},
		{
			name:   "the route's circuit breakers win field by field over the global ones",
			global: "circuit_breaker_thresholds: {max_requests: 7, max_connections: 9, max_retries: 2}\n",
			route:  "    to: http://b:80\n    circuit_breaker_thresholds: {max_requests: 3}\n",
			want:   `{"handler":"reverse_proxy","health_checks":{"passive":{"unhealthy_request_count":3}},"transport":{"max_conns_per_host":9,"protocol":"http"},"upstreams":[{"dial":"b:80"}]}`,
		},
		{
			name:   "null is unset, as Pomerium reads it",
			global: "circuit_breaker_thresholds: null\n",
			route:  "    to: http://b:80\n    outlier_detection: ~\n    circuit_breaker_thresholds:\n    healthy_panic_threshold: null\n",
			want:   `{"handler":"reverse_proxy","upstreams":[{"dial":"b:80"}]}`,
		},
		{
			name:   "Pomerium's unlimited (4294967295) is no limit",
			global: "circuit_breaker_thresholds: {max_requests: 4294967295}\n",
			route:  "    to: http://b:80\n",
			want:   `{"handler":"reverse_proxy","upstreams":[{"dial":"b:80"}]}`,
		},
		{
			name:     "a global field that warns warns once, not once per route",
			global:   "circuit_breaker_thresholds: {max_pending_requests: 5}\n",
			route:    "    to: http://b:80\n  - from: https://c.example\n    allow_public_unauthenticated_access: true\n    to: http://c:80\n",
			want:     `{"handler":"reverse_proxy","upstreams":[{"dial":"b:80"}]}`,
			warnings: []string{"config.yaml:1: circuit_breaker_thresholds: max_pending_requests is not applied"},
		},
		{
			name:     "limits over several upstreams are per upstream, with a warning; pending requests and pools warn",
			route:    "    to: [http://b:80, http://c:80]\n    circuit_breaker_thresholds:\n      max_connections: 4\n      max_pending_requests: 10\n      max_connection_pools: 1\n",
			want:     `{"handler":"reverse_proxy","transport":{"max_conns_per_host":4,"protocol":"http"},"upstreams":[{"dial":"b:80"},{"dial":"c:80"}]}`,
			warnings: []string{"config.yaml:6: circuit_breaker_thresholds: max_connections 4 applies to each of the route's 2 upstreams", "config.yaml:7: circuit_breaker_thresholds: max_pending_requests is not applied", "config.yaml:8: circuit_breaker_thresholds: max_connection_pools is not applied"},
		},
		{
			name: "the outlier fields Caddy lacks warn by name and line",
			route: "    to: [http://b:80, http://c:80]\n    outlier_detection:\n      interval: 5s\n      max_ejection_percent: 50\n      max_ejection_time: 300s\n" +
				"      success_rate_minimum_hosts: 2\n      enforcing_consecutive_5xx: 50\n      consecutive_gateway_failure: 1\n      enforcing_consecutive_gateway_failure: 100\n",
			want: `{"handler":"reverse_proxy","health_checks":{"passive":{"fail_duration":30000000000,"max_fails":5,"unhealthy_status":[5]}},"load_balancing":{"selection_policy":{"policy":"iap_healthy_panic","threshold":50}},"upstreams":[{"dial":"b:80"},{"dial":"c:80"}]}`,
			warnings: []string{
				"config.yaml:10: outlier_detection: enforcing_consecutive_5xx 50 is applied as 100",
				"config.yaml:11: outlier_detection: consecutive_gateway_failure 1 is not applied",
				"config.yaml:6: outlier_detection: interval is not used",
				"config.yaml:8: outlier_detection: max_ejection_time is not applied",
				"config.yaml:7: outlier_detection: max_ejection_percent 50 lets Envoy take out 1 of the 2 upstreams at most",
				"config.yaml:9: outlier_detection: success_rate_minimum_hosts is not applied",
				"config.yaml:6: outlier_detection: Envoy's success-rate detection (on by default for 2 or more upstreams) is not done",
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, warnings, err := adapt(t, c.global+lbRoute+c.route, "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if got := proxyOf(t, out); got != c.want {
				t.Errorf("reverse_proxy\n got %s\nwant %s", got, c.want)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			if len(got) != len(c.warnings) {
				t.Fatalf("warnings %q, want %q", got, c.warnings)
			}
			for _, want := range c.warnings {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, want)
				}
				if !found {
					t.Errorf("no warning %q in %q", want, got)
				}
			}
		})
	}
}

// Bad values are adapt errors that name the line, the field and the cause.
func TestHealthSettingsErrors(t *testing.T) {
	for _, c := range []struct{ name, global, route, want string }{
		{"a count that is a list", "", "    outlier_detection: {consecutive_5xx: [1]}\n", "config.yaml:5: outlier_detection: consecutive_5xx: a list is not a whole number"},
		{"a duration that is a mapping", "", "    outlier_detection: {interval: {seconds: 5}}\n", "config.yaml:5: outlier_detection: interval: a mapping is not a duration such as 30s"},
		{"a negative count", "", "    outlier_detection: {consecutive_5xx: -1}\n", `config.yaml:5: outlier_detection: consecutive_5xx: "-1" is not a whole number`},
		{"a count that is a word", "", "    outlier_detection: {consecutive_5xx: five}\n", `config.yaml:5: outlier_detection: consecutive_5xx: "five" is not a whole number`},
		{"an unknown outlier field", "", "    outlier_detection:\n      consecutive5xxx: 3\n", `config.yaml:6: outlier_detection: unknown field "consecutive5xxx" (did you mean "consecutive_5xx"?)`},
		{"outlier detection that is a list", "", "    outlier_detection: [1]\n", "config.yaml:5: outlier_detection is a mapping of"},
		{"a duration that is not one", "", "    outlier_detection: {base_ejection_time: soon}\n", `config.yaml:5: outlier_detection: base_ejection_time: "soon" is not a duration`},
		{"a zero ejection time", "", "    outlier_detection: {base_ejection_time: 0s}\n", "config.yaml:5: outlier_detection: base_ejection_time: 0s would take no upstream out"},
		{"a negative percentage", "", "    outlier_detection: {max_ejection_percent: -10}\n", `config.yaml:5: outlier_detection: max_ejection_percent: "-10" is not a whole number`},
		{"a flag that is not one", "", "    outlier_detection: {always_eject_one_host: maybe}\n", `config.yaml:5: outlier_detection: always_eject_one_host: "maybe" is not true or false`},
		{"a field set twice", "", "    outlier_detection: {consecutive_5xx: 1, consecutive5xx: 2}\n", "config.yaml:5: outlier_detection: consecutive_5xx is set twice"},
		{"a negative route limit", "", "    circuit_breaker_thresholds: {max_requests: -5}\n", `config.yaml:5: circuit_breaker_thresholds: max_requests: "-5" is not a whole number`},
		{"a limit over uint32", "", "    circuit_breaker_thresholds: {max_requests: 4294967296}\n", `config.yaml:5: circuit_breaker_thresholds: max_requests: "4294967296" is not a whole number`},
		{"a zero limit", "", "    circuit_breaker_thresholds: {max_connections: 0}\n", "config.yaml:5: circuit_breaker_thresholds: max_connections: 0 refuses every request"},
		{"an unknown breaker field", "", "    circuit_breaker_thresholds: {max_request: 5}\n", `config.yaml:5: circuit_breaker_thresholds: unknown field "max_request" (did you mean "max_requests"?)`},
		{"a bad global limit", "circuit_breaker_thresholds: {max_requests: lots}\n", "", `config.yaml:1: circuit_breaker_thresholds: max_requests: "lots" is not a whole number`},
		{"a global that is a word", "circuit_breaker_thresholds: many\n", "", "config.yaml:1: circuit_breaker_thresholds is a mapping of"},
		{"a negative panic threshold", "", "    healthy_panic_threshold: -1\n", `config.yaml:5: healthy_panic_threshold: "-1" is not a percentage from 0 to 100`},
		{"a panic threshold over 100", "", "    healthy_panic_threshold: 150\n", `config.yaml:5: healthy_panic_threshold: "150" is not a percentage`},
		{"a panic threshold that is a list", "", "    healthy_panic_threshold: [50]\n", "config.yaml:5: healthy_panic_threshold: a list is not a percentage from 0 to 100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := adapt(t, c.global+lbRoute+"    to: http://b:80\n"+c.route, "config.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// CIRCUIT_BREAKER_THRESHOLDS, a JSON map, is the global setting, as
// Pomerium reads every setting from its environment variable.
func TestCircuitBreakersFromTheEnvironment(t *testing.T) {
	out, _, err := Adapter{}.Adapt([]byte(lbRoute+"    to: http://b:80\n"), map[string]any{"filename": "config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(proxyOf(t, out), "unhealthy_request_count") {
		t.Fatal("a limit without the variable")
	}
	t.Setenv("CIRCUIT_BREAKER_THRESHOLDS", `{"max_requests": 4}`)
	out, _, err = Adapter{}.Adapt([]byte(lbRoute+"    to: http://b:80\n"), map[string]any{"filename": "config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if got := proxyOf(t, out); !strings.Contains(got, `"unhealthy_request_count":4`) {
		t.Errorf("reverse_proxy %s", got)
	}
	t.Setenv("CIRCUIT_BREAKER_THRESHOLDS", "4")
	_, _, err = Adapter{}.Adapt([]byte(lbRoute+"    to: http://b:80\n"), map[string]any{"filename": "config.yaml"})
	if err == nil ||
		!strings.Contains(err.Error(), `CIRCUIT_BREAKER_THRESHOLDS is a JSON map, such as {"max_requests": 100}`) {
		t.Errorf("error %v", err)
	}
}
