package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzSessionCookie feeds arbitrary cookie headers to the session reader:
// nothing may panic, and every failure is ErrCookie (or no cookie at all).
func FuzzSessionCookie(f *testing.F) {
	key := make([]byte, 32)
	c, _ := newCodec(key, "session")
	good, _ := c.seal("_iap", &Session{ID: "s", Subject: "u", IssuedAt: time.Unix(1, 0)})
	big, _ := c.seal("_iap", bigSession())
	f.Add("_iap=" + good)
	f.Add("_iap=chunks.2; _iap_0=" + big[:chunkSize] + "; _iap_1=" + big[chunkSize:min(len(big), 2*chunkSize)])
	f.Add("_iap=v1.AAAA")
	f.Add("_iap=chunks.99")
	j := jar{name: "_iap"}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", header)
		raw, err := j.read(r)
		if err != nil {
			if !errors.Is(err, ErrCookie) && !errors.Is(err, http.ErrNoCookie) {
				t.Fatalf("read: unexpected error %v", err)
			}
			return
		}
		var s Session
		if err := c.open("_iap", raw, &s); err != nil && !errors.Is(err, ErrCookie) {
			t.Fatalf("open: unexpected error %v", err)
		}
	})
}

// FuzzStripCookies feeds arbitrary Cookie headers to StripCookies: no
// cookie the upstream could parse from what is left may be the session's or
// the login's, and every other cookie Go parses from the input survives.
func FuzzStripCookies(f *testing.F) {
	f.Add("_iap=a; _iap_0=b; _iap_login=c; _iap_login_0123456789ab=d; theme=dark")
	f.Add("__Host-_iap=a; __Host-_iap_0=b; __Host-_iap_login_0123456789ab=d; __host-_iap=e; theme=dark")
	f.Add(`_iap="quoted"; x=_iap=y;_iap_1=z`)
	f.Add(" ; ;_iap;=;_iap_=1")
	a := &Authenticator{jar: jar{name: "__Host-_iap"}, loginJ: jar{name: "__Host-_iap_login"}, legacy: jar{name: "_iap"}}
	f.Fuzz(func(t *testing.T, line string) {
		before := httptest.NewRequest("GET", "/", nil)
		before.Header.Set("Cookie", line)
		after := httptest.NewRequest("GET", "/", nil)
		after.Header = before.Header.Clone()
		a.StripCookies(after.Header)
		kept := map[string]int{}
		for _, c := range after.Cookies() {
			if a.ownsCookie(c.Name) {
				t.Fatalf("%q kept %q", line, c.Name)
			}
			kept[c.Name+"="+c.Value]++
		}
		for _, c := range before.Cookies() {
			if a.ownsCookie(c.Name) {
				continue
			}
			if kept[c.Name+"="+c.Value] == 0 {
				t.Fatalf("%q lost %s=%s", line, c.Name, c.Value)
			}
			kept[c.Name+"="+c.Value]--
		}
	})
}

// FuzzReturnURL feeds arbitrary return URLs (sign_in's and sign_out's
// redirect_uri, the return URL kept through a login) to the check that
// every redirect is built from: the Location a browser receives, parsed as
// browsers parse it (browserNavigate, WHATWG rules, not net/url), lands on
// the request's host and port or on an allowed host on the request's port,
// over https.
func FuzzReturnURL(f *testing.F) {
	for _, s := range []string{
		"/page?x=1", "%2F%40evil.example", "/%2F@evil.example", "https://app.example.com%2F@evil.example",
		"https://app.example.com:9443/", "https://other.example.com/", "HTTPS://APP.example.com/",
		"https://app.example.com\\@evil.example/", "/\\evil.example", " //evil.example", "/\t/evil.example",
		"https://app.example.com@evil.example", "https:evil.example", "https://0x7f.1/", "https://[::1]/",
		"https://ev%69l.example/", "https://app.example.com./", "https://other.example.com:0443/",
		"https://other.example.com:8443/", "https://other.example.com:9443/",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	a := &Authenticator{cfg: Config{AllowedRedirectHosts: allowOther}}
	f.Fuzz(func(t *testing.T, raw string, withPort bool) {
		host := "app.example.com"
		if withPort {
			host += ":8443"
		}
		page := "https://" + host + "/.iap/sign_out"
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest("GET", page, nil), a.returnURL(raw, host), http.StatusFound)
		loc := w.Header().Get("Location")
		got, err := browserNavigate(loc, page)
		if err != nil {
			t.Fatalf("%q: Location %q does not parse as a browser's URL: %v", raw, loc, err)
		}
		self, _ := browserNavigate("/", page)
		_, port, _ := strings.Cut(self.hostport, ":")
		if got.scheme != "https" || got.hostport != self.hostport && got.hostport != "other.example.com:"+port {
			t.Fatalf("%q: Location %q takes a browser to %s://%s", raw, loc, got.scheme, got.hostport)
		}
	})
}
