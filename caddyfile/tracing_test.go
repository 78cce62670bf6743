package caddyfile_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The global iap option's tracing block becomes the iap app's tracing, the
// same struct the Pomerium adapter fills, and iap_tracing goes first in
// the site, before iap_mtls and the route.
func TestTracingBlock(t *testing.T) {
	out, err := adapt(t, `{
	iap {
		tracing {
			endpoint https://collector.example.com:4317
			protocol grpc
			header Authorization "Bearer {env.OTLP_TOKEN}"
			header X-Tenant edge
			timeout 5s
			resource_attribute service.name edge-proxy
			sampler_arg 0.1
			schedule_delay 1s
			max_export_batch_size 100
			attribute_value_length_limit 256
			log_level error
		}
	}
}
app.example.com {
	iap_route {
		to http://127.0.0.1:9
		allow_public_unauthenticated_access
	}
	iap_tracing {
		span "{http.request.method} app"
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			IAP struct {
				Tracing json.RawMessage `json:"tracing"`
			} `json:"iap"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	want := `{"endpoint":"https://collector.example.com:4317","protocol":"grpc","headers":{"Authorization":"Bearer {env.OTLP_TOKEN}","X-Tenant":"edge"},"timeout":5000000000,"resource_attributes":{"service.name":"edge-proxy"},"sampler_arg":0.1,"schedule_delay":1000000000,"max_export_batch_size":100,"attribute_value_length_limit":256,"log_level":"error"}`
	if string(cfg.Apps.IAP.Tracing) != want {
		t.Errorf("tracing\n got %s\nwant %s", cfg.Apps.IAP.Tracing, want)
	}
	tracing := strings.Index(out, `"handler":"iap_tracing","span":"{http.request.method} app"`)
	route := strings.Index(out, `"iap_authenticate"`)
	if tracing < 0 || route < 0 || tracing > route {
		t.Errorf("iap_tracing is not first in the site:\n%s", out)
	}
}

// Bad tracing settings are errors at adapt naming the Caddyfile line.
func TestTracingBlockErrors(t *testing.T) {
	for _, tc := range []struct{ name, option, want string }{
		{"a sampler above 1", "sampler_arg 2", `tracing sampler_arg takes a number from 0 to 1, got "2", at Caddyfile:4`},
		{"http/json", "protocol http/json", "tracing: protocol: http/json is not supported by OpenTelemetry's Go exporter; use http/protobuf or grpc, at Caddyfile:5"},
		{"an endpoint without a scheme", "endpoint localhost:4317", `tracing: endpoint: "localhost:4317" is not a collector's URL`},
		{"an endpoint with credentials", "endpoint https://user:pw@collector", "no user, query or fragment"},
		{"a header without a value", "header Authorization", "header takes a name and a value, at Caddyfile:4"},
		{"a header value with a control character", "header X-A \"a\x01b\"", "line break or control character"},
		{"a timeout that is no duration", "timeout soon", `tracing timeout takes a positive duration such as 10s, got "soon"`},
		{"a batch size of 0", "max_export_batch_size 0", "tracing max_export_batch_size takes a positive whole number"},
		{"a log level", "log_level loud", `tracing: log_level: "loud" is not debug, info, warn or error`},
		{"an unknown option", "exporter zipkin", `unrecognized tracing option "exporter"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, "{\n\tiap {\n\t\ttracing {\n\t\t\t"+tc.option+"\n\t\t}\n\t}\n}\napp.example.com {\n\trespond ok\n}")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	_, err := adapt(t, "app.example.com {\n\tiap_tracing {\n\t\tendpoint http://c\n\t}\n}")
	if err == nil || !strings.Contains(err.Error(), "the collector and sampler are set in the global iap option's tracing block") {
		t.Errorf("iap_tracing with a collector setting: %v", err)
	}
}
