package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Issue 14 part 5: the 495 page tells the user what to do. It names the
// certificate that was presented (subject, issuer, validity, SHA-256) and
// why it was refused; API clients get the same fields in the JSON. Every
// field is the certificate's own text, so it is escaped: a subject holding
// markup stays text. Checked with a Go client, and in Chromium with the
// certificate in its NSS database (pk12util) and selected by the managed
// policy AutoSelectCertificateForUrls.
func TestCertificateRefusalPage(t *testing.T) {
	testenv.Need(t, "openssl")
	dir := t.TempDir()
	ca := testpki.NewCA(t, "Example & Co <Device> CA")
	caFile := ca.WriteCert(t, dir, "ca.pem")
	const markup = `<img src=x onerror="document.title='pwned'">`
	revoked := ca.Issue(t, testpki.Client("laptop "+markup))
	expired := ca.Issue(t, testpki.Client("old-laptop").Expired())
	stranger := testpki.NewCA(t, "Stranger CA").Issue(t, testpki.Client("eve"))
	crlFile := filepath.Join(dir, "crl.pem")
	if err := os.WriteFile(crlFile, ca.CurrentCRL(t, revoked.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	withCert := func(name string, c *testpki.Cert) func(*tls.Config) {
		certFile, keyFile := c.Write(t, dir, name)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return func(cfg *tls.Config) {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
	}

	caddy := testenv.StartCaddy(t, "", mtlsSite("certpage.test", "ca_file "+caFile+"\ncrl_file "+crlFile, echoUpstream(t)))
	caddy.WaitCertificates(t, "certpage.test")

	type fields struct {
		Subject     string   `json:"subject"`
		Issuer      string   `json:"issuer"`
		NotBefore   string   `json:"not_before"`
		NotAfter    string   `json:"not_after"`
		Fingerprint string   `json:"fingerprint"`
		SANEmail    []string `json:"san_email"`
	}
	want := func(c *testpki.Cert) fields {
		fp := sha256.Sum256(c.Cert.Raw)
		return fields{Subject: c.Cert.Subject.String(), Issuer: c.Cert.Issuer.String(),
			NotBefore: c.Cert.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.Cert.NotAfter.UTC().Format(time.RFC3339),
			Fingerprint: hex.EncodeToString(fp[:])}
	}
	for _, c := range []struct {
		name    string
		cert    *testpki.Cert
		detail  string
		message string // the error names the cause
	}{
		{"revoked", revoked, "revoked", "it has been revoked"},
		{"expired", expired, "expired", "it expired on " + expired.Cert.NotAfter.UTC().Format("2006-01-02 15:04")},
		{"from an untrusted CA", stranger, "unknown-authority", "issued by CN=Stranger CA"},
		{"none", nil, "", "sent none"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts []func(*tls.Config)
			if c.cert != nil {
				opts = append(opts, withCert(strings.ReplaceAll(c.name, " ", "-"), c.cert))
			}
			client := caddy.Client(t, opts...)

			// JSON, for API clients.
			r, err := caddy.Do(t, client, "certpage.test", "/", http.Header{"Accept": {"application/json"}})
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Error       string  `json:"error"`
				Reason      string  `json:"reason"`
				Detail      string  `json:"detail"`
				Certificate *fields `json:"certificate"`
			}
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil || r.Status != 495 {
				t.Fatalf("got %d %s, want 495 JSON (%v)", r.Status, r.Body, err)
			}
			if body.Detail != c.detail || !strings.Contains(body.Error, c.message) {
				t.Errorf("detail %q error %q, want %q and an error saying %q", body.Detail, body.Error, c.detail, c.message)
			}
			if c.cert == nil {
				if body.Certificate != nil || body.Reason != "client-certificate-required" {
					t.Errorf("without a certificate: %s", r.Body)
				}
				return
			}
			if body.Reason != "invalid-client-certificate" || body.Certificate == nil || !reflect.DeepEqual(*body.Certificate, want(c.cert)) {
				t.Errorf("got %s\nwant the certificate %+v", r.Body, want(c.cert))
			}

			// The page, for browsers, parsed as a browser parses it.
			r, err = caddy.Do(t, client, "certpage.test", "/", http.Header{"Accept": {browserAccept}})
			if err != nil {
				t.Fatal(err)
			}
			page := parsePage(t, r.Body)
			w := want(c.cert)
			for id, text := range map[string]string{"cert-subject": w.Subject, "cert-issuer": w.Issuer,
				"cert-not-after": w.NotAfter, "cert-not-before": w.NotBefore, "cert-fingerprint": w.Fingerprint,
				"reason": "invalid-client-certificate", "detail": c.detail} {
				if got := page.text(id); got != text {
					t.Errorf("#%s is %q, want %q", id, got, text)
				}
			}
			if !strings.Contains(page.text("message"), c.message) {
				t.Errorf("the message %q does not say %q", page.text("message"), c.message)
			}
			if page.has("img") || page.has("device") {
				t.Errorf("the certificate's text became markup:\n%s", r.Body)
			}
		})
	}

	t.Run("in Chromium, with the revoked certificate installed", func(t *testing.T) {
		certFile, keyFile := revoked.Write(t, dir, "chromium")
		p12 := filepath.Join(dir, "chromium.p12")
		if out, err := exec.Command("openssl", "pkcs12", "-export", "-in", certFile, "-inkey", keyFile,
			"-out", p12, "-passout", "pass:changeit", "-name", "laptop").CombinedOutput(); err != nil {
			t.Fatalf("openssl pkcs12: %v\n%s", err, out)
		}
		browser := testenv.StartChromium(t, testenv.ChromiumClientCertificate(t, p12, "changeit", "[*.]certpage.test"))
		browser.Navigate(fmt.Sprintf("https://certpage.test:%d/", caddy.HTTPSPort))
		browser.WaitFor(`document.getElementById("cert-subject")`)
		w := want(revoked)
		for id, text := range map[string]string{"cert-subject": w.Subject, "cert-issuer": w.Issuer,
			"cert-not-after": w.NotAfter, "cert-fingerprint": w.Fingerprint, "reason": "invalid-client-certificate", "detail": "revoked"} {
			if got := browser.Eval(`document.getElementById(` + jsString(id) + `).textContent`); got != text {
				t.Errorf("#%s is %q, want %q", id, got, text)
			}
		}
		if got := browser.Eval(`document.querySelectorAll("img").length + " " + document.title`); got != "0 495 SSL Certificate Error" {
			t.Errorf("the certificate's subject ran as markup: %q", got)
		}
		browser.Screenshot("cert-refused.png")
	})
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// page is an HTML document as a browser's parser builds it.
type page struct{ root *html.Node }

func parsePage(t *testing.T, body string) page {
	t.Helper()
	root, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return page{root}
}

// text is the text content of the element with this id.
func (p page) text(id string) string {
	var el *html.Node
	p.walk(func(n *html.Node) {
		for _, a := range n.Attr {
			if el == nil && n.Type == html.ElementNode && a.Key == "id" && a.Val == id {
				el = n
			}
		}
	})
	if el == nil {
		return ""
	}
	var b strings.Builder
	page{el}.walk(func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return b.String()
}

// has reports whether the document has an element of this tag name.
func (p page) has(tag string) bool {
	found := false
	p.walk(func(n *html.Node) { found = found || n.Type == html.ElementNode && n.Data == tag })
	return found
}

func (p page) walk(f func(*html.Node)) {
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		f(n)
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(p.root)
}
