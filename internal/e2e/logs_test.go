package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// logLine is one JSON line of a Caddy log.
type logLine map[string]any

// keys are the line's keys, sorted.
func (l logLine) keys() []string {
	var k []string
	for key := range l {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func (l logLine) str(key string) string { s, _ := l[key].(string); return s }

// object is the line's nested object under key.
func (l logLine) object(key string) logLine { m, _ := l[key].(map[string]any); return m }

// findLines waits (up to 10s, for the log writer) until read returns a
// JSON line that match accepts, and returns every such line.
func findLines(t *testing.T, read func() string, match func(logLine) bool) []logLine {
	t.Helper()
	for range 200 {
		var out []logLine
		for _, raw := range strings.Split(read(), "\n") {
			var l logLine
			if json.Unmarshal([]byte(raw), &l) == nil && match(l) {
				out = append(out, l)
			}
		}
		if len(out) > 0 {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no such log line in:\n%s", read())
	return nil
}

// traced matches the lines of one logger that carry a marker in the
// X-Trace header the request sent (under headers.X-Trace, or Caddy's
// request>headers).
func traced(logger, msg, trace string) func(logLine) bool {
	return func(l logLine) bool {
		if l.str("logger") != logger || l.str("msg") != msg {
			return false
		}
		if h := l.object("headers"); h["X-Trace"] == trace {
			return true
		}
		if h := l.object("request").object("headers"); fmt.Sprint(h["X-Trace"]) == "["+trace+"]" {
			return true
		}
		return false
	}
}

func readFile(path string) func() string {
	return func() string { b, _ := os.ReadFile(path); return string(b) }
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// authorize_log_fields in a Caddyfile, with Dex and a log file: each
// decision is one "authorize check" line with exactly the listed fields
// (plus allow, deny and reason), whatever the client sends.
func TestAuthorizeLogFieldsCaddyfile(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "decisions.log")
	// The extra lines end the iap option and open a global log whose
	// closing brace is the iap option's.
	e := startIdentity(t, testenv.DexOptions{}, "\t\tauthorize_log_fields request-id method path query host ip user email session-id route-id headers.X-Trace\n\t}\n\tlog decisions {\n\t\toutput file "+logFile+"\n\t\tformat json\n\t\tinclude http.handlers.iap_authorize\n")
	lines := func(trace string) []logLine {
		t.Helper()
		return findLines(t, readFile(logFile), traced("http.handlers.iap_authorize", "authorize check", trace))
	}
	want := []string{"allow", "deny", "email", "headers", "host", "ip", "level", "logger", "method", "msg", "path", "query", "reason", "request-id", "route-id", "ts", "user"}

	t.Run("an anonymous request forging its address, request ID and identity", func(t *testing.T) {
		h := http.Header{"X-Trace": {"anon"}, "X-Forwarded-For": {"203.0.113.66"}, "X-Request-Id": {"forged-id"},
			"X-Pomerium-Claim-Email": {"ceo@example.com"}, "Cookie": {"other=secret-cookie-value"}}
		if r := e.caddy.Get(t, "public.test", "/p/a?q=1", h); r.Status != 200 {
			t.Fatalf("public: %d %s", r.Status, r.Body)
		}
		l := lines("anon")
		if len(l) != 1 {
			t.Fatalf("%d lines for one request: %v", len(l), l)
		}
		if got := l[0].keys(); !slices.Equal(got, want) {
			t.Errorf("keys %v, want %v", got, want)
		}
		if ip := l[0].str("ip"); ip != "127.0.0.1" {
			t.Errorf("ip %q: X-Forwarded-For from an untrusted client counted", ip)
		}
		if id := l[0].str("request-id"); !uuidRE.MatchString(id) {
			t.Errorf("request-id %q is not Caddy's UUID (the client sent forged-id)", id)
		}
		if h := l[0].object("headers"); len(h) != 1 {
			t.Errorf("headers %v, want X-Trace only", h)
		}
		if l[0].str("user") != "" || l[0].str("email") != "" || l[0]["allow"] != true || l[0].str("reason") != "allowed" ||
			l[0].str("path") != "/p/a" || l[0].str("query") != "q=1" || l[0].str("host") != "public.test" || l[0].str("route-id") != "public.test" {
			t.Errorf("line %v", l[0])
		}
		if raw, _ := os.ReadFile(logFile); strings.Contains(string(raw), "secret-cookie-value") || strings.Contains(string(raw), "ceo@example.com") {
			t.Errorf("the log holds what it was not asked for:\n%s", raw)
		}
	})

	t.Run("a refusal by a route without a policy", func(t *testing.T) {
		if r := e.caddy.Get(t, "closed.test", "/", http.Header{"X-Trace": {"closed"}, "Accept": {"application/json"}}); r.Status != 403 {
			t.Fatalf("closed: %d", r.Status)
		}
		l := lines("closed")[0]
		if l["allow"] != false || l["deny"] != false || l.str("reason") != "no-policy" {
			t.Errorf("line %v", l)
		}
	})

	t.Run("an anonymous request asked to sign in", func(t *testing.T) {
		if r := e.caddy.Get(t, "app.test", "/", http.Header{"X-Trace": {"signin"}, "Accept": {"application/json"}}); r.Status != 401 {
			t.Fatalf("app: %d", r.Status)
		}
		l := lines("signin")[0]
		if l["allow"] != false || l["deny"] != false || l.str("reason") != "user-unauthenticated" || l.str("user") != "" {
			t.Errorf("line %v", l)
		}
	})

	t.Run("a signed-in user", func(t *testing.T) {
		ua := e.caddy.NewUserAgent(t)
		if resp, body := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
			t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
		}
		if resp, _ := ua.Get(t, ua.URL("app.test", "/again"), http.Header{"X-Trace": {"alice"}}); resp.StatusCode != 200 {
			t.Fatalf("signed in: %d", resp.StatusCode)
		}
		l := lines("alice")[0]
		withSession := append(slices.Clone(want), "session-id")
		slices.Sort(withSession)
		if got := l.keys(); !slices.Equal(got, withSession) {
			t.Errorf("keys %v, want %v", got, withSession)
		}
		if l.str("email") != alice.Email || l.str("user") == "" || l.str("session-id") == "" || l["allow"] != true {
			t.Errorf("line %v", l)
		}
		// Nothing of the session's secrets: the cookie's value, the ID
		// token (a JWT), the refresh token.
		raw, _ := os.ReadFile(logFile)
		u, _ := url.Parse(ua.URL("app.test", "/"))
		cookies := ua.Client.Jar.Cookies(u)
		if len(cookies) == 0 {
			t.Fatal("no session cookie to look for")
		}
		for _, c := range cookies {
			if len(c.Value) > 8 && strings.Contains(string(raw), c.Value) {
				t.Errorf("cookie %s's value is in the log", c.Name)
			}
		}
		if strings.Contains(string(raw), "eyJ") {
			t.Errorf("a JWT is in the log:\n%s", raw)
		}
	})
}

// A Pomerium config's access log and authorize log, from Caddy's stderr:
// Pomerium's default lists, then lists of the user's, give exactly those
// fields; the client's own headers, query and cookies stay out unless
// listed, and its X-Forwarded-For never becomes the logged ip.
func TestPomeriumLogFields(t *testing.T) {
	up := echoUpstream(t)
	for _, c := range []struct {
		name, settings   string
		access, request  []string // keys of the access line, and of its request
		accessHeaders    []string
		authorize        []string // keys of the authorize check line
		authorizeHeaders bool
	}{
		{
			name:          "Pomerium's default lists",
			access:        []string{"duration", "iap_decision", "iap_reason", "level", "logger", "msg", "request", "request_id", "size", "status", "ts", "upstream"},
			request:       []string{"headers", "host", "method", "uri"},
			accessHeaders: []string{"Referer", "User-Agent", "X-Forwarded-For"},
			authorize: []string{"allow", "check-request-id", "deny", "email", "host", "ip", "level", "logger", "method", "msg", "path", "reason",
				"request-id", "route-checksum", "route-id", "ts", "user"},
		},
		{
			name:             "lists of the user's",
			settings:         "log_level: debug\naccess_log_fields: [ip, response-code, headers.x-trace]\nauthorize_log_fields: [ip, headers.X-Trace]\n",
			access:           []string{"iap_decision", "iap_reason", "level", "logger", "msg", "request", "status", "ts"},
			request:          []string{"client_ip", "headers", "remote_ip"},
			accessHeaders:    []string{"X-Trace"},
			authorize:        []string{"allow", "deny", "headers", "ip", "level", "logger", "msg", "reason", "ts"},
			authorizeHeaders: true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			httpsPort := testenv.FreePort(t)
			config := fmt.Sprintf("address: :%d\nhttp_redirect_addr: :%d\n%sroutes:\n  - from: https://public.pomerium.test\n    to: %s\n    allow_public_unauthenticated_access: true\n",
				httpsPort, testenv.FreePort(t), c.settings, up)
			caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
			trace := fmt.Sprintf("trace-%d", httpsPort)
			h := http.Header{"X-Trace": {trace}, "User-Agent": {"logs-test " + trace}, "X-Forwarded-For": {"203.0.113.66"},
				"Referer": {"https://elsewhere.example/page?code=referer-secret"}, "X-Secret": {"header-secret"},
				"Cookie": {"a=cookie-secret"}, "X-Request-Id": {"forged-id"}}
			if r := caddy.Get(t, "public.pomerium.test", "/p?token=query-secret", h); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			access := findLines(t, caddy.Log, func(l logLine) bool {
				return l.str("logger") == "http.log.access.pomerium" && l["status"] != nil && (c.settings != "" || strings.Contains(fmt.Sprint(l.object("request").object("headers")["User-Agent"]), trace)) ||
					l.str("logger") == "http.log.access.pomerium" && fmt.Sprint(l.object("request").object("headers")["X-Trace"]) == "["+trace+"]"
			})
			if len(access) != 1 {
				t.Fatalf("%d access lines: %v", len(access), access)
			}
			a := access[0]
			if got := a.keys(); !slices.Equal(got, c.access) {
				t.Errorf("access log keys %v, want %v", got, c.access)
			}
			if got := a.object("request").keys(); !slices.Equal(got, c.request) {
				t.Errorf("access log request keys %v, want %v", got, c.request)
			}
			if got := a.object("request").object("headers").keys(); !slices.Equal(got, c.accessHeaders) {
				t.Errorf("access log headers %v, want %v", got, c.accessHeaders)
			}
			authz := findLines(t, caddy.Log, func(l logLine) bool {
				return l.str("logger") == "http.handlers.iap_authorize" && l.str("msg") == "authorize check"
			})
			if len(authz) != 1 {
				t.Fatalf("%d authorize check lines for one request: %v", len(authz), authz)
			}
			z := authz[0]
			if got := z.keys(); !slices.Equal(got, c.authorize) {
				t.Errorf("authorize check keys %v, want %v", got, c.authorize)
			}
			if z.str("ip") != "127.0.0.1" {
				t.Errorf("authorize ip %q, want the peer's (the client sent X-Forwarded-For: 203.0.113.66)", z.str("ip"))
			}
			if c.authorizeHeaders && fmt.Sprint(z["headers"]) != "map[X-Trace:"+trace+"]" {
				t.Errorf("authorize headers %v", z["headers"])
			}
			if c.settings == "" {
				// The two lines name the same request, by Caddy's UUID, not
				// the client's X-Request-Id.
				if id := a.str("request_id"); !uuidRE.MatchString(id) || z.str("request-id") != id || z.str("check-request-id") != id {
					t.Errorf("request IDs: access %q, authorize %q and %q", id, z.str("request-id"), z.str("check-request-id"))
				}
				req := a.object("request")
				if req.str("uri") != "/p" || req.str("method") != "GET" || req.str("host") != "public.pomerium.test" {
					t.Errorf("access request %v", req)
				}
				if hs := req.object("headers"); fmt.Sprint(hs["Referer"]) != "[https://elsewhere.example/page]" || fmt.Sprint(hs["X-Forwarded-For"]) != "[203.0.113.66]" {
					t.Errorf("access headers %v", hs)
				}
				if !strings.HasPrefix(a.str("upstream"), "127.0.0.1:") || z.str("route-id") != "https://public.pomerium.test" {
					t.Errorf("upstream %q, route-id %q", a.str("upstream"), z.str("route-id"))
				}
			} else if fmt.Sprint(a["status"]) != "200" || a.object("request").str("remote_ip") != "127.0.0.1" {
				t.Errorf("access line %v", a)
			}
			if c.settings != "" {
				// Health checks are logged at DEBUG, as Pomerium logs
				// them (the default level, INFO, leaves them out).
				if r := caddy.Get(t, "public.pomerium.test", "/ping", http.Header{"X-Trace": {trace + "-ping"}}); r.Status != 200 {
					t.Fatalf("/ping: %d", r.Status)
				}
				ping := findLines(t, caddy.Log, func(l logLine) bool {
					return l.str("logger") == "http.log.access.pomerium" && fmt.Sprint(l.object("request").object("headers")["X-Trace"]) == "["+trace+"-ping]"
				})
				if ping[0].str("level") != "debug" {
					t.Errorf("/ping logged at %q", ping[0].str("level"))
				}
			}
			// Nothing Caddy logs at INFO holds what was not asked for; at
			// DEBUG, the two logs do not (Caddy's own reverse_proxy lines
			// then show every request header).
			logged := caddy.Log()
			if c.settings != "" {
				var ours strings.Builder
				for _, l := range strings.Split(logged, "\n") {
					if strings.Contains(l, `"logger":"http.log.access.pomerium"`) || strings.Contains(l, `"msg":"authorize check"`) {
						ours.WriteString(l + "\n")
					}
				}
				logged = ours.String()
			}
			for _, secret := range []string{"header-secret", "cookie-secret", "query-secret", "referer-secret", "forged-id"} {
				if strings.Contains(logged, secret) {
					t.Errorf("the log holds %s:\n%s", secret, logLinesWith(logged, secret))
				}
			}
		})
	}
}

// skip_xff_append: the upstream gets X-Forwarded-For exactly as the client
// sent it (Envoy appends nothing), or none; the policy's source_ip still
// sees the TCP peer, so a client that forges the header gains nothing.
func TestPomeriumSkipXFFAppend(t *testing.T) {
	up := echoUpstream(t)
	start := func(t *testing.T, skip string) *testenv.Caddy {
		httpsPort := testenv.FreePort(t)
		config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
%sroutes:
  - from: https://local.pomerium.test
    to: %s
    policy:
      - allow:
          or:
            - source_ip: 127.0.0.1/32
  - from: https://remote.pomerium.test
    to: %s
    policy:
      - allow:
          or:
            - source_ip: 203.0.113.0/24
`, httpsPort, testenv.FreePort(t), skip, up, up)
		return testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	}
	json := http.Header{"Accept": {"application/json"}}
	forged := http.Header{"Accept": {"application/json"}, "X-Forwarded-For": {"203.0.113.66, 198.51.100.7"}}

	t.Run("skip_xff_append: true", func(t *testing.T) {
		caddy := start(t, "skip_xff_append: true\n")
		r := caddy.Get(t, "local.pomerium.test", "/", forged)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if got := echoed(t, r.Body)["X-Forwarded-For"]; !slices.Equal(got, []string{"203.0.113.66, 198.51.100.7"}) {
			t.Errorf("upstream X-Forwarded-For %q, want the client's, unchanged", got)
		}
		r = caddy.Get(t, "local.pomerium.test", "/", json)
		if got, ok := echoed(t, r.Body)["X-Forwarded-For"]; r.Status != 200 || ok {
			t.Errorf("%d: upstream X-Forwarded-For %q, want none (the client sent none)", r.Status, got)
		}
		if got := echoed(t, r.Body).Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto %q", got)
		}
		if r := caddy.Get(t, "remote.pomerium.test", "/", forged); r.Status != 403 {
			t.Errorf("a forged X-Forwarded-For got past source_ip: %d %s", r.Status, r.Body)
		}
	})

	t.Run("by default the upstream gets the peer, not the client's list", func(t *testing.T) {
		caddy := start(t, "skip_xff_append: false\n")
		r := caddy.Get(t, "local.pomerium.test", "/", forged)
		if got := echoed(t, r.Body)["X-Forwarded-For"]; r.Status != 200 || !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Errorf("%d: upstream X-Forwarded-For %q, want the peer", r.Status, got)
		}
		if r := caddy.Get(t, "remote.pomerium.test", "/", forged); r.Status != 403 {
			t.Errorf("a forged X-Forwarded-For got past source_ip: %d", r.Status)
		}
	})
}
