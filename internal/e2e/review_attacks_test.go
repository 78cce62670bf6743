package e2e

// Attacks on central sign-in, several IdPs and logout together, with real
// Caddy and Dex (review of 2026-12-01).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// reviewEnv: central sign-in on auth.test for the default IdP (Dex corp,
// route app1.test), and a named IdP "partners" (another Dex) for
// partner.test, in one Caddy.
type reviewEnv struct {
	corp, partner *testenv.Dex
	caddy         *testenv.Caddy
	port          int
}

func startReviewEnv(t *testing.T) *reviewEnv {
	t.Helper()
	up := echoUpstream(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	e := &reviewEnv{port: httpsPort}
	auth := fmt.Sprintf("https://auth.test:%d", httpsPort)
	e.corp = testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}, RedirectURIs: []string{auth + "/.iap/callback"}})
	e.partner = testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{partnerBob},
		RedirectURIs: []string{fmt.Sprintf("https://partner.test:%d/.iap/callback", httpsPort)}})
	globals := fmt.Sprintf(`	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
		}
		idp partners {
			provider_url %s
			client_id %s
			client_secret %s
		}
		cookie_secret %s
		authenticate_url %s
	}`, e.corp.Issuer, e.corp.ClientID, e.corp.ClientSecret, e.partner.Issuer, e.partner.ClientID, e.partner.ClientSecret, randomSecret(t), auth)
	sites := "auth.test {\n\ttls internal\n\tiap_authenticate\n}\n" +
		site("app1.test", "to "+up, "allow_any_authenticated_user") +
		site("partner.test", "to "+up, "idp partners", "allow_any_authenticated_user")
	e.caddy = testenv.StartCaddyOn(t, httpPort, httpsPort, globals, sites)
	return e
}

func noFollowUA(ua *testenv.UserAgent) func() {
	ua.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return func() { ua.Client.CheckRedirect = nil }
}

// TestReviewCentralSignInWithANamedIdP: the default IdP's central sign-in
// and a named IdP in one Caddy keep their users apart.
func TestReviewCentralSignInWithANamedIdP(t *testing.T) {
	e := startReviewEnv(t)
	ua := e.caddy.NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("app1.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("corp sign-in through auth.test: %d\n%s", resp.StatusCode, body)
	}
	partnerHost := fmt.Sprintf("partner.test:%d", e.port)

	t.Run("a corp hand-off to the partner host opens nothing there", func(t *testing.T) {
		restore := noFollowUA(ua)
		defer restore()
		q := url.Values{"host": {partnerHost}, "state": {"0123456789abcdef"}}
		resp, _ := ua.Get(t, ua.URL("auth.test", "/.iap/authenticate?"+q.Encode()), nil)
		loc := resp.Header.Get("Location")
		if resp.StatusCode == http.StatusFound {
			t.Logf("the sign-in host hands a corp session off to a partner-IdP host: %s", loc[:min(len(loc), 80)])
			resp, body := ua.Get(t, loc, http.Header{"Accept": {"application/json"}})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("partner.test took a corp hand-off: %d\n%s", resp.StatusCode, body)
			}
		}
		if ua.Cookie("partner.test", "__Host-_iap_partners") != "" || ua.Cookie("partner.test", "__Host-_iap") != "" {
			t.Errorf("partner.test has a session after a corp hand-off")
		}
		restore()
		resp, _ = ua.Get(t, ua.URL("partner.test", "/"), nil)
		if !strings.HasPrefix(resp.Request.URL.String(), e.partner.Issuer) {
			t.Errorf("partner.test with a corp session ended at %s, want the partner IdP", resp.Request.URL)
		}
	})

	if resp, body := ua.SignIn(t, ua.URL("partner.test", "/"), partnerBob.Email, partnerBob.Password); resp.StatusCode != 200 {
		t.Fatalf("partner sign-in: %d\n%s", resp.StatusCode, body)
	}
	corpCookie, partnerCookie := ua.Cookie("app1.test", "__Host-_iap"), ua.Cookie("partner.test", "__Host-_iap_partners")
	if corpCookie == "" || partnerCookie == "" {
		t.Fatalf("cookies: corp %d bytes, partner %d bytes", len(corpCookie), len(partnerCookie))
	}

	t.Run("no cookie of any IdP reaches an upstream", func(t *testing.T) {
		for _, host := range []string{"app1.test", "partner.test"} {
			u, _ := url.Parse(ua.URL(host, "/"))
			var planted []*http.Cookie
			for _, n := range []string{"__Host-_iap_partners_0", "__Host-_iap_partners_15",
				"__Host-_iap_partners_login_0123456789ab", "__Host-_iap_partners_login", "__Host-_iap_login_0123456789ab",
				"_iap_partners_login_0123456789ab", "__Host-_iap_0", "_iap", "_iap_3", "_iap_login"} {
				planted = append(planted, &http.Cookie{Name: n, Value: partnerCookie[:20], Path: "/", Secure: true})
			}
			planted = append(planted, &http.Cookie{Name: "theme", Value: "dark", Path: "/"})
			ua.Client.Jar.SetCookies(u, planted)
			resp, body := ua.Get(t, ua.URL(host, "/echo"), nil)
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "{") {
				t.Fatalf("%s: %d at %s\n%.500s", host, resp.StatusCode, resp.Request.URL, body)
			}
			if c := echoed(t, body).Get("Cookie"); c != "theme=dark" {
				t.Errorf("%s's upstream got the cookies %q, want theme=dark alone", host, c)
			}
		}
	})

	t.Run("one IdP's session is never the other's, nor a hand-off", func(t *testing.T) {
		api := http.Header{"Accept": {"application/json"}}
		for _, c := range []struct{ host, name, value string }{
			{"auth.test", "__Host-_iap", partnerCookie},
			{"app1.test", "__Host-_iap", partnerCookie},
			{"partner.test", "__Host-_iap_partners", corpCookie},
		} {
			fresh := e.caddy.NewUserAgent(t)
			u, _ := url.Parse(fresh.URL(c.host, "/"))
			fresh.Client.Jar.SetCookies(u, []*http.Cookie{{Name: c.name, Value: c.value, Path: "/", Secure: true}})
			noFollowUA(fresh)
			resp, body := fresh.Get(t, fresh.URL(c.host, "/.iap/user"), api)
			if resp.StatusCode == http.StatusOK {
				t.Errorf("%s with %s of the other IdP: 200\n%s", c.host, c.name, body)
			}
		}
		fresh := e.caddy.NewUserAgent(t)
		noFollowUA(fresh)
		for _, token := range []string{partnerCookie, corpCookie} {
			resp, body := fresh.Get(t, fresh.URL("app1.test", "/.iap/handoff?token="+url.QueryEscape(token)), api)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("a session cookie as a hand-off: %d\n%s", resp.StatusCode, body)
			}
		}
	})

	t.Run("a partner programmatic token opens no corp route, nor the sign-in host", func(t *testing.T) {
		var mu sync.Mutex
		var got url.Values
		loopback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = r.URL.Query()
			mu.Unlock()
		}))
		defer loopback.Close()
		cli := e.caddy.Client(t)
		r, err := e.caddy.Do(t, cli, partnerHost, "/.iap/api/v1/login?redirect_uri="+url.QueryEscape(loopback.URL+"/cb"), nil)
		if err != nil || r.Status != 200 {
			t.Fatalf("login API: %v %d %s", err, r.Status, r.Body)
		}
		b := e.caddy.NewUserAgent(t)
		if resp, body := b.SignIn(t, strings.TrimSpace(r.Body), partnerBob.Email, partnerBob.Password); resp.StatusCode != 200 {
			t.Fatalf("programmatic sign-in: %d\n%s", resp.StatusCode, body)
		}
		mu.Lock()
		token := got.Get("iap_token")
		mu.Unlock()
		if token == "" {
			t.Fatal("no token")
		}
		for host, want := range map[string]int{partnerHost: 200, fmt.Sprintf("app1.test:%d", e.port): 401, fmt.Sprintf("auth.test:%d", e.port): 401} {
			for _, authz := range []string{"IAP " + token, "Bearer IAP-" + token} {
				r, err := e.caddy.Do(t, cli, host, "/.iap/user", http.Header{"Accept": {"application/json"}, "Authorization": {authz}})
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != want && !(want == 401 && r.Status == 302) {
					t.Errorf("%s with the partner token (%.10s): %d, want %d\n%s", host, authz, r.Status, want, r.Body)
				}
			}
		}
	})

	t.Run("sign-out is no CSRF target, on a route host or the sign-in host", func(t *testing.T) {
		restore := noFollowUA(ua)
		defer restore()
		for _, host := range []string{"app1.test", "auth.test", "partner.test"} {
			sibling := "https://" + partnerHost
			if host == "partner.test" {
				sibling = fmt.Sprintf("https://app1.test:%d", e.port)
			}
			_, page := ua.Get(t, ua.URL(host, "/.iap/sign_out"), nil)
			token := csrfFromPage(t, page)
			for name, h := range map[string]http.Header{
				"cross-site":             {"Sec-Fetch-Site": {"cross-site"}},
				"same-site (sibling)":    {"Sec-Fetch-Site": {"same-site"}},
				"a sibling route origin": {"Origin": {sibling}},
				"the sign-in origin":     {"Origin": {fmt.Sprintf("https://auth.test:%d", e.port)}},
				"origin null":            {"Origin": {"null"}},
			} {
				if host == "auth.test" && name == "the sign-in origin" {
					continue
				}
				req, _ := http.NewRequest(http.MethodPost, ua.URL(host, "/.iap/sign_out"), strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range h {
					req.Header[k] = v
				}
				resp, err := ua.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: a %s sign-out POST: %d to %q, want 403", host, name, resp.StatusCode, resp.Header.Get("Location"))
				}
			}
			// A GET signs nobody out.
			_, _ = ua.Get(t, ua.URL(host, "/.iap/sign_out?redirect_uri=/"), nil)
		}
		restore()
		for _, host := range []string{"app1.test", "partner.test"} {
			resp, body := ua.Get(t, ua.URL(host, "/who"), nil)
			if resp.StatusCode != 200 || resp.Request.URL.Host != fmt.Sprintf("%s:%d", host, e.port) {
				t.Errorf("%s after the refused sign-outs: %d at %s\n%.300s", host, resp.StatusCode, resp.Request.URL, body)
			}
		}
	})

	t.Run("signed_out and sign_in redirect only to this server's hosts", func(t *testing.T) {
		restore := noFollowUA(ua)
		defer restore()
		p := e.port
		ok := map[string]bool{fmt.Sprintf("app1.test:%d", p): true, fmt.Sprintf("auth.test:%d", p): true, partnerHost: true}
		for _, target := range []string{
			"https://evil.example/", "//evil.example", "/\\evil.example", "\\/evil.example", "https:evil.example",
			fmt.Sprintf("https://app1.test:%d@evil.example/", p), fmt.Sprintf("https://evil.example@app1.test:%d/", p),
			fmt.Sprintf("https://app1.test.:%d/", p), fmt.Sprintf("https://APP1.TEST:%d/x", p), fmt.Sprintf("https://app1.test:%d\\@evil.example/", p),
			fmt.Sprintf("https://app1.test:%d%%2F@evil.example/", p), fmt.Sprintf("https://xn--pp1-qla.test:%d/", p),
			fmt.Sprintf("https://[::1]:%d/", p), fmt.Sprintf("https://127.0.0.1:%d/", p), fmt.Sprintf("https://app1.test:%d/", p+1),
			fmt.Sprintf("https://partner.test:%d/p", p), "/%2F%2Fevil.example", "/\t/evil.example", "java\nscript:alert(1)",
			"https://app1.test:0/", fmt.Sprintf("https://app1%%2etest:%d/", p), fmt.Sprintf("https://аpp1.test:%d/", p),
		} {
			for _, path := range []string{"/.iap/signed_out?" + url.Values{"state": {target}}.Encode(), "/.iap/sign_in?" + url.Values{"redirect_uri": {target}}.Encode()} {
				for _, host := range []string{"app1.test", "auth.test", "partner.test"} {
					resp, _ := ua.Get(t, ua.URL(host, path), nil)
					loc := resp.Header.Get("Location")
					if resp.StatusCode != http.StatusFound {
						continue
					}
					if strings.HasPrefix(loc, e.corp.Issuer) || strings.HasPrefix(loc, e.partner.Issuer) {
						continue // a sign-in at the IdP
					}
					u, err := url.Parse(loc)
					if err != nil || strings.ContainsAny(loc, "\\\t\n@") {
						t.Errorf("%s%s: Location %q", host, path, loc)
						continue
					}
					if u.Scheme == "https" && !ok[strings.ToLower(u.Host)] {
						t.Errorf("%s%s: redirect to %q", host, path, loc)
					}
					if u.Scheme != "https" && u.Scheme != "" {
						t.Errorf("%s%s: redirect to %q", host, path, loc)
					}
				}
			}
		}
	})
}

// TestReviewBackchannelLogoutEndpointShapes: the endpoint answers only what
// the README says, with real Caddy in front (methods, sizes, content types,
// a chunked body) and never panics or ends a session.
func TestReviewBackchannelLogoutEndpointShapes(t *testing.T) {
	e := startReviewEnv(t)
	ua := e.caddy.NewUserAgent(t)
	if resp, body := ua.SignIn(t, ua.URL("app1.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
	}
	cli := e.caddy.Client(t)
	big := strings.Repeat("a", 1<<20)
	for name, c := range map[string]struct{ method, ctype, body string }{
		"GET":                 {"GET", "", ""},
		"PUT":                 {"PUT", "application/x-www-form-urlencoded", "logout_token=a.b.c"},
		"json":                {"POST", "application/json", `{"logout_token":"a.b.c"}`},
		"1 MB token":          {"POST", "application/x-www-form-urlencoded", "logout_token=" + big},
		"alg none":            {"POST", "application/x-www-form-urlencoded", "logout_token=eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."},
		"garbage":             {"POST", "application/x-www-form-urlencoded", "logout_token=%%%"},
		"multipart":           {"POST", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"logout_token\"\r\n\r\na.b.c\r\n--x--\r\n"},
		"charset param":       {"POST", "application/x-www-form-urlencoded; charset=utf-8", "logout_token=a.b.c"},
		"many fields":         {"POST", "application/x-www-form-urlencoded", strings.Repeat("a=1&", 3000) + "logout_token=a.b.c"},
		"token in the query":  {"POST", "application/x-www-form-urlencoded", ""},
		"deeply nested claim": {"POST", "application/x-www-form-urlencoded", "logout_token=e30." + strings.Repeat("W", 8000) + ".x"},
	} {
		for _, host := range []string{"app1.test", "auth.test", "partner.test"} {
			path := "/.iap/backchannel_logout"
			if name == "token in the query" {
				path += "?logout_token=a.b.c"
			}
			req, _ := http.NewRequest(c.method, fmt.Sprintf("https://%s:%d%s", host, e.port, path), strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			resp, err := cli.Do(req)
			if err != nil {
				t.Fatalf("%s on %s: %v", name, host, err)
			}
			var j struct{ Reason string }
			_ = json.NewDecoder(resp.Body).Decode(&j)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s on %s: %d %q (%s), want 400 no-store", name, host, resp.StatusCode, resp.Header.Get("Cache-Control"), j.Reason)
			}
		}
	}
	if resp, body := ua.Get(t, ua.URL("app1.test", "/who"), nil); resp.StatusCode != 200 {
		t.Errorf("the session ended: %d\n%.300s", resp.StatusCode, body)
	}
	if strings.Contains(e.caddy.Log(), "panic") {
		t.Errorf("caddy logged a panic")
	}
}

// TestReviewHandoffForTheAttackersState: an attacker with no account starts
// a sign-in on app1 (a login cookie and its state) and has a victim signed
// in at auth.test open the sign-in host's link with that state. The
// victim's browser is handed off and refused at app1; the hand-off URL it
// opened (app1's access log, the history) then signs nobody in.
func TestReviewHandoffForTheAttackersState(t *testing.T) {
	e := startReviewEnv(t)
	victim := e.caddy.NewUserAgent(t)
	if resp, body := victim.SignIn(t, victim.URL("app1.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("victim sign-in: %d\n%s", resp.StatusCode, body)
	}
	attacker := e.caddy.NewUserAgent(t)
	noFollowUA(attacker)
	resp, _ := attacker.Get(t, attacker.URL("app1.test", "/secret"), nil)
	link := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(link, "/.iap/authenticate?") {
		t.Fatalf("no sign-in link for the attacker: %d %q", resp.StatusCode, link)
	}
	var opened string
	victim.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/.iap/handoff" {
			opened = req.URL.String()
		}
		return nil
	}
	resp, body := victim.Get(t, link, http.Header{"Accept": {"application/json"}})
	if opened == "" {
		t.Fatalf("the victim's browser was not handed off: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the victim's browser took a hand-off it did not start: %d", resp.StatusCode)
	}
	resp, body = attacker.Get(t, opened, http.Header{"Accept": {"application/json"}})
	if resp.StatusCode != http.StatusBadRequest || attacker.Cookie("app1.test", "__Host-_iap") != "" {
		t.Errorf("the attacker replayed the victim's hand-off: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}
