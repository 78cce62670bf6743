package module

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/authz"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		path, raw string // after; raw is what the upstream is sent
		ambiguous bool
	}{
		{name: "a plain path is left alone", in: "/public/hello.txt", path: "/public/hello.txt", raw: "/public/hello.txt"},
		{name: "the root is left alone", in: "/", path: "/", raw: "/"},
		{name: "a trailing slash is kept", in: "/public/", path: "/public/", raw: "/public/"},
		{name: "dot-dot climbs out of the public prefix", in: "/public/../admin/secret.txt", path: "/admin/secret.txt", raw: "/admin/secret.txt"},
		{name: "dot-dot cannot climb above the root", in: "/../../admin", path: "/admin", raw: "/admin"},
		{name: "a dot segment is dropped", in: "/./admin/x", path: "/admin/x", raw: "/admin/x"},
		{name: "a leading double slash is merged", in: "//admin/x", path: "/admin/x", raw: "/admin/x"},
		{name: "inner slashes are merged", in: "/public//a///b", path: "/public/a/b", raw: "/public/a/b"},
		{name: "a last dot-dot names a directory", in: "/a/b/..", path: "/a/", raw: "/a/"},
		{name: "a last dot names a directory", in: "/a/b/.", path: "/a/b/", raw: "/a/b/"},
		{name: "other escapes are kept as written", in: "/public/a%20b/../c%3Fd", path: "/public/c?d", raw: "/public/c%3Fd"},
		{name: "an escaped letter is kept", in: "/%61dmin", path: "/admin", raw: "/%61dmin"},
		{name: "dots inside a name are not segments", in: "/a/..b/c../.d/", path: "/a/..b/c../.d/", raw: "/a/..b/c../.d/"},
		{name: "an encoded dot in a name is fine", in: "/file%2etxt", path: "/file.txt", raw: "/file%2etxt"},
		{name: "a semicolon in a name is fine", in: "/a;b=c/d", path: "/a;b=c/d", raw: "/a;b=c/d"},
		{name: "an encoded dot-dot is ambiguous", in: "/public/%2e%2e/admin/secret.txt", ambiguous: true},
		{name: "a half-encoded dot-dot is ambiguous", in: "/public/%2E./admin", ambiguous: true},
		{name: "an encoded single dot is ambiguous", in: "/%2e/admin/secret.txt", ambiguous: true},
		{name: "an encoded slash is ambiguous", in: "/public/..%2fadmin/secret.txt", ambiguous: true},
		{name: "an encoded slash in the prefix is ambiguous", in: "/public%2f..%2fadmin%2fsecret.txt", ambiguous: true},
		{name: "an upper-case encoded slash is ambiguous", in: "/a%2Fb", ambiguous: true},
		{name: "an encoded backslash is ambiguous", in: "/public/..%5cadmin", ambiguous: true},
		{name: "an encoded NUL is ambiguous", in: "/admin%00.txt", ambiguous: true},
		{name: "a dot-dot with a path parameter is ambiguous (Tomcat)", in: "/public/..;/admin", ambiguous: true},
		{name: "a dot with a path parameter is ambiguous", in: "/.;x/admin", ambiguous: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			err = normalizePath(u)
			if tc.ambiguous {
				if err == nil {
					t.Fatalf("accepted as %q (sent as %q)", u.Path, u.EscapedPath())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Path != tc.path || u.EscapedPath() != tc.raw {
				t.Errorf("got path %q sent as %q, want %q sent as %q", u.Path, u.EscapedPath(), tc.path, tc.raw)
			}
		})
	}
}

// The decision a policy makes on a path is the decision it would make on the
// path the upstream sees, for any path: the upstream's server parses the
// request line the proxy sends (Go's parser, as Caddy's file_server and most
// Go upstreams do), decodes it, and cleans it (file_server's path.Clean).
func FuzzNormalizedPathIsWhatTheUpstreamSees(f *testing.F) {
	for _, seed := range []string{
		"/public/../admin/secret.txt", "/public/%2e%2e/admin", "//admin", "/./admin", "/x/../admin",
		"/public%2f..%2fadmin", "/public/a%20b", "/..;/admin", "/public/", "/a/b/..", "/%61dmin/",
	} {
		f.Add(seed)
	}
	policies := []*authz.Evaluator{
		mustCompile(f, `{"allow":{"or":[{"http_path":{"starts_with":"/public"}}]}}`),
		mustCompile(f, `[{"allow":{"or":[{"accept":true}]}},{"deny":{"or":[{"http_path":{"starts_with":"/admin"}}]}}]`),
		mustCompile(f, `{"allow":{"or":[{"http_path":{"is":"/public/hello.txt"}}]}}`),
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			return
		}
		if normalizePath(u) != nil {
			return // refused with 400: nothing reaches the upstream
		}
		decided := u.Path
		// What the upstream gets: the request line the proxy writes.
		sent := u.RequestURI()
		up, err := url.ParseRequestURI(sent)
		if err != nil {
			t.Fatalf("the upstream cannot parse %q (from %q): %v", sent, target, err)
		}
		if up.Path != decided {
			t.Fatalf("%q: the policy decided on %q, the upstream got %q", target, decided, up.Path)
		}
		served := path.Clean(up.Path)
		if strings.HasSuffix(up.Path, "/") && served != "/" {
			served += "/"
		}
		if served != decided {
			t.Fatalf("%q: the policy decided on %q, the upstream serves %q", target, decided, served)
		}
		for _, raw := range []string{"%2f", "%2F", "%5c", "%5C", "%00"} {
			if strings.Contains(up.EscapedPath(), raw) {
				t.Fatalf("%q: %s reached the upstream in %q", target, raw, up.EscapedPath())
			}
		}
		for i, p := range policies {
			in := authz.Input{Request: authz.Request{Method: "GET", Path: decided}}
			atUpstream := authz.Input{Request: authz.Request{Method: "GET", Path: served}}
			if p.Evaluate(&in).Allow != p.Evaluate(&atUpstream).Allow {
				t.Fatalf("%q: policy %d decides %q and %q differently", target, i, decided, served)
			}
		}
		again := *up
		if err := normalizePath(&again); err != nil || again.Path != up.Path {
			t.Fatalf("%q: normalizing twice changes %q to %q (%v)", target, up.Path, again.Path, err)
		}
	})
}

func mustCompile(tb testing.TB, src string) *authz.Evaluator {
	tb.Helper()
	p, err := authz.Parse([]byte(src), "test")
	if err != nil {
		tb.Fatal(err)
	}
	e, err := authz.Compile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestUpgradeOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		r      func() *http.Request
		want   string
		onlyWS bool
	}{
		{"no upgrade", func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, "", true},
		{"a websocket upgrade", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		}, "websocket", true},
		{"h2c smuggling", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Upgrade", "h2c")
			return r
		}, "h2c", false},
		{"two tokens, one of them not websocket", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Upgrade", "websocket, h2c")
			return r
		}, "websocket, h2c", false},
		{"an HTTP/2 extended CONNECT for websocket", func() *http.Request {
			r := httptest.NewRequest("CONNECT", "/chat", nil)
			r.ProtoMajor = 2
			r.Header.Set(":protocol", "websocket")
			return r
		}, "websocket", true},
		{"an HTTP/2 extended CONNECT for another protocol", func() *http.Request {
			r := httptest.NewRequest("CONNECT", "/x", nil)
			r.ProtoMajor = 2
			r.Header.Set(":protocol", "connect-udp")
			return r
		}, "connect-udp", false},
		{"an HTTP/3 extended CONNECT", func() *http.Request {
			r := httptest.NewRequest("CONNECT", "/x", nil)
			r.ProtoMajor, r.Proto = 3, "webtransport"
			return r
		}, "webtransport", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := upgradeOf(tc.r())
			if got := strings.Join(up, ", "); got != tc.want || (len(up) == 0 || onlyWebSocket(up)) != tc.onlyWS {
				t.Errorf("got %q (only websocket: %v)", got, onlyWebSocket(up))
			}
		})
	}
}
