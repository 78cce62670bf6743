package pomerium

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/internal/suggest"
	"github.com/caddy-iap/caddy-iap/module"
)

// Envoy's defaults for the outlier detection fields that are mapped.
const (
	defaultConsecutive5xx   = 5
	defaultBaseEjectionTime = 30 * time.Second
	defaultPanicThreshold   = 50
)

// fields are the fields of a Pomerium (or Envoy) structure by their
// snake_case names: each one's value node.
type fields map[string]*yaml.Node

// readFields reads a mapping whose field names are the snake_case names in
// known (protojson's camelCase spellings are accepted too, as Pomerium
// decodes these with protojson). An unknown field is an error naming it;
// a null value counts as unset.
func (c *converter) readFields(n *yaml.Node, setting string, known []string) (fields, error) {
	if n.Kind != yaml.MappingNode {
		return nil, c.errf(n, "%s is a mapping of %s", setting, strings.Join(known, ", "))
	}
	byNorm := map[string]string{}
	for _, k := range known {
		byNorm[strings.ReplaceAll(k, "_", "")] = k
	}
	out := fields{}
	for _, kv := range pairs(n) {
		name, ok := byNorm[strings.ToLower(strings.ReplaceAll(kv[0].Value, "_", ""))]
		if !ok {
			hint := suggest.DidYouMean(strings.ToLower(kv[0].Value), known)
			return nil, c.errf(kv[0], "%s: unknown field %q%s", setting, kv[0].Value, hint)
		}
		if _, dup := out[name]; dup {
			return nil, c.errf(kv[0], "%s: %s is set twice", setting, name)
		}
		if kv[1].Tag == "!!null" {
			continue
		}
		out[name] = kv[1]
	}
	return out, nil
}

// shown is a value for an error message: a scalar quoted, else its kind.
func shown(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "this value"
}

// uint32Field reads a whole number from 0 to 4294967295 (protobuf's
// UInt32Value: a number, or a number in a string, or {value: n}).
func (c *converter) uint32Field(setting, key string, n *yaml.Node) (int64, error) {
	if n.Kind == yaml.MappingNode {
		for _, kv := range pairs(n) {
			if kv[0].Value == "value" {
				n = kv[1]
			}
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || v > math.MaxUint32 {
		return 0, c.errf(n, "%s: %s: %s is not a whole number from 0 to 4294967295", setting, key, shown(n))
	}
	return v, nil
}

// durationField reads a duration such as 30s (protobuf's Duration, which
// Go's 1m30s spelling also reads as).
func (c *converter) durationField(setting, key string, n *yaml.Node) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || err != nil || d < 0 {
		return 0, c.errf(n, "%s: %s: %s is not a duration such as 30s", setting, key, shown(n))
	}
	return d, nil
}

// boolField reads true or false (also protobuf's BoolValue, {value: b}).
func (c *converter) boolField(setting, key string, n *yaml.Node) (bool, error) {
	if n.Kind == yaml.MappingNode {
		for _, kv := range pairs(n) {
			if kv[0].Value == "value" {
				n = kv[1]
			}
		}
	}
	b, err := strconv.ParseBool(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || err != nil {
		return false, c.errf(n, "%s: %s: %s is not true or false", setting, key, shown(n))
	}
	return b, nil
}

// circuitBreakerFields are Pomerium's CircuitBreakerThresholds.
var circuitBreakerFields = []string{"max_connections", "max_pending_requests", "max_requests", "max_retries", "max_connection_pools"}

// circuitBreakers reads a circuit_breaker_thresholds mapping (global or a
// route's) and returns its fields.
func (c *converter) circuitBreakers(n *yaml.Node) (fields, error) {
	f, err := c.readFields(n, "circuit_breaker_thresholds", circuitBreakerFields)
	if err != nil {
		return nil, err
	}
	for _, k := range circuitBreakerFields {
		if v := f[k]; v != nil {
			if _, err := c.uint32Field("circuit_breaker_thresholds", k, v); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// applyCircuitBreakers maps the route's circuit_breaker_thresholds, each
// field over the global one's as Pomerium merges them (envoyconfig
// buildRouteCircuitBreakers), onto the proxy: max_requests becomes the
// passive health check's unhealthy_request_count (an upstream with that
// many requests under way takes no more; with none free the request gets
// 503, as Envoy's overflow), max_connections the transport's
// max_conns_per_host (further requests wait for a connection, as in
// Envoy's pending queue). Envoy counts both for the route's upstreams
// together, Caddy for each upstream: with several upstreams that is a
// warning.
func (c *converter) applyCircuitBreakers(route fields, rp *reverseproxy.Handler, transport *reverseproxy.HTTPTransport) error {
	merged := fields{}
	for k, v := range c.circuitBreakerDefaults {
		merged[k] = v
	}
	for k, v := range route {
		merged[k] = v
	}
	upstreams := len(rp.Upstreams)
	// A global field is merged into every route: its warning is given once.
	warn := func(v *yaml.Node, format string, args ...any) {
		key := fmt.Sprintf("%p %s", v, fmt.Sprintf(format, args...))
		if c.warnedOnce[key] {
			return
		}
		if c.warnedOnce == nil {
			c.warnedOnce = map[string]bool{}
		}
		c.warnedOnce[key] = true
		c.warn(v, format, args...)
	}
	for _, k := range circuitBreakerFields {
		v := merged[k]
		if v == nil {
			continue
		}
		n, err := c.uint32Field("circuit_breaker_thresholds", k, v)
		if err != nil {
			return err
		}
		switch k {
		case "max_requests", "max_connections":
			if n == 0 {
				return c.errf(v, "circuit_breaker_thresholds: %s: 0 refuses every request of the route (in Envoy too); remove the route, or set a limit of 1 or more", k)
			}
			if n >= math.MaxInt32 {
				// Pomerium's "unlimited" (Envoy's maximum): no limit.
				continue
			}
			if k == "max_requests" {
				if rp.HealthChecks == nil {
					rp.HealthChecks = new(reverseproxy.HealthChecks)
				}
				if rp.HealthChecks.Passive == nil {
					rp.HealthChecks.Passive = new(reverseproxy.PassiveHealthChecks)
				}
				rp.HealthChecks.Passive.UnhealthyRequestCount = int(n)
			} else {
				transport.MaxConnsPerHost = int(n)
			}
			if upstreams > 1 {
				warn(v, "circuit_breaker_thresholds: %s %d applies to each of the route's %d upstreams, not to them together as in Envoy", k, n, upstreams)
			}
		case "max_retries":
			// Neither Pomerium's routes nor these retry a request: there is
			// nothing to limit.
		case "max_pending_requests":
			warn(v, "circuit_breaker_thresholds: max_pending_requests is not applied: requests beyond max_connections wait for a connection without a limit on how many wait")
		case "max_connection_pools":
			warn(v, "circuit_breaker_thresholds: max_connection_pools is not applied: Caddy keeps one connection pool per upstream")
		}
	}
	return nil
}

// outlierFields are Envoy's OutlierDetection fields that Pomerium reads.
var outlierFields = []string{"consecutive_5xx", "interval", "base_ejection_time", "max_ejection_percent",
	"enforcing_consecutive_5xx", "enforcing_success_rate", "success_rate_minimum_hosts", "success_rate_request_volume",
	"success_rate_stdev_factor", "consecutive_gateway_failure", "enforcing_consecutive_gateway_failure",
	"split_external_local_origin_errors", "consecutive_local_origin_failure", "enforcing_consecutive_local_origin_failure",
	"enforcing_local_origin_success_rate", "failure_percentage_threshold", "enforcing_failure_percentage",
	"enforcing_failure_percentage_local_origin", "failure_percentage_minimum_hosts", "failure_percentage_request_volume",
	"max_ejection_time", "max_ejection_time_jitter", "successful_active_health_check_uneject_host", "always_eject_one_host"}

// outlierDetection maps a route's outlier_detection (Envoy's
// OutlierDetection) onto Caddy's passive health checks: an upstream that
// answers consecutive_5xx (default 5) 5xx responses, or fails to answer,
// within base_ejection_time (default 30s) is taken out of the route's load
// balancing until those failures are older than base_ejection_time.
//
// Caddy counts the failures within that window, where Envoy counts
// consecutive ones (a success resets Envoy's count); Caddy ejects at the
// failure that reaches the count, where Envoy does too for these detectors.
// Where max_ejection_percent lets Envoy eject no upstream of the route
// (its default 10% of fewer than 10), nothing is taken out here either,
// with a warning. The fields with no Caddy counterpart warn, naming the
// field.
func (c *converter) outlierDetection(n *yaml.Node, upstreams int) (*reverseproxy.PassiveHealthChecks, error) {
	const setting = "outlier_detection"
	f, err := c.readFields(n, setting, outlierFields)
	if err != nil {
		return nil, err
	}
	num := map[string]int64{}
	durs := map[string]time.Duration{}
	flags := map[string]bool{}
	for k, v := range f {
		switch {
		case strings.HasSuffix(k, "_time") || k == "interval" || k == "max_ejection_time_jitter":
			if durs[k], err = c.durationField(setting, k, v); err != nil {
				return nil, err
			}
		case k == "split_external_local_origin_errors" || k == "successful_active_health_check_uneject_host" || k == "always_eject_one_host":
			if flags[k], err = c.boolField(setting, k, v); err != nil {
				return nil, err
			}
		default:
			if num[k], err = c.uint32Field(setting, k, v); err != nil {
				return nil, err
			}
			if (strings.HasPrefix(k, "enforcing_") || k == "max_ejection_percent") && num[k] > 100 {
				num[k] = 100 // Envoy reads more than 100% as 100%
			}
		}
	}
	get := func(k string, dflt int64) int64 {
		if v, ok := num[k]; ok {
			return v
		}
		return dflt
	}

	// The consecutive 5xx detector, and the gateway failure one (502, 503,
	// 504), which Envoy leaves off unless enforcing_consecutive_gateway_failure
	// is set.
	count5xx, enforce5xx := get("consecutive_5xx", defaultConsecutive5xx), get("enforcing_consecutive_5xx", 100)
	countGW, enforceGW := get("consecutive_gateway_failure", 5), get("enforcing_consecutive_gateway_failure", 0)
	on5xx, onGW := count5xx > 0 && enforce5xx > 0, countGW > 0 && enforceGW > 0
	for _, e := range []struct {
		k  string
		on bool
	}{{"enforcing_consecutive_5xx", on5xx}, {"enforcing_consecutive_gateway_failure", onGW}} {
		if v, set := num[e.k]; set && e.on && v < 100 {
			c.warn(f[e.k], "%s: %s %d is applied as 100: Caddy takes out every upstream that reaches the count, not a share of them", setting, e.k, v)
		}
	}
	p := &reverseproxy.PassiveHealthChecks{FailDuration: caddy.Duration(defaultBaseEjectionTime)}
	switch {
	case on5xx:
		p.MaxFails, p.UnhealthyStatus = int(count5xx), []int{5}
		if onGW && countGW < count5xx {
			at := f["consecutive_gateway_failure"]
			if at == nil {
				at = f["enforcing_consecutive_gateway_failure"]
			}
			c.warn(at, "%s: consecutive_gateway_failure %d is not applied: Caddy counts one kind of failure, here the 5xx of consecutive_5xx (%d)", setting, countGW, count5xx)
		}
	case onGW:
		p.MaxFails, p.UnhealthyStatus = int(countGW), []int{502, 503, 504}
	default:
		c.warn(n, "%s takes no upstream out: consecutive_5xx and consecutive_gateway_failure are both off", setting)
		return nil, nil
	}
	if d, ok := durs["base_ejection_time"]; ok {
		if d <= 0 {
			return nil, c.errf(f["base_ejection_time"], "%s: base_ejection_time: 0s would take no upstream out; set a duration such as 30s", setting)
		}
		p.FailDuration = caddy.Duration(d)
	}

	// Envoy (since 1.28) ejects a host only while the ejected hosts,
	// counting it, are at most max_ejection_percent (default 10) of the
	// route's, or when none is and always_eject_one_host is set: with the
	// default, a route of fewer than 10 upstreams ejects none.
	pct := get("max_ejection_percent", 10)
	most := int(pct * int64(upstreams) / 100)
	if most == 0 && flags["always_eject_one_host"] {
		most = 1
	}
	at := n
	if v := f["max_ejection_percent"]; v != nil {
		at = v
	}
	switch {
	case most == 0:
		c.warn(at, "%s takes no upstream out, as in Envoy: max_ejection_percent %d%s of %d upstreams allows none; set max_ejection_percent (such as 100) or always_eject_one_host: true",
			setting, pct, map[bool]string{true: "", false: " (Envoy's default)"}[f["max_ejection_percent"] != nil], upstreams)
		return nil, nil
	case most < upstreams:
		c.warn(at, "%s: max_ejection_percent %d lets Envoy take out %d of the %d upstreams at most; Caddy may take out every one that fails (the healthy panic threshold then sends requests to all of them)",
			setting, pct, most, upstreams)
	}

	// What Caddy does not do, warned by name.
	if v := f["interval"]; v != nil {
		c.warn(v, "%s: interval is not used: an upstream taken out is back when its failures are older than base_ejection_time, with no sweep", setting)
	}
	for _, k := range []string{"max_ejection_time", "max_ejection_time_jitter"} {
		if v := f[k]; v != nil {
			c.warn(v, "%s: %s is not applied: each ejection lasts base_ejection_time; it does not grow with each one", setting, k)
		}
	}
	if v := f["successful_active_health_check_uneject_host"]; v != nil && flags["successful_active_health_check_uneject_host"] {
		c.warn(v, "%s: successful_active_health_check_uneject_host is not applied: a passing active health check does not bring back an upstream taken out here", setting)
	}
	if v := f["split_external_local_origin_errors"]; v != nil && flags["split_external_local_origin_errors"] {
		c.warn(v, "%s: split_external_local_origin_errors is not applied: connection failures and 5xx responses count together", setting)
	}
	for _, k := range outlierFields {
		v := f[k]
		if v == nil {
			continue
		}
		if strings.HasPrefix(k, "success_rate_") || strings.HasPrefix(k, "failure_percentage_") ||
			k == "enforcing_success_rate" || k == "enforcing_local_origin_success_rate" || strings.HasPrefix(k, "enforcing_failure_percentage") ||
			k == "consecutive_local_origin_failure" || k == "enforcing_consecutive_local_origin_failure" {
			if strings.HasPrefix(k, "enforcing_") && num[k] == 0 {
				continue // turned off: nothing asked
			}
			c.warn(v, "%s: %s is not applied: Caddy has no success-rate, failure-percentage or local-origin detection", setting, k)
		}
	}
	// Envoy's success-rate detection is on by default for routes of
	// success_rate_minimum_hosts (5) upstreams or more.
	if _, set := f["enforcing_success_rate"]; !set && upstreams >= int(get("success_rate_minimum_hosts", 5)) {
		c.warn(n, "%s: Envoy's success-rate detection (on by default for %d or more upstreams) is not done; set enforcing_success_rate: 0 to say so", setting, get("success_rate_minimum_hosts", 5))
	}
	return p, nil
}

// panicThreshold reads a route's healthy_panic_threshold: a percentage
// from 0 to 100; -1 when unset.
func (c *converter) panicThreshold(n *yaml.Node) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || v > 100 {
		return 0, c.errf(n, "healthy_panic_threshold: %s is not a percentage from 0 to 100", shown(n))
	}
	return v, nil
}

// healthPolicy applies the route's outlier_detection, circuit breakers and
// healthy panic threshold to its proxy, after health_checks and the
// load-balancing policy are set.
func (c *converter) healthPolicy(route map[string]*yaml.Node, rp *reverseproxy.Handler, transport *reverseproxy.HTTPTransport) error {
	// null is unset, as Pomerium decodes it.
	f := map[string]*yaml.Node{}
	for _, k := range []string{"outlier_detection", "circuit_breaker_thresholds", "healthy_panic_threshold"} {
		if v := route[k]; v != nil && v.Tag != "!!null" {
			f[k] = v
		}
	}
	if v := f["outlier_detection"]; v != nil {
		p, err := c.outlierDetection(v, len(rp.Upstreams))
		if err != nil {
			return err
		}
		if p != nil {
			if rp.HealthChecks == nil {
				rp.HealthChecks = new(reverseproxy.HealthChecks)
			}
			rp.HealthChecks.Passive = p
		}
	}
	var cb fields
	if v := f["circuit_breaker_thresholds"]; v != nil {
		var err error
		if cb, err = c.circuitBreakers(v); err != nil {
			return err
		}
	}
	if err := c.applyCircuitBreakers(cb, rp, transport); err != nil {
		return err
	}

	// Envoy's healthy panic threshold (50% unless the route sets one; 0
	// turns it off) matters only where upstreams can be unhealthy: with
	// health checks or outlier detection.
	threshold := defaultPanicThreshold
	if v := f["healthy_panic_threshold"]; v != nil {
		var err error
		if threshold, err = c.panicThreshold(v); err != nil {
			return err
		}
	}
	checked := rp.HealthChecks != nil && (rp.HealthChecks.Active != nil || rp.HealthChecks.Passive != nil && rp.HealthChecks.Passive.FailDuration > 0)
	if threshold == 0 || !checked {
		return nil
	}
	wrap := &module.HealthyPanic{Threshold: threshold}
	if rp.LoadBalancing == nil {
		// The route keeps reverse_proxy's default policy (random), which
		// is also the wrapper's.
		rp.LoadBalancing = new(reverseproxy.LoadBalancing)
	}
	wrap.PolicyRaw = rp.LoadBalancing.SelectionPolicyRaw
	rp.LoadBalancing.SelectionPolicyRaw = caddyconfig.JSONModuleObject(wrap, "policy", "iap_healthy_panic", nil)
	return nil
}

// globalCircuitBreakers reads the global circuit_breaker_thresholds, the
// defaults of every route's.
func (c *converter) globalCircuitBreakers(s settings) error {
	n := s.nodes["circuit_breaker_thresholds"]
	if n == nil || n.Tag == "!!null" {
		return nil
	}
	f, err := c.circuitBreakers(n)
	if err != nil {
		return err
	}
	c.circuitBreakerDefaults = f
	return nil
}
