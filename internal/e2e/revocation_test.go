package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Issue 14 part 3: revocation that stays fresh without a reload. A CRL
// published on disk and an OCSP responder's answers reach the next request
// or handshake of a running Caddy.
func TestRevocationWithoutReload(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewCA(t, "revocation root")
	caFile := root.WriteCert(t, dir, "ca.pem")
	crlFile := filepath.Join(dir, "crl.pem")
	publish := func(revoked ...*testpki.Cert) {
		t.Helper()
		var certs []*x509.Certificate
		for _, c := range revoked {
			certs = append(certs, c.Cert)
		}
		list := root.CurrentCRL(t, certs...)
		if err := os.WriteFile(crlFile+".new", list, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(crlFile+".new", crlFile); err != nil {
			t.Fatal(err)
		}
	}
	publish()

	responder := testenv.StartOCSP(t, root, testenv.OCSPPort(t), 0)
	issue := func(cn, ocspURL string) *testpki.Cert {
		o := testpki.Client(cn)
		if ocspURL != "" {
			o.OCSPServer = []string{ocspURL}
		}
		return root.Issue(t, o)
	}
	deadURL := fmt.Sprintf("http://127.0.0.1:%d/", testenv.FreePort(t))
	alice := issue("alice", "")
	good, revoked, unknown, down := issue("good", responder.URL()), issue("revoked", responder.URL()), issue("unknown", responder.URL()), issue("down", deadURL)
	responder.Good(t, good.Cert)
	responder.Revoke(t, revoked.Cert)

	up := echoUpstream(t)
	files := "ca_file " + caFile + "\ncrl_file " + crlFile
	caddy := testenv.StartCaddy(t, "",
		mtlsSite("deny.test", files, up)+
			mtlsSite("reject.test", files+"\nenforcement reject_connection", up)+
			mtlsSite("soft.test", files+"\nocsp soft", up)+
			mtlsSite("off.test", files+"\nocsp off", up))

	clientFor := func(c *testpki.Cert) *http.Client {
		pair := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
		return caddy.Client(t, func(cfg *tls.Config) {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		})
	}
	type refusal struct{ Error, Reason, Detail string }
	get := func(client *http.Client, host string) (int, refusal, error) {
		t.Helper()
		r, err := caddy.Do(t, client, host, "/", http.Header{"Accept": {"application/json"}})
		if err != nil {
			return 0, refusal{}, err
		}
		var body refusal
		if r.Status != 200 {
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
				t.Fatalf("%d: %v: %s", r.Status, err, r.Body)
			}
		}
		return r.Status, body, nil
	}

	t.Run("a CRL published on disk refuses the next request on the same connection", func(t *testing.T) {
		client := clientFor(alice)
		if code, body, err := get(client, "deny.test"); err != nil || code != 200 {
			t.Fatalf("before: %d %+v %v", code, body, err)
		}
		if code, _, err := get(clientFor(alice), "reject.test"); err != nil || code != 200 {
			t.Fatalf("before, reject_connection: %d %v", code, err)
		}
		publish(alice)
		t.Cleanup(func() { publish() })
		if code, body, err := get(client, "deny.test"); err != nil || code != 495 || body.Detail != "revoked" {
			t.Fatalf("after: %d %+v %v, want 495 revoked", code, body, err)
		}
		if _, _, err := get(clientFor(alice), "reject.test"); err == nil || !strings.Contains(err.Error(), "tls:") {
			t.Fatalf("after, reject_connection: the handshake did not fail: %v", err)
		}
		if !caddy.WaitLog("client certificate CAs and CRLs reloaded") {
			t.Error("the reload is not logged")
		}
	})

	t.Run("a half-written CRL keeps the previous one", func(t *testing.T) {
		publish(alice)
		whole, err := os.ReadFile(crlFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crlFile, whole[:len(whole)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		if code, body, err := get(clientFor(alice), "deny.test"); err != nil || code != 495 || body.Detail != "revoked" {
			t.Fatalf("alice under the previous CRL: %d %+v %v", code, body, err)
		}
		if !caddy.WaitLog("crl_file changed but does not load") {
			t.Error("the failed load is not logged")
		}
		publish()
		if code, body, err := get(clientFor(alice), "deny.test"); err != nil || code != 200 {
			t.Fatalf("alice once a whole CRL without her is published: %d %+v %v", code, body, err)
		}
	})

	// Each OCSP case against the real openssl ocsp responder, per site:
	// the detail of the refusal, "" for 200, "handshake" for a failed one.
	for _, tc := range []struct {
		name              string
		cert              *testpki.Cert
		deny, soft, off   string
		reject, responder string
	}{
		{"good", good, "", "", "", "", ""},
		{"revoked", revoked, "revoked", "revoked", "", "handshake", responder.URL()},
		{"unknown", unknown, "ocsp-unknown", "", "", "handshake", responder.URL()},
		{"responder down", down, "ocsp-unavailable", "", "", "handshake", deadURL},
	} {
		t.Run("ocsp "+tc.name, func(t *testing.T) {
			for _, site := range []struct{ host, want string }{
				{"deny.test", tc.deny}, {"soft.test", tc.soft}, {"off.test", tc.off}, {"reject.test", tc.reject},
			} {
				code, body, err := get(clientFor(tc.cert), site.host)
				switch {
				case site.want == "handshake":
					if err == nil || !strings.Contains(err.Error(), "tls:") {
						t.Errorf("%s: %d %v, want the handshake to fail", site.host, code, err)
					}
				case err != nil:
					t.Errorf("%s: %v", site.host, err)
				case site.want == "" && code != 200:
					t.Errorf("%s: %d %+v, want 200", site.host, code, body)
				case site.want != "" && (code != 495 || body.Detail != site.want):
					t.Errorf("%s: %d %+v, want 495 %s", site.host, code, body, site.want)
				case site.want != "" && !strings.Contains(body.Error, tc.responder):
					t.Errorf("%s: the message does not name the responder %s: %q", site.host, tc.responder, body.Error)
				case site.want == "ocsp-unknown" || site.want == "ocsp-unavailable":
					if body.Reason != "client-certificate-status-unavailable" {
						t.Errorf("%s: reason %q", site.host, body.Reason)
					}
				}
			}
		})
	}
}
