package pomerium

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// reach adapts src and follows a request for host and path through the
// server's routes, with Caddy's own matchers: it returns the upstream the
// request is proxied to ("public:80"), "status N" for a static response,
// or "none" when no route takes it. Each test route has its own upstream,
// so the answer names the route.
func reach(t *testing.T, src, method, host, path string) string {
	t.Helper()
	return reachRequest(t, src, httptest.NewRequest(method, "https://"+host+path, nil))
}

// reachUpgrade is reach for a WebSocket upgrade request.
func reachUpgrade(t *testing.T, src, host string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "https://"+host+"/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	return reachRequest(t, src, req)
}

func reachRequest(t *testing.T, src string, req *http.Request) string {
	t.Helper()
	out, _, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes caddyhttp.RouteList `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps.HTTP.Servers) != 1 {
		t.Fatalf("%d servers, want 1", len(cfg.Apps.HTTP.Servers))
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	for _, srv := range cfg.Apps.HTTP.Servers {
		got, _ := follow(t, ctx, srv.Routes, req)
		return got
	}
	return "none"
}

// follow runs routes as Caddy would, down to the first handler that
// answers; done is false when the routes ran out without an answer.
func follow(t *testing.T, ctx caddy.Context, routes caddyhttp.RouteList, req *http.Request) (answer string, done bool) {
	t.Helper()
	if err := routes.ProvisionMatchers(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		ok, err := r.MatcherSets.AnyMatchWithError(req)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		for _, raw := range r.HandlersRaw {
			var h struct {
				Handler          string                           `json:"handler"`
				Routes           caddyhttp.RouteList              `json:"routes"`
				StatusCode       int                              `json:"status_code"`
				RefuseWebSockets bool                             `json:"refuse_websockets"`
				PathRegexp       []struct{ Find, Replace string } `json:"path_regexp"`
				Upstreams        []struct{ Dial string }
			}
			if err := json.Unmarshal(raw, &h); err != nil {
				t.Fatal(err)
			}
			switch h.Handler {
			case "subroute":
				if answer, done := follow(t, ctx, h.Routes, req); done {
					return answer, true
				}
			case "static_response":
				return fmt.Sprintf("status %d", h.StatusCode), true
			case "iap_authorize":
				if h.RefuseWebSockets && req.Header.Get("Upgrade") != "" {
					return "status 400", true
				}
			case "rewrite":
				for _, rw := range h.PathRegexp {
					req.URL.Path = regexp.MustCompile(rw.Find).ReplaceAllString(req.URL.Path, rw.Replace)
				}
				req.Header.Set("X-Rewritten", req.URL.Path)
			case "reverse_proxy":
				if p := req.Header.Get("X-Rewritten"); p != "" {
					return h.Upstreams[0].Dial + " " + p, true
				}
				return h.Upstreams[0].Dial, true
			}
		}
		if r.Terminal {
			return "none", true
		}
	}
	return "none", false
}

// routesYAML is a config.yaml of the given routes, each a line of
// from/to/matching settings that the test cares about, public unless it
// says otherwise.
func routesYAML(key string, routes ...string) string {
	var b strings.Builder
	b.WriteString(key + ":\n")
	for _, r := range routes {
		b.WriteString("  - " + strings.ReplaceAll(r, ", ", "\n    ") + "\n")
		if !strings.Contains(r, "allow") && !strings.Contains(r, "policy") {
			b.WriteString("    allow_public_unauthenticated_access: true\n")
		}
	}
	return b.String()
}

type probe struct{ method, host, path, want string }

func checkReach(t *testing.T, src string, probes ...probe) {
	t.Helper()
	for _, p := range probes {
		if p.method == "" {
			p.method = "GET"
		}
		if got := reach(t, src, p.method, p.host, p.path); got != p.want {
			t.Errorf("%s https://%s%s reaches %q, want %q\nconfig:\n%s", p.method, p.host, p.path, got, p.want, src)
		}
	}
}

// Finding 1: Pomerium serves the routes of the top-level policy setting
// first, then those of routes. A policy route guarding /admin stays in
// force beside a routes list that lets everyone in.
func TestPolicyRoutesComeBeforeRoutes(t *testing.T) {
	src := routesYAML("policy",
		"from: https://app.example.com, prefix: /admin, to: http://admin, allowed_users: [alice@example.com]") +
		routesYAML("routes",
			"from: https://app.example.com, to: http://public",
			"from: https://other.example.com, to: http://other")
	checkReach(t, src,
		probe{"", "app.example.com", "/admin/users", "admin:80"},
		probe{"", "app.example.com", "/", "public:80"},
		probe{"", "other.example.com", "/", "other:80"},
	)
}

// POLICY and ROUTES, base64-encoded YAML lists, replace the file's lists,
// in the same order.
func TestPolicyAndRoutesFromTheEnvironment(t *testing.T) {
	enc := func(s string) string {
		_, list, _ := strings.Cut(s, "\n")
		return base64.StdEncoding.EncodeToString([]byte(list))
	}
	t.Setenv("POLICY", enc(routesYAML("policy", "from: https://app.example.com, prefix: /admin, to: http://admin, allowed_users: [alice@example.com]")))
	t.Setenv("ROUTES", enc(routesYAML("routes", "from: https://app.example.com, to: http://public")))
	src := routesYAML("routes", "from: https://app.example.com, to: http://from-file")
	checkReach(t, src,
		probe{"", "app.example.com", "/admin", "admin:80"},
		probe{"", "app.example.com", "/x", "public:80"},
	)

	t.Setenv("ROUTES", "not base64!")
	if _, _, err := adapt(t, src, "config.yaml"); err == nil || !strings.Contains(err.Error(), "ROUTES is not base64") {
		t.Errorf("error %v, want one naming ROUTES", err)
	}
	t.Setenv("ROUTES", base64.StdEncoding.EncodeToString([]byte("- from: https://a.example\n  to: http://b\n  allow_everyone: true\n")))
	if _, _, err := adapt(t, src, "config.yaml"); err == nil || !strings.Contains(err.Error(), `ROUTES (base64-decoded):3: unknown route setting "allow_everyone"`) {
		t.Errorf("error %v, want one naming ROUTES and its line", err)
	}
}
