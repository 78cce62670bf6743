package downstreamtls_test

import (
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

type world struct {
	root, inter, inter2, other *testpki.CA
	rootPEM, interPEM          string // base64 PEM, the form of `ca`
}

func newWorld(t *testing.T) world {
	t.Helper()
	w := world{root: testpki.NewCA(t, "root"), other: testpki.NewCA(t, "other")}
	w.inter = w.root.IssueCA(t, "intermediate")
	w.inter2 = w.inter.IssueCA(t, "intermediate 2")
	w.rootPEM = base64.StdEncoding.EncodeToString(w.root.CertPEM())
	w.interPEM = base64.StdEncoding.EncodeToString(w.inter.CertPEM())
	return w
}

func presented(c *testpki.Cert) []*x509.Certificate {
	return append([]*x509.Certificate{c.Cert}, c.Chain...)
}

func depth(n uint32) *uint32 { return &n }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestVerify(t *testing.T) {
	w := newWorld(t)
	leaf := w.root.Issue(t, testpki.Client("alice"))
	viaInter := w.inter.Issue(t, testpki.Client("bob"))
	viaTwo := w.inter2.Issue(t, testpki.Client("carol"))
	revokedLeaf := w.root.Issue(t, testpki.Client("mallory"))
	revokedInter := w.root.IssueCA(t, "revoked intermediate")
	viaRevokedInter := revokedInter.Issue(t, testpki.Client("dave"))
	sans := testpki.Client("sans")
	sans.Emails = []string{"alice@example.com"}
	sans.DNSNames = []string{"laptop.corp.example"}
	sans.IPs = []net.IP{net.ParseIP("10.1.2.3")}
	sans.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/alice"}}
	sans.UPN = "alice@corp.example"
	withSANs := w.root.Issue(t, sans)
	serverOnly := w.root.Issue(t, testpki.Server("server.example"))
	expired := w.root.Issue(t, testpki.Client("old").Expired())
	future := testpki.Client("future")
	future.NotBefore, future.NotAfter = time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)
	notYet := w.root.Issue(t, future)
	stranger := w.other.Issue(t, testpki.Client("stranger"))

	rootCRL := b64(w.root.CurrentCRL(t, revokedLeaf.Cert, revokedInter.Cert))
	bothCRLs := b64(append(w.root.CurrentCRL(t, revokedInter.Cert), revokedInter.CurrentCRL(t)...))
	rootAndInterCRLs := b64(append(w.root.CurrentCRL(t), w.inter.CurrentCRL(t)...))

	for _, c := range []struct {
		name       string
		opts       downstreamtls.Options
		cert       []*x509.Certificate
		wantValid  bool
		wantReason string
		wantDetail string
	}{
		{"a certificate issued by the CA is valid", downstreamtls.Options{CA: w.rootPEM}, presented(leaf), true, "", ""},
		{"no certificate is required", downstreamtls.Options{CA: w.rootPEM}, nil, false, downstreamtls.ReasonRequired, ""},
		{"a certificate from another CA is unknown", downstreamtls.Options{CA: w.rootPEM}, presented(stranger), false, downstreamtls.ReasonInvalid, downstreamtls.DetailUnknownAuthority},
		{"an expired certificate", downstreamtls.Options{CA: w.rootPEM}, presented(expired), false, downstreamtls.ReasonInvalid, downstreamtls.DetailExpired},
		{"a certificate not valid yet", downstreamtls.Options{CA: w.rootPEM}, presented(notYet), false, downstreamtls.ReasonInvalid, downstreamtls.DetailNotYetValid},
		{"a server-only certificate", downstreamtls.Options{CA: w.rootPEM}, presented(serverOnly), false, downstreamtls.ReasonInvalid, downstreamtls.DetailNotForClientAuth},

		{"depth 1 refuses a leaf under an intermediate", downstreamtls.Options{CA: w.rootPEM}, presented(viaInter), false, downstreamtls.ReasonInvalid, downstreamtls.DetailTooDeep},
		{"depth 2 takes a leaf under an intermediate", downstreamtls.Options{CA: w.rootPEM, MaxVerifyDepth: depth(2)}, presented(viaInter), true, "", ""},
		{"depth 2 refuses a leaf under two intermediates", downstreamtls.Options{CA: w.rootPEM, MaxVerifyDepth: depth(2)}, presented(viaTwo), false, downstreamtls.ReasonInvalid, downstreamtls.DetailTooDeep},
		{"depth 3 takes a leaf under two intermediates", downstreamtls.Options{CA: w.rootPEM, MaxVerifyDepth: depth(3)}, presented(viaTwo), true, "", ""},
		{"depth 0 has no limit", downstreamtls.Options{CA: w.rootPEM, MaxVerifyDepth: depth(0)}, presented(viaTwo), true, "", ""},
		{"an intermediate in ca is a trust anchor", downstreamtls.Options{CA: w.interPEM}, []*x509.Certificate{viaInter.Cert}, true, "", ""},
		{"the intermediate must be sent or configured", downstreamtls.Options{CA: w.rootPEM, MaxVerifyDepth: depth(2)}, []*x509.Certificate{viaInter.Cert}, false, downstreamtls.ReasonInvalid, downstreamtls.DetailUnknownAuthority},

		{"a revoked leaf", downstreamtls.Options{CA: w.rootPEM, CRL: rootCRL}, presented(revokedLeaf), false, downstreamtls.ReasonInvalid, downstreamtls.DetailRevoked},
		{"a leaf the CRL does not list", downstreamtls.Options{CA: w.rootPEM, CRL: rootCRL}, presented(leaf), true, "", ""},
		{"a revoked intermediate", downstreamtls.Options{CA: w.rootPEM, CRL: bothCRLs, MaxVerifyDepth: depth(2)}, presented(viaRevokedInter), false, downstreamtls.ReasonInvalid, downstreamtls.DetailRevoked},
		{"an issuer without a CRL is not checked", downstreamtls.Options{CA: w.rootPEM, CRL: rootCRL, MaxVerifyDepth: depth(2)}, presented(viaInter), true, "", ""},
		{"the root's CRL still revokes an intermediate whose own CRL is absent", downstreamtls.Options{CA: w.rootPEM, CRL: rootCRL, MaxVerifyDepth: depth(2)}, presented(viaRevokedInter), false, downstreamtls.ReasonInvalid, downstreamtls.DetailRevoked},
		{"a chain with a CRL for each issuer", downstreamtls.Options{CA: w.rootPEM, CRL: rootAndInterCRLs, MaxVerifyDepth: depth(2)}, presented(viaInter), true, "", ""},

		{"an email SAN that matches", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "email", Pattern: `.*@example\.com`}}}, presented(withSANs), true, "", ""},
		{"an email pattern matches the whole name", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "email", Pattern: `alice`}}}, presented(withSANs), false, downstreamtls.ReasonInvalid, downstreamtls.DetailSANMismatch},
		{"a DNS SAN", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "dns", Pattern: `.*\.corp\.example`}}}, presented(withSANs), true, "", ""},
		{"an IP SAN", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "ip_address", Pattern: `10\.1\..*`}}}, presented(withSANs), true, "", ""},
		{"a URI SAN", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "uri", Pattern: `spiffe://example\.com/.*`}}}, presented(withSANs), true, "", ""},
		{"a user principal name SAN", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "user_principal_name", Pattern: `.*@corp\.example`}}}, presented(withSANs), true, "", ""},
		{"any one pattern is enough", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "dns", Pattern: `nope`}, {Type: "email", Pattern: `alice@example\.com`}}}, presented(withSANs), true, "", ""},
		{"a certificate without the SAN type", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "email", Pattern: `.*`}}}, presented(leaf), false, downstreamtls.ReasonInvalid, downstreamtls.DetailSANMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, _, err := downstreamtls.New(c.opts, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			r := v.Verify(c.cert, time.Now())
			if r.Valid != c.wantValid || r.Reason != c.wantReason || r.Detail != c.wantDetail {
				t.Errorf("got valid=%v reason=%q detail=%q (%v), want valid=%v reason=%q detail=%q",
					r.Valid, r.Reason, r.Detail, r.Err, c.wantValid, c.wantReason, c.wantDetail)
			}
			if r.Valid && (len(r.Chain) < 2 || r.NotAfter.IsZero()) {
				t.Errorf("a valid result needs its chain and expiry: %+v", r)
			}
		})
	}
}

func TestACRLThatRunsOutRefusesAtRunTime(t *testing.T) {
	w := newWorld(t)
	leaf := w.root.Issue(t, testpki.Client("alice"))
	crl := b64(w.root.CRL(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
	v, _, err := downstreamtls.New(downstreamtls.Options{CA: w.rootPEM, CRL: crl}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := v.Verify(presented(leaf), time.Now().Add(2*time.Hour))
	if r.Valid || r.Detail != downstreamtls.DetailCRLOutOfDate {
		t.Fatalf("got %+v, want crl-out-of-date", r)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	caFile := w.root.WriteCert(t, dir, "ca.pem")
	textFile := filepath.Join(dir, "text.pem")
	if err := os.WriteFile(textFile, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	expiredCRL := b64(w.root.CRL(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)))
	futureCRL := b64(w.root.CRL(t, time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)))

	for _, c := range []struct {
		name string
		opts downstreamtls.Options
		want string
	}{
		{"no CA", downstreamtls.Options{}, "ca or ca_file is required"},
		{"both ca and ca_file", downstreamtls.Options{CA: w.rootPEM, CAFile: caFile}, "ca and ca_file are both set"},
		{"both crl and crl_file", downstreamtls.Options{CA: w.rootPEM, CRL: "x", CRLFile: "y"}, "crl and crl_file are both set"},
		{"a missing CA file", downstreamtls.Options{CAFile: "/nope/ca.pem"}, "ca_file: reading /nope/ca.pem: no such file or directory"},
		{"a CA file without a certificate", downstreamtls.Options{CAFile: textFile}, `ca_file ` + textFile + `: no PEM "CERTIFICATE" block found`},
		{"a CRL file without a CRL", downstreamtls.Options{CAFile: caFile, CRLFile: caFile}, `crl_file ` + caFile + `: no PEM "X509 CRL" block found`},
		{"a missing CRL file", downstreamtls.Options{CAFile: caFile, CRLFile: "/nope/crl.pem"}, "crl_file: reading /nope/crl.pem: no such file or directory"},
		{"an expired CRL", downstreamtls.Options{CA: w.rootPEM, CRL: expiredCRL}, "expired at"},
		{"a CRL not valid yet", downstreamtls.Options{CA: w.rootPEM, CRL: futureCRL}, "is not valid before"},
		{"a bad pattern", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "email", Pattern: "(unclosed"}}}, `email pattern "(unclosed"`},
		{"an unknown SAN type", downstreamtls.Options{CA: w.rootPEM, MatchSubjectAltNames: downstreamtls.SANMatchers{{Type: "phone", Pattern: ".*"}}}, `unknown type "phone"`},
		{"an unknown enforcement", downstreamtls.Options{CA: w.rootPEM, Enforcement: "strict"}, `enforcement: unknown mode "strict"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := downstreamtls.New(c.opts, time.Now())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
		})
	}

	t.Run("a CRL no configured CA signed is a warning", func(t *testing.T) {
		crl := b64(w.other.CurrentCRL(t))
		_, warnings, err := downstreamtls.New(downstreamtls.Options{CA: w.rootPEM, CRL: crl}, time.Now())
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "not signed by any CA") {
			t.Fatalf("warnings = %q, err = %v", warnings, err)
		}
	})
}

func TestSANMatchersJSONIsPomeriumsForm(t *testing.T) {
	var s downstreamtls.SANMatchers
	if err := s.UnmarshalJSON([]byte(`[{"email": ".*@example\\.com"}, {"dns": "a"}]`)); err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0] != (downstreamtls.SANMatcher{Type: "email", Pattern: `.*@example\.com`}) || s[1].Type != "dns" {
		t.Fatalf("got %+v", s)
	}
	b, _ := s.MarshalJSON()
	if string(b) != `[{"email":".*@example\\.com"},{"dns":"a"}]` {
		t.Fatalf("marshal = %s", b)
	}
}

func TestCacheReusesAResultUntilTheChainExpires(t *testing.T) {
	w := newWorld(t)
	v, _, err := downstreamtls.New(downstreamtls.Options{CA: w.rootPEM}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := downstreamtls.NewCache(v)
	leaf := w.root.Issue(t, testpki.Client("alice"))
	now := time.Now()
	if r1, r2 := c.Verify(presented(leaf), now), c.Verify(presented(leaf), now); r1 != r2 || !r1.Valid {
		t.Fatalf("second lookup should reuse the first valid result")
	}
	if r := c.Verify(presented(leaf), leaf.Cert.NotAfter.Add(time.Second)); r.Valid {
		t.Fatalf("a cached result outlived the certificate")
	}
}

func TestCacheVerifyDERSharesVerifysResults(t *testing.T) {
	w := newWorld(t)
	v, _, err := downstreamtls.New(downstreamtls.Options{CA: w.rootPEM, MaxVerifyDepth: depth(2)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := downstreamtls.NewCache(v)
	leaf := w.inter.Issue(t, testpki.Client("alice"))
	now := time.Now()
	r1 := c.Verify(presented(leaf), now)
	if !r1.Valid {
		t.Fatalf("got %+v", r1)
	}
	raw := [][]byte{leaf.Cert.Raw, w.inter.Cert.Raw}
	if r2, err := c.VerifyDER(raw, now); err != nil || r2 != r1 {
		t.Fatalf("VerifyDER should reuse Verify's result: %v", err)
	}
	// The same bytes as one "certificate" are another key, and do not parse.
	if r, err := c.VerifyDER([][]byte{append(append([]byte{}, raw[0]...), raw[1]...)}, now); err == nil {
		t.Fatalf("two certificates run together verified: %+v", r)
	}
	if _, err := c.VerifyDER([][]byte{[]byte("junk")}, now); err == nil {
		t.Fatal("junk parsed")
	}
	if r, err := c.VerifyDER(nil, now); err != nil || r.Valid || r.Reason != downstreamtls.ReasonRequired {
		t.Fatalf("no certificate: %+v, %v", r, err)
	}
	other := w.other.Issue(t, testpki.Client("mallory"))
	if r, err := c.VerifyDER([][]byte{other.Cert.Raw}, now); err != nil || r.Valid || r.Detail != downstreamtls.DetailUnknownAuthority {
		t.Fatalf("a certificate of another CA: %+v, %v", r, err)
	}
}

// Verifying a client chain (leaf, intermediate) against a root and CRLs.
func BenchmarkVerify(b *testing.B) {
	root := testpki.NewCA(b, "root")
	inter := root.IssueCA(b, "intermediate")
	leaf := inter.Issue(b, testpki.Client("alice"))
	crls := b64(append(root.CurrentCRL(b), inter.CurrentCRL(b)...))
	v, _, err := downstreamtls.New(downstreamtls.Options{CA: b64(root.CertPEM()), CRL: crls, MaxVerifyDepth: depth(2)}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	certs := presented(leaf)
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if r := v.Verify(certs, time.Now()); !r.Valid {
				b.Fatal(r.Err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := downstreamtls.NewCache(v)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if r := c.Verify(certs, time.Now()); !r.Valid {
				b.Fatal(r.Err)
			}
		}
	})
	// What a TLS handshake's verifier does for a known client.
	b.Run("cached DER", func(b *testing.B) {
		c := downstreamtls.NewCache(v)
		raw := make([][]byte, len(certs))
		for i, cert := range certs {
			raw[i] = cert.Raw
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if r, err := c.VerifyDER(raw, time.Now()); err != nil || !r.Valid {
				b.Fatal(err)
			}
		}
	})
}
