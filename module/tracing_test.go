package module

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// validateJSON provisions and validates a config as `caddy validate` does.
func validateJSON(t *testing.T, cfg string) error {
	t.Helper()
	var c caddy.Config
	if err := caddy.StrictUnmarshalJSON([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&c)
}

const tracedServer = `"http": {"servers": {"s": {"listen": ["127.0.0.1:0"], "routes": [{"handle": [{"handler": "iap_tracing"}, {"handler": "static_response"}]}]}}}`

// iap_tracing without the app's tracing settings is refused at validate,
// saying where the settings go; with them, the config validates, and the
// token of a header placeholder is read from the environment then.
func TestTracingHandlerNeedsTheAppsSettings(t *testing.T) {
	err := validateJSON(t, `{"apps": {`+tracedServer+`}}`)
	if err == nil || !strings.Contains(err.Error(), "the iap app has no tracing settings: add tracing { endpoint ... } to the global iap option") {
		t.Errorf("no iap app: %v", err)
	}
	err = validateJSON(t, `{"apps": {"iap": {}, `+tracedServer+`}}`)
	if err == nil || !strings.Contains(err.Error(), "the iap app has no tracing settings") {
		t.Errorf("an iap app without tracing: %v", err)
	}
	t.Setenv("IAP_TEST_OTLP_TOKEN", "token-from-env")
	if err := validateJSON(t, `{"apps": {"iap": {"tracing": {"endpoint": "http://127.0.0.1:9", "headers": {"Authorization": "Bearer {env.IAP_TEST_OTLP_TOKEN}"}}}, `+tracedServer+`}}`); err != nil {
		t.Errorf("with tracing: %v", err)
	}
	err = validateJSON(t, `{"apps": {"iap": {"tracing": {"headers": {"Authorization": "Bearer {env.IAP_TEST_UNSET_TOKEN}"}}}, `+tracedServer+`}}`)
	if err == nil || !strings.Contains(err.Error(), "iap: tracing: headers: Authorization") {
		t.Errorf("an unset variable in a header: %v", err)
	}
	err = validateJSON(t, `{"apps": {"iap": {"tracing": {"sampler_arg": -0.5}}, `+tracedServer+`}}`)
	if err == nil || !strings.Contains(err.Error(), "iap: tracing: sampler_arg: -0.5 is not between 0 and 1") {
		t.Errorf("a negative sampler_arg in JSON: %v", err)
	}
}

// log_level raises the least level of the iap.tracing logs: at error, the
// provision's info line is gone and a refused export is still logged,
// with the collector's answer; at debug (under a debug Caddy) each export
// is logged too.
func TestTracingLogLevel(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Fail") != "" {
			http.Error(w, "refused by the test collector", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	for _, tc := range []struct {
		level, fail string
		want, not   []string
	}{
		{"error", "yes", []string{"exporting spans failed; they are dropped"}, []string{"tracing", "exported spans"}},
		{"debug", "", []string{"tracing", "exported spans"}, []string{"exporting spans failed; they are dropped"}},
	} {
		t.Run(tc.level, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			tr := &Tracing{Endpoint: collector.URL, LogLevel: tc.level, Headers: map[string]string{"X-Fail": tc.fail}}
			if tc.fail == "" {
				tr.Headers = nil
			}
			if err := tr.validate(); err != nil {
				t.Fatal(err)
			}
			tp, err := tr.newProvider(zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "one")
			span.End()
			if err := tp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range logs.All() {
				got = append(got, e.Message)
				if e.Message == "exporting spans failed; they are dropped" && !strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "400") {
					t.Errorf("the failure lacks the collector's answer: %v", e.ContextMap())
				}
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("logs %q lack %q", got, w)
				}
			}
			for _, n := range tc.not {
				if slices.Contains(got, n) {
					t.Errorf("logs %q have %q", got, n)
				}
			}
		})
	}
}
