package pomerium

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Pomerium sets three response headers on every route when the global
// set_response_headers is not written (config.Options
// GetSetResponseHeadersForPolicy): X-Frame-Options SAMEORIGIN,
// X-XSS-Protection, and Strict-Transport-Security, the last only when the
// config has certificates of its own and not autocert's staging CA. The
// adapter left them out, so a Pomerium user's apps lost their clickjacking
// protection and HSTS on the move.
func TestPomeriumDefaultResponseHeaders(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	cert, key := ca.Issue(t, testpki.Server("*.example.com")).Write(t, dir, "wildcard")
	certs := "certificate_file: " + cert + "\ncertificate_key_file: " + key + "\n"
	const hsts = "max-age=31536000; includeSubDomains; preload"
	route := "routes:\n  - from: https://app.example.com\n    to: http://127.0.0.1:8000\n    allow_public_unauthenticated_access: true\n"
	for _, c := range []struct {
		name, global, route string
		want                map[string]string // "" for absent
	}{
		{"no certificates", "", "", map[string]string{"X-Frame-Options": "SAMEORIGIN", "X-Xss-Protection": "1; mode=block", "Strict-Transport-Security": ""}},
		{"certificates", certs, "", map[string]string{"X-Frame-Options": "SAMEORIGIN", "X-Xss-Protection": "1; mode=block", "Strict-Transport-Security": hsts}},
		{"certificates and autocert's staging CA", certs + "autocert: true\nautocert_use_staging: true\n", "", map[string]string{"X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": ""}},
		{"a global set_response_headers replaces them", certs + "set_response_headers:\n  X-Test: 1\n", "", map[string]string{"X-Test": "1", "X-Frame-Options": "", "Strict-Transport-Security": ""}},
		{"an empty global set_response_headers", certs + "set_response_headers: {}\n", "", map[string]string{"X-Frame-Options": "", "X-Xss-Protection": ""}},
		{"disable", certs + "set_response_headers:\n  disable: true\n", "", map[string]string{"X-Frame-Options": "", "Strict-Transport-Security": ""}},
		{"a route's own go over them", certs, "    set_response_headers:\n      X-Frame-Options: DENY\n", map[string]string{"X-Frame-Options": "DENY", "X-Xss-Protection": "1; mode=block", "Strict-Transport-Security": hsts}},
		{"a route's disable", "", "    set_response_headers:\n      disable: x\n", map[string]string{"X-Frame-Options": "", "X-Xss-Protection": ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := adapt(t, c.global+route+c.route, "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var cfg any
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			set := http.Header{}
			walk(cfg, func(o map[string]any) {
				if o["handler"] != "reverse_proxy" {
					return
				}
				var rp reverseproxy.Handler
				b, _ := json.Marshal(o)
				if err := json.Unmarshal(b, &rp); err != nil {
					t.Fatal(err)
				}
				if rp.Headers != nil && rp.Headers.Response != nil && rp.Headers.Response.HeaderOps != nil {
					set = rp.Headers.Response.Set
				}
			})
			for name, want := range c.want {
				if got := strings.Join(set.Values(name), ","); got != want {
					t.Errorf("%s: %q, want %q (all: %v)", name, got, want, set)
				}
			}
		})
	}

	// On a route that answers itself (redirect, response), the same.
	w := serve(t, "routes:\n  - from: https://app.example\n    allow_public_unauthenticated_access: true\n    response: {status: 200, body: hi}\n",
		mustRequest(t, "https://app.example/"))
	if w.Header().Get("X-Frame-Options") != "SAMEORIGIN" || w.Header().Get("X-Xss-Protection") != "1; mode=block" {
		t.Errorf("response route: %v", w.Header())
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The shapes users write: certificates from the environment
// (CERTIFICATE_FILE, as Pomerium's compose files set them), a certificates
// list shared by several routes, and set_response_headers from the
// environment (SET_RESPONSE_HEADERS, or HEADERS) replacing the defaults.
func TestPomeriumDefaultResponseHeadersFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	cert, key := ca.Issue(t, testpki.Server("*.example.com")).Write(t, dir, "wildcard")
	routes := "routes:\n  - from: https://a.example.com\n    to: http://127.0.0.1:8000\n    allow_public_unauthenticated_access: true\n" +
		"  - from: https://b.example.com\n    to: http://127.0.0.1:8001\n    allow_public_unauthenticated_access: true\n"
	const hsts = "max-age=31536000; includeSubDomains; preload"
	for _, c := range []struct {
		name, file string
		env        map[string]string
		want       map[string]string
	}{
		{"CERTIFICATE_FILE and CERTIFICATE_KEY_FILE", routes, map[string]string{"CERTIFICATE_FILE": cert, "CERTIFICATE_KEY_FILE": key},
			map[string]string{"X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": hsts}},
		{"a certificates list", "certificates:\n  - cert: " + cert + "\n    key: " + key + "\n" + routes, nil,
			map[string]string{"X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": hsts}},
		{"SET_RESPONSE_HEADERS", routes, map[string]string{"CERTIFICATE_FILE": cert, "CERTIFICATE_KEY_FILE": key, "SET_RESPONSE_HEADERS": "X-Test:1"},
			map[string]string{"X-Test": "1", "X-Frame-Options": "", "Strict-Transport-Security": ""}},
		{"HEADERS", routes, map[string]string{"HEADERS": "X-Test:1"},
			map[string]string{"X-Test": "1", "X-Frame-Options": ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
			out, _, err := adaptWithEnv([]byte(c.file), map[string]any{"filename": "config.yaml"}, env)
			if err != nil {
				t.Fatal(err)
			}
			var cfg any
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			proxies := 0
			walk(cfg, func(o map[string]any) {
				if o["handler"] != "reverse_proxy" {
					return
				}
				proxies++
				var rp reverseproxy.Handler
				b, _ := json.Marshal(o)
				if err := json.Unmarshal(b, &rp); err != nil {
					t.Fatal(err)
				}
				set := http.Header{}
				if rp.Headers != nil && rp.Headers.Response != nil && rp.Headers.Response.HeaderOps != nil {
					set = rp.Headers.Response.Set
				}
				for name, want := range c.want {
					if got := strings.Join(set.Values(name), ","); got != want {
						t.Errorf("route %d: %s: %q, want %q", proxies, name, got, want)
					}
				}
			})
			if proxies != 2 {
				t.Errorf("%d proxies, want one per route", proxies)
			}
		})
	}
}
