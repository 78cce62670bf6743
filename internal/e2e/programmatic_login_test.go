package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// TestProgrammaticLogin is Pomerium's programmatic login for a CLI or
// desktop client, against Dex: the client asks the route for a sign-in URL
// with its loopback redirect URI, a browser signs in there, the client's
// loopback listener receives the token, and the client calls the route
// with it. The token never reaches the upstream, does not work on another
// route, and only a loopback redirect URI is accepted.
func TestProgrammaticLogin(t *testing.T) {
	testProgrammaticLogin(t, programmaticNames{"", "/.iap/", "redirect_uri", "iap_token", "IAP", "X-Iap-Jwt-Assertion"})
}

// Under compat pomerium, the client uses Pomerium's names, as the
// pomerium CLI does.
func TestProgrammaticLoginPomeriumNames(t *testing.T) {
	testProgrammaticLogin(t, programmaticNames{"\t\tcompat pomerium\n", "/.pomerium/", "pomerium_redirect_uri", "pomerium_jwt", "Pomerium",
		"X-Pomerium-Jwt-Assertion"})
}

// A programmatic login token is caddy-iap's own credential, whatever the
// routes make of bearer tokens: it works, and never reaches the upstream,
// under passthrough (what --adapter pomerium writes when the config sets no
// bearer_token_format) and under idp_access_token.
func TestProgrammaticLoginUnderEveryBearerFormat(t *testing.T) {
	for _, format := range []string{"passthrough", "idp_access_token"} {
		t.Run(format, func(t *testing.T) {
			testProgrammaticLogin(t, programmaticNames{"\t\tcompat pomerium\n\t\tbearer_token_format " + format + "\n", "/.pomerium/",
				"pomerium_redirect_uri", "pomerium_jwt", "Pomerium", "X-Pomerium-Jwt-Assertion"})
		})
	}
}

type programmaticNames struct {
	compat, prefix, redirectParam, tokenParam, scheme, assertion string
}

func testProgrammaticLogin(t *testing.T, n programmaticNames) {
	upstream := echoUpstream(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{
		RedirectURIs: []string{fmt.Sprintf("https://app.test:%d%scallback", httpsPort, n.prefix)},
		Users:        []testenv.DexUser{alice},
	})
	globals := fmt.Sprintf(`	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
		}
		cookie_secret %s
%s	}`, dex.Issuer, dex.ClientID, dex.ClientSecret, randomSecret(t), n.compat)
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, globals,
		site("app.test", "to "+upstream, "allow_any_authenticated_user")+
			site("other.test", "to "+upstream, "allow_any_authenticated_user")+
			site("public.test", "to "+upstream, "allow_public_unauthenticated_access"))
	app, other := fmt.Sprintf("app.test:%d", httpsPort), fmt.Sprintf("other.test:%d", httpsPort)
	public := fmt.Sprintf("public.test:%d", httpsPort)

	// The client's loopback listener, where the browser brings the token.
	var mu sync.Mutex
	var received []url.Values
	loopback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.URL.Query())
		mu.Unlock()
		fmt.Fprintln(w, "Signed in; you may close this window.")
	}))
	t.Cleanup(loopback.Close)
	if !strings.HasPrefix(loopback.URL, "http://127.0.0.1:") {
		t.Fatalf("the listener is not on 127.0.0.1: %s", loopback.URL)
	}

	cli := caddy.Client(t) // no cookie jar, follows no redirects
	call := func(host, path string, header http.Header) testenv.Response {
		t.Helper()
		r, err := caddy.Do(t, cli, host, path, header)
		if err != nil {
			t.Fatalf("GET https://%s%s: %v", host, path, err)
		}
		return r
	}
	login := func(redirect string) testenv.Response {
		t.Helper()
		return call(app, n.prefix+"api/v1/login?"+n.redirectParam+"="+url.QueryEscape(redirect), nil)
	}

	var signInURL string
	t.Run("the login API answers a sign-in URL, without a session and without a token", func(t *testing.T) {
		r := login(loopback.URL + "/callback?state=cli")
		if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("got %d %v:\n%s", r.Status, r.Header, r.Body)
		}
		signInURL = strings.TrimSpace(r.Body)
		if !strings.HasPrefix(signInURL, "https://"+app+n.prefix+"sign_in?") || strings.Contains(r.Body, n.tokenParam) ||
			len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("sign-in URL %q, cookies %v", signInURL, r.Header.Values("Set-Cookie"))
		}
	})
	if signInURL == "" {
		t.FailNow()
	}

	var token string
	t.Run("the browser signs in at Dex and lands on the loopback redirect URI with the token", func(t *testing.T) {
		browser := caddy.NewUserAgent(t)
		resp, body := browser.SignIn(t, signInURL, alice.Email, alice.Password)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Request.URL.String(), loopback.URL+"/callback?state=cli&"+n.tokenParam+"=") {
			t.Fatalf("landed at %s with %d:\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(received) != 1 || received[0].Get("state") != "cli" {
			t.Fatalf("the listener got %v", received)
		}
		token = received[0].Get(n.tokenParam)
		if token == "" {
			t.Fatal("no token")
		}
	})
	if token == "" {
		t.FailNow()
	}

	for _, auth := range []string{n.scheme + " " + token, "Bearer " + n.scheme + "-" + token} {
		t.Run("the client calls the route with "+strings.Fields(auth)[0]+"; the upstream never sees the token", func(t *testing.T) {
			r := call(app, "/api", http.Header{"Authorization": {auth}, "Accept": {"application/json"}})
			if r.Status != 200 {
				t.Fatalf("got %d:\n%s", r.Status, r.Body)
			}
			h := echoed(t, r.Body)
			if h.Get("Authorization") != "" || strings.Contains(r.Body, token) {
				t.Errorf("the upstream saw the token: %v", h)
			}
			if n.assertion == "X-Iap-Jwt-Assertion" {
				ua := caddy.NewUserAgent(t)
				if a := verifyAssertion(t, ua, "app.test", h.Get(n.assertion)); a.Email != alice.Email || a.Subject == "" {
					t.Errorf("assertion %+v", a)
				}
			} else if h.Get(n.assertion) == "" {
				t.Errorf("no %s: %v", n.assertion, h)
			}
		})
	}

	t.Run("the token on another route host is 401 invalid-bearer-token", func(t *testing.T) {
		r := call(other, "/api", http.Header{"Authorization": {n.scheme + " " + token}, "Accept": {"application/json"}})
		if r.Status != 401 || !strings.Contains(r.Body, `"reason":"invalid-bearer-token"`) {
			t.Fatalf("got %d:\n%s", r.Status, r.Body)
		}
	})

	t.Run("the token sent to a public route does not reach its upstream, which could replay it", func(t *testing.T) {
		for _, auth := range []string{n.scheme + " " + token, "Bearer " + n.scheme + "-" + token} {
			r := call(public, "/api", http.Header{"Authorization": {auth}, "Accept": {"application/json"}})
			if r.Status != 200 {
				t.Fatalf("got %d:\n%s", r.Status, r.Body)
			}
			if h := echoed(t, r.Body); h.Get("Authorization") != "" || strings.Contains(r.Body, token) {
				t.Errorf("the public route's upstream got the token: %v", h)
			}
		}
	})

	t.Run("a tampered token is 401 invalid-bearer-token", func(t *testing.T) {
		b := []byte(token)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		r := call(app, "/api", http.Header{"Authorization": {"Bearer " + n.scheme + "-" + string(b)}, "Accept": {"application/json"}})
		if r.Status != 401 || !strings.Contains(r.Body, `"reason":"invalid-bearer-token"`) {
			t.Fatalf("got %d:\n%s", r.Status, r.Body)
		}
	})

	t.Run("a non-loopback redirect URI is 400 invalid-callback", func(t *testing.T) {
		for _, redirect := range []string{"https://evil.example/cb", "http://127.0.0.1.evil.example:8000/",
			"http://127.0.0.1:8000@evil.example/", "http://evil.example\\@127.0.0.1/", ""} {
			r := login(redirect)
			if r.Status != 400 || !strings.Contains(r.Body, `"reason":"invalid-callback"`) {
				t.Errorf("%q: got %d:\n%s", redirect, r.Status, r.Body)
			}
		}
	})
}
