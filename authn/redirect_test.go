package authn

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSafeReturnURL(t *testing.T) {
	a := &Authenticator{cfg: Config{AllowedRedirectHosts: allowOther}}
	const host = "app.example.com"
	for _, c := range []struct {
		name, host, raw, want string
	}{
		{"a path on the request's host is kept with its query", host, "/page?x=1", "https://app.example.com/page?x=1"},
		{"a URL on the request's host is kept", host, "https://app.example.com/a", "https://app.example.com/a"},
		{"a URL on an allowed host is kept", host, "https://other.example.com/a", "https://other.example.com/a"},
		{"another host is refused", host, "https://evil.example/", ""},
		{"a protocol-relative URL is refused", host, "//evil.example/", ""},
		{"a slash and a backslash are refused", host, "/\\evil.example/", ""},
		{"two backslashes are refused", host, "\\\\evil.example", ""},
		{"encoded slashes stay in the path", host, "/%2F%2Fevil.example", "https://app.example.com/%2F%2Fevil.example"},
		{"plain http is refused", host, "http://app.example.com/", ""},
		{"javascript is refused", host, "javascript:alert(1)", ""},
		{"user info before our host is refused", host, "https://evil.example@app.example.com/", ""},
		{"user info before another host is refused", host, "https://app.example.com@evil.example/", ""},
		{"a relative path is refused", host, "relative/path", ""},
		{"an empty URL is refused", host, "", ""},
		{"an empty host is refused", host, "https:///path", ""},
		{"a header injection is refused", host, "/ok\r\nSet-Cookie: x=y", ""},
		{"an escaped slash and at sign without a leading slash are refused (issue 11)", host, "%2F%40evil.example", ""},
		{"an escaped slash and at sign after the host are refused", host, "https://app.example.com%2F@evil.example/", ""},
		{"an escaped at sign in the host is refused", host, "https://app.example.com%40evil.example/", ""},
		{"escaped characters after a leading slash stay in the path", host, "/%2F@evil.example", "https://app.example.com/%2F@evil.example"},
		{"a backslash right after the host is refused", host, "https://app.example.com\\@evil.example/", ""},
		{"a leading space is refused", host, " https://app.example.com/", ""},
		{"a tab between slashes is refused", host, "/\t/evil.example", ""},
		{"an uppercase scheme and host are the same origin", host, "HTTPS://APP.example.com/a", "https://APP.example.com/a"},
		{"the default port is the same origin", host, "https://app.example.com:443/a", "https://app.example.com:443/a"},
		{"another port of the request's host is refused", "app.example.com:8443", "https://app.example.com:9443/", ""},
		{"the request's own port is kept", "app.example.com:8443", "https://app.example.com:8443/a", "https://app.example.com:8443/a"},
		{"the request's host without its port is refused", "app.example.com:8443", "https://app.example.com/a", ""},
		{"a path on a host with a port keeps the port", "app.example.com:8443", "/a", "https://app.example.com:8443/a"},
		{"an allowed host on another port is refused", host, "https://other.example.com:9443/", ""},
		{"an allowed host on the request's port is kept", "app.example.com:8443", "https://other.example.com:8443/a", "https://other.example.com:8443/a"},
		{"an allowed host on the default port is refused for a request on another port", "app.example.com:8443", "https://other.example.com/a", ""},
		{"a backslash in the query is only a character", host, "/a?next=\\x", "https://app.example.com/a?next=\\x"},
		{"a request host that is not a host name gets nothing", "app.example.com@evil.example", "/a", ""},
	} {
		got, ok := a.safeReturnURL(c.raw, c.host)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: safeReturnURL(%q, %q) = %q, %v; want %q", c.name, c.raw, c.host, got, ok, c.want)
		}
	}
}

// The redirect that the sign-out sends a browser to, as the browser reads
// the Location header (issue 11: %252F%40evil.example reached
// evil.example), stays on the request's host or an allowed one, with the
// port.
func TestReturnURLLandsOnTheRightOrigin(t *testing.T) {
	for _, c := range []struct {
		name, host, query, want string
	}{
		{"an escaped slash and at sign land on our host", "app.example.com", "?redirect_uri=%252F%40evil.example", "app.example.com:443"},
		{"a path lands on our host and port", "app.example.com:8443", "?redirect_uri=/x", "app.example.com:8443"},
		{"another port lands on our own port", "app.example.com:8443", "?redirect_uri=https://app.example.com:9443/", "app.example.com:8443"},
		{"an allowed host is reached", "app.example.com", "?redirect_uri=https://other.example.com/x", "other.example.com:443"},
	} {
		loc := redirectLocation(t, c.host, c.query)
		got, err := browserNavigate(loc, "https://"+c.host+"/.iap/sign_out")
		if err != nil || got.scheme != "https" || got.hostport != c.want {
			t.Errorf("%s: Location %q goes to %+v (%v), want https %s", c.name, loc, got, err, c.want)
		}
	}
}

// redirectLocation is the Location the sign-out endpoints compute for a
// request to host with the given query.
func redirectLocation(t testing.TB, host, query string) string {
	a := &Authenticator{cfg: Config{AllowedRedirectHosts: allowOther}}
	r := httptest.NewRequest("POST", "https://"+host+"/.iap/sign_out"+query, nil)
	w := httptest.NewRecorder()
	http.Redirect(w, r, a.returnURL(r.URL.Query().Get("redirect_uri"), r.Host), http.StatusFound)
	return w.Header().Get("Location")
}

// allowOther stands for a server whose routes include other.example.com,
// on every port: authn must still keep return URLs on the request's port.
func allowOther(hostport string) bool {
	return hostport == "other.example.com" || strings.HasPrefix(hostport, "other.example.com:")
}
