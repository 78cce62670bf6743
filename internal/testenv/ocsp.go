package testenv

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// OCSPResponder is a running `openssl ocsp` responder for one CA, signing
// with the CA's own key, on a free port. Its index.txt is written by the
// test: Good and Revoke add certificates, and take effect for the next
// question; a certificate it has not been told about is "unknown".
type OCSPResponder struct {
	Port  int
	ca    *testpki.CA
	dir   string
	mu    sync.Mutex
	lines map[string]string // serial -> index.txt line
	mtime time.Time         // of the last index.txt written
	out   *syncBuffer
}

// URL is the responder's address, for a certificate's AIA or
// ocsp_responder.
func (o *OCSPResponder) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/", o.Port) }

// Output returns what openssl has printed.
func (o *OCSPResponder) Output() string { return o.out.String() }

// OCSPPort is a free loopback port, to put in certificates before the
// responder is started on it.
func OCSPPort(t testing.TB) int { return FreePort(t) }

// StartOCSP runs `openssl ocsp -index index.txt -port P -rsigner ca -rkey
// key -CA ca` with answers valid for nextUpdateMinutes (0: no nextUpdate).
// openssl listens on every interface of port; tests talk to it on
// loopback.
func StartOCSP(t testing.TB, ca *testpki.CA, port, nextUpdateMinutes int) *OCSPResponder {
	t.Helper()
	Need(t, "openssl")
	o := &OCSPResponder{Port: port, ca: ca, dir: t.TempDir(), lines: map[string]string{}, out: new(syncBuffer)}
	caFile := ca.WriteCert(t, o.dir, "ca.pem")
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(o.dir, "ca-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	o.writeIndex(t)
	args := []string{"ocsp", "-index", filepath.Join(o.dir, "index.txt"), "-port", fmt.Sprint(port),
		"-rsigner", caFile, "-rkey", keyFile, "-CA", caFile}
	if nextUpdateMinutes > 0 {
		args = append(args, "-nmin", fmt.Sprint(nextUpdateMinutes))
	}
	cmd := exec.Command("openssl", args...)
	cmd.Stdout, cmd.Stderr = o.out, o.out
	exited := start(t, cmd, "openssl ocsp", o.out)
	// Not WaitListening: OpenSSL 3.0's responder, which serves one
	// connection at a time, hangs on a connection closed without a request.
	// It says when it listens.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(o.out.String(), "waiting for OCSP client connections") {
		select {
		case <-exited:
			t.Fatalf("openssl ocsp exited: %s", o.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl ocsp is not listening after 30s: %s", o.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return o
}

// Good records c as valid.
func (o *OCSPResponder) Good(t testing.TB, c *x509.Certificate) {
	o.set(t, c, "V", "")
}

// Revoke records c as revoked a minute ago.
func (o *OCSPResponder) Revoke(t testing.TB, c *x509.Certificate) {
	o.set(t, c, "R", opensslTime(time.Now().Add(-time.Minute)))
}

func (o *OCSPResponder) set(t testing.TB, c *x509.Certificate, status, revoked string) {
	t.Helper()
	serial := strings.ToUpper(c.SerialNumber.Text(16))
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines[serial] = strings.Join([]string{status, opensslTime(c.NotAfter), revoked, serial, "unknown", opensslDN(c)}, "\t")
	o.writeIndex(t)
	o.poke(t)
}

// poke asks the responder one question. openssl looks at index.txt
// before it waits for the next connection, so a change made while it
// waits is seen only after one more request: this one.
func (o *OCSPResponder) poke(t testing.TB) {
	t.Helper()
	req, err := ocsp.CreateRequest(o.ca.Cert, o.ca.Cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(o.URL(), "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatalf("asking openssl ocsp: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// writeIndex replaces index.txt (a new file renamed over the old, so
// openssl never reads half of it).
func (o *OCSPResponder) writeIndex(t testing.TB) {
	t.Helper()
	var b strings.Builder
	for _, l := range o.lines {
		b.WriteString(l + "\n")
	}
	path := filepath.Join(o.dir, "index.txt")
	if err := os.WriteFile(path+".new", []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// openssl rereads index.txt when its modification time, in whole
	// seconds, is later than when it read it: each write moves it at
	// least a second on.
	mtime := time.Now().Truncate(time.Second).Add(time.Second)
	if !mtime.After(o.mtime) {
		mtime = o.mtime.Add(time.Second)
	}
	o.mtime = mtime
	if err := os.Chtimes(path+".new", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func opensslTime(t time.Time) string { return t.UTC().Format("060102150405Z") }

// opensslDN is the subject in openssl's one-line form (/O=.../CN=...),
// which index.txt carries; the responder answers by serial only.
func opensslDN(c *x509.Certificate) string {
	var b strings.Builder
	for _, o := range c.Subject.Organization {
		b.WriteString("/O=" + o)
	}
	b.WriteString("/CN=" + c.Subject.CommonName)
	return b.String()
}
