package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// portalRoute is a route of the portal's JSON, Pomerium's portal.Route.
type portalRoute struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	From        string `json:"from"`
	Description string `json:"description"`
	LogoURL     string `json:"logo_url"`
}

// portalJSON fetches the portal's JSON as an API client of the browser's
// session would.
func portalJSON(t *testing.T, ua *testenv.UserAgent, url string) (int, []portalRoute, string) {
	t.Helper()
	resp, body := ua.Get(t, url, http.Header{"Accept": {"application/json"}})
	var got struct{ Routes []portalRoute }
	if resp.StatusCode == 200 {
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, body)
		}
	}
	return resp.StatusCode, got.Routes, body
}

func routeNames(routes []portalRoute) []string {
	var names []string
	for _, r := range routes {
		names = append(names, r.Name)
	}
	return names
}

// The routes portal of a Pomerium config, run unchanged: two users with
// different access each see exactly the routes their policies list them
// on (by Pomerium's CheckRouteAccess rules), with names, descriptions and
// logos as text; anonymous visitors are asked to sign in; and
// show_error_details shows how the policy refused, where the route asks.
func TestRoutesPortalFromPomeriumConfig(t *testing.T) {
	httpsPort := testenv.FreePort(t)
	hosts := []string{"wiki", "admin", "bobs", "public", "closed"}
	var redirects []string
	for _, h := range hosts {
		redirects = append(redirects, fmt.Sprintf("https://%s.pomerium.test:%d/.pomerium/callback", h, httpsPort))
	}
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob}, RedirectURIs: redirects})
	up := echoUpstream(t)
	const svgLogo = "data:image/svg+xml,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22%2F%3E"
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
idp_provider: oidc
idp_provider_url: %s
idp_client_id: caddy
idp_client_secret: caddy-secret
idp_scopes: [openid, email, profile, groups, offline_access]
cookie_secret: %s
routes:
  - from: https://wiki.pomerium.test
    to: %[5]s
    name: Wiki
    description: "<script>alert(1)</script> the team's <b>wiki</b>"
    logo_url: "%[6]s"
    allow_any_authenticated_user: true
  - from: https://admin.pomerium.test
    to: %[5]s
    name: "<i>Admin</i>"
    logo_url: https://cdn.example.com/admin.png
    show_error_details: true
    policy:
      - allow:
          or:
            - groups:
                has: admins
      - deny:
          or:
            - http_method:
                is: DELETE
  - from: https://bobs.pomerium.test
    to: %[5]s
    name: Bob's
    allowed_users: [%[7]s]
  - from: https://public.pomerium.test
    to: %[5]s
    name: Public
    allow_public_unauthenticated_access: true
  - from: https://closed.pomerium.test
    to: %[5]s
    name: Closed
`, httpsPort, testenv.FreePort(t), dex.Issuer, randomSecret(t), up, svgLogo, bob.Email)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	aliceUA, bobUA, anonymous := caddy.NewUserAgent(t), caddy.NewUserAgent(t), caddy.NewUserAgent(t)

	if resp, body := aliceUA.SignIn(t, aliceUA.URL("wiki.pomerium.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("alice signing in: %d %s", resp.StatusCode, body)
	}
	if resp, body := bobUA.SignIn(t, bobUA.URL("wiki.pomerium.test", "/"), bob.Email, bob.Password); resp.StatusCode != 200 {
		t.Fatalf("bob signing in: %d %s", resp.StatusCode, body)
	}

	t.Run("each user sees exactly the routes they may use, in Pomerium's JSON at /.pomerium/api/v1/routes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ua   *testenv.UserAgent
			want []string
		}{
			{"alice (admins)", aliceUA, []string{"<i>Admin</i>", "Public", "Wiki"}},
			{"bob (allowed_users)", bobUA, []string{"Bob's", "Public", "Wiki"}},
		} {
			status, routes, body := portalJSON(t, tc.ua, tc.ua.URL("wiki.pomerium.test", "/.pomerium/api/v1/routes"))
			if status != 200 || !slices.Equal(routeNames(routes), tc.want) {
				t.Errorf("%s: %d %v, want %v\n%s", tc.name, status, routeNames(routes), tc.want, body)
			}
		}
		_, routes, _ := portalJSON(t, aliceUA, aliceUA.URL("wiki.pomerium.test", "/.pomerium/routes"))
		want := portalRoute{Name: "Wiki", Type: "http", From: "https://wiki.pomerium.test",
			Description: "<script>alert(1)</script> the team's <b>wiki</b>", LogoURL: svgLogo}
		if len(routes) != 3 || routes[2] != want {
			t.Errorf("the page's path answers API clients with the same JSON: %+v", routes)
		}
	})

	t.Run("the page shows names and descriptions as text and logos as images", func(t *testing.T) {
		resp, body := aliceUA.Get(t, aliceUA.URL("wiki.pomerium.test", "/.pomerium/routes"), nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		for _, want := range []string{
			`<a href="https://wiki.pomerium.test">Wiki</a>`,
			`&lt;script&gt;alert(1)&lt;/script&gt; the team&#39;s &lt;b&gt;wiki&lt;/b&gt;`,
			`<a href="https://admin.pomerium.test">&lt;i&gt;Admin&lt;/i&gt;</a>`,
			`src="https://cdn.example.com/admin.png"`,
			`src="data:image/svg&#43;xml,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22%2F%3E"`,
			alice.Email,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the page lacks %s:\n%s", want, body)
			}
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "<i>") || strings.Contains(body, "Closed") || strings.Contains(body, "Bob&#39;s") {
			t.Errorf("markup, or a route alice may not use, on the page:\n%s", body)
		}
	})

	t.Run("anonymous visitors are asked to sign in, and never see the list", func(t *testing.T) {
		resp, body := anonymous.Get(t, anonymous.URL("wiki.pomerium.test", "/.pomerium/routes"), nil)
		if !strings.Contains(resp.Request.URL.Path, "/dex/auth") || strings.Contains(body, "Wiki") {
			t.Errorf("browser: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		status, routes, body := portalJSON(t, anonymous, anonymous.URL("wiki.pomerium.test", "/.pomerium/api/v1/routes"))
		if status != http.StatusUnauthorized || routes != nil || !strings.Contains(body, "user-unauthenticated") {
			t.Errorf("API client: %d %s", status, body)
		}
	})

	t.Run("show_error_details: the 403 lists each rule and criterion with its result", func(t *testing.T) {
		resp, body := bobUA.SignIn(t, bobUA.URL("admin.pomerium.test", "/"), bob.Email, bob.Password)
		if resp.StatusCode != 403 {
			t.Fatalf("bob on admin: %d %s", resp.StatusCode, body)
		}
		for _, want := range []string{
			`<table id="policy-evaluation">`,
			`<td>rule 1: allow</td>`,
			`or <code>groups: {&#34;has&#34;:&#34;admins&#34;}</code> not matched`,
			`<td>rule 2: deny</td>`,
			`or <code>http_method: {&#34;is&#34;:&#34;DELETE&#34;}</code> not matched`,
			`<code id="reason">not-allowed</code>`,
			`<code id="request-id">`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the 403 page lacks %s:\n%s", want, body)
			}
		}
		req, _ := http.NewRequest(http.MethodDelete, bobUA.URL("admin.pomerium.test", "/"), nil)
		req.Header.Set("Accept", "application/json")
		r, err := bobUA.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var got struct {
			Reason           string
			RequestID        string `json:"request_id"`
			PolicyEvaluation struct {
				Rules []struct {
					Rule     int
					Action   string
					Matched  bool
					Criteria []struct {
						Operator, Criterion string
						Data                json.RawMessage
						Matched             bool
					}
				}
			} `json:"policy_evaluation"`
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil || r.StatusCode != 403 {
			t.Fatalf("DELETE: %d %v", r.StatusCode, err)
		}
		rules := got.PolicyEvaluation.Rules
		if got.Reason != "denied" || got.RequestID == "" || len(rules) != 2 ||
			rules[0].Action != "allow" || rules[0].Matched || rules[1].Action != "deny" || !rules[1].Matched ||
			rules[1].Criteria[0].Criterion != "http_method" || string(rules[1].Criteria[0].Data) != `{"is":"DELETE"}` || !rules[1].Criteria[0].Matched {
			t.Errorf("JSON trace: %+v", got)
		}
		// The log line of the refusal carries the same request ID.
		if !caddy.WaitLog(`"request_id":"` + got.RequestID + `"`) {
			t.Errorf("no refusal logged with request_id %s", got.RequestID)
		}
	})

	t.Run("without show_error_details the 403 says the status, reason and request ID only, as Pomerium's does", func(t *testing.T) {
		resp, body := aliceUA.SignIn(t, aliceUA.URL("bobs.pomerium.test", "/"), alice.Email, alice.Password)
		if resp.StatusCode != 403 || !strings.Contains(body, `<code id="reason">not-allowed</code>`) || !strings.Contains(body, `<code id="request-id">`) {
			t.Errorf("alice on bob's route: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(body, "policy-evaluation") || strings.Contains(body, bob.Email) || strings.Contains(body, "rule 1") {
			t.Errorf("the policy shows without show_error_details:\n%s", body)
		}
		resp, body = aliceUA.Get(t, aliceUA.URL("bobs.pomerium.test", "/"), http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != 403 || strings.Contains(body, "policy_evaluation") || !strings.Contains(body, `"request_id":"`) {
			t.Errorf("JSON: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("neither page shows the session's cookie or a token", func(t *testing.T) {
		secrets := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}|_pomerium=`)
		for _, u := range []string{bobUA.URL("admin.pomerium.test", "/"), bobUA.URL("wiki.pomerium.test", "/.pomerium/routes")} {
			_, body := bobUA.Get(t, u, nil)
			if m := secrets.FindString(body); m != "" {
				t.Errorf("%s shows %s", u, m)
			}
		}
	})
}

// A javascript: logo_url, or another scheme, fails `caddy adapt` (the
// Pomerium adapter) and `caddy validate` (the Caddyfile), naming the
// option and the cause.
func TestBadLogoURLIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	yaml := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(yaml, []byte("routes:\n  - from: https://wiki.example.com\n    to: http://127.0.0.1:1\n    allow_public_unauthenticated_access: true\n    logo_url: \"javascript:alert(document.cookie)\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command(testenv.CaddyBinary(t), "adapt", "--adapter", "pomerium", "--config", yaml).CombinedOutput()
	out := strings.ReplaceAll(string(raw), `\"`, `"`) // Caddy logs JSON
	if err == nil || !strings.Contains(out, `config.yaml:5: logo_url "javascript:alert(document.cookie)": scheme "javascript" is not allowed`) {
		t.Errorf("caddy adapt: %v\n%s", err, out)
	}

	caddyfile := testenv.WriteCaddyfile(t, dir, "", "wiki.test {\n\ttls internal\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\tallow_public_unauthenticated_access\n\t\tlogo_url \"data:text/html,<script>alert(1)</script>\"\n\t}\n}\n")
	if out, ok := testenv.Validate(t, caddyfile); ok || !strings.Contains(out, `logo_url "data:text/html,<script>alert(1)</script>": a data: URL must hold an image`) {
		t.Errorf("caddy validate: ok=%v\n%s", ok, out)
	}
}

// The routes portal of a Caddyfile at /.iap/routes: iap_route's
// description and logo_url, the site's address (with its port) as the
// route's URL, and the list following the config: a route removed by a
// reload leaves the portal (iap_authorize's Cleanup).
func TestRoutesPortalFollowsTheCaddyfile(t *testing.T) {
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob}, RedirectURIs: []string{
		fmt.Sprintf("https://wiki.test:%d/.iap/callback", httpsPort), fmt.Sprintf("https://ops.test:%d/.iap/callback", httpsPort)}})
	globals := fmt.Sprintf("\tiap {\n\t\tidp {\n\t\t\tprovider_url %s\n\t\t\tclient_id caddy\n\t\t\tclient_secret caddy-secret\n\t\t}\n\t\tcookie_secret %s\n\t}", dex.Issuer, randomSecret(t))
	up := echoUpstream(t)
	wiki := site("wiki.test", "to "+up, `description "Team <em>wiki</em>"`, "logo_url https://cdn.example.com/wiki.png", "allow_any_authenticated_user")
	ops := site("ops.test", "to "+up, "allowed_users "+alice.Email, "show_error_details")
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, globals, wiki+ops)
	aliceUA, bobUA := caddy.NewUserAgent(t), caddy.NewUserAgent(t)
	aliceUA.SignIn(t, aliceUA.URL("wiki.test", "/"), alice.Email, alice.Password)
	bobUA.SignIn(t, bobUA.URL("wiki.test", "/"), bob.Email, bob.Password)

	wantWiki := portalRoute{Name: "wiki.test", Type: "http", From: fmt.Sprintf("https://wiki.test:%d", httpsPort),
		Description: "Team <em>wiki</em>", LogoURL: "https://cdn.example.com/wiki.png"}
	status, routes, body := portalJSON(t, aliceUA, aliceUA.URL("wiki.test", "/.iap/api/v1/routes"))
	if status != 200 || len(routes) != 2 || routes[0].Name != "ops.test" || routes[1] != wantWiki {
		t.Errorf("alice: %d %+v\n%s", status, routes, body)
	}
	if _, routes, body := portalJSON(t, bobUA, bobUA.URL("wiki.test", "/.iap/routes")); !slices.Equal(routeNames(routes), []string{"wiki.test"}) {
		t.Errorf("bob: %+v\n%s", routes, body)
	}
	resp, page := aliceUA.Get(t, aliceUA.URL("wiki.test", "/.iap/routes"), nil)
	if resp.StatusCode != 200 || !strings.Contains(page, fmt.Sprintf(`<a href="https://ops.test:%d">ops.test</a>`, httpsPort)) ||
		!strings.Contains(page, "Team &lt;em&gt;wiki&lt;/em&gt;") {
		t.Errorf("page: %d\n%s", resp.StatusCode, page)
	}

	// show_error_details from the Caddyfile: bob is refused on ops.test,
	// and told which criterion failed.
	if resp, body := bobUA.SignIn(t, bobUA.URL("ops.test", "/"), bob.Email, bob.Password); resp.StatusCode != 403 ||
		!strings.Contains(body, `or <code>email: &#34;alice@example.com&#34;</code> not matched`) {
		t.Errorf("bob on ops.test: %d\n%s", resp.StatusCode, body)
	}

	caddy.Reload(t, globals, wiki)
	if status, routes, body := portalJSON(t, aliceUA, aliceUA.URL("wiki.test", "/.iap/api/v1/routes")); status != 200 || !slices.Equal(routeNames(routes), []string{"wiki.test"}) {
		t.Errorf("after a reload without ops.test: %d %+v\n%s", status, routes, body)
	}
}

// A real browser opens the routes portal and a 403 page with
// show_error_details: the markup in a description runs nothing (no
// script element, no onerror fired), the data:image logo loads under the
// page's Content-Security-Policy, and the trace is a table. The
// screenshots are kept in out/routes-portal.png and
// out/show-error-details.png.
func TestRoutesPortalInABrowser(t *testing.T) {
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob}, RedirectURIs: []string{
		fmt.Sprintf("https://wiki.test:%d/.iap/callback", httpsPort), fmt.Sprintf("https://ops.test:%d/.iap/callback", httpsPort)}})
	globals := fmt.Sprintf("\tiap {\n\t\tidp {\n\t\t\tprovider_url %s\n\t\t\tclient_id caddy\n\t\t\tclient_secret caddy-secret\n\t\t\tscopes openid email profile groups\n\t\t}\n\t\tcookie_secret %s\n\t}", dex.Issuer, randomSecret(t))
	up := echoUpstream(t)
	const logo = `data:image/svg+xml,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22%20width%3D%2248%22%20height%3D%2248%22%3E%3Crect%20width%3D%2248%22%20height%3D%2248%22%20fill%3D%22%23375%22%2F%3E%3C%2Fsvg%3E`
	wiki := site("wiki.test", "to "+up, `description "The team's wiki <img src=x onerror=window.pwned=1>"`, "logo_url "+logo, "allow_any_authenticated_user")
	ops := site("ops.test", "to "+up, "description \"On-call runbooks\"", "show_error_details",
		"policy {\n\t\t\tallow {\n\t\t\t\tor {\n\t\t\t\t\tgroups has admins\n\t\t\t\t}\n\t\t\t}\n\t\t\tdeny {\n\t\t\t\tor {\n\t\t\t\t\temail is "+alice.Email+"\n\t\t\t\t}\n\t\t\t}\n\t\t}")
	testenv.StartCaddyOn(t, httpPort, httpsPort, globals, wiki+ops)
	browser := testenv.StartChromium(t)
	signIn := func(url string) {
		browser.Navigate(url)
		browser.WaitFor(`document.querySelector("input[name=login]")`)
		browser.Eval(fmt.Sprintf(`document.querySelector("input[name=login]").value = %q;
			document.querySelector("input[name=password]").value = %q;
			document.querySelector("form").submit(); "ok"`, alice.Email, alice.Password))
		browser.WaitFor(fmt.Sprintf(`location.href === %q`, url))
	}

	portal := fmt.Sprintf("https://wiki.test:%d/.iap/routes", httpsPort)
	signIn(portal)
	browser.WaitFor(`document.querySelector("#routes img.logo") && document.querySelector("#routes img.logo").complete`)
	for js, want := range map[string]string{
		`document.querySelectorAll("#routes li.route").length`:                 "2",
		`String(window.pwned)`:                                                 "undefined",
		`document.querySelectorAll("script, #routes .description img").length`: "0",
		`document.querySelector("#routes img.logo").naturalWidth`:              "48",
		`document.querySelector("#routes li.route .name a").href`:              fmt.Sprintf("https://ops.test:%d/", httpsPort),
	} {
		if got := browser.Eval(js); got != want {
			t.Errorf("%s = %q, want %q", js, got, want)
		}
	}
	if text := browser.Eval(`document.body.innerText`); !strings.Contains(text, "The team's wiki <img src=x onerror=window.pwned=1>") {
		t.Errorf("the description is not shown as text:\n%s", text)
	}
	t.Logf("screenshot: %s", browser.Screenshot("routes-portal.png"))

	// alice is an admin, but the deny rule names her: the 403 says so.
	denied := fmt.Sprintf("https://ops.test:%d/", httpsPort)
	signIn(denied)
	browser.WaitFor(`document.getElementById("policy-evaluation")`)
	if got := browser.Eval(`Array.from(document.querySelectorAll("#policy-evaluation tr.rule")).map(r => r.innerText.replace(/\s+/g, " ").trim()).join(" | ")`); !strings.Contains(got, "✓ allow rule 1: allow or groups: {\"has\":\"admins\"} matched") ||
		!strings.Contains(got, "✗ deny rule 2: deny or email: {\"is\":\"alice@example.com\"} matched") {
		t.Errorf("the trace reads: %s", got)
	}
	t.Logf("screenshot: %s", browser.Screenshot("show-error-details.png"))
}
