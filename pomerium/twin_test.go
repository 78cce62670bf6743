package pomerium_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-iap/caddy-iap"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// twin is a Caddyfile site and the Pomerium route that says the same
// thing. $DIR in either is the directory of the fixtures.
type twin struct {
	name string

	// The Caddyfile: the bodies of the site's iap_route block and, if set,
	// its iap_mtls block. The site is app.example.com with `tls internal`.
	iapRoute, iapMTLS string

	// config.yaml: the settings of the route from https://app.example.com
	// and, if set, the global downstream_mtls.
	route, downstreamMTLS string
}

var twins = []twin{
	{
		name: "a public route lets everyone in",
		iapRoute: `
			to http://127.0.0.1:8080
			allow_public_unauthenticated_access`,
		route: `
			to: http://127.0.0.1:8080
			allow_public_unauthenticated_access: true`,
	},
	{
		name: "allowed users, domains and IdP claims become one allow rule",
		iapRoute: `
			to http://127.0.0.1:8080
			allowed_users alice@example.com bob
			allowed_domains example.org
			allowed_idp_claims groups admins ops
			allowed_idp_claims email_verified true`,
		route: `
			to: http://127.0.0.1:8080
			allowed_users: [alice@example.com, bob]
			allowed_domains: [example.org]
			allowed_idp_claims:
			  groups: [admins, ops]
			  email_verified: [true]`,
	},
	{
		name: "a policy keeps its allow and its deny rules",
		iapRoute: `
			to http://127.0.0.1:8080
			policy {
				allow {
					or {
						email is alice@example.com
						domain is example.com
					}
				}
				deny {
					or {
						http_method is DELETE
						http_path starts_with /admin/
					}
				}
			}`,
		route: `
			to: http://127.0.0.1:8080
			policy:
			  - allow:
			      or:
			        - email: {is: alice@example.com}
			        - domain: {is: example.com}
			  - deny:
			      or:
			        - http_method: {is: DELETE}
			        - http_path: {starts_with: /admin/}`,
	},
	{
		name: "a public route still applies its policy's deny rules",
		iapRoute: `
			to http://127.0.0.1:8080
			allow_public_unauthenticated_access
			policy {
				deny {
					or {
						http_path starts_with /admin/
					}
				}
			}`,
		route: `
			to: http://127.0.0.1:8080
			allow_public_unauthenticated_access: true
			policy:
			  - deny:
			      or:
			        - http_path: {starts_with: /admin/}`,
	},
	{
		name: "upstream mTLS trusts the custom CA, checks the server name and presents the client certificate",
		iapRoute: `
			to https://localhost:44330
			tls_custom_ca_file $DIR/upstreamCA.pem
			tls_upstream_server_name openssl.localhost
			tls_client_cert_file $DIR/client.pem
			tls_client_key_file $DIR/client-key.pem
			allow_any_authenticated_user`,
		route: `
			to: https://localhost:44330
			tls_custom_ca_file: $DIR/upstreamCA.pem
			tls_upstream_server_name: openssl.localhost
			tls_client_cert_file: $DIR/client.pem
			tls_client_key_file: $DIR/client-key.pem
			allow_any_authenticated_user: true`,
	},
	{
		name: "allow_websockets lets WebSocket upgrades through",
		iapRoute: `
			to http://127.0.0.1:8080
			allow_websockets
			allow_any_authenticated_user`,
		route: `
			to: http://127.0.0.1:8080
			allow_websockets: true
			allow_any_authenticated_user: true`,
	},
	{
		name: "tls_skip_verify trusts any upstream certificate",
		iapRoute: `
			to https://127.0.0.1:8443
			tls_skip_verify
			allow_any_authenticated_user`,
		route: `
			to: https://127.0.0.1:8443
			tls_skip_verify: true
			allow_any_authenticated_user: true`,
	},
	{
		name: "request headers are set, with Pomerium's variables, and removed",
		iapRoute: `
			to http://127.0.0.1:8080
			set_request_headers X-Static yes
			set_request_headers X-Fingerprint $pomerium.client_cert_fingerprint
			remove_request_headers X-Secret X-Other
			allow_any_authenticated_user`,
		route: `
			to: http://127.0.0.1:8080
			set_request_headers:
			  X-Static: "yes"
			  X-Fingerprint: $pomerium.client_cert_fingerprint
			remove_request_headers: [X-Secret, X-Other]
			allow_any_authenticated_user: true`,
	},
	{
		name: "preserve_host_header passes the client's Host to an http upstream",
		iapRoute: `
			to http://127.0.0.1:8080
			preserve_host_header
			allow_any_authenticated_user`,
		route: `
			to: http://127.0.0.1:8080
			preserve_host_header: true
			allow_any_authenticated_user: true`,
	},
	{
		name: "preserve_host_header passes the client's Host to an https upstream",
		iapRoute: `
			to https://127.0.0.1:8443
			preserve_host_header
			allow_any_authenticated_user`,
		route: `
			to: https://127.0.0.1:8443
			preserve_host_header: true
			allow_any_authenticated_user: true`,
	},
	{
		name: "cors_allow_preflight lets preflight requests in without signing in",
		iapRoute: `
			to http://127.0.0.1:8080
			allowed_domains example.com
			cors_allow_preflight`,
		route: `
			to: http://127.0.0.1:8080
			allowed_domains: [example.com]
			cors_allow_preflight: true`,
	},
	{
		name: "downstream mTLS with only a CA file refuses requests without a valid certificate",
		iapMTLS: `
			ca_file $DIR/rootCA.pem`,
		downstreamMTLS: `
			ca_file: $DIR/rootCA.pem`,
		iapRoute: `
			to http://127.0.0.1:8080
			allow_public_unauthenticated_access`,
		route: `
			to: http://127.0.0.1:8080
			allow_public_unauthenticated_access: true`,
	},
	{
		name: "downstream mTLS under policy_with_default_deny checks the CRL",
		iapMTLS: `
			ca_file $DIR/rootCA.pem
			crl_file $DIR/root.crl
			enforcement policy_with_default_deny`,
		downstreamMTLS: `
			ca_file: $DIR/rootCA.pem
			crl_file: $DIR/root.crl
			enforcement: policy_with_default_deny`,
		iapRoute: `
			to http://127.0.0.1:8080
			allow_public_unauthenticated_access`,
		route: `
			to: http://127.0.0.1:8080
			allow_public_unauthenticated_access: true`,
	},
	{
		name: "downstream mTLS under policy leaves the decision to the route's policy",
		iapMTLS: `
			ca_file $DIR/rootCA.pem
			enforcement policy`,
		downstreamMTLS: `
			ca_file: $DIR/rootCA.pem
			enforcement: policy`,
		iapRoute: `
			to http://127.0.0.1:8080
			policy {
				deny {
					or {
						invalid_client_certificate
					}
				}
			}
			allow_public_unauthenticated_access`,
		route: `
			to: http://127.0.0.1:8080
			policy:
			  - deny:
			      or:
			        - invalid_client_certificate: true
			allow_public_unauthenticated_access: true`,
	},
	{
		name: "downstream mTLS under reject_connection verifies SANs and depth in the handshake",
		iapMTLS: `
			ca_file $DIR/rootCA.pem
			crl_file $DIR/root.crl
			enforcement reject_connection
			match_subject_alt_names {
				email .*@example\.com
				dns .*\.corp\.example
			}
			max_verify_depth 2`,
		downstreamMTLS: `
			ca_file: $DIR/rootCA.pem
			crl_file: $DIR/root.crl
			enforcement: reject_connection
			match_subject_alt_names:
			  - email: .*@example\.com
			  - dns: .*\.corp\.example
			max_verify_depth: 2`,
		iapRoute: `
			to http://127.0.0.1:8080
			allow_any_authenticated_user`,
		route: `
			to: http://127.0.0.1:8080
			allow_any_authenticated_user: true`,
	},
}

// Each Caddyfile site and its Pomerium twin become the same handlers
// (iap_mtls, iap_authenticate, iap_authorize, reverse_proxy with its
// transport and headers) and the same TLS connection policies.
func TestCaddyfileAndPomeriumTwinsAdaptAlike(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewCA(t, "root")
	root.WriteCert(t, dir, "rootCA.pem")
	if err := os.WriteFile(filepath.Join(dir, "root.crl"), root.CurrentCRL(t), 0o644); err != nil {
		t.Fatal(err)
	}
	upstream := testpki.NewCA(t, "upstream")
	upstream.WriteCert(t, dir, "upstreamCA.pem")
	upstream.Issue(t, testpki.Client("pomerium@localhost")).Write(t, dir, "client")

	for _, c := range twins {
		t.Run(c.name, func(t *testing.T) {
			var site strings.Builder
			site.WriteString("app.example.com {\n\ttls internal\n")
			if c.iapMTLS != "" {
				site.WriteString("\tiap_mtls {\n" + indent(c.iapMTLS, "\t\t") + "\t}\n")
			}
			iapRoute := c.iapRoute
			if !strings.Contains(c.route, "allow_websockets") {
				// Pomerium's allow_websockets is off by default, the
				// Caddyfile's on.
				iapRoute += "\n\t\t\tallow_websockets false"
			}
			site.WriteString("\tiap_route {\n" + indent(iapRoute, "\t\t") + "\t}\n}\n")
			var yaml strings.Builder
			// Pomerium's default response headers (X-Frame-Options and
			// the like: TestPomeriumDefaultResponseHeaders) are not the
			// route's mapping, which the twins compare.
			yaml.WriteString("set_response_headers: {}\n")
			if c.downstreamMTLS != "" {
				yaml.WriteString("downstream_mtls:\n" + indent(c.downstreamMTLS, "  "))
			}
			yaml.WriteString("routes:\n  - from: https://app.example.com\n" + indent(c.route, "    "))

			fromCaddyfile := adaptTo(t, "caddyfile", strings.ReplaceAll(site.String(), "$DIR", dir))
			fromPomerium := adaptTo(t, "pomerium", strings.ReplaceAll(yaml.String(), "$DIR", dir))
			if !strings.Contains(fromCaddyfile, `"handler": "reverse_proxy"`) ||
				(c.iapMTLS != "") != strings.Contains(fromCaddyfile, `"client_authentication"`) {
				t.Fatalf("the Caddyfile twin lacks its proxy or its client_authentication:\n%s", fromCaddyfile)
			}
			if fromPomerium != fromCaddyfile {
				t.Errorf("config.yaml:\n%s\nand its Caddyfile twin:\n%s\nadapt differently (- Caddyfile, + Pomerium):\n%s",
					yaml.String(), site.String(), lineDiff(fromCaddyfile, fromPomerium))
			}
		})
	}
}

// adaptTo adapts src and returns what the twins must agree on, as
// indented JSON: the handlers of the only server in order, subroutes
// flattened, and its TLS connection policies.
func adaptTo(t *testing.T, adapter, src string) string {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter(adapter).Adapt([]byte(src), map[string]any{"filename": adapter})
	if err != nil {
		t.Fatalf("%s adapter: %v\n%s", adapter, err, src)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes   []route           `json:"routes"`
					Policies []json.RawMessage `json:"tls_connection_policies"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Apps.HTTP.Servers); n != 1 {
		t.Fatalf("%s adapter: %d servers, want 1:\n%s", adapter, n, out)
	}
	var got struct {
		Handlers []map[string]any  `json:"handlers"`
		Policies []json.RawMessage `json:"tls_connection_policies"`
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		routes := srv.Routes
		if adapter == "pomerium" {
			// The health checks Pomerium answers on every host come
			// first; a Caddyfile site has none.
			if len(routes) == 0 || fmt.Sprint(routes[0].Match) != "[map[path:[/healthz /ping]]]" {
				t.Fatalf("the pomerium adapter's first route is not the health check:\n%s", out)
			}
			routes = routes[1:]
			// Then the access log's request_id and upstream (Pomerium's
			// default access_log_fields): a Caddyfile site logs as the
			// user writes its log directive.
			if len(routes) > 0 && len(routes[0].Match) == 0 && strings.Contains(fmt.Sprint(routes[0].Handle), "log_append") {
				routes = routes[1:]
			}
			// So does Pomerium's own endpoints' route on each host, after
			// the host's routes.
			if n := len(routes); n < 2 || !strings.Contains(fmt.Sprint(routes[n-1].Match), "/.pomerium/*") {
				t.Fatalf("the pomerium adapter's last route does not answer /.pomerium/:\n%s", out)
			}
			routes = routes[:len(routes)-1]
		}
		got.Handlers = flatten(routes)
		got.Policies = srv.Policies
	}
	for _, h := range got.Handlers {
		if adapter == "pomerium" && h["handler"] == "reverse_proxy" {
			// Pomerium's upstreams get the request ID as X-Request-Id, as
			// Envoy sends them its own; a Caddyfile sends what the user
			// writes.
			dropRequestID(h)
		}
		if h["handler"] == "iap_authorize" {
			// A route is named in logs by what its config calls it: the
			// Caddyfile by its site address (app.example.com), Pomerium by
			// its from URL (https://app.example.com). Only the name
			// differs; the name is not what is compared.
			delete(h, "route")
		}
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dropRequestID removes the X-Request-Id the pomerium adapter sets on a
// reverse_proxy handler h, and the objects that held it alone.
func dropRequestID(h map[string]any) {
	hdrs, _ := h["headers"].(map[string]any)
	req, _ := hdrs["request"].(map[string]any)
	set, _ := req["set"].(map[string]any)
	if fmt.Sprint(set["X-Request-Id"]) != "[{http.request.uuid}]" {
		return
	}
	delete(set, "X-Request-Id")
	if len(set) == 0 {
		delete(req, "set")
	}
	if len(req) == 0 {
		delete(hdrs, "request")
	}
	if len(hdrs) == 0 {
		delete(h, "headers")
	}
}

type route struct {
	Match  []map[string]any `json:"match"`
	Handle []map[string]any `json:"handle"`
}

// flatten lists the handlers of routes in the order they run, with the
// handlers of each subroute in its place.
func flatten(routes []route) []map[string]any {
	var out []map[string]any
	for _, r := range routes {
		for _, h := range r.Handle {
			if h["handler"] != "subroute" {
				out = append(out, h)
				continue
			}
			b, _ := json.Marshal(h["routes"])
			var sub []route
			_ = json.Unmarshal(b, &sub)
			out = append(out, flatten(sub)...)
		}
	}
	return out
}

// indent strips the common leading tabs of text's lines (the Go source's
// indentation), drops the first line if it is empty, and starts each line
// with prefix.
func indent(text, prefix string) string {
	lines := strings.Split(strings.TrimPrefix(text, "\n"), "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "\t"))
		if common < 0 || n < common {
			common = n
		}
	}
	var b bytes.Buffer
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		b.WriteString(prefix + l[common:] + "\n")
	}
	return b.String()
}

// lineDiff shows how b differs from a, line by line: "-" for a line only in
// a, "+" for one only in b, and two lines of context around each change.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j] is the length of the longest common subsequence of x[i:]
	// and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var lines []string
	for i, j := 0, 0; i < len(x) || j < len(y); {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, "  "+x[i])
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, "+ "+y[j])
			j++
		default:
			lines = append(lines, "- "+x[i])
			i++
		}
	}
	var out []string
	for k, l := range lines {
		near := false
		for d := -2; d <= 2; d++ {
			if n := k + d; n >= 0 && n < len(lines) && lines[n][0] != ' ' {
				near = true
			}
		}
		if near {
			out = append(out, l)
		} else if len(out) > 0 && out[len(out)-1] != "  ..." {
			out = append(out, "  ...")
		}
	}
	return strings.Join(out, "\n")
}
