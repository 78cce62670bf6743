package module

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-iap/caddy-iap/authn"
)

// Every module of a config registers the counters in its registry; the
// next config load (a new context, a new registry) registers the same
// ones again: neither errors, each family is gathered once, and the counts
// go on across the two.
func TestMetricsRegisterAcrossLoads(t *testing.T) {
	first, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	registerMetrics(first)
	registerMetrics(first) // a second module of the same config
	observe := authnObserver(first, "https://idp.example")

	r := httptest.NewRequest("GET", "https://app.example/x?user=alice", nil)
	before := count(iapMetrics.decisions.WithLabelValues(routeLabel(r), outcomeDeny, "no-policy"))
	observeDecision(r, outcomeDeny, "no-policy")
	observe(authn.EventIdP, authn.ResultUp, "https://idp.example")

	second, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel2()
	registerMetrics(second)
	authnObserver(second, "https://idp.example")
	observeDecision(r, outcomeDeny, "no-policy")

	for name, ctx := range map[string]caddy.Context{"first": first, "second": second} {
		families, err := ctx.GetMetricsRegistry().Gather()
		if err != nil {
			t.Fatalf("%s registry: %v", name, err)
		}
		seen := map[string]int{}
		for _, f := range families {
			seen[f.GetName()]++
		}
		for _, want := range []string{"caddy_iap_decisions_total", "caddy_iap_sign_ins_total", "caddy_iap_idp_fetch_errors_total", "caddy_iap_idp_up"} {
			if seen[want] != 1 {
				t.Errorf("%s registry: %s gathered %d times, want once", name, want, seen[want])
			}
		}
	}
	if got := count(iapMetrics.decisions.WithLabelValues(routeLabel(r), outcomeDeny, "no-policy")) - before; got != 2 {
		t.Errorf("decisions across the two loads = %v, want 2", got)
	}
}

// Labels carry only words of caddy-iap's lists.
func TestMetricLabelValues(t *testing.T) {
	for in, want := range map[string]string{
		"no-policy":                "no-policy",
		"":                         "",
		"/etc/passwd":              "other",
		"alice@example.com":        "other",
		"Invalid-Callback":         "other",
		string(make([]byte, 65)):   "other",
		"client-certificate-user1": "client-certificate-user1",
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
	// Without TLS the Host header is the client's: never a label.
	r := httptest.NewRequest("GET", "http://attacker.example/", nil)
	if got := routeLabel(r); got != "_other" {
		t.Errorf("routeLabel without TLS = %q, want _other", got)
	}
}

func count(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
