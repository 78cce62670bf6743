package pomerium

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/module"
)

// adaptTracing adapts src with env and returns the iap app's tracing and
// the main server's routes' first handlers.
func adaptTracing(t *testing.T, src string, env ...string) (*module.Tracing, []string, string, error) {
	t.Helper()
	out, warnings, err := adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, envOf(env...))
	if err != nil {
		return nil, nil, fmt.Sprint(warnings), err
	}
	var cfg struct {
		Apps struct {
			IAP struct {
				Tracing *module.Tracing `json:"tracing"`
			} `json:"iap"`
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []map[string]any `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var first []string
	for _, r := range cfg.Apps.HTTP.Servers["pomerium"].Routes {
		first = append(first, fmt.Sprint(r.Handle[0]["handler"]))
	}
	return cfg.Apps.IAP.Tracing, first, fmt.Sprint(warnings), nil
}

const tracedRoute = "routes:\n  - from: https://app.example.com\n    to: http://127.0.0.1:9\n    allow_public_unauthenticated_access: true\n"

// The otel_* settings become the iap app's tracing as Pomerium reads them,
// and an iap_tracing route goes after the health checks, before the routes.
func TestOtelSettingsBecomeTracing(t *testing.T) {
	one := func(f float64) *float64 { return &f }
	for _, tc := range []struct {
		name, src string
		env       []string
		want      module.Tracing
	}{
		{"the general endpoint over HTTP gets /v1/traces", "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: http://collector:4318\n", nil,
			module.Tracing{Endpoint: "http://collector:4318/v1/traces", Protocol: "http/protobuf"}},
		{"port 4317 is grpc (Pomerium's guess)", "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: http://collector:4317\n", nil,
			module.Tracing{Endpoint: "http://collector:4317", Protocol: "grpc"}},
		{"a general endpoint with a path is grpc (Pomerium's guess)", "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: https://collector/otlp\n", nil,
			module.Tracing{Endpoint: "https://collector/otlp", Protocol: "grpc"}},
		{"the traces endpoint is taken as written and wins", "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: http://a:4317\notel_exporter_otlp_traces_endpoint: https://b/custom/traces\n", nil,
			module.Tracing{Endpoint: "https://b/custom/traces", Protocol: "http/protobuf"}},
		{"traces_ settings win over the general ones", `otel_traces_exporter: otlp
otel_exporter_otlp_endpoint: http://c:9000
otel_exporter_otlp_protocol: http/protobuf
otel_exporter_otlp_traces_protocol: grpc
otel_exporter_otlp_headers: [a=1]
otel_exporter_otlp_traces_headers: [b=2, "Authorization=Basic eDp5"]
otel_exporter_otlp_timeout: 1000
otel_exporter_otlp_traces_timeout: 2500
`, nil, module.Tracing{Endpoint: "http://c:9000", Protocol: "grpc", Headers: map[string]string{"b": "2", "Authorization": "Basic eDp5"}, Timeout: 2500e6}},
		{"sampler, batching, limits and resource", `otel_traces_exporter: otlp
otel_exporter_otlp_endpoint: http://c:4318
otel_traces_sampler_arg: 0.25
otel_bsp_schedule_delay: 50
otel_bsp_max_export_batch_size: 0
otel_attribute_value_length_limit: 10
otel_resource_attributes: [service.name=edge, deployment.environment=prod]
otel_log_level: ERROR
`, nil, module.Tracing{Endpoint: "http://c:4318/v1/traces", Protocol: "http/protobuf", SamplerArg: one(0.25), ScheduleDelay: 100e6,
			MaxExportBatchSize: 1, AttributeValueLengthLimit: 64, ResourceAttributes: map[string]string{"service.name": "edge", "deployment.environment": "prod"}, LogLevel: "error"}},
		{"OpenTelemetry's environment variables, which Pomerium binds", "",
			[]string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://env:4318", "OTEL_RESOURCE_ATTRIBUTES=service.name=from-env,team=a",
				"OTEL_EXPORTER_OTLP_HEADERS=x-token=abc,x-tenant=t1", "OTEL_TRACES_SAMPLER_ARG=1"},
			module.Tracing{Endpoint: "http://env:4318/v1/traces", Protocol: "http/protobuf", SamplerArg: one(1),
				ResourceAttributes: map[string]string{"service.name": "from-env", "team": "a"}, Headers: map[string]string{"x-token": "abc", "x-tenant": "t1"}}},
		{"a sampler above 1 is 1, with a warning", "otel_traces_exporter: otlp\notel_traces_sampler_arg: 5\n", nil,
			module.Tracing{Protocol: "", SamplerArg: one(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, first, warnings, err := adaptTracing(t, tc.src+tracedRoute, tc.env...)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatalf("no tracing (warnings %s)", warnings)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			if string(g) != string(w) {
				t.Errorf("tracing\n got %s\nwant %s", g, w)
			}
			// The health checks' route (vars, then its subroute) is first
			// and terminal; iap_tracing comes before every route.
			i := slices.Index(first, "iap_tracing")
			if i < 1 || first[0] != "vars" || !slices.Contains(first[i+1:], "subroute") || slices.Contains(first[1:i], "subroute") {
				t.Errorf("the routes' first handlers are %v, want the health checks, then iap_tracing before the routes", first)
			}
		})
	}
}

// Without otel_traces_exporter: otlp nothing is traced, as in Pomerium;
// settings that would then do nothing are named in a warning.
func TestOtelSettingsWithoutExporter(t *testing.T) {
	for _, tc := range []struct{ name, src, warn string }{
		{"no exporter", "otel_exporter_otlp_endpoint: http://c:4318\n", "otel_exporter_otlp_endpoint: ignored: otel_traces_exporter is not set"},
		{"exporter none", "otel_traces_exporter: none\notel_exporter_otlp_endpoint: http://c:4318\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, first, warnings, err := adaptTracing(t, tc.src+tracedRoute)
			if err != nil || got != nil || slices.Contains(first, "iap_tracing") {
				t.Fatalf("got %+v %v %v", got, first, err)
			}
			if tc.warn != "" && !strings.Contains(warnings, tc.warn) {
				t.Errorf("warnings %s lack %q", warnings, tc.warn)
			}
		})
	}
	got, _, warnings, err := adaptTracing(t, "otel_traces_exporter: otlp\n"+tracedRoute, "OTEL_SDK_DISABLED=true")
	if err != nil || got != nil || !strings.Contains(warnings, "OTEL_SDK_DISABLED") {
		t.Errorf("OTEL_SDK_DISABLED=true: %+v %s %v", got, warnings, err)
	}
}

// A bad otel_* value is an error at adapt that names its line (or its
// environment variable) and what is wrong, never a tracer that fails at
// run time.
func TestBadOtelSettingsAreErrorsWithTheirLine(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		env       []string
		want      string
	}{
		{"an exporter Pomerium does not know", "otel_traces_exporter: zipkin\n", nil, `config.yaml:1: otel_traces_exporter: "zipkin" is not otlp or none`},
		{"http/json", "otel_traces_exporter: otlp\notel_exporter_otlp_protocol: http/json\n", nil, `config.yaml:2: otel_exporter_otlp_protocol: "http/json" is not grpc or http/protobuf`},
		{"an endpoint without a scheme", "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: collector:4317\n", nil, `config.yaml:2: otel_exporter_otlp_endpoint: "collector:4317" is not a URL`},
		{"a sampler that is not a number", "otel_traces_exporter: otlp\notel_traces_sampler_arg: half\n", nil, `config.yaml:2: otel_traces_sampler_arg: "half" is not a number`},
		{"a timeout in Go's form", "otel_traces_exporter: otlp\notel_exporter_otlp_timeout: 10s\n", nil, "config.yaml:2: otel_exporter_otlp_timeout: \"10s\" is not a whole number of milliseconds"},
		{"a zero timeout", "otel_traces_exporter: otlp\notel_exporter_otlp_traces_timeout: 0\n", nil, "config.yaml:2: otel_exporter_otlp_traces_timeout: must be a positive number of milliseconds"},
		{"a header without =", "otel_traces_exporter: otlp\notel_exporter_otlp_headers:\n  - Authorization Basic eDp5\n", nil, `config.yaml:3: otel_exporter_otlp_headers: "Authorization Basic eDp5" is not key=value`},
		{"a header name with a space", "otel_traces_exporter: otlp\notel_exporter_otlp_headers: [\"bad name=x\"]\n", nil, `headers: "bad name" is not a header name`},
		{"a header value with a line break", "otel_traces_exporter: otlp\notel_exporter_otlp_headers: [\"x=a\\r\\nInjected: 1\"]\n", nil, "line break or control character"},
		{"a resource attribute without =", "otel_traces_exporter: otlp\notel_resource_attributes: service.name\n", nil, `config.yaml:2: otel_resource_attributes: "service.name" is not key=value`},
		{"a batch size that is not a number", "otel_traces_exporter: otlp\notel_bsp_max_export_batch_size: many\n", nil, `config.yaml:2: otel_bsp_max_export_batch_size: "many" is not a whole number`},
		{"a log level", "otel_traces_exporter: otlp\notel_log_level: loud\n", nil, `config.yaml:2: otel_log_level: "loud" is not debug, info, warn or error`},
		{"a list where one value goes", "otel_traces_exporter: otlp\notel_exporter_otlp_endpoint: [a, b]\n", nil, "config.yaml:2: otel_exporter_otlp_endpoint takes a single value"},
		{"a bad protocol from the environment", "otel_traces_exporter: otlp\n", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=udp"}, `the environment variable OTEL_EXPORTER_OTLP_PROTOCOL: otel_exporter_otlp_protocol: "udp" is not grpc or http/protobuf`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := adaptTracing(t, tc.src+tracedRoute, tc.env...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
