package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// UserAgent is a scripted browser: an HTTP client with a cookie jar that
// follows redirects, reaches the test sites (*.test) on Caddy and everything
// else directly, and asks for HTML as browsers do.
type UserAgent struct {
	Client *http.Client
	caddy  *Caddy
}

// NewUserAgent returns a scripted browser for this Caddy. Options may
// change its TLS config, e.g. to present a client certificate.
func (c *Caddy) NewUserAgent(t testing.TB, options ...func(*tls.Config)) *UserAgent {
	t.Helper()
	// Trust Caddy's local CA when it has one (sites with `tls internal`);
	// options may set other roots.
	roots := x509.NewCertPool()
	if f := c.rootFile(40); f != "" {
		b, err := os.ReadFile(f)
		if err != nil || !roots.AppendCertsFromPEM(b) {
			t.Fatalf("reading caddy's root: %v", err)
		}
	}
	cfg := &tls.Config{RootCAs: roots}
	for _, o := range options {
		o(cfg)
	}
	jar, _ := cookiejar.New(nil)
	caddyAddr := fmt.Sprintf("127.0.0.1:%d", c.HTTPSPort)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &UserAgent{caddy: c, Client: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if host, _, _ := net.SplitHostPort(addr); strings.HasSuffix(host, ".test") {
					addr = caddyAddr
				}
				return dialer.DialContext(ctx, network, addr)
			},
			TLSClientConfig: cfg,
		},
	}}
}

// URL is https://host/path on this Caddy.
func (u *UserAgent) URL(host, path string) string {
	return fmt.Sprintf("https://%s:%d%s", host, u.caddy.HTTPSPort, path)
}

// Get fetches a URL as a browser would, following redirects.
func (u *UserAgent) Get(t testing.TB, rawURL string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	for k, v := range header {
		req.Header[k] = v
	}
	return u.do(t, req)
}

func (u *UserAgent) do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := u.Client.Do(req)
	// Caddy issues site certificates in the background at start.
	for i := 0; err != nil && strings.Contains(err.Error(), "tls: internal error") && req.GetBody == nil && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
		resp, err = u.Client.Do(req)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// SignIn opens rawURL, which must send it to Dex's login form, signs in
// there with the email and password, and returns where it lands.
func (u *UserAgent) SignIn(t testing.TB, rawURL, email, password string) (*http.Response, string) {
	t.Helper()
	resp, body := u.Get(t, rawURL, nil)
	if !strings.Contains(resp.Request.URL.Path, "/dex/auth/local/login") {
		t.Fatalf("expected Dex's login form, got %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	form := url.Values{"login": {email}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, resp.Request.URL.String(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return u.do(t, req)
}

// Cookie returns the value of a cookie the browser holds for host.
func (u *UserAgent) Cookie(host, name string) string {
	for _, c := range u.Client.Jar.Cookies(&url.URL{Scheme: "https", Host: fmt.Sprintf("%s:%d", host, u.caddy.HTTPSPort)}) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
