package pomerium

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"

	_ "github.com/caddy-iap/caddy-iap/module"
)

// serve adapts src and serves req through the server's routes with
// Caddy's own handlers (no iap app: routes must be public); a request no
// route answers gets 599.
func serve(t *testing.T, src string, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("unexpected warning: %s", w)
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
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	routes := cfg.Apps.HTTP.Servers["pomerium"].Routes
	if err := routes.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h := routes.Compile(caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(599)
		return nil
	}))
	req = req.WithContext(context.WithValue(req.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	// As Caddy's server, for log_append (the access log's request_id).
	req = req.WithContext(context.WithValue(req.Context(), caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields)))
	caddyhttp.NewTestReplacer(req)
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, req); err != nil {
		if he, ok := err.(caddyhttp.HandlerError); ok {
			w.Code = he.StatusCode
		} else {
			t.Fatal(err)
		}
	}
	return w
}

// Issue 13: a route's redirect was refused ("redirect routes are not
// supported yet"). It answers with Envoy's redirect, built from Pomerium's
// fields, after the route's policy.
func TestRedirectRoutes(t *testing.T) {
	for _, c := range []struct {
		name, route, url, wantLocation string
		wantCode                       int
	}{
		{"https_redirect keeps host, path and query", "redirect: {https_redirect: true}", "http://a.example/x/y?q=1", "https://a.example/x/y?q=1", 301},
		{"https_redirect keeps a port the client named, as Envoy does", "redirect: {https_redirect: true}", "http://a.example:8443/x", "https://a.example:8443/x", 301},
		{"host_redirect replaces the port too", "redirect: {host_redirect: b.example}", "https://a.example:8443/x", "https://b.example/x", 301},
		{"port_redirect replaces the port", "redirect: {port_redirect: 9443}", "https://a.example:8443/x", "https://a.example:9443/x", 301},
		{"scheme_redirect", "redirect: {scheme_redirect: http}", "https://a.example/x", "http://a.example/x", 301},
		{"host_redirect", "redirect: {host_redirect: b.example}", "https://a.example/x?q=1", "https://b.example/x?q=1", 301},
		{"port_redirect", "redirect: {port_redirect: 8443}", "https://a.example/x", "https://a.example:8443/x", 301},
		{"path_redirect replaces the path, keeps the query", "redirect: {path_redirect: /new}", "https://a.example/old?q=1", "https://a.example/new?q=1", 301},
		{"a query in path_redirect replaces the request's", "redirect: {path_redirect: '/new?a=b', strip_query: true}", "https://a.example/old?q=1", "https://a.example/new?a=b", 301},
		{"strip_query", "redirect: {host_redirect: b.example, strip_query: true}", "https://a.example/x?q=1", "https://b.example/x", 301},
		{"prefix_rewrite replaces the matched prefix", "prefix: /old/\n    redirect: {prefix_rewrite: /new/}", "https://a.example/old/x?q=1", "https://a.example/new/x?q=1", 301},
		{"response_code", "redirect: {host_redirect: b.example, response_code: 307}", "https://a.example/x", "https://b.example/x", 307},
		{"everything", "redirect: {https_redirect: true, host_redirect: b.example, port_redirect: 9443, path_redirect: /p, response_code: 302, strip_query: true}",
			"http://a.example/x?q=1", "https://b.example:9443/p", 302},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "routes:\n  - from: https://a.example\n    allow_public_unauthenticated_access: true\n    " + c.route + "\n"
			w := serve(t, src, httptest.NewRequest("GET", c.url, nil))
			if w.Code != c.wantCode || w.Header().Get("Location") != c.wantLocation {
				t.Errorf("got %d Location %q, want %d %q", w.Code, w.Header().Get("Location"), c.wantCode, c.wantLocation)
			}
		})
	}
}

// Issue 13: a route's response was refused. It answers with its status
// and body.
func TestResponseRoutes(t *testing.T) {
	src := "routes:\n  - from: https://a.example\n    allow_public_unauthenticated_access: true\n    response: {status: 418, body: \"short and {stout}\"}\n"
	w := serve(t, src, httptest.NewRequest("GET", "https://a.example/x", nil))
	if w.Code != 418 || w.Body.String() != "short and {stout}" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("got %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
}

// A redirect or response route still asks its policy first.
func TestRedirectRoutesKeepTheirPolicy(t *testing.T) {
	out, _, err := adapt(t, "routes:\n  - from: https://a.example\n    redirect: {host_redirect: b.example}\n    allowed_domains: [example.com]\n", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if a, r := strings.Index(s, `"iap_authorize"`), strings.Index(s, `"Location"`); a < 0 || r < 0 || a > r {
		t.Errorf("iap_authorize does not come before the redirect:\n%s", s)
	}
}

func TestRedirectAndResponseErrors(t *testing.T) {
	for _, c := range []struct{ name, route, want string }{
		{"to and redirect", "to: http://b\n    redirect: {https_redirect: true}", "config.yaml:4: a route has one of to, redirect and response, not to and redirect"},
		{"a bad response code", "redirect: {response_code: 200}", `config.yaml:3: response_code: "200" is not one of 301`},
		{"an unknown redirect setting", "redirect: {host: b}", `unknown redirect setting "host"`},
		{"a response without a status", "response: {body: x}", "response needs a status"},
		{"a bad status", "response: {status: 99}", `response status: "99" is not an HTTP status`},
		{"a bad port", "redirect: {port_redirect: http}", `port_redirect: "http" is not a port number`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := adapt(t, "routes:\n  - from: https://a.example\n    "+c.route+"\n    allow_public_unauthenticated_access: true\n", "config.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
