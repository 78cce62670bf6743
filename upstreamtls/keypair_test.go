package upstreamtls_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

// A rotation as tools do it, one file after the other, sometimes in place:
// the KeyPair keeps presenting a working pair throughout, and the new one
// from the first connection after both files are in.
func TestKeyPairRereadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	first := ca.Issue(t, testpki.Client("first@localhost"))
	second := ca.Issue(t, testpki.Client("second@localhost"))
	third := ca.Issue(t, testpki.Client("third@localhost"))
	certFile, keyFile := first.Write(t, dir, "client")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	kp := upstreamtls.NewKeyPair(certFile, keyFile, &pair, zap.New(core))
	cri := &tls.CertificateRequestInfo{Version: tls.VersionTLS13, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256}}
	presented := func() string {
		t.Helper()
		c, err := kp.GetClientCertificate(cri)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Certificate) == 0 {
			return "(none)"
		}
		return c.Leaf.Subject.CommonName
	}
	// Modification times can be coarse; make each write visibly later.
	tick := time.Now()
	write := func(path string, b []byte) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		tick = tick.Add(time.Second)
		if err := os.Chtimes(path, tick, tick); err != nil {
			t.Fatal(err)
		}
	}
	messages := func() string {
		var out []string
		for _, e := range logs.TakeAll() {
			out = append(out, e.Message)
		}
		return strings.Join(out, "\n")
	}

	if got := presented(); got != "first@localhost" {
		t.Fatalf("presented %q before any change", got)
	}
	if m := messages(); m != "" {
		t.Errorf("unchanged files logged %q", m)
	}

	// The certificate first: it does not match the old key.
	write(certFile, second.CertPEM())
	if got := presented(); got != "first@localhost" {
		t.Errorf("half-rotated pair: presented %q, want the previous certificate", got)
	}
	if m := messages(); !strings.Contains(m, "do not load; keeping the previous certificate") {
		t.Errorf("half-rotated pair logged %q", m)
	}
	if got := presented(); got != "first@localhost" {
		t.Errorf("presented %q", got)
	}
	if m := messages(); m != "" {
		t.Errorf("the same half-rotated files were logged again: %q", m)
	}
	// Then the key.
	write(keyFile, second.KeyPEM())
	if got := presented(); got != "second@localhost" {
		t.Errorf("after the rotation: presented %q", got)
	}
	if m := messages(); !strings.Contains(m, "upstream client certificate reloaded") {
		t.Errorf("the rotation logged %q", m)
	}

	// A file removed, then both renamed into place, as with a symlink swap.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if got := presented(); got != "second@localhost" {
		t.Errorf("key file missing: presented %q", got)
	}
	if m := messages(); !strings.Contains(m, "unreadable") {
		t.Errorf("a missing key file logged %q", m)
	}
	newCert, newKey := third.Write(t, dir, "staged")
	for from, to := range map[string]string{newCert: certFile, newKey: keyFile} {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	if got := presented(); got != "third@localhost" {
		t.Errorf("after the renames: presented %q", got)
	}

	// A server that names other CAs gets no certificate, as crypto/tls does
	// with tls.Config.Certificates.
	cri.AcceptableCAs = [][]byte{[]byte("not the root")}
	if got := presented(); got != "(none)" {
		t.Errorf("a server asking for another CA got %q", got)
	}
}

// A Kubernetes secret volume updates by swapping the ..data symlink to a new
// directory; the files the route names are symlinks through it.
func TestKeyPairFollowsASecretVolumeSwap(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	version := func(name, cn string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		cert := ca.Issue(t, testpki.Client(cn))
		cert.Write(t, filepath.Join(dir, name), "tls")
	}
	swap := func(name string) {
		t.Helper()
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", "first@localhost")
	swap("..v1")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for link, target := range map[string]string{certFile: "..data/tls.pem", keyFile: "..data/tls-key.pem"} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	kp := upstreamtls.NewKeyPair(certFile, keyFile, &pair, zap.NewNop())
	cri := &tls.CertificateRequestInfo{Version: tls.VersionTLS13, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}}
	version("..v2", "second@localhost")
	swap("..v2")
	c, err := kp.GetClientCertificate(cri)
	if err != nil || c.Leaf == nil || c.Leaf.Subject.CommonName != "second@localhost" {
		t.Fatalf("after the swap: %v, %v", c.Leaf, err)
	}
}

// The transport module rereads the pair only when a client certificate comes
// from files; the JSON names the module accordingly.
func TestTransportJSONPicksTheRereadingTransport(t *testing.T) {
	f := newFiles(t)
	for _, c := range []struct {
		o    upstreamtls.Options
		want []string
	}{
		{upstreamtls.Options{TLSClientCertFile: f.cert, TLSClientKeyFile: f.key}, []string{`"protocol":"iap_http"`, `"client_certificate_file":"` + f.cert + `"`}},
		{upstreamtls.Options{TLSCustomCAFile: f.ca}, []string{`"protocol":"http"`, `"pem_files":["` + f.ca + `"]`}},
		{upstreamtls.Options{TLSClientCert: f.certB64, TLSClientKey: f.keyB64}, []string{`"protocol":"iap_http"`, `"tls_client_certificate":"` + f.certB64 + `"`}},
	} {
		tr := &upstreamtls.Transport{HTTPTransport: reverseproxy.HTTPTransport{TLS: new(reverseproxy.TLSConfig)}}
		if _, err := upstreamtls.Apply(c.o, upstreamtls.Env{Route: "r"}, tr); err != nil {
			t.Fatal(err)
		}
		got := string(upstreamtls.TransportJSON(tr))
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("transport %s lacks %s", got, w)
			}
		}
	}
}
