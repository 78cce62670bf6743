package module

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// The Caddyfile form: a threshold, then the wrapped policy with its own
// arguments; mistakes name the option.
func TestHealthyPanicCaddyfile(t *testing.T) {
	for _, c := range []struct{ name, src, want, err string }{
		{"a threshold and a policy", "iap_healthy_panic 30 {\n policy round_robin\n}", `{"threshold":30,"selection_policy":{"policy":"round_robin"}}`, ""},
		{"a policy with its own options", "iap_healthy_panic {\n policy cookie lb s3cret\n}", `{"selection_policy":{"name":"lb","policy":"cookie","secret":"s3cret"}}`, ""},
		{"nothing: Envoy's default, around random", "iap_healthy_panic", `{}`, ""},
		{"a threshold of 0", "iap_healthy_panic 0", "", `threshold "0" is not a percentage from 1 to 100`},
		{"a threshold over 100", "iap_healthy_panic 101", "", `threshold "101" is not a percentage`},
		{"a threshold that is a word", "iap_healthy_panic half", "", `threshold "half" is not a percentage`},
		{"two arguments", "iap_healthy_panic 50 60", "", "wrong argument count"},
		{"an unknown option", "iap_healthy_panic {\n fallback first\n}", "", `unknown option "fallback"`},
		{"a policy twice", "iap_healthy_panic {\n policy first\n policy random\n}", "", "policy is set twice"},
		{"itself", "iap_healthy_panic {\n policy iap_healthy_panic\n}", "", "cannot wrap itself"},
		{"a policy that does not exist", "iap_healthy_panic {\n policy fastest\n}", "", "fastest"},
		{"a policy without its name", "iap_healthy_panic {\n policy\n}", "", "policy takes the name of a selection policy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p HealthyPanic
			err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.src))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(p); string(b) != c.want {
				t.Errorf("got %s, want %s", b, c.want)
			}
		})
	}
}

// JSON: the threshold defaults to Envoy's 50, a percentage outside 0-100 is
// refused at provision, and while the upstreams are healthy the wrapped
// policy chooses as it would alone.
func TestHealthyPanicJSON(t *testing.T) {
	load := func(t *testing.T, raw string) (*HealthyPanic, error) {
		t.Helper()
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		mod, err := ctx.LoadModuleByID("http.reverse_proxy.selection_policies.iap_healthy_panic", json.RawMessage(raw))
		if err != nil {
			return nil, err
		}
		return mod.(*HealthyPanic), nil
	}
	p, err := load(t, `{"selection_policy":{"policy":"first"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Threshold != 50 {
		t.Errorf("default threshold %d, want 50", p.Threshold)
	}
	pool := reverseproxy.UpstreamPool{{Host: new(reverseproxy.Host), Dial: "a:80"}, {Host: new(reverseproxy.Host), Dial: "b:80"}}
	for range 3 {
		if got := p.Select(pool, httptest.NewRequest("GET", "/", nil), httptest.NewRecorder()); got != pool[0] {
			t.Fatalf("first chose %v, want a:80", got)
		}
	}
	if got := p.Select(nil, httptest.NewRequest("GET", "/", nil), httptest.NewRecorder()); got != nil {
		t.Errorf("an empty pool gave %v", got)
	}
	for _, c := range []struct{ raw, want string }{
		{`{"threshold":-1}`, "threshold -1 is not a percentage"},
		{`{"threshold":101}`, "threshold 101 is not a percentage"},
		{`{"threshold":"half"}`, "cannot unmarshal"},
		{`{"selection_policy":{"policy":"fastest"}}`, "fastest"},
		{`{"thresold":50}`, "unknown field"},
	} {
		if _, err := load(t, c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.raw, err, c.want)
		}
	}
}
