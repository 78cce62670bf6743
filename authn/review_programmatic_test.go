package authn

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzReviewProgrammaticRedirectIPs attacks programmatic_redirect_domain_whitelist
// entries that are IP addresses, which FuzzProgrammaticRedirect's list
// [localhost, example.com] leaves out: with [10.0.0.1, [2001:db8::1],
// example.com], every redirect URI the login API accepts takes a browser
// (WHATWG parsing, which reads 0x0a.1, 167772161 and [::ffff:a00:1] as
// addresses too) over https to one of those hosts, nowhere else.
func FuzzReviewProgrammaticRedirectIPs(f *testing.F) {
	for _, s := range []string{
		"https://10.0.0.1/cb", "https://10.0.0.1:8443/cb", "https://[2001:db8::1]/cb", "https://[2001:DB8:0::1]:1/",
		"https://0x0a.0.0.1/", "https://167772161/", "https://10.1/", "https://010.0.0.1/", "https://[::ffff:10.0.0.1]/",
		"https://[::ffff:a00:1]/", "https://10.0.0.1./", "https://10.0.0.1%2e/", "http://10.0.0.1/", "https://[2001:db8::1%25eth0]/",
		"https://example.com/", "https://10.0.0.1@evil.com/", "https://evil.com#@10.0.0.1/",
	} {
		f.Add(s)
	}
	a := &Authenticator{cfg: Config{ProgrammaticRedirectDomains: []string{"10.0.0.1", "[2001:db8::1]", "example.com"}}, names: namesFor("")}
	allowed := []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("2001:db8::1")}
	f.Fuzz(func(t *testing.T, raw string) {
		redirect, ok := a.programmaticRedirect(raw)
		if !ok {
			return
		}
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest("GET", "https://app.test/.iap/callback", nil), redirect+"?iap_token=t", http.StatusFound)
		got, err := browserNavigate(w.Header().Get("Location"), "https://app.test/.iap/callback")
		if err != nil {
			t.Fatalf("%q: Location %q does not parse as a browser's URL: %v", raw, w.Header().Get("Location"), err)
		}
		host := got.hostport
		if h, _, err := net.SplitHostPort(got.hostport); err == nil {
			host = h
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		listed := host == "example.com"
		for _, want := range allowed {
			listed = listed || ip != nil && ip.Equal(want)
		}
		if got.scheme != "https" || !listed {
			t.Fatalf("%q: a browser goes to %s://%s", raw, got.scheme, got.hostport)
		}
	})
}
