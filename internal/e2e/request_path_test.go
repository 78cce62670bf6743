package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// The second security review's findings on the request path (issue 18):
// the iap_policy matcher before sign-in, the open endpoints under
// policy_with_default_deny, a deny rule on the certificate (Pomerium's
// TC-CC-13), and X-Forwarded-Host with preserve_host_header.
func TestRequestPathRoundTwo(t *testing.T) {
	rec := newRecorder(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice}})
	certDir := t.TempDir()
	ca := testpki.NewCA(t, "round two client root")
	caFile := ca.WriteCert(t, certDir, "ca.pem")

	sites := fmt.Sprintf(`matchorder.test {
	tls internal
	@alice iap_policy {
		allow {
			or {
				email is %s
			}
		}
	}
	respond @alice "blocked by the matcher" 403
	iap_route {
		to %s
		allow_any_authenticated_user
	}
}
strict.test {
	tls internal
	iap_mtls {
		ca_file %s
		enforcement policy_with_default_deny
	}
	iap_route {
		to %s
		allow_public_unauthenticated_access
	}
}
tccc13.test {
	tls internal
	iap_mtls {
		ca_file %s
		enforcement policy
	}
	iap_route {
		to %s
		policy {
			allow {
				or {
					authenticated_user
				}
			}
			deny {
				or {
					invalid_client_certificate
				}
			}
		}
	}
}
preserve.test {
	tls internal
	iap_route {
		to %s
		allow_public_unauthenticated_access
		preserve_host_header
	}
}
`, alice.Email, rec.URL, caFile, rec.URL, caFile, rec.URL, rec.URL)
	caddy := testenv.StartCaddy(t, iapGlobals(dex, randomSecret(t), ""), sites)
	caddy.WaitCertificates(t, "matchorder.test", "strict.test", "tccc13.test", "preserve.test")
	rc := newRawClient(t, caddy)
	idToken, _ := dexTokens(t, dex, alice)
	asAlice := http.Header{"Authorization": {"Bearer " + idToken}, "Accept": {"application/json"}}

	t.Run("an iap_policy matcher ordered before sign-in looks the user up itself", func(t *testing.T) {
		r := rc.do(t, 1, "GET", "matchorder.test", "/", asAlice, "")
		if r.Status != 403 || r.Body != "blocked by the matcher" {
			t.Errorf("alice, whom the matcher names: %d %s", r.Status, oneLine(r.Body))
		}
		r = rc.do(t, 1, "GET", "matchorder.test", "/", http.Header{"Accept": {"application/json"}}, "")
		wantRefusal(t, "anonymous, past the matcher to the route", r, 401, "user-unauthenticated")
	})

	t.Run("under policy_with_default_deny the health check and the JWKS need no certificate", func(t *testing.T) {
		id := testID()
		r := rc.do(t, 1, "GET", "strict.test", "/.iap/healthz", http.Header{"X-Test-Id": {id}}, "")
		if r.Status != 200 || !strings.Contains(r.Body, `"ok"`) {
			t.Errorf("/.iap/healthz without a certificate: %d %s", r.Status, oneLine(r.Body))
		}
		r = rc.do(t, 1, "GET", "strict.test", "/.well-known/iap/jwks.json", http.Header{"X-Test-Id": {id}}, "")
		var jwks struct {
			Keys []map[string]any `json:"keys"`
		}
		if r.Status != 200 || json.Unmarshal([]byte(r.Body), &jwks) != nil || len(jwks.Keys) == 0 {
			t.Errorf("the JWKS without a certificate: %d %s", r.Status, oneLine(r.Body))
		}
		if _, reached := rec.got(id); reached {
			t.Errorf("an open endpoint was passed to the upstream")
		}
		r = rc.do(t, 1, "GET", "strict.test", "/", http.Header{"Accept": {"application/json"}}, "")
		wantRefusal(t, "any other path without a certificate", r, 495, "client-certificate-required")
	})

	t.Run("TC-CC-13: a deny rule on an invalid certificate answers 495 before any sign-in", func(t *testing.T) {
		r := rc.do(t, 1, "GET", "tccc13.test", "/", http.Header{"Accept": {"application/json"}}, "")
		wantRefusal(t, "anonymous, no certificate", r, 495, "client-certificate-required")
		r = rc.do(t, 1, "GET", "tccc13.test", "/", asAlice, "")
		wantRefusal(t, "signed in, no certificate", r, 495, "client-certificate-required")
	})

	t.Run("preserve_host_header sends no X-Forwarded-Host", func(t *testing.T) {
		id := testID()
		r := rc.do(t, 1, "GET", "preserve.test", "/", http.Header{"X-Test-Id": {id}, "X-Forwarded-Host": {"evil.example"}}, "")
		got, ok := rec.got(id)
		if r.Status != 200 || !ok {
			t.Fatalf("%d %s", r.Status, oneLine(r.Body))
		}
		if h := got.Header.Values("X-Forwarded-Host"); len(h) > 0 || !strings.HasPrefix(got.Host, "preserve.test") {
			t.Errorf("X-Forwarded-Host %q, Host %q", h, got.Host)
		}
	})
}
