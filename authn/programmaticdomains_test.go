package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/authz"
)

// newDomainsAuthenticator is an Authenticator with the programmatic
// redirect domains given (Pomerium's programmatic_redirect_domain_whitelist).
func newDomainsAuthenticator(t *testing.T, domains []string) *Authenticator {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := New(Config{ProviderURL: "http://127.0.0.1:1/unused", ClientID: "caddy", ClientSecret: "caddy-secret",
		CookieSecret: secret(t), SigningKey: key, ProgrammaticRedirectDomains: domains})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// loginAPI asks the login API of app.test for a sign-in URL to redirect
// and reports whether it gave one (200), failing the test on any answer
// but 200 and 400 invalid-callback.
func loginAPI(t *testing.T, a *Authenticator, redirect string) bool {
	t.Helper()
	r := httptest.NewRequest("GET", "https://app.test/.iap/api/v1/login?redirect_uri="+url.QueryEscape(redirect), nil)
	w := httptest.NewRecorder()
	if !a.ServeEndpoint(w, r) {
		t.Fatal("not answered")
	}
	switch {
	case w.Code == 200:
		return true
	case w.Code == 400 && strings.Contains(w.Body.String(), `"reason":"`+string(authz.ReasonBadCallback)+`"`):
		return false
	}
	t.Fatalf("%q: got %d %s", redirect, w.Code, w.Body)
	return false
}

// With programmatic_redirect_domain_whitelist [example.com], the login API
// gives a sign-in URL for an https redirect URI on example.com (any port,
// as Pomerium's IsRedirectAllowed compares the host name only) and for
// nothing else: not loopback (localhost is not in the list), not a
// subdomain or a look-alike, not plain http (the token would cross the
// network readable), and nothing a browser would read as another host.
// Each accepted URI is also read as a browser reads it (the WHATWG parser
// of whatwg_test.go), which must land on example.com over https.
func TestProgrammaticRedirectDomainsRefuseOpenRedirects(t *testing.T) {
	a := newDomainsAuthenticator(t, []string{"example.com"})
	for _, c := range []struct {
		redirect string
		ok       bool
	}{
		{"https://example.com/cb", true},
		{"https://EXAMPLE.com:8443/cb?state=1", true},
		{"https://example.com", true},
		{"https://example.com:443/x", true},
		{"http://example.com/cb", false},
		{"http://localhost:8000/cb", false},
		{"http://127.0.0.1:8000/cb", false},
		{"https://evil-example.com/", false},
		{"https://evilexample.com/", false},
		{"https://example.com.evil.com/", false},
		{"https://sub.example.com/", false},
		{"https://example.com./", false},
		{"https://example.com@evil.com/", false},
		{"https://evil.com@example.com/", false},
		{"https://example.com:443@evil.com/", false},
		{"https://evil.com\\@example.com/", false},
		{"https://example.com\\@evil.com/", false},
		{"https://example.com\\evil.com/", false},
		{"https://evil.com#@example.com/", false},
		{"https://evil.com?@example.com/", false},
		{"https://example.com/#frag", false},
		{"https://example%2ecom/", false},
		{"https://example%2Ecom.evil.com/", false},
		{"https://ex%61mple.com/", false},
		{"https://exаmple.com/", false}, // Cyrillic a
		{"https://xn--exmple-4nf.com/", false},
		{"https://example.com:0/", false},
		{"https://example.com:99999/", false},
		{"https://example.com:/", false},
		{"https:/example.com/", false},
		{"https:example.com/", false},
		{"//example.com/", false},
		{"/cb", false},
		{"javascript:alert(1)//example.com", false},
		{"javascript://example.com/%0aalert(1)", false},
		{"data:text/html,<script>alert(1)</script>//example.com", false},
		{"ftp://example.com/", false},
		{"wss://example.com/", false},
		{" https://example.com/", false},
		{"https://example.com /", false},
		{"https://example.com/\t", false},
		{"https://exa\tmple.com/", false},
		{"https://[::1]/", false},
		{"https://example.com/" + strings.Repeat("a", maxRedirectURI), false},
	} {
		t.Run(c.redirect, func(t *testing.T) {
			if got := loginAPI(t, a, c.redirect); got != c.ok {
				t.Fatalf("accepted: %v, want %v", got, c.ok)
			}
			if !c.ok {
				return
			}
			target, err := browserNavigate(c.redirect, "https://app.test/.iap/callback")
			if err != nil || target.scheme != "https" || !strings.HasPrefix(target.hostport, "example.com:") {
				t.Errorf("a browser goes to %+v (%v)", target, err)
			}
		})
	}
}

// localhost in the list means every loopback URL, http or https, as it
// does in Pomerium (IsRedirectAllowed's IsLoopback); the default list is
// [localhost]; an empty list turns programmatic login off; an IP address
// in the list is matched as written.
func TestProgrammaticRedirectDomainsLists(t *testing.T) {
	for _, c := range []struct {
		what     string
		domains  []string
		redirect string
		ok       bool
	}{
		{"the default is localhost", nil, "http://127.0.0.1:8000/cb", true},
		{"the default refuses other hosts", nil, "https://example.com/cb", false},
		{"localhost and example.com: loopback", []string{"localhost", "example.com"}, "http://[::1]:9/", true},
		{"localhost and example.com: example.com", []string{"localhost", "example.com"}, "https://example.com/", true},
		{"localhost and example.com: another host", []string{"localhost", "example.com"}, "https://example.org/", false},
		{"an empty list refuses loopback", []string{}, "http://127.0.0.1:8000/cb", false},
		{"an IP address of the list", []string{"192.0.2.7"}, "https://192.0.2.7:8443/cb", true},
		{"an IP address in another spelling", []string{"192.0.2.7"}, "https://3221225991/cb", false},
		{"an IP address in hex", []string{"192.0.2.7"}, "https://0xc0.0.2.7/cb", false},
		{"an IPv6 address of the list", []string{"2001:db8::7"}, "https://[2001:db8::7]/cb", true},
		{"an upper-case entry", []string{"Example.COM"}, "https://example.com/", true},
	} {
		t.Run(c.what, func(t *testing.T) {
			a := newDomainsAuthenticator(t, c.domains)
			if got := loginAPI(t, a, c.redirect); got != c.ok {
				t.Fatalf("%v %q: accepted %v, want %v", c.domains, c.redirect, got, c.ok)
			}
		})
	}
}

// The list is checked again when the sign-in link is opened and when the
// callback sends the token: a link sealed for example.com and replayed on
// a server whose list no longer names it gives no token.
func TestProgrammaticRedirectDomainsCheckedAtEveryStep(t *testing.T) {
	a := newDomainsAuthenticator(t, []string{"example.com"})
	now := time.Now()
	s := &Session{ID: "sid", Subject: "alice", IssuedAt: now, IDTokenExpiry: now.Add(time.Hour)}
	w := httptest.NewRecorder()
	a.finishProgrammatic(w, httptest.NewRequest("GET", "https://app.test/.iap/callback", nil), s, "https://example.com/cb")
	if loc := w.Header().Get("Location"); w.Code != 302 || !strings.HasPrefix(loc, "https://example.com/cb?iap_token=") {
		t.Fatalf("got %d %q", w.Code, loc)
	}
	w = httptest.NewRecorder()
	a.finishProgrammatic(w, httptest.NewRequest("GET", "https://app.test/.iap/callback", nil), s, "http://127.0.0.1:7/cb")
	if w.Code == 302 {
		t.Fatalf("a loopback redirect outside the list got the token: %q", w.Header().Get("Location"))
	}
}

// A list entry that could never match a host, or would be read loosely,
// is a configuration error naming it.
func TestProgrammaticRedirectDomainsConfigErrors(t *testing.T) {
	for _, entry := range []string{"", "*.example.com", "example.com:8443", "https://example.com", "example.com/",
		"bücher.example", "example.com.", "user@example.com", "exa mple.com", "[::1"} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, err := New(Config{ProviderURL: "http://127.0.0.1:1/unused", ClientID: "caddy", ClientSecret: "caddy-secret",
			CookieSecret: secret(t), SigningKey: key, ProgrammaticRedirectDomains: []string{entry}})
		if err == nil || !strings.Contains(err.Error(), "programmatic_redirect_domain_whitelist") || !strings.Contains(err.Error(), entry) {
			t.Errorf("%q: %v, want an error naming programmatic_redirect_domain_whitelist and the entry", entry, err)
		}
	}
}

// FuzzProgrammaticRedirect feeds arbitrary redirect URIs to the check of
// programmatic login with programmatic_redirect_domain_whitelist
// [localhost, example.com]: the Location the callback sends, parsed as a
// browser parses it (browserNavigate, WHATWG rules), lands on a loopback
// host (http or https) or on example.com over https, never elsewhere.
func FuzzProgrammaticRedirect(f *testing.F) {
	for _, s := range []string{
		"https://example.com/cb", "http://127.0.0.1:8000/cb", "http://[::1]/", "http://localhost:1/",
		"https://example.com@evil.com/", "https://evil.com\\@example.com/", "https://example%2ecom/",
		"https://0x7f.1/", "http://2130706433/", "https://example.com./", "https://EXAMPLE.com:8443/x?y#z",
		"javascript://example.com/%0aalert(1)", "https:example.com", " https://example.com/", "https://exa\tmple.com/",
	} {
		f.Add(s)
	}
	a := &Authenticator{cfg: Config{ProgrammaticRedirectDomains: []string{"localhost", "example.com"}}, names: namesFor("")}
	f.Fuzz(func(t *testing.T, raw string) {
		redirect, ok := a.programmaticRedirect(raw)
		if !ok {
			return
		}
		loc := redirect + "?iap_token=t"
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest("GET", "https://app.test/.iap/callback", nil), loc, http.StatusFound)
		got, err := browserNavigate(w.Header().Get("Location"), "https://app.test/.iap/callback")
		if err != nil {
			t.Fatalf("%q: Location %q does not parse as a browser's URL: %v", raw, w.Header().Get("Location"), err)
		}
		host, _, _ := net.SplitHostPort(got.hostport)
		ip := net.ParseIP(strings.Trim(host, "[]"))
		loopback := host == "localhost" || ip != nil && ip.IsLoopback()
		if !loopback && (got.scheme != "https" || host != "example.com") {
			t.Fatalf("%q: a browser goes to %s://%s", raw, got.scheme, got.hostport)
		}
	})
}
