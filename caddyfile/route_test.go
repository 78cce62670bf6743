package caddyfile_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-iap/caddy-iap"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// adapt runs the Caddyfile adapter in-process, as `caddy adapt` does.
func adapt(t *testing.T, src string) (string, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	return string(out), err
}

// routeHandlers returns the handlers of the first site's route, the part of
// `caddy adapt` that iap_route produced.
func routeHandlers(t *testing.T, out string) []map[string]any {
	t.Helper()
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Routes []struct {
								Match  []map[string]any `json:"match"`
								Handle []map[string]any `json:"handle"`
							} `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes[0].Handle[0].Routes {
			// iap_route always starts with iap_authenticate under sign_in
			// policy; the tests look at what follows it.
			if len(r.Handle) > 1 && r.Handle[0]["handler"] == "iap_authenticate" && r.Handle[1]["handler"] == "iap_authorize" {
				if r.Handle[0]["sign_in"] != "policy" {
					t.Fatalf("iap_route's iap_authenticate must not force sign-in: %v", r.Handle[0])
				}
				return r.Handle[1:]
			}
		}
	}
	t.Fatalf("no iap_route in:\n%s", out)
	return nil
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTheGuidesRouteIsAReverseProxyWithTransportTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	caFile := ca.WriteCert(t, dir, "rootCA.pem")
	cert, key := ca.Issue(t, testpki.Client("pomerium@localhost")).Write(t, dir, "pomerium@localhost-client")

	out, err := adapt(t, `openssl.localhost.example {
	tls internal
	iap_route {
		to https://localhost:44330
		tls_upstream_server_name openssl.localhost
		tls_custom_ca_file `+caFile+`
		tls_client_cert_file `+cert+`
		tls_client_key_file `+key+`
		allow_public_unauthenticated_access
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	h := routeHandlers(t, out)
	if len(h) != 2 {
		t.Fatalf("want iap_authorize then reverse_proxy, got %s", jsonOf(h))
	}
	if got, want := jsonOf(h[0]), `{"handler":"iap_authorize","policy":[{"allow":{"or":[{"accept":true}]}}],"route":"openssl.localhost.example","url":"https://openssl.localhost.example"}`; got != want {
		t.Errorf("authorize = %s\nwant        %s", got, want)
	}
	want := `{"handler":"reverse_proxy","transport":{"protocol":"iap_http","tls":{` +
		`"ca":{"pem_files":["` + caFile + `"],"provider":"file"},` +
		`"client_certificate_file":"` + cert + `","client_certificate_key_file":"` + key + `",` +
		`"server_name":"openssl.localhost"}},"upstreams":[{"dial":"localhost:44330"}]}`
	if got := jsonOf(h[1]); got != want {
		t.Errorf("reverse_proxy = %s\nwant            %s", got, want)
	}
}

func TestRouteOptions(t *testing.T) {
	for _, c := range []struct {
		name  string
		block string
		want  []string // substrings of the reverse_proxy or authorize JSON
	}{
		{"a route without a policy is closed", "to http://127.0.0.1:8080",
			[]string{`{"handler":"iap_authorize","route":"app.example","url":"https://app.example"}`}},
		{"reverse_proxy subdirectives pass through",
			"to http://127.0.0.1:8080 http://127.0.0.1:8081\n lb_policy first\n health_uri /healthz\n header_up X-Extra yes\n allow_public_unauthenticated_access",
			[]string{`"load_balancing":{"selection_policy":{"policy":"first"}}`, `"health_checks":{"active":{"uri":"/healthz"}}`, `"X-Extra":["yes"]`, `{"dial":"127.0.0.1:8081"}`}},
		{"a transport block merges with the TLS options",
			"to https://127.0.0.1:8443\n transport http {\n  dial_timeout 3s\n }\n tls_upstream_server_name app.internal",
			[]string{`"dial_timeout":3000000000`, `"server_name":"app.internal"`}},
		{"an http upstream gets its own host, as in Pomerium", "to http://127.0.0.1:8080",
			[]string{`"Host":["{http.reverse_proxy.upstream.hostport}"]`}},
		{"preserve_host_header keeps the client's host for https upstreams", "to https://127.0.0.1:8443\n preserve_host_header",
			[]string{`"Host":["{http.request.hostport}"]`}},
		{"a user's header_up Host wins", "to http://127.0.0.1:8080\n header_up Host mine.example",
			[]string{`"Host":["mine.example"]`}},
		{"set_request_headers on one line and in a block",
			"to http://127.0.0.1:8080\n set_request_headers X-One 1\n set_request_headers {\n  X-Two 2\n  X-Three 3\n }",
			[]string{`"X-One":["1"]`, `"X-Two":["2"]`, `"X-Three":["3"]`}},
		{"remove_request_headers", "to http://127.0.0.1:8080\n remove_request_headers X-A X-B",
			[]string{`"delete":["X-A","X-B"]`}},
		{"a route can be named", "to http://127.0.0.1:8080\n name billing",
			[]string{`"route":"billing"`}},
		{"flags take an optional true or false", "to http://127.0.0.1:8080\n allow_public_unauthenticated_access false",
			[]string{`{"handler":"iap_authorize","route":"app.example","url":"https://app.example"}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := adapt(t, "app.example {\n\ttls internal\n\tiap_route {\n"+c.block+"\n\t}\n}\n")
			if err != nil {
				t.Fatal(err)
			}
			got := jsonOf(routeHandlers(t, out))
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %s:\n%s", w, got)
				}
			}
		})
	}
}

func TestIapRouteNeedsNoOrderLineAndTakesAMatcher(t *testing.T) {
	out, err := adapt(t, `app.example {
	tls internal
	respond /healthz 200
	iap_route /api/* {
		to http://127.0.0.1:8080
	}
	file_server
}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"match":[{"path":["/api/*"]}]`) {
		t.Errorf("matcher lost:\n%s", out)
	}
	// iap_route sorts before respond, file_server and the like, as
	// reverse_proxy does.
	if i, j := strings.Index(out, `"iap_authorize"`), strings.Index(out, `"file_server"`); i < 0 || j < 0 || i > j {
		t.Errorf("iap_route should come before file_server:\n%s", out)
	}
}

func TestCaddyfileErrorsNameTheProblem(t *testing.T) {
	for _, c := range []struct {
		name, src, want string
	}{
		{"an unknown global iap option", "{\n\tiap {\n\t\tcookie_monster yes\n\t}\n}\napp.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t}\n}",
			`unrecognized iap option "cookie_monster"`},
		{"a flag with a bad value", "app.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\ttls_skip_verify maybe\n\t}\n}",
			`tls_skip_verify takes true or false, got "maybe"`},
		{"an option without its value", "app.example {\n\tiap_route {\n\t\tto https://127.0.0.1:1\n\t\ttls_server_name\n\t}\n}",
			`tls_server_name takes exactly one value, got 0`},
		{"an unknown subdirective", "app.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\ttls_bogus x\n\t}\n}",
			`unrecognized subdirective tls_bogus`},
		{"a Pomerium variable sessions do not keep", "app.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\tallow_any_authenticated_user\n\t\tset_request_headers X-Token $pomerium.access_token\n\t}\n}",
			`route app.example: set_request_headers X-Token: $pomerium.access_token is not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := adapt(t, c.src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestARouteWithoutAnUpstreamIsAnError(t *testing.T) {
	_, err := adapt(t, `a.example.com {
	iap_route {
		allow_public_unauthenticated_access
	}
}`)
	if err == nil || !strings.Contains(err.Error(), "to <url>") || !strings.Contains(err.Error(), "Caddyfile:") {
		t.Errorf("got %v, want an error naming `to` and the line", err)
	}
}

// The passive health checks, limits and the healthy panic policy are
// reverse_proxy's own subdirectives, which iap_route passes through.
func TestRouteHealthSubdirectivesPassThrough(t *testing.T) {
	out, err := adapt(t, `app.example.com {
	tls internal
	iap_route {
		to http://a:8080 http://b:8080
		allow_public_unauthenticated_access
		lb_policy iap_healthy_panic 40 {
			policy least_conn
		}
		fail_duration 30s
		max_fails 3
		unhealthy_status 5xx
		unhealthy_request_count 10
	}
}
`)
	if err != nil {
		t.Fatal(err)
	}
	rp, _ := json.Marshal(routeHandlers(t, out)[1])
	for _, want := range []string{
		`"load_balancing":{"selection_policy":{"policy":"iap_healthy_panic","selection_policy":{"policy":"least_conn"},"threshold":40}}`,
		`"passive":{"fail_duration":30000000000,"max_fails":3,"unhealthy_request_count":10,"unhealthy_status":[5]}`,
	} {
		if !strings.Contains(string(rp), want) {
			t.Errorf("lacks %s:\n%s", want, rp)
		}
	}
}

// allow_spdy puts allow_spdy on both of the route's iap handlers (each
// would refuse SPDY otherwise); false, or no allow_spdy, leaves it off.
func TestRouteAllowSPDY(t *testing.T) {
	for block, want := range map[string]bool{
		"to http://127.0.0.1:8080\n allow_public_unauthenticated_access":                    false,
		"to http://127.0.0.1:8080\n allow_public_unauthenticated_access\n allow_spdy":       true,
		"to http://127.0.0.1:8080\n allow_public_unauthenticated_access\n allow_spdy true":  true,
		"to http://127.0.0.1:8080\n allow_public_unauthenticated_access\n allow_spdy false": false,
	} {
		out, err := adapt(t, "app.example {\n\ttls internal\n\tiap_route {\n"+block+"\n\t}\n}\n")
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(out, `"allow_spdy":true`)
		if want && n != 2 || !want && n != 0 {
			t.Errorf("%q: allow_spdy on %d handlers, want %v:\n%s", block, n, want, out)
		}
	}
	if _, err := adapt(t, "app.example {\n\tiap_route {\n\t\tto http://127.0.0.1:8080\n\t\tallow_spdy maybe\n\t}\n}\n"); err == nil || !strings.Contains(err.Error(), "allow_spdy") {
		t.Errorf("allow_spdy maybe: %v", err)
	}
}

// iap_mtls's server_names (Pomerium's tls_downstream_server_name): each of
// the site's other hosts takes connections made for the name; the name
// must be an address of the site (its certificate and client-certificate
// policy), else an error naming the line.
func TestMTLSServerNames(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	caFile := ca.WriteCert(t, dir, "ca.pem")
	out, err := adapt(t, "app.example, legacy.example {\n\ttls internal\n\tiap_mtls {\n\t\tca_file "+caFile+"\n\t\tserver_names legacy.example\n\t}\n\trespond ok\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"server_names":{"app.example":["legacy.example"]}`) {
		t.Errorf("no server_names:\n%s", out)
	}
	_, err = adapt(t, "app.example {\n\tiap_mtls {\n\t\tca_file "+caFile+"\n\t\tserver_names legacy.example\n\t}\n\trespond ok\n}\n")
	if err == nil || !strings.Contains(err.Error(), "server_names legacy.example: add it to the site's addresses") || !strings.Contains(err.Error(), ":4") {
		t.Errorf("a name that is not an address: %v", err)
	}
	_, err = adapt(t, "app.example {\n\tiap_mtls {\n\t\tca_file "+caFile+"\n\t\tserver_names\n\t}\n\trespond ok\n}\n")
	if err == nil || !strings.Contains(err.Error(), "server_names takes one or more host names") {
		t.Errorf("no name: %v", err)
	}
}
