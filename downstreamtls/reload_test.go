package downstreamtls_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// writeFile replaces path the way a publisher does: a new file renamed over
// the old one.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The attack: a client whose certificate is revoked in a newly published
// CRL keeps getting in, because the CRL was read once at provision and the
// cache holds its valid result for minutes.
func TestARevocationPublishedInTheCRLFileTakesEffectOnTheNextCheck(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	caFile := w.root.WriteCert(t, dir, "ca.pem")
	crlFile := filepath.Join(dir, "crl.pem")
	writeFile(t, crlFile, w.root.CurrentCRL(t))
	v, _, err := downstreamtls.New(downstreamtls.Options{CAFile: caFile, CRLFile: crlFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := downstreamtls.NewCache(v)
	alice := w.root.Issue(t, testpki.Client("alice"))
	if r := c.Verify(presented(alice), time.Now()); !r.Valid {
		t.Fatalf("before revocation: %+v", r)
	}
	writeFile(t, crlFile, w.root.CurrentCRL(t, alice.Cert))
	if r := c.Verify(presented(alice), time.Now()); r.Valid || r.Detail != downstreamtls.DetailRevoked {
		t.Fatalf("after the CRL revoking alice was published: valid=%v detail=%q, want revoked", r.Valid, r.Detail)
	}
	raw := [][]byte{alice.Cert.Raw}
	if r, err := c.VerifyDER(raw, time.Now()); err != nil || r.Valid {
		t.Fatalf("the handshake path still lets alice in: %+v %v", r, err)
	}
}

// A CA file that gains a new CA is trusted on the next check; one that drops
// a CA stops trusting it.
func TestTheCAFileIsRereadWhenItChanges(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, w.root.CertPEM())
	v, _, err := downstreamtls.New(downstreamtls.Options{CAFile: caFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := downstreamtls.NewCache(v)
	alice := w.root.Issue(t, testpki.Client("alice"))
	mallory := w.other.Issue(t, testpki.Client("bob"))
	if r := c.Verify(presented(mallory), time.Now()); r.Valid {
		t.Fatal("a certificate of another CA is valid")
	}
	writeFile(t, caFile, w.other.CertPEM())
	if r := c.Verify(presented(mallory), time.Now()); !r.Valid {
		t.Fatalf("the new CA is not trusted: %+v", r)
	}
	if r := c.Verify(presented(alice), time.Now()); r.Valid {
		t.Fatal("the CA taken out of the file is still trusted")
	}
}

// A half-written file does not load: the previous contents stay in use, and
// a later good write is taken.
func TestAFileThatDoesNotLoadKeepsThePreviousContents(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	caFile := w.root.WriteCert(t, dir, "ca.pem")
	crlFile := filepath.Join(dir, "crl.pem")
	alice := w.root.Issue(t, testpki.Client("alice"))
	bob := w.root.Issue(t, testpki.Client("bob"))
	writeFile(t, crlFile, w.root.CurrentCRL(t, bob.Cert))
	v, _, err := downstreamtls.New(downstreamtls.Options{CAFile: caFile, CRLFile: crlFile}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := downstreamtls.NewCache(v)
	good := w.root.CurrentCRL(t, bob.Cert, alice.Cert)
	writeFile(t, crlFile, good[:len(good)/2])
	writeFile(t, caFile, w.root.CertPEM()[:100])
	if r := c.Verify(presented(alice), time.Now()); !r.Valid {
		t.Fatalf("alice, not revoked by the CRL in use: %+v", r)
	}
	if r := c.Verify(presented(bob), time.Now()); r.Valid || r.Detail != downstreamtls.DetailRevoked {
		t.Fatalf("bob, revoked by the CRL in use: %+v", r)
	}
	writeFile(t, crlFile, good)
	if r := c.Verify(presented(alice), time.Now()); r.Valid || r.Detail != downstreamtls.DetailRevoked {
		t.Fatalf("alice after the whole CRL arrived: %+v", r)
	}
}

// crl_expired warn keeps using a CRL past its nextUpdate, still refusing
// what it revokes; refuse (the default) refuses every certificate it covers.
func TestCRLExpiredWarnKeepsUsingTheCRL(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.root.Issue(t, testpki.Client("alice")), w.root.Issue(t, testpki.Client("bob"))
	crl := b64(w.root.CRL(t, time.Now().Add(-2*time.Hour), time.Now().Add(time.Hour), bob.Cert))
	later := time.Now().Add(2 * time.Hour)
	refuse, _, err := downstreamtls.New(downstreamtls.Options{CA: w.rootPEM, CRL: crl}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := refuse.Verify(presented(alice), later); r.Valid || r.Detail != downstreamtls.DetailCRLOutOfDate {
		t.Fatalf("refuse: %+v", r)
	}
	warn, _, err := downstreamtls.New(downstreamtls.Options{CA: w.rootPEM, CRL: crl, CRLExpired: "warn"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := warn.Verify(presented(alice), later); !r.Valid {
		t.Fatalf("warn, alice: %+v", r)
	}
	if r := warn.Verify(presented(bob), later); r.Valid || r.Detail != downstreamtls.DetailRevoked {
		t.Fatalf("warn, bob: %+v", r)
	}
	expired := b64(w.root.CRL(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)))
	if _, warnings, err := downstreamtls.New(downstreamtls.Options{CA: w.rootPEM, CRL: expired, CRLExpired: "warn"}, time.Now()); err != nil || len(warnings) != 1 {
		t.Fatalf("an expired CRL at load under warn: %q %v", warnings, err)
	}
}
