package module

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
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
