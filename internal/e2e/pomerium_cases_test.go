package e2e

// Pomerium cases that issue 18 #10 found uncovered or decided differently,
// each ported as a test of our own named after Pomerium's TC id or test.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Pomerium's authorize evaluator test "carry over assertion header": a
// request that arrives with X-Pomerium-Jwt-Assertion-For keeps it, and one
// with only X-Pomerium-Jwt-Assertion (from a Pomerium in front, or an
// upstream calling the next service) has it copied to
// X-Pomerium-Jwt-Assertion-For. Pomerium copies either without verifying
// it, so any client can put any text there. caddy-iap carries neither: the
// client's assertion reaches the upstream under no name, and the upstream
// gets only the proxy's own assertion for the user the request signed in
// as (the README's "Known differences").
func TestPomeriumCarryOverAssertionHeaderIsNotCarried(t *testing.T) {
	rec := newRecorder(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}})
	sites := routeSite("app.test", rec.URL, "\t\tallow_any_authenticated_user") +
		routeSite("api.test", rec.URL, "\t\tallow_any_authenticated_user") +
		routeSite("open.test", rec.URL, "\t\tallow_public_unauthenticated_access")
	caddy := testenv.StartCaddy(t, iapGlobals(dex, randomSecret(t), "\t\tcompat pomerium"), sites)
	caddy.WaitCertificates(t, "app.test", "api.test", "open.test")
	rc := newRawClient(t, caddy)
	idToken, _ := dexTokens(t, dex, alice)

	// send makes a request as alice (or anonymously) with the extra
	// headers, and returns what the upstream got.
	send := func(t *testing.T, host string, signedIn bool, extra map[string]string) http.Header {
		t.Helper()
		id := testID()
		h := http.Header{"X-Test-Id": {id}, "Accept": {"application/json"}}
		if signedIn {
			h.Set("Authorization", "Bearer "+idToken)
		}
		for k, v := range extra {
			h.Set(k, v)
		}
		r := rc.do(t, 1, "GET", host, "/", h, "")
		got, ok := rec.got(id)
		if r.Status != 200 || !ok {
			t.Fatalf("%s: %d %s (reached the upstream: %v)", host, r.Status, oneLine(r.Body), ok)
		}
		return got.Header
	}
	const assertionFor = "X-Pomerium-Jwt-Assertion-For"

	// The App's upstream gets alice's assertion for app.test: the value an
	// App would forward when it calls the API through the proxy.
	appAssertion := send(t, "app.test", true, nil).Get("X-Pomerium-Jwt-Assertion")
	if appAssertion == "" {
		t.Fatal("app.test: no assertion at the upstream")
	}
	checkOwn := func(t *testing.T, got http.Header, host string) {
		t.Helper()
		a := verifyPomeriumAssertion(t, rc, host, got.Get("X-Pomerium-Jwt-Assertion"))
		if a.Email != alice.Email {
			t.Errorf("the upstream's assertion is for %q, want %q", a.Email, alice.Email)
		}
	}
	checkOwn(t, http.Header{"X-Pomerium-Jwt-Assertion": {appAssertion}}, "app.test")

	cases := []struct {
		name  string
		extra map[string]string
	}{
		{"no assertion sent", nil},
		{"an assertion sent (Pomerium: copied to -For)", map[string]string{"X-Pomerium-Jwt-Assertion": "identity-a"}},
		{"-For and an assertion sent (Pomerium: -For kept)", map[string]string{assertionFor: "identity-a", "X-Pomerium-Jwt-Assertion": "identity-b"}},
		{"the App forwards the real assertion it got", map[string]string{"X-Pomerium-Jwt-Assertion": appAssertion}},
		{"the App forwards it as -For", map[string]string{assertionFor: appAssertion}},
		{"the default mode's names", map[string]string{"X-Iap-Jwt-Assertion": "identity-a", "X-Iap-Jwt-Assertion-For": "identity-a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := send(t, "api.test", true, c.extra)
			for _, name := range []string{assertionFor, "X-Iap-Jwt-Assertion-For", "X-Iap-Jwt-Assertion"} {
				if v := got.Values(name); len(v) > 0 {
					t.Errorf("the upstream got %s %q", name, v)
				}
			}
			if v := got.Values("X-Pomerium-Jwt-Assertion"); len(v) != 1 || v[0] == appAssertion {
				t.Fatalf("the upstream got X-Pomerium-Jwt-Assertion %q, want only the proxy's own for api.test", v)
			}
			checkOwn(t, got, "api.test")
			for _, v := range c.extra {
				for name, vs := range got {
					for _, have := range vs {
						if strings.Contains(have, v) {
							t.Errorf("the client's value %q reached the upstream in %s", oneLine(v), name)
						}
					}
				}
			}
		})
	}

	t.Run("an anonymous client on a public route passes no assertion on", func(t *testing.T) {
		got := send(t, "open.test", false, map[string]string{"X-Pomerium-Jwt-Assertion": appAssertion, assertionFor: appAssertion})
		for name, vs := range got {
			if strings.HasPrefix(name, "X-Pomerium-") || strings.Contains(strings.Join(vs, ","), appAssertion) {
				t.Errorf("the upstream got %s %q", name, vs)
			}
		}
	})
}

// verifyPomeriumAssertion checks an assertion against the JWKS that Caddy
// publishes under compat pomerium, for host as issuer and audience.
func verifyPomeriumAssertion(t *testing.T, rc *rawClient, host, token string) assertion {
	t.Helper()
	r := rc.do(t, 1, "GET", host, "/.well-known/pomerium/jwks.json", nil, "")
	var jwks jose.JSONWebKeySet
	if r.Status != 200 || json.Unmarshal([]byte(r.Body), &jwks) != nil || len(jwks.Keys) == 0 {
		t.Fatalf("JWKS: %d %s", r.Status, oneLine(r.Body))
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parsing the assertion %q: %v", token, err)
	}
	var a assertion
	if err := tok.Claims(jwks.Keys[0].Key, &a); err != nil {
		t.Fatalf("the assertion does not verify against the JWKS: %v", err)
	}
	if err := a.Claims.Validate(jwt.Expected{Issuer: host, AnyAudience: jwt.Audience{host}, Time: time.Now()}); err != nil {
		t.Fatalf("assertion claims: %v", err)
	}
	return a
}

// issueWithKey issues a client certificate from ca for key, so that two
// certificates may share a key (and so a spki_hash) and differ elsewhere.
func issueWithKey(t *testing.T, ca *testpki.CA, key crypto.Signer, cn string, emails, dns []string) tls.Certificate {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   n,
		Subject:        pkix.Name{CommonName: cn},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(24 * time.Hour),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		EmailAddresses: emails,
		DNSNames:       dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TC-CC-20: a client_certificate criterion with fingerprint, spki_hash
// (base64 SHA-256 of the SubjectPublicKeyInfo) and SANs together, with a
// signed-in user: the certificate that matches all passes; one that differs
// in any single condition, while valid, is 403 (the user is signed in and
// the certificate verified; only the policy said no); one from another CA
// is 495.
func TestTCCC20ClientCertificateFingerprintSPKIAndSANs(t *testing.T) {
	rec := newRecorder(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}})
	certDir := t.TempDir()
	ca := testpki.NewCA(t, "tc-cc-20 client root")
	caFile := ca.WriteCert(t, certDir, "ca.pem")

	key := ca.Issue(t, testpki.Client("key holder")).Key    // alice's laptop key
	other := ca.Issue(t, testpki.Client("another key")).Key // someone else's
	emails, dns := []string{"alice@example.com"}, []string{"laptop.corp.example", "alice.corp.example"}
	certs := map[string]tls.Certificate{
		"right":               issueWithKey(t, ca, key, "alice laptop", emails, dns),
		"another key":         issueWithKey(t, ca, other, "alice laptop", emails, dns),
		"another email SAN":   issueWithKey(t, ca, key, "alice laptop", []string{"bob@example.com"}, dns),
		"another DNS SAN":     issueWithKey(t, ca, key, "alice laptop", emails, []string{"desktop.corp.example"}),
		"another fingerprint": issueWithKey(t, ca, key, "alice laptop", emails, dns),
	}
	stranger := testpki.NewCA(t, "tc-cc-20 stranger")
	certs["another CA"] = issueWithKey(t, stranger, key, "alice laptop", emails, dns)

	// Every certificate's fingerprint is listed but "another fingerprint"'s
	// (and the stranger's), so each refusal below turns on one condition.
	var fps []string
	for name, c := range certs {
		if name != "another fingerprint" && name != "another CA" {
			sum := sha256.Sum256(c.Certificate[0])
			fps = append(fps, hex.EncodeToString(sum[:]))
		}
	}
	spki := sha256.Sum256(certs["right"].Leaf.RawSubjectPublicKeyInfo)
	spkiHash := base64.StdEncoding.EncodeToString(spki[:])
	// The same hash as openssl computes it from the certificate.
	if _, err := exec.LookPath("openssl"); err == nil {
		f := certDir + "/right.pem"
		if err := os.WriteFile(f, certPEMOf(certs["right"].Leaf), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", "openssl x509 -in "+f+" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64").Output()
		if err != nil || strings.TrimSpace(string(out)) != spkiHash {
			t.Fatalf("openssl's spki hash %q (%v), ours %q", out, err, spkiHash)
		}
	}

	criterion := "client_certificate {\n\t\t\t\t\t\tfingerprint " + strings.Join(fps, " ") +
		"\n\t\t\t\t\t\tspki_hash " + spkiHash +
		"\n\t\t\t\t\t\tsan_email is alice@example.com" +
		"\n\t\t\t\t\t\tsan_dns is laptop.corp.example\n\t\t\t\t\t}"
	sites := fmt.Sprintf("tccc20.test {\n\ttls internal\n\tiap_mtls {\n\t\tca_file %s\n\t\tenforcement policy\n\t}\n\tiap_route {\n\t\tto %s\n%s\n\t}\n}\n",
		caFile, rec.URL, policyLines([]string{"allow", "and", "authenticated_user", criterion}))
	caddy := testenv.StartCaddy(t, iapGlobals(dex, randomSecret(t), ""), sites)
	caddy.WaitCertificates(t, "tccc20.test")
	idToken, _ := dexTokens(t, dex, alice)

	get := func(t *testing.T, name string) (rawResponse, bool) {
		t.Helper()
		c := certs[name]
		rc := newRawClient(t, caddy, func(cfg *tls.Config) {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
		})
		id := testID()
		r := rc.do(t, 1, "GET", "tccc20.test", "/", http.Header{"X-Test-Id": {id}, "Accept": {"application/json"}, "Authorization": {"Bearer " + idToken}}, "")
		_, reached := rec.got(id)
		return r, reached
	}
	t.Run("the certificate that matches every condition passes", func(t *testing.T) {
		if r, reached := get(t, "right"); r.Status != 200 || !reached {
			t.Errorf("%d %s (reached the upstream: %v)", r.Status, oneLine(r.Body), reached)
		}
	})
	for _, name := range []string{"another key", "another email SAN", "another DNS SAN", "another fingerprint"} {
		t.Run("a valid certificate with "+name+" is 403", func(t *testing.T) {
			r, reached := get(t, name)
			wantRefusal(t, name, r, 403, "not-allowed")
			if reached {
				t.Errorf("%s reached the upstream", name)
			}
		})
	}
	t.Run("the same names and key from another CA is 495", func(t *testing.T) {
		r, reached := get(t, "another CA")
		wantRefusal(t, "another CA", r, 495, "invalid-client-certificate")
		if reached {
			t.Error("reached the upstream")
		}
	})
}

func certPEMOf(c *x509.Certificate) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(c.Raw) + "\n-----END CERTIFICATE-----\n")
}

// Pomerium's TestRouteSessions, in the form caddy-iap has: with
// cookie_domain, a session made by signing in on one route is the session
// of every route host under that domain, so the second route needs no
// sign-in. (A Domain cookie cannot sit on a public suffix, which browsers
// and Go's cookie jar refuse; example.test is not one.) A host outside the
// domain still signs in.
func TestRouteSessionsSharedThroughCookieDomain(t *testing.T) {
	rec := newRecorder(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice},
		RedirectURIs: redirectURIs(httpsPort, "a.example.test", "b.example.test", "c.elsewhere.test")})
	sites := routeSite("a.example.test", rec.URL, "\t\tallow_any_authenticated_user") +
		routeSite("b.example.test", rec.URL, "\t\tallow_any_authenticated_user") +
		routeSite("c.elsewhere.test", rec.URL, "\t\tallow_any_authenticated_user")
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, iapGlobals(dex, randomSecret(t), "\t\tcookie_domain example.test"), sites)
	caddy.WaitCertificates(t, "a.example.test", "b.example.test", "c.elsewhere.test")
	ua := caddy.NewUserAgent(t)

	resp, body := ua.SignIn(t, ua.URL("a.example.test", "/first"), alice.Email, alice.Password)
	if resp.StatusCode != 200 || resp.Request.URL.Host != fmt.Sprintf("a.example.test:%d", httpsPort) {
		t.Fatalf("signing in on a.example.test: %d at %s %s", resp.StatusCode, resp.Request.URL, oneLine(body))
	}
	if ua.Cookie("b.example.test", "_iap") == "" {
		t.Fatalf("no _iap cookie for b.example.test; cookies for it: %v", ua.Client.Jar.Cookies(resp.Request.URL))
	}

	t.Run("the second route needs no sign-in", func(t *testing.T) {
		id := testID()
		resp, body := ua.Get(t, ua.URL("b.example.test", "/second"), http.Header{"X-Test-Id": {id}})
		got, reached := rec.got(id)
		if resp.StatusCode != 200 || !reached || resp.Request.URL.Host != fmt.Sprintf("b.example.test:%d", httpsPort) {
			t.Fatalf("%d at %s (reached the upstream: %v) %s", resp.StatusCode, resp.Request.URL, reached, oneLine(body))
		}
		if got.Header.Get("X-Iap-Jwt-Assertion") == "" {
			t.Errorf("b.example.test's upstream got no assertion: %v", got.Header)
		}
	})
	t.Run("a host outside cookie_domain signs in", func(t *testing.T) {
		resp, _ := ua.Get(t, ua.URL("c.elsewhere.test", "/"), nil)
		if !strings.Contains(resp.Request.URL.Path, "/dex/") {
			t.Errorf("c.elsewhere.test: %d at %s, want Dex's login form", resp.StatusCode, resp.Request.URL)
		}
	})
}

// Pomerium's source_ip criterion takes IPv6 ranges. A route allowing only
// ::1/128 lets a client in over [::1] and refuses the same client over
// 127.0.0.1.
func TestSourceIPv6(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("this machine has no IPv6 loopback (listening on [::1]: %v)", err)
	} else {
		l.Close()
	}
	rec := newRecorder(t)
	sites := routeSite("v6.test", rec.URL, policyLines([]string{"allow", "or", "source_ip ::1/128"}))
	caddy := testenv.StartCaddy(t, "", sites)
	caddy.WaitCertificates(t, "v6.test")

	roots := caddy.Roots(t)
	over := func(t *testing.T, addr string) (int, string, bool) {
		t.Helper()
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig: &tls.Config{RootCAs: roots},
		}}
		defer client.CloseIdleConnections()
		id := testID()
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://v6.test:%d/", caddy.HTTPSPort), nil)
		req.Header.Set("X-Test-Id", id)
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("over %s: %v", addr, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		_, reached := rec.got(id)
		return resp.StatusCode, string(b), reached
	}
	t.Run("a client over [::1] is allowed", func(t *testing.T) {
		status, body, reached := over(t, fmt.Sprintf("[::1]:%d", caddy.HTTPSPort))
		if status != 200 || !reached {
			t.Errorf("%d %s (reached the upstream: %v)", status, oneLine(body), reached)
		}
	})
	t.Run("a client over 127.0.0.1 is refused", func(t *testing.T) {
		status, body, reached := over(t, fmt.Sprintf("127.0.0.1:%d", caddy.HTTPSPort))
		wantRefusal(t, "IPv4", rawResponse{Status: status, Body: body}, 403, "not-allowed")
		if reached {
			t.Error("reached the upstream")
		}
	})
}
