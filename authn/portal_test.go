package authn

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSafeLogoURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"https://cdn.example.com/logo.svg", true},
		{"http://intranet.example/logo.png", true},
		{"data:image/png;base64,iVBORw0KGgo=", true},
		{"DATA:image/svg+xml,%3Csvg%2F%3E", true},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)", false},
		{"jav\tascript:alert(1)", false},
		{" https://cdn.example.com/logo.svg", false},
		{"https://cdn.example.com/a b.png", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"data:,hello", false},
		{"vbscript:msgbox", false},
		{"file:///etc/passwd", false},
		{"//cdn.example.com/logo.png", false},
		{"https:///nohost.png", false},
		{"https://user:pass@cdn.example.com/logo.png", false},
		{"logo.png", false},
		{"https://cdn.example.com/" + strings.Repeat("a", 70000), false},
	} {
		if err := SafeLogoURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("SafeLogoURL(%.40q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}

// The portal page keeps what the config says as text: markup in a name
// or description is shown, never parsed, and a logo is an <img> only.
func TestPortalPageEscapes(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	routes := []PortalRoute{
		{Name: `<b>Wiki</b>`, Type: "http", From: "https://wiki.test", Description: `<img src=x onerror=alert(1)> "quoted" & more`,
			LogoURL: "data:image/svg+xml,%3Csvg%2F%3E"},
		{Name: "Any host", Type: "http", From: "https://*.apps.test", LogoURL: `https://cdn.test/a"onerror="alert(1).png`},
	}
	a := startAuthenticatorAt(t, op, clock, func(c *Config) {
		c.Routes = func(*http.Request, *Session, string) []PortalRoute { return routes }
	})
	cookie := reviewSignInHostSession(t, a, clock)

	rec := reviewGet(a, "https://app.test/.iap/routes", cookie)
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("got %d: %s", rec.Code, body)
	}
	for _, want := range []string{
		`<a href="https://wiki.test">&lt;b&gt;Wiki&lt;/b&gt;</a>`,
		`&lt;img src=x onerror=alert(1)&gt; &#34;quoted&#34; &amp; more`,
		`src="data:image/svg&#43;xml,%3Csvg%2F%3E"`,
		`<code class="from">https://*.apps.test</code>`,
		`src="https://cdn.test/a%22onerror=%22alert%281%29.png"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `<a href="https://*.apps.test"`) || strings.Contains(body, "<b>") || strings.Contains(body, "<script") {
		t.Errorf("markup or a wildcard link got through:\n%s", body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}

	// The JSON, at its own path and for an API client at the page's.
	for _, path := range []string{"/.iap/api/v1/routes", "/.iap/routes"} {
		rec := recordAuthenticate(a, newPortalRequest(path, cookie))
		var got struct{ Routes []PortalRoute }
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Routes) != 2 || got.Routes[0] != routes[0] {
			t.Errorf("%s: %v %s", path, err, rec.Body)
		}
	}

	// Anonymous: asked to sign in, the list never shown.
	if rec := reviewGet(a, "https://app.test/.iap/routes"); rec.Code != http.StatusFound || strings.Contains(rec.Body.String(), "Wiki") {
		t.Errorf("anonymous: %d %s", rec.Code, rec.Body)
	}
	if rec := recordAuthenticate(a, newPortalRequest("/.iap/api/v1/routes")); rec.Code != http.StatusUnauthorized {
		t.Errorf("anonymous JSON: %d %s", rec.Code, rec.Body)
	}
}

func TestNoPortalWithoutRoutes(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startAuthenticatorAt(t, op, clock, nil)
	cookie := reviewSignInHostSession(t, a, clock)
	if rec := reviewGet(a, "https://app.test/.iap/routes", cookie); rec.Code != http.StatusNotFound {
		t.Errorf("got %d", rec.Code)
	}
}

func newPortalRequest(path string, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "https://app.test"+path, nil)
	r.Header.Set("Accept", "application/json")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

func recordAuthenticate(a *Authenticator, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	a.Authenticate(rec, r)
	return rec
}
