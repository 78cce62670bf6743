package pomerium

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/module"
)

// otelScalars are the otel_* settings of one value; otelLists take a list
// of key=value strings (or one string of them separated by commas, as in
// their environment variables).
var (
	otelScalars = []string{"otel_traces_exporter", "otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint",
		"otel_exporter_otlp_protocol", "otel_exporter_otlp_traces_protocol", "otel_exporter_otlp_timeout",
		"otel_exporter_otlp_traces_timeout", "otel_traces_sampler_arg", "otel_bsp_schedule_delay",
		"otel_bsp_max_export_batch_size", "otel_attribute_value_length_limit", "otel_log_level"}
	otelLists = []string{"otel_resource_attributes", "otel_exporter_otlp_headers", "otel_exporter_otlp_traces_headers"}
)

// Pomerium's bounds (otelconfig, envoyconfig): a batch waits at least
// 100ms and holds at least one span; attribute values are cut at 64 to
// 32768 characters.
const (
	minScheduleDelay  = 100 * time.Millisecond
	minAttributeLimit = 64
	maxAttributeLimit = 32768
)

// tracing maps the otel_* settings onto the iap app's tracing, as
// Pomerium reads them (pkg/telemetry/trace NewTraceClientFromConfig,
// envoyconfig): tracing is on with otel_traces_exporter: otlp only; the
// traces_ form of each exporter setting wins over the general one; the
// protocol, when unset, is guessed from the endpoint; durations are
// integer milliseconds. nil: no tracing.
func (c *converter) tracing(s settings) (*module.Tracing, error) {
	var set []string
	for _, key := range append(append([]string{}, otelScalars...), otelLists...) {
		if _, ok := s.value(key); ok || s.nodes[key] != nil {
			set = append(set, key)
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	exporter, _ := s.value("otel_traces_exporter")
	switch strings.ToLower(strings.TrimSpace(exporter)) {
	case "otlp":
	case "", "none", "noop":
		if strings.TrimSpace(exporter) == "" {
			c.warn(c.otelNode(s, set[0]), "%s: ignored: otel_traces_exporter is not set, so nothing is traced (as in Pomerium); set it to otlp", strings.Join(set, ", "))
		}
		return nil, nil
	default:
		return nil, c.otelErr(s, "otel_traces_exporter", "%q is not otlp or none", exporter)
	}
	if v, _ := c.env("OTEL_SDK_DISABLED"); strings.TrimSpace(v) == "true" {
		c.warn(nil, "otel_* settings ignored: the environment variable OTEL_SDK_DISABLED is true, so nothing is traced (as in Pomerium)")
		return nil, nil
	}
	t := new(module.Tracing)

	endpointKey, specific := "otel_exporter_otlp_traces_endpoint", true
	endpoint, ok := s.value(endpointKey)
	if !ok {
		endpointKey, specific = "otel_exporter_otlp_endpoint", false
		endpoint, _ = s.value(endpointKey)
	}
	endpoint = strings.TrimSpace(endpoint)
	protocolKey := "otel_exporter_otlp_traces_protocol"
	protocol, ok := s.value(protocolKey)
	if !ok {
		protocolKey = "otel_exporter_otlp_protocol"
		protocol, _ = s.value(protocolKey)
	}
	protocol = strings.ToLower(strings.TrimSpace(protocol))
	if protocol == "" {
		protocol = guessProtocol(endpoint, specific)
	}
	switch protocol {
	case "grpc", "http/protobuf", "":
		t.Protocol = protocol
	default:
		return nil, c.otelErr(s, protocolKey, "%q is not grpc or http/protobuf", protocol)
	}
	if endpoint == "" {
		c.warn(nil, "otel_traces_exporter is otlp and no otel_exporter_otlp_endpoint is set: spans go to OpenTelemetry's default, http://localhost:4318/v1/traces (grpc: http://localhost:4317)")
	} else {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, c.otelErr(s, endpointKey, "%q is not a URL such as http://collector:4318 (with http:// or https://)", endpoint)
		}
		if !specific && t.Protocol != "grpc" {
			// The general endpoint is the collector's base URL; traces
			// go to /v1/traces under it (OpenTelemetry's rule).
			u.Path = path.Join("/", u.Path, "v1/traces")
		}
		t.Endpoint = u.String()
	}

	var err error
	if t.Headers, err = c.otelPairs(s, "otel_exporter_otlp_traces_headers", "otel_exporter_otlp_headers"); err != nil {
		return nil, err
	}
	if t.ResourceAttributes, err = c.otelPairs(s, "otel_resource_attributes"); err != nil {
		return nil, err
	}
	for _, key := range []string{"otel_exporter_otlp_traces_timeout", "otel_exporter_otlp_timeout"} {
		if d, ok, err := c.otelMillis(s, key); err != nil {
			return nil, err
		} else if ok {
			if d <= 0 {
				return nil, c.otelErr(s, key, "must be a positive number of milliseconds")
			}
			t.Timeout = caddy.Duration(d)
			break
		}
	}
	if d, ok, err := c.otelMillis(s, "otel_bsp_schedule_delay"); err != nil {
		return nil, err
	} else if ok {
		t.ScheduleDelay = caddy.Duration(max(d, minScheduleDelay))
	}
	if n, ok, err := c.otelInt(s, "otel_bsp_max_export_batch_size"); err != nil {
		return nil, err
	} else if ok {
		t.MaxExportBatchSize = max(n, 1)
	}
	if n, ok, err := c.otelInt(s, "otel_attribute_value_length_limit"); err != nil {
		return nil, err
	} else if ok {
		t.AttributeValueLengthLimit = max(minAttributeLimit, min(maxAttributeLimit, n))
	}
	if v, ok := s.value("otel_traces_sampler_arg"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f != f {
			return nil, c.otelErr(s, "otel_traces_sampler_arg", "%q is not a number from 0 to 1", v)
		}
		if f < 0 || f > 1 {
			c.warn(c.otelNode(s, "otel_traces_sampler_arg"), "otel_traces_sampler_arg: %v is taken as %v (the share of requests traced is from 0 to 1)", f, max(0, min(1, f)))
			f = max(0, min(1, f))
		}
		t.SamplerArg = &f
	}
	if v, ok := s.value("otel_log_level"); ok {
		t.LogLevel = strings.ToLower(strings.TrimSpace(v))
		if err := (module.Tracing{LogLevel: t.LogLevel}).Check(); err != nil {
			return nil, c.otelErr(s, "otel_log_level", "%q is not debug, info, warn or error", v)
		}
	}
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("%s: otel_* settings: %v", c.file, err)
	}
	return t, nil
}

// guessProtocol is Pomerium's guess of the OTLP protocol from the endpoint
// (BestEffortProtocolFromOTLPEndpoint): port 4318 is http/protobuf, 4317
// grpc; otherwise a path means http/protobuf for the traces endpoint and
// grpc for the general one, and no path the reverse.
func guessProtocol(endpoint string, specific bool) string {
	if endpoint == "" {
		return ""
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	switch u.Port() {
	case "4318":
		return "http/protobuf"
	case "4317":
		return "grpc"
	}
	if hasPath := strings.Trim(u.Path, "/") != ""; hasPath == specific {
		return "http/protobuf"
	}
	return "grpc"
}

// otelNode is the YAML node of a setting, nil when it came from the
// environment.
func (c *converter) otelNode(s settings, key string) *yaml.Node {
	if _, ok := c.env(strings.ToUpper(key)); ok {
		return nil
	}
	if n := s.scalar[key]; n != nil {
		return n
	}
	return s.nodes[key]
}

// otelErr is an error about a setting, naming its line, or its
// environment variable.
func (c *converter) otelErr(s settings, key, format string, args ...any) error {
	msg := key + ": " + fmt.Sprintf(format, args...)
	if n := c.otelNode(s, key); n != nil {
		return c.errf(n, "%s", msg)
	}
	return fmt.Errorf("%s: the environment variable %s: %s", c.file, strings.ToUpper(key), msg)
}

// otelMillis reads a duration as Pomerium does: whole milliseconds.
func (c *converter) otelMillis(s settings, key string) (time.Duration, bool, error) {
	n, ok, err := c.otelInt(s, key)
	if err != nil || !ok {
		return 0, ok, err
	}
	return time.Duration(n) * time.Millisecond, true, nil
}

// otelInt reads a whole number.
func (c *converter) otelInt(s settings, key string) (int, bool, error) {
	v, ok := s.value(key)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		unit := ""
		if strings.Contains(key, "timeout") || strings.Contains(key, "delay") {
			unit = " of milliseconds (Pomerium reads these as integer milliseconds, e.g. 10000 for 10s)"
		}
		return 0, false, c.otelErr(s, key, "%q is not a whole number%s", v, unit)
	}
	return n, true, nil
}

// otelPairs reads the first of keys that is set: key=value strings, as a
// list or separated by commas. Values are taken as written (Pomerium does
// not percent-decode them).
func (c *converter) otelPairs(s settings, keys ...string) (map[string]string, error) {
	for _, key := range keys {
		n := s.nodes[key]
		if n == nil {
			continue
		}
		var items []string
		switch n.Kind {
		case yaml.ScalarNode:
			items = strings.Split(n.Value, ",")
		case yaml.SequenceNode:
			if err := n.Decode(&items); err != nil {
				return nil, c.otelErr(s, key, "a list of key=value strings")
			}
		default:
			return nil, c.otelErr(s, key, "a list of key=value strings")
		}
		out := map[string]string{}
		for _, item := range items {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			k, v, ok := strings.Cut(item, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, c.otelErr(s, key, "%q is not key=value", item)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		return out, nil
	}
	return nil, nil
}

// tracingRoute is the server's route that traces every request after the
// health checks: iap_tracing, not terminal, so that the routes after it
// run inside its span.
func tracingRoute() caddyhttp.Route {
	return caddyhttp.Route{HandlersRaw: []json.RawMessage{json.RawMessage(`{"handler":"iap_tracing"}`)}}
}
