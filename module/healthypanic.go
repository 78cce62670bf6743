package module

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(HealthyPanic{})
}

// HealthyPanic is a load-balancing selection policy that wraps another one
// with Envoy's healthy panic threshold (Pomerium's healthy_panic_threshold):
// while at least `threshold` percent of the upstreams are healthy, the
// wrapped policy chooses among the healthy ones, as usual; when fewer are,
// it chooses among all of them, healthy or not, so that the load of a
// failing service is spread rather than piled onto its last few hosts (or
// refused with 503 when none is left).
//
// "Healthy" is Caddy's view of an upstream: not failing its active health
// checks, nor taken out by passive ones (max_fails within fail_duration).
// An upstream at its request limit (unhealthy_request_count, max_requests)
// is healthy but full, and is not chosen even in panic.
//
// In a Caddyfile:
//
//	reverse_proxy a:8080 b:8080 c:8080 {
//		lb_policy iap_healthy_panic 50 {
//			policy round_robin
//		}
//		health_uri /healthz
//	}
//
// The Pomerium adapter wraps a route's policy in it when the route has
// health checks (health_checks or outlier_detection), with the route's
// healthy_panic_threshold or Envoy's default of 50; a threshold of 0 turns
// panic off, and the route's policy is used as it is.
type HealthyPanic struct {
	// The percentage of healthy upstreams below which the policy chooses
	// among all of them, from 1 to 100. Default: 50, Envoy's. 100 means
	// panic as soon as one upstream is unhealthy. To never panic, use the
	// wrapped policy directly.
	Threshold int `json:"threshold,omitempty"`

	// The selection policy that chooses, such as `{"policy":
	// "round_robin"}`. Default: random, as reverse_proxy's.
	PolicyRaw json.RawMessage `json:"selection_policy,omitempty" caddy:"namespace=http.reverse_proxy.selection_policies inline_key=policy"`

	policy reverseproxy.Selector
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (HealthyPanic) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.selection_policies.iap_healthy_panic",
		New: func() caddy.Module { return new(HealthyPanic) },
	}
}

// Provision loads the wrapped policy.
func (p *HealthyPanic) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	if p.Threshold == 0 {
		p.Threshold = 50
	}
	if p.PolicyRaw == nil {
		p.policy = new(reverseproxy.RandomSelection)
		return nil
	}
	mod, err := ctx.LoadModule(p, "PolicyRaw")
	if err != nil {
		return fmt.Errorf("iap_healthy_panic: loading selection_policy: %v", err)
	}
	p.policy = mod.(reverseproxy.Selector)
	return nil
}

// Validate checks the threshold.
func (p *HealthyPanic) Validate() error {
	if p.Threshold < 0 || p.Threshold > 100 {
		return fmt.Errorf("iap_healthy_panic: threshold %d is not a percentage from 1 to 100", p.Threshold)
	}
	return nil
}

// Select lets the wrapped policy choose: among the healthy upstreams while
// enough are, else among all of them.
func (p *HealthyPanic) Select(pool reverseproxy.UpstreamPool, r *http.Request, w http.ResponseWriter) *reverseproxy.Upstream {
	if len(pool) == 0 {
		return nil
	}
	healthy := 0
	for _, u := range pool {
		if u.Healthy() {
			healthy++
		}
	}
	// Envoy panics when healthy/total < threshold%.
	if healthy*100 >= p.Threshold*len(pool) {
		return p.policy.Select(pool, r, w)
	}
	// Panic: the wrapped policy chooses among stand-ins that share each
	// upstream's host (its request count, for least_conn and the request
	// limit) and address (for the hashing policies) but none of its health
	// state; the chosen stand-in's upstream is the one used.
	stand := make(reverseproxy.UpstreamPool, len(pool))
	for i, u := range pool {
		stand[i] = &reverseproxy.Upstream{Host: u.Host, Dial: u.Dial, MaxRequests: u.MaxRequests}
	}
	chosen := p.policy.Select(stand, r, w)
	for i, s := range stand {
		if s == chosen {
			if c := p.logger.Check(zap.DebugLevel, "healthy panic: too few healthy upstreams, choosing among all"); c != nil {
				c.Write(zap.Int("healthy", healthy), zap.Int("upstreams", len(pool)),
					zap.Int("threshold_percent", p.Threshold), zap.String("chosen", pool[i].Dial))
			}
			return pool[i]
		}
	}
	return nil
}

// UnmarshalCaddyfile sets up the policy from Caddyfile tokens:
//
//	lb_policy iap_healthy_panic [<threshold>] {
//		policy <name> [<args...>]
//	}
func (p *HealthyPanic) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the policy's name
	if d.NextArg() {
		t, err := strconv.Atoi(d.Val())
		if err != nil || t < 1 || t > 100 {
			return d.Errf("iap_healthy_panic: threshold %q is not a percentage from 1 to 100", d.Val())
		}
		p.Threshold = t
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "policy":
			if p.PolicyRaw != nil {
				return d.Err("iap_healthy_panic: policy is set twice")
			}
			if !d.NextArg() {
				return d.Err("iap_healthy_panic: policy takes the name of a selection policy, such as round_robin")
			}
			name := d.Val()
			if name == "iap_healthy_panic" {
				return d.Err("iap_healthy_panic: cannot wrap itself")
			}
			modID := "http.reverse_proxy.selection_policies." + name
			unm, err := caddyfile.UnmarshalModule(d, modID)
			if err != nil {
				return err
			}
			sel, ok := unm.(reverseproxy.Selector)
			if !ok {
				return d.Errf("iap_healthy_panic: module %s is not a selection policy", modID)
			}
			p.PolicyRaw = caddyconfig.JSONModuleObject(sel, "policy", name, nil)
		default:
			return d.Errf("iap_healthy_panic: unknown option %q (it takes policy)", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ reverseproxy.Selector = (*HealthyPanic)(nil)
	_ caddy.Provisioner     = (*HealthyPanic)(nil)
	_ caddy.Validator       = (*HealthyPanic)(nil)
	_ caddyfile.Unmarshaler = (*HealthyPanic)(nil)
)
