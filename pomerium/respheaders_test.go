package pomerium

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// Issue 13: rewrite_response_headers was an unknown setting (an error),
// and set_response_headers did nothing on routes without an upstream.
// Both now change the response the client gets, proxied or not, as
// Pomerium does: rewrite_response_headers replaces a value's prefix.
func TestResponseHeaderSettings(t *testing.T) {
	settings := `
    set_response_headers:
      X-Frame-Options: DENY
      X-Braces: "{not a placeholder}"
    rewrite_response_headers:
      - header: location
        prefix: http://localhost:8000/two/
        value: https://app.example/one/
      - header: Link
        value: "$prefix"
`
	for _, c := range []struct{ name, action, wantLocation, wantLink string }{
		{"a redirect", "redirect: {host_redirect: 'localhost:8000', scheme_redirect: http, path_redirect: /two/x}", "https://app.example/one/x", ""},
		{"a response", "response: {status: 200, body: hi}", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "routes:\n  - from: https://app.example\n    allow_public_unauthenticated_access: true\n    " + c.action + settings
			w := serve(t, src, httptest.NewRequest("GET", "https://app.example/x", nil))
			h := w.Header()
			if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Braces") != "{not a placeholder}" {
				t.Errorf("set_response_headers not set: %v", h)
			}
			if h.Get("Location") != c.wantLocation || h.Get("Link") != c.wantLink {
				t.Errorf("Location %q, Link %q; want %q, %q", h.Get("Location"), h.Get("Link"), c.wantLocation, c.wantLink)
			}
		})
	}
	// Proxied: reverse_proxy applies its headers.response to the
	// upstream's response headers, as here.
	out, _, err := adapt(t, "routes:\n  - from: https://app.example\n    allow_public_unauthenticated_access: true\n    to: http://b"+settings, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var rp reverseproxy.Handler
	walk(cfg, func(o map[string]any) {
		if o["handler"] == "reverse_proxy" {
			b, _ := json.Marshal(o)
			if err := json.Unmarshal(b, &rp); err != nil {
				t.Fatal(err)
			}
		}
	})
	if rp.Headers == nil || rp.Headers.Response == nil {
		t.Fatalf("no response header ops:\n%s", out)
	}
	if err := rp.Headers.Response.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Location": {"http://localhost:8000/two/page"}, "Link": {"</style.css>; rel=preload"}}
	rp.Headers.Response.ApplyTo(h, caddy.NewReplacer())
	if h.Get("Location") != "https://app.example/one/page" || h.Get("Link") != "$prefix</style.css>; rel=preload" ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("X-Braces") != "{not a placeholder}" {
		t.Errorf("proxied response headers: %v", h)
	}

	_, _, err = adapt(t, "routes:\n  - from: https://a.example\n    to: http://b\n    rewrite_response_headers: {header: x}\n", "config.yaml")
	if err == nil || !strings.Contains(err.Error(), "config.yaml:4: rewrite_response_headers: a list of {header, prefix, value}") {
		t.Errorf("error %v", err)
	}
}
