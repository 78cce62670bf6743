package pomerium

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// seen is what the echo upstream got.
type seen struct {
	Path, Host string
	Header     http.Header
}

// echoUpstream is a real HTTP upstream that answers with the request it got.
func echoUpstream(t *testing.T) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(seen{Path: r.URL.EscapedPath(), Host: r.Host, Header: r.Header})
	}))
	t.Cleanup(up.Close)
	return up.URL
}

// runCaddy adapts src (with address: and insecure_server: true added, so
// that it serves plain HTTP on a free loopback port), runs it in this
// process with its storage in a temporary directory, and returns the
// address. Caddy stops when the test ends.
func runCaddy(t *testing.T, src string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	out, warnings, err := adapt(t, "address: "+addr+"\ninsecure_server: true\n"+src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("unexpected warning: %s", w)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	// Nothing of Caddy's lands outside the test's directory: its storage,
	// its instance ID (the data directory) and no autosaved config.
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	cfg["admin"] = map[string]any{"disabled": true, "config": map[string]any{"persist": false}}
	cfg["storage"] = map[string]any{"module": "file_system", "root": filepath.Join(dir, "storage")}
	b, _ := json.Marshal(cfg)
	if err := caddy.Load(b, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return addr
}

// proxied runs a public route to a real upstream with the given settings
// in Caddy, sends req to it and returns what the upstream saw.
func proxied(t *testing.T, upstream, settings string, req *http.Request) seen {
	t.Helper()
	src := "routes:\n  - from: https://app.example\n    allow_public_unauthenticated_access: true\n" + settings
	addr := runCaddy(t, strings.ReplaceAll(src, "$UP", upstream))
	req.URL.Scheme, req.URL.Host, req.RequestURI = "http", addr, ""
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var got seen
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%d %s: %v", res.StatusCode, body, err)
	}
	return got
}

// Issue 13 part 3: regex_rewrite_*, host_rewrite_header and
// host_path_regex_rewrite_* were ignored with a warning, so the upstream
// got the client's path and Host; and a path in to was refused. Each now
// changes what a real upstream gets, as Envoy does for Pomerium.
func TestRouteRewritesReachTheUpstream(t *testing.T) {
	up := echoUpstream(t)
	get := func(path string, header ...string) *http.Request {
		r := httptest.NewRequest("GET", "http://app.example"+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name, settings string
		req            *http.Request
		path, host     string
	}{
		{"regex_rewrite", "    to: $UP\n    regex_rewrite_pattern: '^/service/([^/]+)(/.*)$'\n    regex_rewrite_substitution: '\\2/instance/\\1'\n",
			get("/service/foo/v1/api"), "/v1/api/instance/foo", ""},
		{"regex_rewrite every match", "    to: $UP\n    regex_rewrite_pattern: 'o'\n    regex_rewrite_substitution: '0'\n",
			get("/foo/boo"), "/f00/b00", ""},
		{"regex_rewrite keeps $ and braces", "    to: $UP\n    regex_rewrite_pattern: '^/x$'\n    regex_rewrite_substitution: '/$1{http.request.host}'\n",
			get("/x"), "/$1%7Bhttp.request.host%7D", ""},
		{"a path in to", "    prefix: /app/\n    to: $UP/base/\n", get("/app/page"), "/base/page", ""},
		{"prefix_rewrite", "    prefix: /app/\n    prefix_rewrite: /v2/\n    to: $UP\n", get("/app/page"), "/v2/page", ""},
		{"host_rewrite", "    to: $UP\n    host_rewrite: internal.example\n", get("/"), "/", "internal.example"},
		{"host_rewrite_header", "    to: $UP\n    host_rewrite_header: X-Backend-Host\n", get("/", "X-Backend-Host", "b.internal"), "/", "b.internal"},
		{"host_rewrite_header absent", "    to: $UP\n    host_rewrite_header: X-Backend-Host\n", get("/"), "/", "app.example"},
		{"host_path_regex_rewrite", "    to: $UP\n    host_path_regex_rewrite_pattern: '^/(.+)/.+$'\n    host_path_regex_rewrite_substitution: '\\1.internal'\n",
			get("/foo/bar"), "/foo/bar", "foo.internal"},
		{"host_path_regex_rewrite on the matched path, before prefix_rewrite", "    prefix: /svc/\n    prefix_rewrite: /\n    to: $UP\n    host_path_regex_rewrite_pattern: '^/svc/([a-z]+)/.*$'\n    host_path_regex_rewrite_substitution: '\\1.internal'\n",
			get("/svc/api/x"), "/api/x", "api.internal"},
		{"preserve_host_header", "    to: $UP\n    preserve_host_header: true\n", get("/"), "/", "app.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := proxied(t, up, c.settings, c.req)
			if got.Path != c.path {
				t.Errorf("upstream path %q, want %q", got.Path, c.path)
			}
			if c.host != "" && got.Host != c.host {
				t.Errorf("upstream Host %q, want %q", got.Host, c.host)
			}
		})
	}

	// The request headers a route sets and removes.
	got := proxied(t, up, "    to: $UP\n    set_request_headers: {X-Team: blue}\n    remove_request_headers: [X-Debug]\n", get("/", "X-Debug", "1", "X-Keep", "1"))
	if got.Header.Get("X-Debug") != "" || got.Header.Get("X-Keep") != "1" || got.Header.Get("X-Team") != "blue" {
		t.Errorf("upstream headers %v", got.Header)
	}
}

// Pomerium's precedence: prefix_rewrite wins over regex_rewrite_pattern
// (a warning says so); a pattern needs its substitution; a bad regular
// expression is an error at its line.
func TestRouteRewriteErrors(t *testing.T) {
	const route = "routes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n"
	_, warnings, err := adapt(t, route+"    prefix_rewrite: /x\n    regex_rewrite_pattern: a\n    regex_rewrite_substitution: b\n", "config.yaml")
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].String(), "config.yaml:6: regex_rewrite_pattern is ignored: prefix_rewrite is set") {
		t.Errorf("warnings %v, error %v", warnings, err)
	}
	for _, c := range []struct{ settings, want string }{
		{"    regex_rewrite_pattern: a\n", "config.yaml:5: regex_rewrite_pattern needs regex_rewrite_substitution"},
		{"    regex_rewrite_pattern: '('\n    regex_rewrite_substitution: b\n", "config.yaml:5: regex_rewrite_pattern: error parsing regexp"},
		{"    host_path_regex_rewrite_pattern: a\n", "config.yaml:5: host_path_regex_rewrite_pattern needs host_path_regex_rewrite_substitution"},
		{"    host_rewrite_header: 'X Bad'\n", `config.yaml:5: host_rewrite_header: "X Bad" is not a header name`},
	} {
		if _, _, err := adapt(t, route+c.settings, "config.yaml"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.settings, err, c.want)
		}
	}
}

// description goes into the access log (log_append), as name does into
// the route's logs; default_upstream_timeout is the timeout of routes
// without their own.
func TestDescriptionAndDefaultUpstreamTimeout(t *testing.T) {
	out, warnings, err := adapt(t, "default_upstream_timeout: 45s\nroutes:\n  - from: https://a.example\n    to: http://b\n    description: 'Grafana {dashboards}'\n    allow_public_unauthenticated_access: true\n"+
		"  - from: https://c.example\n    to: http://d\n    timeout: 5s\n    allow_public_unauthenticated_access: true\n", "config.yaml")
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var descriptions []any
	var timeouts []any
	walk(cfg, func(o map[string]any) {
		if o["handler"] == "log_append" && o["key"] == "iap_route_description" {
			descriptions = append(descriptions, o["value"])
		}
		if o["protocol"] == "http" {
			timeouts = append(timeouts, o["response_header_timeout"])
		}
	})
	// The server logs every request, as Pomerium does, so the field lands.
	if !strings.Contains(string(out), `"logs":{"default_logger_name":"pomerium"}`) {
		t.Errorf("no access log:\n%s", out)
	}
	if len(descriptions) != 1 || descriptions[0] != `Grafana \{dashboards\}` {
		t.Errorf("log_append values %v", descriptions)
	}
	if len(timeouts) != 2 || timeouts[0] != float64(45e9) || timeouts[1] != float64(5e9) {
		t.Errorf("response_header_timeouts %v, want 45s then 5s", timeouts)
	}
}

// load_balancing_policy picks Caddy's selection policy; weights win.
func TestLoadBalancingPolicy(t *testing.T) {
	const route = "routes:\n  - from: https://a.example\n    allow_public_unauthenticated_access: true\n"
	for v, want := range map[string]string{"ROUND_ROBIN": `"selection_policy":{"policy":"round_robin"}`, "least_request": `"selection_policy":{"policy":"least_conn"}`,
		"RANDOM": `"selection_policy":{"policy":"random"}`, "MAGLEV": `"selection_policy":{"policy":"client_ip_hash"}`} {
		out, warnings, err := adapt(t, route+"    to: [http://b, http://c]\n    load_balancing_policy: "+v+"\n", "config.yaml")
		if err != nil || len(warnings) > 0 || !strings.Contains(string(out), want) {
			t.Errorf("%s: %v %v, lacks %s: %s", v, err, warnings, want, out)
		}
	}
	out, warnings, err := adapt(t, route+"    to: ['http://b,3', 'http://c,1']\n    load_balancing_policy: RANDOM\n", "config.yaml")
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].String(), "config.yaml:5: load_balancing_policy is ignored: the upstreams of to are weighted") ||
		!strings.Contains(string(out), `"weighted_round_robin"`) {
		t.Errorf("%v %v %s", err, warnings, out)
	}
	if _, _, err := adapt(t, route+"    to: http://b\n    load_balancing_policy: FASTEST\n", "config.yaml"); err == nil || !strings.Contains(err.Error(), `config.yaml:5: load_balancing_policy: "FASTEST" is not one of`) {
		t.Errorf("error %v", err)
	}
}

// health_checks: the first HTTP check becomes Caddy's active health
// check, which a real Caddy loads; other kinds warn.
func TestHealthChecks(t *testing.T) {
	const route = "routes:\n  - from: https://a.example\n    allow_public_unauthenticated_access: true\n    to: [http://b, http://c]\n"
	out, warnings, err := adapt(t, route+`    health_checks:
      - timeout: 2s
        interval: 10s
        unhealthy_threshold: 3
        healthyThreshold: 1
        http_health_check:
          path: /healthz
          host: b.internal
          expected_statuses: [{start: 200, end: 300}]
      - timeout: 1s
        interval: 5s
        tcp_health_check: {}
`, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].String(), "config.yaml:14: health_checks: a tcp health check is ignored") {
		t.Errorf("warnings %v", warnings)
	}
	want := `"health_checks":{"active":{"expect_status":2,"fails":3,"headers":{"Host":["b.internal"]},"interval":10000000000,"passes":1,"timeout":2000000000,"uri":"/healthz"}}`
	if !strings.Contains(string(out), want) {
		t.Errorf("lacks %s:\n%s", want, out)
	}
	for _, c := range []struct{ checks, want string }{
		{"[{interval: soon, http_health_check: {path: /}}]", `health_checks: interval: "soon" is not a duration`},
		{"[{http_health_check: {path: /, expected_statuses: [{start: 200, end: 250}]}}]", "[200, 250) is neither one status nor one class"},
		{"{a: b}", "health_checks is a list"},
	} {
		if _, _, err := adapt(t, route+"    health_checks: "+c.checks+"\n", "config.yaml"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.checks, err, c.want)
		}
	}
	// A real Caddy takes it (one upstream, ours, answering the check).
	up := echoUpstream(t)
	runCaddy(t, "routes:\n  - from: https://a.example\n    allow_public_unauthenticated_access: true\n    to: "+up+
		"\n    health_checks: [{interval: 1s, timeout: 1s, http_health_check: {path: /healthz}}]\n")
}
