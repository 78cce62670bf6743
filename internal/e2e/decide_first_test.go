package e2e

// Decisions as Pomerium makes them, with a real IdP (Dex) configured: the
// route's policy is evaluated first, with whatever identity the request
// carries or none. Allowed: pass. Denied by a deny rule, or a signed-in
// user not allowed: 403. Anonymous and not allowed: sign in (302 to the IdP
// for a browser, 401 JSON for API clients).

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

var browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// policyLines is an iap_route policy block: each rule is an action
// (allow/deny), an operator and its criteria lines.
func policyLines(rules ...[]string) string {
	var b strings.Builder
	b.WriteString("\t\tpolicy {\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "\t\t\t%s {\n\t\t\t\t%s {\n", r[0], r[1])
		for _, c := range r[2:] {
			fmt.Fprintf(&b, "\t\t\t\t\t%s\n", c)
		}
		b.WriteString("\t\t\t\t}\n\t\t\t}\n")
	}
	b.WriteString("\t\t}")
	return b.String()
}

func TestDecideFirst(t *testing.T) {
	rec := newRecorder(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice},
		RedirectURIs: redirectURIs(httpsPort, "notallowed.test", "healthz.test", "mtls.test", "errs.test", "cors.test")})
	globals := iapGlobals(dex, randomSecret(t), "")

	// Client certificates: one from the CA that iap_mtls trusts, one from
	// a stranger.
	certDir := t.TempDir()
	ca := testpki.NewCA(t, "decide-first client root")
	caFile := ca.WriteCert(t, certDir, "ca.pem")
	good := ca.Issue(t, testpki.Client("alice-laptop"))
	goodCert, goodKey := good.Write(t, certDir, "good")
	strangerCert, strangerKey := testpki.NewCA(t, "stranger").Issue(t, testpki.Client("eve")).Write(t, certDir, "stranger")
	fp := sha256.Sum256(good.Cert.Raw)
	withCert := func(certFile, keyFile string) func(*tls.Config) {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return func(cfg *tls.Config) {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
	}

	to := rec.URL
	sites := routeSite("srcip.test", to, policyLines([]string{"allow", "or", "source_ip 127.0.0.0/8"})) +
		fmt.Sprintf("mtls.test {\n\ttls internal\n\tiap_mtls {\n\t\tca_file %s\n\t\tenforcement policy\n\t}\n\tiap_route {\n\t\tto %s\n%s\n\t}\n}\n",
			caFile, to, policyLines([]string{"allow", "or", "client_certificate {\n\t\t\t\t\t\tfingerprint " + hex.EncodeToString(fp[:]) + "\n\t\t\t\t\t}"})) +
		routeSite("healthz.test", to, policyLines([]string{"allow", "or", "http_path is /healthz"}, []string{"allow", "or", "groups has admins"})) +
		routeSite("cors.test", to, "\t\tcors_allow_preflight", "\t\tallowed_domains example.com") +
		routeSite("email.test", to, policyLines([]string{"allow", "or", "email not_in x@example.com"})) +
		routeSite("notallowed.test", to, policyLines([]string{"allow", "or", "groups has ops"})) +
		fmt.Sprintf("errs.test {\n\ttls internal\n\tiap_route {\n\t\tto %s\n%s\n\t}\n\thandle_errors {\n\t\trespond \"custom {http.error.status_code} {http.error.id}\"\n\t}\n}\n",
			to, policyLines([]string{"allow", "or", "authenticated_user"}, []string{"deny", "or", "http_path starts_with /forbidden"}))
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, globals, sites)
	caddy.WaitCertificates(t, "srcip.test", "mtls.test", "healthz.test", "cors.test", "email.test", "notallowed.test", "errs.test")
	rc := newRawClient(t, caddy)

	// get sends an anonymous GET and reports whether the upstream got it.
	get := func(t *testing.T, c *rawClient, host, path, accept string) (rawResponse, bool) {
		t.Helper()
		id := testID()
		r := c.do(t, 1, "GET", host, path, http.Header{"Accept": {accept}, "X-Test-Id": {id}}, "")
		_, reached := rec.got(id)
		return r, reached
	}
	wantPass := func(t *testing.T, what string, r rawResponse, reached bool) {
		t.Helper()
		if r.Status != 200 || !reached || r.Header.Get("Location") != "" {
			t.Errorf("%s: got %d Location %q %s; reached the upstream: %v; want 200 from the upstream", what, r.Status, r.Header.Get("Location"), oneLine(r.Body), reached)
		}
	}
	wantSignIn := func(t *testing.T, what string, c *rawClient, host, path string) {
		t.Helper()
		r, reached := get(t, c, host, path, browserAccept)
		if loc := r.Header.Get("Location"); r.Status != 302 || !strings.HasPrefix(loc, dex.Issuer+"/auth") || reached {
			t.Errorf("%s, a browser: got %d Location %q; reached the upstream: %v; want 302 to Dex", what, r.Status, loc, reached)
		}
		r, reached = get(t, c, host, path, "application/json")
		wantRefusal(t, what+", an API client", r, 401, "user-unauthenticated")
		if reached {
			t.Errorf("%s, an API client reached the upstream", what)
		}
	}

	t.Run("source_ip allows anonymous requests, with curl and with a browser", func(t *testing.T) {
		id := testID()
		code, body, err := curl(t, caddy, "srcip.test", "-H", "X-Test-Id: "+id, "-D", "-")
		_, reached := rec.got(id)
		if err != nil || code != 200 || !reached || strings.Contains(strings.ToLower(body), "\nlocation:") {
			t.Errorf("curl: %d %v %s; reached the upstream: %v", code, err, oneLine(body), reached)
		}
		r, reached := get(t, rc, "srcip.test", "/page", browserAccept)
		wantPass(t, "a browser", r, reached)
	})

	// Pomerium answers a policy that a client certificate failed with 495,
	// never a sign-in: the policy tests no user.
	t.Run("a client certificate allows; without one, 495", func(t *testing.T) {
		r, reached := get(t, newRawClient(t, caddy, withCert(goodCert, goodKey)), "mtls.test", "/", "application/json")
		wantPass(t, "with the certificate", r, reached)
		r, reached = get(t, rc, "mtls.test", "/", "application/json")
		wantRefusal(t, "without a certificate", r, 495, "client-certificate-required")
		r2, reached2 := get(t, newRawClient(t, caddy, withCert(strangerCert, strangerKey)), "mtls.test", "/", "application/json")
		wantRefusal(t, "with a certificate from another CA", r2, 495, "invalid-client-certificate")
		r3, _ := get(t, rc, "mtls.test", "/", browserAccept)
		if r3.Status != 495 || r3.Header.Get("Location") != "" {
			t.Errorf("a browser without a certificate: %d Location %q, want 495 and no redirect", r3.Status, r3.Header.Get("Location"))
		}
		if reached || reached2 {
			t.Errorf("a request without a valid certificate reached the upstream")
		}
	})

	t.Run("an open path next to a group rule", func(t *testing.T) {
		r, reached := get(t, rc, "healthz.test", "/healthz", "application/json")
		wantPass(t, "/healthz", r, reached)
		wantSignIn(t, "/", rc, "healthz.test", "/")
	})

	t.Run("cors_allow_preflight lets preflights through; other requests sign in", func(t *testing.T) {
		id := testID()
		r := rc.do(t, 1, "OPTIONS", "cors.test", "/api", http.Header{"Origin": {"https://web.example"},
			"Access-Control-Request-Method": {"PUT"}, "X-Test-Id": {id}}, "")
		got, reached := rec.got(id)
		if r.Status != 200 || !reached || got.Method != "OPTIONS" {
			t.Errorf("preflight: %d %s; reached the upstream: %v", r.Status, oneLine(r.Body), reached)
		}
		r, reached = get(t, rc, "cors.test", "/api", "application/json")
		wantRefusal(t, "GET", r, 401, "user-unauthenticated")
		if reached {
			t.Error("an anonymous GET reached the upstream")
		}
	})

	t.Run("email not_in admits the anonymous, whose email is empty", func(t *testing.T) {
		r, reached := get(t, rc, "email.test", "/", "application/json")
		wantPass(t, "anonymous", r, reached)
	})

	t.Run("a signed-in user who is not allowed gets 403, never a redirect loop", func(t *testing.T) {
		ua := caddy.NewUserAgent(t)
		// Count the authorization requests (Caddy sending the browser to
		// Dex), not Dex's own hops to its login form.
		var toDex int
		authURL := dex.Issuer + "/auth"
		ua.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.SplitN(req.URL.String(), "?", 2)[0] == authURL {
				toDex++
			}
			if len(via) >= 10 {
				return fmt.Errorf("redirect loop: %d redirects, %d to Dex", len(via), toDex)
			}
			return nil
		}
		resp, body := ua.SignIn(t, ua.URL("notallowed.test", "/"), alice.Email, alice.Password)
		if resp.StatusCode != 403 || !strings.Contains(body, "not-allowed") {
			t.Errorf("after sign-in: %d at %s %s", resp.StatusCode, resp.Request.URL, oneLine(body))
		}
		if toDex > 1 {
			t.Errorf("sent to Dex %d times", toDex)
		}
		id := testID()
		r := rc.do(t, 1, "GET", "notallowed.test", "/", http.Header{"Cookie": {sessionCookies(t, ua, "notallowed.test")},
			"Accept": {"application/json"}, "X-Test-Id": {id}}, "")
		wantRefusal(t, "an API client with the session", r, 403, "not-allowed")
		if _, ok := rec.got(id); ok {
			t.Error("the refused request reached the upstream")
		}
	})

	t.Run("allow_public_unauthenticated_access with a deny rule", func(t *testing.T) {
		site := routeSite("pubdeny.test", to, "\t\tallow_public_unauthenticated_access",
			policyLines([]string{"deny", "or", "http_path starts_with /private"}))
		if out, ok := testenv.Validate(t, testenv.WriteCaddyfile(t, t.TempDir(), globals, site)); !ok {
			t.Fatalf("caddy validate refuses public access with a deny rule:\n%s", out)
		}
		c := testenv.StartCaddy(t, globals, site)
		crc := newRawClient(t, c)
		r, reached := get(t, crc, "pubdeny.test", "/", "application/json")
		wantPass(t, "/", r, reached)
		r, reached = get(t, crc, "pubdeny.test", "/private", "application/json")
		wantRefusal(t, "/private", r, 403, "denied")
		if reached {
			t.Error("/private reached the upstream")
		}
	})

	t.Run("without an IdP, /.iap/ endpoints are not proxied", func(t *testing.T) {
		c := testenv.StartCaddy(t, "", routeSite("noidp.test", to, "\t\tallow_public_unauthenticated_access"))
		crc := newRawClient(t, c)
		r, reached := get(t, crc, "noidp.test", "/hello", "application/json")
		wantPass(t, "a plain path (control)", r, reached)
		for _, p := range []string{"/.iap/callback?code=x&state=y", "/.iap/sign_in"} {
			r, reached := get(t, crc, "noidp.test", p, "application/json")
			wantRefusal(t, p, r, 404, "no-identity-provider")
			if reached {
				t.Errorf("%s reached the upstream", p)
			}
		}
	})

	// Last: it stops Dex.
	t.Run("handle_errors gets every refusal, with the reason as its id", func(t *testing.T) {
		want := func(t *testing.T, what string, r rawResponse, reached bool, status int, reason string) {
			t.Helper()
			if body := fmt.Sprintf("custom %d %s", status, reason); r.Status != status || strings.TrimSpace(r.Body) != body || reached {
				t.Errorf("%s: got %d %q (reached the upstream: %v), want %d %q from handle_errors", what, r.Status, oneLine(r.Body), reached, status, body)
			}
		}
		r, reached := get(t, rc, "errs.test", "/", "application/json")
		want(t, "anonymous API client", r, reached, 401, "user-unauthenticated")
		// Anonymous, the allow rule (authenticated_user) turned on the user,
		// so Pomerium asks to sign in before the deny rule counts.
		r, reached = get(t, rc, "errs.test", "/forbidden", "application/json")
		want(t, "a deny rule, anonymous", r, reached, 401, "user-unauthenticated")
		idToken, _ := dexTokens(t, dex, alice)
		r = rc.do(t, 1, "GET", "errs.test", "/forbidden", http.Header{"Authorization": {"Bearer " + idToken}, "Accept": {"application/json"}}, "")
		want(t, "a deny rule, signed in", r, false, 403, "denied")
		r, reached = get(t, rc, "errs.test", "/a/%2e%2e/b", "application/json")
		want(t, "an ambiguous path", r, reached, 400, "ambiguous-path")

		dex.Stop()
		// Caddy learns that the IdP is down by its health check; until
		// then a browser may still be sent to sign in.
		deadline := time.Now().Add(45 * time.Second)
		for {
			r, reached = get(t, rc, "errs.test", "/", browserAccept)
			if r.Status == 503 || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		want(t, "a browser with the IdP down", r, reached, 503, "identity-provider-unavailable")

		r, reached = get(t, rc, "srcip.test", "/", "application/json")
		wantPass(t, "a source_ip route with the IdP down", r, reached)
	})
}
