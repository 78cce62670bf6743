package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Issue 14 part 4: client_certificate_user binds the device's certificate
// to the person signed in, in one rule. Two real users of Dex, two
// certificates of one trusted CA: each certificate opens the route only
// with its owner's sign-in. A stolen certificate with another session, or
// a session with another certificate, is 403
// client-certificate-user-mismatch (the refusal names the certificate);
// the certificate alone asks to sign in; the session alone is 495.
func TestClientCertificateBoundToUser(t *testing.T) {
	rec := newRecorder(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob},
		RedirectURIs: redirectURIs(httpsPort, "bound.test")})

	dir := t.TempDir()
	ca := testpki.NewCA(t, "device root")
	caFile := ca.WriteCert(t, dir, "ca.pem")
	issue := func(name, email string) func(*tls.Config) {
		o := testpki.Client(name + "-laptop")
		o.Emails = []string{email}
		certFile, keyFile := ca.Issue(t, o).Write(t, dir, name)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return func(cfg *tls.Config) {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
	}
	// Alice's certificate names her email in another case: Dex has it
	// lower-case.
	aliceCert, bobCert := issue("alice", "Alice@Example.com"), issue("bob", bob.Email)

	sites := fmt.Sprintf("bound.test {\n\ttls internal\n\tiap_mtls {\n\t\tca_file %s\n\t}\n\tiap_route {\n\t\tto %s\n%s\n\t}\n}\n",
		caFile, rec.URL, policyLines([]string{"allow", "and", "client_certificate_user"}))
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, iapGlobals(dex, randomSecret(t), ""), sites)
	caddy.WaitCertificates(t, "bound.test")

	aliceToken, _ := dexTokens(t, dex, alice)
	bobToken, _ := dexTokens(t, dex, bob)
	clients := map[string]*rawClient{
		"alice's certificate": newRawClient(t, caddy, aliceCert),
		"bob's certificate":   newRawClient(t, caddy, bobCert),
		"no certificate":      newRawClient(t, caddy),
	}
	// get sends GET / with the certificate and the bearer token (if any),
	// and reports whether the upstream got it.
	get := func(t *testing.T, cert, token, accept string) (rawResponse, bool) {
		t.Helper()
		id := testID()
		h := http.Header{"Accept": {accept}, "X-Test-Id": {id}}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		r := clients[cert].do(t, 1, "GET", "bound.test", "/", h, "")
		_, reached := rec.got(id)
		return r, reached
	}

	for _, c := range []struct {
		name, cert, token string
		status            int
		reason            string // "" for the upstream's answer
		certEmail         string // the refusal names this certificate
	}{
		{"alice with her certificate", "alice's certificate", aliceToken, 200, "", ""},
		{"bob with his certificate", "bob's certificate", bobToken, 200, "", ""},
		{"alice's session with bob's certificate", "bob's certificate", aliceToken, 403, "client-certificate-user-mismatch", bob.Email},
		{"bob's session with alice's stolen certificate", "alice's certificate", bobToken, 403, "client-certificate-user-mismatch", "Alice@Example.com"},
		{"alice's certificate without a session", "alice's certificate", "", 401, "user-unauthenticated", ""},
		{"alice's session without a certificate", "no certificate", aliceToken, 495, "client-certificate-required", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, reached := get(t, c.cert, c.token, "application/json")
			if c.reason == "" {
				if r.Status != 200 || !reached {
					t.Fatalf("got %d %s; reached the upstream: %v; want 200 from the upstream", r.Status, oneLine(r.Body), reached)
				}
				return
			}
			wantRefusal(t, "an API client", r, c.status, c.reason)
			if reached {
				t.Error("the upstream got the request")
			}
			if c.certEmail == "" {
				return
			}
			var body struct {
				Certificate struct {
					Subject  string   `json:"subject"`
					SANEmail []string `json:"san_email"`
				} `json:"certificate"`
			}
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil || len(body.Certificate.SANEmail) != 1 || body.Certificate.SANEmail[0] != c.certEmail {
				t.Errorf("the refusal does not name the certificate of %s: %s", c.certEmail, oneLine(r.Body))
			}
		})
	}

	t.Run("a browser with alice's certificate is sent to sign in", func(t *testing.T) {
		r, reached := get(t, "alice's certificate", "", browserAccept)
		if loc := r.Header.Get("Location"); r.Status != 302 || !strings.HasPrefix(loc, dex.Issuer+"/auth") || reached {
			t.Errorf("got %d Location %q; reached the upstream: %v; want 302 to Dex", r.Status, loc, reached)
		}
	})

	// The same with a session cookie, through Dex's login form: the
	// device that signs in as bob with alice's certificate gets the page
	// that says why.
	t.Run("signing in with a cookie", func(t *testing.T) {
		ua := caddy.NewUserAgent(t, aliceCert)
		if resp, body := ua.SignIn(t, ua.URL("bound.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 || !strings.Contains(body, `"upstream":"recorder"`) {
			t.Errorf("alice with her certificate: %d %s", resp.StatusCode, oneLine(body))
		}
		thief := caddy.NewUserAgent(t, aliceCert)
		resp, body := thief.SignIn(t, thief.URL("bound.test", "/"), bob.Email, bob.Password)
		if resp.StatusCode != 403 || !strings.Contains(body, "client-certificate-user-mismatch") ||
			!strings.Contains(body, "was not issued to the user you are signed in as") || !strings.Contains(body, "Alice@Example.com") {
			t.Errorf("bob with alice's certificate: %d %s", resp.StatusCode, oneLine(body))
		}
	})
}
