package pomerium

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
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
			case "iap_authenticate":
				// It answers its own endpoints.
				if strings.HasPrefix(req.URL.Path, "/.pomerium/") {
					return "iap_authenticate", true
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

// Finding 2: a route that sets regex, path and prefix matches by regex,
// else by path, else by prefix, as Pomerium does; the others are ignored,
// with a warning.
func TestRegexThenPathThenPrefix(t *testing.T) {
	src := routesYAML("routes",
		"from: https://app.example.com, prefix: /, regex: ^/health$, to: http://health",
		"from: https://app.example.com, prefix: /, path: /status, to: http://status",
		"from: https://app.example.com, to: http://guarded, allow_any_authenticated_user: true")
	checkReach(t, src,
		probe{"", "app.example.com", "/health", "health:80"},
		probe{"", "app.example.com", "/status", "status:80"},
		probe{"", "app.example.com", "/admin", "guarded:80"},
		probe{"", "app.example.com", "/", "guarded:80"},
	)
	_, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{"config.yaml:3: prefix is ignored: regex decides", "config.yaml:8: prefix is ignored: path decides"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
}

// Within a host, routes keep their config order (Pomerium sorts only the
// routes it gets from its databroker): the first that matches wins, even a
// prefix before a longer one.
func TestRoutesOfAHostKeepConfigOrder(t *testing.T) {
	src := routesYAML("routes",
		"from: https://app.example.com, prefix: /api, to: http://api",
		"from: https://app.example.com, prefix: /api/admin, to: http://never",
		"from: https://app.example.com, to: http://rest")
	checkReach(t, src,
		probe{"", "app.example.com", "/api/admin", "api:80"},
		probe{"", "app.example.com", "/apiary", "api:80"},
		probe{"", "app.example.com", "/x", "rest:80"},
	)
}

// Finding 3: a regex must match the whole path, as Envoy's safe_regex
// does.
func TestRegexMatchesTheWholePath(t *testing.T) {
	src := routesYAML("routes",
		"from: https://app.example.com, regex: /static/.*, to: http://static",
		"from: https://app.example.com, regex: '^/a$|/b', to: http://ab",
		"from: https://app.example.com, regex: '(?m)^/c$', to: http://c",
		"from: https://app.example.com, to: http://guarded, allow_any_authenticated_user: true")
	checkReach(t, src,
		probe{"", "app.example.com", "/static/app.js", "static:80"},
		probe{"", "app.example.com", "/admin/static/x", "guarded:80"},
		probe{"", "app.example.com", "/static", "guarded:80"},
		probe{"", "app.example.com", "/a", "ab:80"},
		probe{"", "app.example.com", "/b", "ab:80"},
		probe{"", "app.example.com", "/x/b", "guarded:80"},
		probe{"", "app.example.com", "/b/x", "guarded:80"},
		probe{"", "app.example.com", "/c", "c:80"},
		probe{"", "app.example.com", "/c%0Ax", "guarded:80"},
	)
	if _, _, err := adapt(t, routesYAML("routes", "from: https://a.example, regex: '/(', to: http://b"), "config.yaml"); err == nil || !strings.Contains(err.Error(), "config.yaml:3: regex:") {
		t.Errorf("a bad regex: error %v, want one naming its line", err)
	}
}

func TestAnchored(t *testing.T) {
	for re, want := range map[string]string{
		"^/a$":        "^/a$",
		`^/a/\d+\z`:   `^/a/\d+\z`,
		"/a":          "^(?:/a)$",
		"^/a":         "^(?:^/a)$",
		"/a$":         "^(?:/a$)$",
		"^/a$|^/b$":   "^(?:^/a$|^/b$)$",
		"(?m)^/a$":    "^(?:(?m)^/a$)$",
		"^(/a|/b)$":   "^(/a|/b)$",
		"^/a$|/b":     "^(?:^/a$|/b)$",
		"^/a(?m:$)":   "^(?:^/a(?m:$))$",
		"^/a$(?:x)?":  "^(?:^/a$(?:x)?)$",
		"(?:^/a$)":    "(?:^/a$)",
		"^/(healthz)": "^(?:^/(healthz))$",
	} {
		if got := anchored(re); got != want {
			t.Errorf("anchored(%q) = %q, want %q", re, got, want)
		}
	}
}

// path and prefix are matched as written: Caddy's path matcher would read
// * as a wildcard and {...} as a placeholder, which Pomerium does not.
func TestPathAndPrefixAreLiteral(t *testing.T) {
	src := routesYAML("routes",
		"from: https://app.example.com, path: /files/*/public, to: http://glob",
		"from: https://app.example.com, prefix: '/{http.request.header.X-P}', to: http://placeholder",
		"from: https://app.example.com, prefix: /a.b, to: http://dot",
		"from: https://app.example.com, to: http://guarded, allow_any_authenticated_user: true")
	checkReach(t, src,
		probe{"", "app.example.com", "/files/x/public", "guarded:80"},
		probe{"", "app.example.com", "/files/*/public", "glob:80"},
		probe{"", "app.example.com", "/admin", "guarded:80"},
		probe{"", "app.example.com", "/{http.request.header.X-P}", "placeholder:80"},
		probe{"", "app.example.com", "/aXb", "guarded:80"},
		probe{"", "app.example.com", "/a.b/c", "dot:80"},
	)
}

// prefix_rewrite replaces what the route matched: the prefix, or the
// whole path of a path or regex route (as Envoy does), letters of any
// case, as the match compares them.
func TestPrefixRewriteReplacesWhatMatched(t *testing.T) {
	src := routesYAML("routes",
		"from: https://app.example.com, prefix: /api/, prefix_rewrite: /v2/, to: http://api",
		"from: https://app.example.com, path: /old, prefix_rewrite: /new, to: http://path",
		"from: https://app.example.com, regex: '^/r/[0-9]+$', prefix: /r/, prefix_rewrite: /item, to: http://regex",
		"from: https://app.example.com, prefix_rewrite: /root/, to: http://rest")
	checkReach(t, src,
		probe{"", "app.example.com", "/api/x", "api:80 /v2/x"},
		probe{"", "app.example.com", "/API/x", "api:80 /v2/x"},
		probe{"", "app.example.com", "/old", "path:80 /new"},
		probe{"", "app.example.com", "/r/12", "regex:80 /item"},
		probe{"", "app.example.com", "/x", "rest:80 /root/x"},
	)
}

// Finding 4: WebSockets are off unless the route turns them on with
// allow_websockets, as in Pomerium, whose default is false.
func TestWebsocketsAreOffByDefault(t *testing.T) {
	src := routesYAML("routes",
		"from: https://default.example.com, to: http://default",
		"from: https://off.example.com, to: http://off, allow_websockets: false",
		"from: https://on.example.com, to: http://on, allow_websockets: true")
	for host, want := range map[string]string{"default.example.com": "status 400", "off.example.com": "status 400", "on.example.com": "on:80"} {
		if got := reachUpgrade(t, src, host); got != want {
			t.Errorf("a WebSocket upgrade to %s reaches %q, want %q", host, got, want)
		}
		if got := reach(t, src, "GET", host, "/"); got == "status 400" {
			t.Errorf("a plain request to %s is refused", host)
		}
	}
}

// allow_upgrades, the route's if set, else the global one, may turn
// WebSockets on too (Pomerium's Policy.GetAllowWebsockets).
func TestAllowUpgradesMayNameWebsocket(t *testing.T) {
	src := "allow_upgrades: [websocket]\n" + routesYAML("routes",
		"from: https://global.example.com, to: http://global",
		"from: https://off.example.com, to: http://off, allow_upgrades: []",
		"from: https://on.example.com, to: http://on, allow_upgrades: [websocket]",
		"from: https://both.example.com, to: http://both, allow_websockets: true, allow_upgrades: []")
	for host, want := range map[string]string{"global.example.com": "global:80", "off.example.com": "status 400",
		"on.example.com": "on:80", "both.example.com": "both:80"} {
		if got := reachUpgrade(t, src, host); got != want {
			t.Errorf("a WebSocket upgrade to %s reaches %q, want %q", host, got, want)
		}
	}
	t.Setenv("ALLOW_UPGRADES", "connect-tcp")
	if got := reachUpgrade(t, src, "global.example.com"); got != "status 400" {
		t.Errorf("ALLOW_UPGRADES without websocket: an upgrade reaches %q, want status 400", got)
	}
	_, warnings, _ := adapt(t, src, "config.yaml")
	if len(warnings) == 0 || !strings.Contains(warnings[0].Message, "allow_upgrades: connect-tcp upgrades are not supported") {
		t.Errorf("warnings %v, want one about connect-tcp", warnings)
	}
}

// upgradesOf reads, for each route host of an adapted config, what its
// iap_authenticate and iap_authorize say of upgrades: "spdy" when both
// allow SPDY (one alone would still refuse it), "ws" unless WebSockets
// are refused, joined by "+", or "none".
func upgradesOf(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	for _, route := range servers["pomerium"].(map[string]any)["routes"].([]any) {
		r := route.(map[string]any)
		match, _ := r["match"].([]any)
		if len(match) == 0 {
			continue
		}
		hosts, _ := match[0].(map[string]any)["host"].([]any)
		if len(hosts) != 1 {
			continue
		}
		spdy, ws, n, authorize := 0, true, 0, false
		walk(r, func(o map[string]any) {
			switch o["handler"] {
			case "iap_authenticate", "iap_authorize":
				n++
				authorize = authorize || o["handler"] == "iap_authorize"
				if o["allow_spdy"] == true {
					spdy++
				}
				if o["refuse_websockets"] == true {
					ws = false
				}
			}
		})
		if !authorize {
			continue // the host's own endpoints
		}
		var parts []string
		if spdy == n {
			parts = append(parts, "spdy")
		}
		if ws {
			parts = append(parts, "ws")
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		got[hosts[0].(string)] = strings.Join(parts, "+")
	}
	return got
}

// SPDY upgrades as Pomerium's Policy.GetAllowSPDY decides: allow_spdy,
// else the route's allow_upgrades, else the global one, naming spdy/3.1;
// and on every route with a Kubernetes service-account token
// (Policy.IsForKubernetes), which takes WebSockets too. Off otherwise; one
// route's allowance opens no other route, and WebSockets stay as they
// were. spdy/3.1 in allow_upgrades is no warning. (internal/e2e's
// TestPomeriumAllowSPDY sends the upgrades through Caddy.)
func TestAllowSPDYAsPomerium(t *testing.T) {
	const public = ", allow_public_unauthenticated_access: true"
	src := "allow_upgrades: [spdy/3.1]\n" + routesYAML("routes",
		"from: https://global.example.com, to: http://global"+public,
		"from: https://off.example.com, to: http://off, allow_upgrades: [websocket]"+public,
		"from: https://on.example.com, to: http://on, allow_upgrades: [], allow_spdy: true"+public,
		"from: https://listed.example.com, to: http://listed, allow_upgrades: [SPDY/3.1]"+public,
		"from: https://false.example.com, to: http://false, allow_upgrades: [], allow_spdy: false"+public,
		"from: https://kube.example.com, to: http://kube, allow_upgrades: [], kubernetes_service_account_token: t"+public)
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	want := map[string]string{"global.example.com": "spdy", "off.example.com": "ws", "on.example.com": "spdy",
		"listed.example.com": "spdy", "false.example.com": "none", "kube.example.com": "spdy+ws"}
	if got := upgradesOf(t, out); !maps.Equal(got, want) {
		t.Errorf("upgrades\n got %v\nwant %v", got, want)
	}
	// By default, neither.
	out, _, err = adapt(t, routesYAML("routes", "from: https://a.example.com, to: http://a"), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := upgradesOf(t, out); got["a.example.com"] != "none" {
		t.Errorf("by default: %v, want none", got)
	}
}

// Finding 5: /healthz and /ping are answered on every host before any
// route, without sign-in or a client certificate, as Pomerium's control
// plane does.
func TestHealthChecksComeFirst(t *testing.T) {
	src := `downstream_mtls:
  ca_file: $DIR/rootCA.pem
` + routesYAML("routes",
		"from: https://app.example.com, to: http://app, allowed_users: [alice@example.com]",
		"from: https://app.example.com, path: /healthz, to: http://shadowed")
	src = strings.ReplaceAll(src, "$DIR", fixtures(t))
	checkReach(t, src,
		probe{"GET", "app.example.com", "/healthz", "status 200"},
		probe{"HEAD", "app.example.com", "/ping", "status 200"},
		probe{"POST", "app.example.com", "/ping", "status 405"},
		probe{"GET", "unknown.example.com", "/ping", "status 200"},
		probe{"GET", "app.example.com", "/healthz/x", "app:80"},
		probe{"GET", "app.example.com", "/", "app:80"},
	)
	// Nothing but the static response runs: no iap_mtls, no sign-in.
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []json.RawMessage `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	first := string(cfg.Apps.HTTP.Servers["pomerium"].Routes[0])
	if !strings.Contains(first, `"/healthz"`) || strings.Contains(first, "iap_") {
		t.Errorf("the first route is not the bare health check: %s", first)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	if !strings.Contains(strings.Join(got, "\n"), "config.yaml:8: path /healthz is answered by the health check") {
		t.Errorf("no warning about the shadowed /healthz route: %v", got)
	}
}

// A host that a route names exactly is served by its own routes only,
// as Envoy picks the virtual host before the route: a wildcard route
// listed first does not take its requests, nor those its routes leave.
func TestExactHostsBeforeWildcards(t *testing.T) {
	src := routesYAML("routes",
		"from: https://*.example.com, to: http://wild",
		"from: https://admin.example.com, prefix: /admin, to: http://admin, allowed_users: [alice@example.com]",
		"from: https://other.example.com, to: http://other")
	checkReach(t, src,
		probe{"", "admin.example.com", "/admin", "admin:80"},
		probe{"", "admin.example.com", "/", "status 404"},
		probe{"", "other.example.com", "/", "other:80"},
		probe{"", "x.example.com", "/", "wild:80"},
	)
}

// Pomerium answers its own endpoints on every host before the routes:
// the sign-in callback reaches iap_authenticate on a host whose routes all
// have a prefix that leaves /.pomerium/ out, and is never proxied.
func TestOwnEndpointsOnEveryRouteHost(t *testing.T) {
	src := routesYAML("routes",
		"from: https://app.example.com, prefix: /app/, to: http://app, allow_any_authenticated_user: true",
		"from: https://all.example.com, to: http://all, allow_any_authenticated_user: true")
	checkReach(t, src,
		probe{"", "app.example.com", "/.pomerium/callback", "iap_authenticate"},
		probe{"", "app.example.com", "/app/x", "app:80"},
		probe{"", "app.example.com", "/other", "none"},
		probe{"", "all.example.com", "/.pomerium/callback", "iap_authenticate"},
		probe{"", "all.example.com", "/x", "all:80"},
	)
}

// Finding 6: every DOWNSTREAM_MTLS_* variable Pomerium reads, the depth
// and the subject alt names included, overrides the file.
func TestDownstreamMTLSEnvironment(t *testing.T) {
	dir := fixtures(t)
	t.Setenv("DOWNSTREAM_MTLS_CA_FILE", dir+"/rootCA.pem")
	t.Setenv("DOWNSTREAM_MTLS_ENFORCEMENT", "reject_connection")
	t.Setenv("DOWNSTREAM_MTLS_MAX_VERIFY_DEPTH", "3")
	t.Setenv("DOWNSTREAM_MTLS_MATCH_SUBJECT_ALT_NAMES", `[{"email": ".*@example\\.com"}]`)
	src := "downstream_mtls:\n  ca_file: /nope.pem\n  max_verify_depth: 1\n" + routesYAML("routes", "from: https://app.example.com, to: http://app")
	out, _, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"max_verify_depth":3`, `"email":".*@example\\.com"`, `"mode":"require"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}

	t.Setenv("DOWNSTREAM_MTLS_MAX_VERIFY_DEPTH", "deep")
	if _, _, err := adapt(t, src, "config.yaml"); err == nil || !strings.Contains(err.Error(), "DOWNSTREAM_MTLS_MAX_VERIFY_DEPTH") {
		t.Errorf("a bad depth: error %v, want one naming the variable", err)
	}
	// Set but empty counts as unset, as in Pomerium.
	t.Setenv("DOWNSTREAM_MTLS_MAX_VERIFY_DEPTH", "")
	if out, _, err = adapt(t, src, "config.yaml"); err != nil || !strings.Contains(string(out), `"max_verify_depth":1`) {
		t.Errorf("an empty DOWNSTREAM_MTLS_MAX_VERIFY_DEPTH: %v\n%s", err, out)
	}
}
