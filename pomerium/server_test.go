package pomerium

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// adaptedServer returns the adapted config's one server, decoded as Caddy's own
// struct with no unknown field allowed.
func adaptedServer(t *testing.T, src string) (*caddyhttp.Server, map[string]any) {
	t.Helper()
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("unexpected warning: %s", w)
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var httpApp struct {
		Servers map[string]json.RawMessage `json:"servers"`
	}
	if err := json.Unmarshal(cfg.Apps["http"], &httpApp); err != nil {
		t.Fatal(err)
	}
	srv := new(caddyhttp.Server)
	dec := json.NewDecoder(bytes.NewReader(httpApp.Servers["pomerium"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(srv); err != nil {
		t.Fatal(err)
	}
	var apps map[string]any
	_ = json.Unmarshal(out, &apps)
	return srv, apps
}

const publicRoute = "routes:\n  - from: https://app.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n"

// Issue 13: the server settings were ignored with a warning (or unknown).
// They become the server's own fields, as Envoy's listener has them.
func TestServerSettings(t *testing.T) {
	srv, _ := adaptedServer(t, "timeout_read: 10s\ntimeout_write: 1m\ntimeout_idle: 2m\ncodec_type: http1\nuse_proxy_protocol: true\n"+publicRoute)
	if time.Duration(srv.ReadTimeout) != 10*time.Second || time.Duration(srv.WriteTimeout) != time.Minute || time.Duration(srv.IdleTimeout) != 2*time.Minute {
		t.Errorf("timeouts %v %v %v", srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	if fmt.Sprint(srv.Protocols) != "[h1]" {
		t.Errorf("protocols %v", srv.Protocols)
	}
	if len(srv.ListenerWrappersRaw) != 2 || !strings.Contains(string(srv.ListenerWrappersRaw[0]), `"proxy_protocol"`) ||
		!strings.Contains(string(srv.ListenerWrappersRaw[1]), `"tls"`) {
		t.Errorf("listener wrappers %s", srv.ListenerWrappersRaw)
	}
	for v, want := range map[string]string{"auto": "[]", "CODEC_TYPE_HTTP2": "[h2]", "http3": "[h1 h2 h3]"} {
		srv, _ := adaptedServer(t, "codec_type: "+v+"\n"+publicRoute)
		if fmt.Sprint(srv.Protocols) != want {
			t.Errorf("codec_type %s: protocols %v, want %s", v, srv.Protocols, want)
		}
	}
	for _, c := range []struct{ yaml, want string }{
		{"timeout_read: soon\n", `timeout_read: "soon" is not a duration`},
		{"codec_type: http4\n", `codec_type: "http4" is not one of`},
		{"services: proxy\n", `services: "proxy" is not supported: caddy-iap runs every service in one process`},
		{"insecure_server: true\ndownstream_mtls: {ca: Zm9v}\n", "insecure_server serves plain HTTP, so downstream mTLS"},
		{"autocert: true\nautocert_eab_key_id: k\n", "autocert_eab_key_id and autocert_eab_mac_key go together"},
	} {
		if _, _, err := adapt(t, c.yaml+publicRoute, "config.yaml"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
	if _, _, err := adapt(t, "services: all\n"+publicRoute, "config.yaml"); err != nil {
		t.Errorf("services: all: %v", err)
	}
}

// autocert_* become the ACME issuer of the route hosts' certificates; set
// without autocert they change nothing, and say so.
func TestAutocertSettings(t *testing.T) {
	_, apps := adaptedServer(t, "autocert: true\nautocert_use_staging: true\nautocert_email: ops@example.com\nautocert_must_staple: true\n"+
		"autocert_eab_key_id: kid\nautocert_eab_mac_key: mac\nautocert_trusted_ca_file: /etc/ca.pem\n"+publicRoute)
	b, _ := json.Marshal(apps["apps"].(map[string]any)["tls"])
	for _, want := range []string{`"subjects":["app.example"]`, `"must_staple":true`, `"module":"acme"`, `"ca":"` + letsEncryptStaging + `"`,
		`"email":"ops@example.com"`, `"external_account":{"key_id":"kid","mac_key":"mac"}`, `"trusted_roots_pem_files":["/etc/ca.pem"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("tls app lacks %s: %s", want, b)
		}
	}
	_, apps = adaptedServer(t, "autocert: true\nautocert_use_staging: true\nautocert_ca: https://acme.example/dir\n"+publicRoute)
	if b, _ := json.Marshal(apps["apps"].(map[string]any)["tls"]); !strings.Contains(string(b), `"ca":"https://acme.example/dir"`) {
		t.Errorf("autocert_ca does not win: %s", b)
	}
	_, warnings, err := adapt(t, "autocert_email: ops@example.com\n"+publicRoute, "config.yaml")
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].String(), "config.yaml:1: autocert_email is ignored: autocert is not true") {
		t.Errorf("warnings %v, error %v", warnings, err)
	}
}

// normalize_path, merge_slashes and path_with_escaped_slashes_action map
// onto the path rules; none can weaken them. From the file or the
// environment alike.
func TestPathSettingsNeverWeakenThePathRules(t *testing.T) {
	for _, c := range []struct{ yaml, env, warn, err string }{
		{yaml: "normalize_path: true\nmerge_slashes: true\npath_with_escaped_slashes_action: REJECT_REQUEST\n"},
		{yaml: "path_with_escaped_slashes_action: path_with_escaped_slashes_action_reject_request\n"},
		{yaml: "normalize_path: false\n", warn: "config.yaml:1: normalize_path: false is ignored: caddy-iap always cleans the path"},
		{yaml: "merge_slashes: false\n", warn: "config.yaml:1: merge_slashes: false is ignored"},
		{env: "NORMALIZE_PATH=false", warn: "normalize_path: false is ignored"},
		{yaml: "path_with_escaped_slashes_action: KEEP_UNCHANGED\n", err: "path_with_escaped_slashes_action: KEEP_UNCHANGED is not supported: caddy-iap refuses a path with an encoded slash"},
		{yaml: "path_with_escaped_slashes_action: unescape_and_forward\n", err: "UNESCAPE_AND_FORWARD is not supported"},
		{env: "PATH_WITH_ESCAPED_SLASHES_ACTION=UNESCAPE_AND_REDIRECT", err: "UNESCAPE_AND_REDIRECT is not supported"},
		{yaml: "path_with_escaped_slashes_action: sometimes\n", err: `"sometimes" is not one of`},
		{yaml: "normalize_path: maybe\n", err: `normalize_path: "maybe" is not true or false`},
	} {
		env := map[string]string{}
		if k, v, ok := strings.Cut(c.env, "="); ok {
			env[k] = v
		}
		_, warnings, err := adaptWithEnv([]byte(c.yaml+publicRoute), map[string]any{"filename": "config.yaml"},
			func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q %q: error %v, want %q", c.yaml, c.env, err, c.err)
			}
		case err != nil:
			t.Errorf("%q %q: %v", c.yaml, c.env, err)
		case c.warn == "" && len(warnings) > 0, c.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0].String(), c.warn)):
			t.Errorf("%q %q: warnings %v, want %q", c.yaml, c.env, warnings, c.warn)
		}
	}
}

// The global set_response_headers is on every route's response, under the
// route's own; Pomerium's disable key turns them all off.
func TestGlobalSetResponseHeaders(t *testing.T) {
	route := func(extra string) string {
		return "routes:\n  - from: https://app.example\n    allow_public_unauthenticated_access: true\n    response: {status: 200, body: hi}\n" + extra
	}
	for _, c := range []struct {
		name, yaml string
		want       map[string]string
	}{
		{"global", "set_response_headers: {X-A: '1', X-B: '2'}\n" + route(""), map[string]string{"X-A": "1", "X-B": "2"}},
		{"the route's wins", "set_response_headers: {X-A: '1', X-B: '2'}\n" + route("    set_response_headers: {X-B: '3'}\n"), map[string]string{"X-A": "1", "X-B": "3"}},
		{"disable in the global", "set_response_headers: {disable: 'true', X-A: '1'}\n" + route("    set_response_headers: {X-B: '3'}\n"), map[string]string{"X-A": "", "X-B": "3"}},
		{"disable in the route", "set_response_headers: {X-A: '1'}\n" + route("    set_response_headers: {disable: 'true'}\n"), map[string]string{"X-A": "", "Disable": ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, c.yaml, httptest.NewRequest("GET", "https://app.example/", nil))
			for k, v := range c.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// use_proxy_protocol: the client address a real Caddy passes on is the one
// of the PROXY header, over a listener that also takes codec_type http1
// and the timeouts.
func TestProxyProtocolReachesTheUpstream(t *testing.T) {
	up := echoUpstream(t)
	addr := runCaddy(t, "use_proxy_protocol: true\ncodec_type: http1\ntimeout_read: 30s\ntimeout_idle: 1m\n"+
		"routes:\n  - from: https://app.example\n    to: "+up+"\n    allow_public_unauthenticated_access: true\n")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PROXY TCP4 203.0.113.9 127.0.0.1 41000 80\r\nGET / HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var got seen
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if xff := got.Header.Get("X-Forwarded-For"); xff != "203.0.113.9" {
		t.Errorf("X-Forwarded-For %q, want the PROXY header's 203.0.113.9", xff)
	}
}

// freeAddr is a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Issue 13: metrics_address and health_check_addr were ignored. A real
// Caddy now serves its Prometheus metrics on metrics_address, behind
// metrics_basic_auth, and the health checks on health_check_addr.
func TestMetricsAndHealthCheckListeners(t *testing.T) {
	metrics, health := freeAddr(t), freeAddr(t)
	runCaddy(t, "metrics_address: "+metrics+"\nmetrics_basic_auth: "+base64.StdEncoding.EncodeToString([]byte("ops:s3cret"))+
		"\nhealth_check_addr: "+health+"\n"+publicRoute)
	get := func(url, user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get("http://"+metrics+"/metrics", "", ""); code != 401 {
		t.Errorf("metrics without credentials: %d", code)
	}
	if code, _ := get("http://"+metrics+"/metrics", "ops", "wrong"); code != 401 {
		t.Errorf("metrics with a wrong password: %d", code)
	}
	if code, body := get("http://"+metrics+"/metrics", "ops", "s3cret"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics: %d %.200s", code, body)
	}
	if code, body := get("http://"+health+"/healthz", "", ""); code != 200 || body != "OK\n" {
		t.Errorf("health check: %d %q", code, body)
	}

	for _, c := range []struct{ yaml, want string }{
		{"metrics_address: :9090\nmetrics_basic_auth: bm9jb2xvbg==\n", "metrics_basic_auth: not a base64-encoded user:password"},
		{"headers_with_underscores_action: sometimes\n", `headers_with_underscores_action: "sometimes" is not one of`},
	} {
		if _, _, err := adapt(t, c.yaml+publicRoute, "config.yaml"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
	for _, c := range []struct{ yaml, want string }{
		{"metrics_basic_auth: b3BzOng=\n", "config.yaml:1: metrics_basic_auth is ignored: metrics_address is not set"},
		{"headers_with_underscores_action: ALLOW\n", "config.yaml:1: headers_with_underscores_action: ALLOW is served as DROP_HEADER"},
		{"autocert_dir: /var/lib/certs\n", "config.yaml:1: autocert_dir is ignored: autocert is not true"},
	} {
		_, warnings, err := adapt(t, c.yaml+publicRoute, "config.yaml")
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].String(), c.want) {
			t.Errorf("%q: %v %v, want %q", c.yaml, err, warnings, c.want)
		}
	}
	if _, apps := adaptedServer(t, "autocert: true\nautocert_dir: /var/lib/certs\nheaders_with_underscores_action: drop_header\n"+publicRoute); fmt.Sprint(apps["storage"]) != "map[module:file_system root:/var/lib/certs]" {
		t.Errorf("autocert_dir: storage %v", apps["storage"])
	}
}

// dns_resolvers (and dns_use_tcp) become every route transport's
// upstream resolver, which a real Caddy loads.
func TestDNSResolvers(t *testing.T) {
	out, warnings, err := adapt(t, "dns_resolvers: [udp://10.0.0.2:53, '10.0.0.3']\n"+publicRoute, "config.yaml")
	if err != nil || len(warnings) > 0 || !strings.Contains(string(out), `"resolver":{"addresses":["udp/10.0.0.2:53","udp/10.0.0.3"]}`) {
		t.Errorf("%v %v:\n%s", err, warnings, out)
	}
	out, _, err = adaptWithEnv([]byte(publicRoute), map[string]any{"filename": "config.yaml"}, envOf("DNS_RESOLVERS=udp://10.0.0.2:53,udp://10.0.0.4:53", "DNS_USE_TCP=true"))
	if err != nil || !strings.Contains(string(out), `"resolver":{"addresses":["tcp/10.0.0.2:53","tcp/10.0.0.4:53"]}`) {
		t.Errorf("from the environment: %v:\n%s", err, out)
	}
	_, warnings, err = adapt(t, "dns_use_tcp: true\n"+publicRoute, "config.yaml")
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].String(), "config.yaml:1: dns_use_tcp is ignored: dns_resolvers is not set") {
		t.Errorf("%v %v", err, warnings)
	}
	if _, _, err := adapt(t, "dns_resolvers: [https://dns.example/q]\n"+publicRoute, "config.yaml"); err == nil || !strings.Contains(err.Error(), "is not a resolver such as udp://") {
		t.Errorf("error %v", err)
	}
	up := echoUpstream(t)
	runCaddy(t, "dns_resolvers: [udp://127.0.0.1:53]\nroutes:\n  - from: https://a.example\n    to: "+up+"\n    allow_public_unauthenticated_access: true\n")
}
