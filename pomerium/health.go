package pomerium

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.yaml.in/yaml/v3"
)

// healthChecks maps a route's health_checks (Envoy's HealthCheck, in its
// JSON or YAML form, field names in snake_case or camelCase) onto Caddy's
// active health checks: the first HTTP check's path, Host, interval,
// timeout, thresholds and expected status. Caddy checks over HTTP only, so
// a TCP or gRPC check, or a second HTTP one, is a warning.
func (c *converter) healthChecks(n *yaml.Node) (*reverseproxy.HealthChecks, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, c.errf(n, "health_checks is a list of health checks (Envoy's HealthCheck)")
	}
	var active *reverseproxy.ActiveHealthChecks
	for _, item := range n.Content {
		var raw map[string]any
		if err := item.Decode(&raw); err != nil {
			return nil, c.errf(item, "health_checks: each is a mapping (Envoy's HealthCheck)")
		}
		m := normalizeKeys(raw)
		httpCheck, isHTTP := m["httphealthcheck"].(map[string]any)
		if !isHTTP || active != nil {
			kind := "this"
			for _, k := range []string{"tcphealthcheck", "grpchealthcheck", "customhealthcheck"} {
				if m[k] != nil {
					kind = "a " + strings.TrimSuffix(k, "healthcheck") + " health check"
				}
			}
			if isHTTP {
				kind = "a second HTTP health check"
			}
			c.warn(item, "health_checks: %s is ignored: Caddy checks upstreams over HTTP, with one check per route", kind)
			continue
		}
		a := &reverseproxy.ActiveHealthChecks{ExpectStatus: 200}
		for key, field := range map[string]*caddy.Duration{"interval": &a.Interval, "timeout": &a.Timeout} {
			if v, ok := m[key]; ok {
				d, err := time.ParseDuration(fmt.Sprint(v))
				if err != nil {
					return nil, c.errf(item, "health_checks: %s: %q is not a duration such as 5s", key, fmt.Sprint(v))
				}
				*field = caddy.Duration(d)
			}
		}
		for key, field := range map[string]*int{"healthythreshold": &a.Passes, "unhealthythreshold": &a.Fails} {
			if v, ok := m[key]; ok {
				if vm, ok := v.(map[string]any); ok { // {value: 3}
					v = vm["value"]
				}
				i, err := strconv.Atoi(fmt.Sprint(v))
				if err != nil || i < 0 {
					return nil, c.errf(item, "health_checks: %s: %q is not a whole number", key, fmt.Sprint(v))
				}
				*field = i
			}
		}
		hc := normalizeKeys(httpCheck)
		path, _ := hc["path"].(string)
		if path == "" {
			path = "/"
		}
		if !strings.HasPrefix(path, "/") {
			return nil, c.errf(item, "health_checks: http_health_check path %q is not a path", path)
		}
		a.URI = path
		if host, _ := hc["host"].(string); host != "" {
			a.Headers = http.Header{"Host": {host}}
		}
		if list, ok := hc["expectedstatuses"].([]any); ok && len(list) > 0 {
			// Envoy's ranges are [start, end); Caddy expects one code or
			// one class (2 for 2xx).
			r, _ := list[0].(map[string]any)
			start, err1 := strconv.Atoi(fmt.Sprint(r["start"]))
			end, err2 := strconv.Atoi(fmt.Sprint(r["end"]))
			switch {
			case err1 != nil || err2 != nil || len(list) > 1:
				return nil, c.errf(item, "health_checks: expected_statuses: one range {start, end} of one status or one class (such as 200-201 or 200-300) is supported")
			case end == start+1:
				a.ExpectStatus = start
			case start%100 == 0 && end == start+100:
				a.ExpectStatus = start / 100
			default:
				return nil, c.errf(item, "health_checks: expected_statuses: [%d, %d) is neither one status nor one class", start, end)
			}
		}
		active = a
	}
	if active == nil {
		return nil, nil
	}
	return &reverseproxy.HealthChecks{Active: active}, nil
}

// normalizeKeys returns m with its keys in lower case without
// underscores, so that protojson's camelCase and the proto's snake_case
// names read alike.
func normalizeKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[strings.ToLower(strings.ReplaceAll(k, "_", ""))] = v
	}
	return out
}
