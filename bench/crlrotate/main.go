// Command crlrotate is the crl-rotate drill (bench/run.sh crl-rotate): a
// Caddy with iap_mtls (ca_file, crl_file; policy_with_default_deny) under
// load from clients with certificates, while the CRL file is republished
// every second and the CA file rewritten every three seconds (another CA
// added, then taken out again), each as a new file renamed over the old.
// Halfway, the CRL that is published revokes one of the two client
// certificates. No reload is done.
//
//	go run ./bench/crlrotate -caddy ./caddy -duration 30s -clients 16
//
// It counts, per certificate, requests answered 200 and others, and for the
// revoked one how many requests sent after the revoking CRL was in place
// still got in (want 0) and how many in flight at that moment did. It exits
// 1 when a request of the certificate that stays valid fails, or when the
// revoked one got in after the revocation.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey() crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	return k
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		log.Fatal(err)
	}
	return n
}

func newCA(name string) *ca {
	key := newKey()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key}
}

func (c *ca) client(cn string) tls.Certificate {
	key := newKey()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		log.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func (c *ca) crl(revoked ...*x509.Certificate) []byte {
	tmpl := &x509.RevocationList{Number: serial(), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	for _, r := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: r.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, c.cert, c.key)
	if err != nil {
		log.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func certPEM(cs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// publish replaces path as a publisher does: a new file renamed over it.
func publish(path string, b []byte) {
	if err := os.WriteFile(path+".new", b, 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		log.Fatal(err)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type tally struct {
	ok, refused, failed atomic.Int64
	// For the revoked certificate: 200s of requests sent after the
	// revoking CRL was in place, and of requests in flight then.
	inAfter, inFlight atomic.Int64
}

func main() {
	caddyBin := flag.String("caddy", "./caddy", "Caddy built with caddy-iap")
	duration := flag.Duration("duration", 30*time.Second, "how long the load runs")
	clients := flag.Int("clients", 16, "concurrent clients, half with each certificate")
	flag.Parse()

	dir, err := os.MkdirTemp("", "caddy-iap-crl-rotate.")
	if err != nil {
		log.Fatal(err)
	}
	var cmd *exec.Cmd
	cleanup := func() {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		os.RemoveAll(dir)
	}
	defer cleanup()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cleanup()
		os.Exit(130)
	}()
	fail := func(format string, args ...any) {
		fmt.Printf("FAIL: "+format+"\n", args...)
		cleanup()
		os.Exit(1)
	}

	root, next := newCA("drill root"), newCA("drill next root")
	alice, bob := root.client("alice"), root.client("bob")
	caFile, crlFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "crl.pem")
	publish(caFile, certPEM(root.cert))
	publish(crlFile, root.crl())

	port := freePort()
	caddyfile := fmt.Sprintf(`{
	admin off
	skip_install_trust
	local_certs
	http_port %d
	https_port %d
}
drill.localhost {
	tls internal
	iap_mtls {
		ca_file %s
		crl_file %s
	}
	respond "ok"
}
`, freePort(), port, caFile, crlFile)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(caddyfile), 0o600); err != nil {
		log.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		log.Fatal(err)
	}
	cmd = exec.Command(*caddyBin, "run", "--adapter", "caddyfile", "--config", filepath.Join(dir, "Caddyfile"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 300 {
			fail("Caddy does not listen on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	newClient := func(pair tls.Certificate) *http.Client {
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: "drill.localhost", InsecureSkipVerify: true, //nolint:gosec // Caddy's local CA; what is measured is the client certificate
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 1,
		}
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	url := fmt.Sprintf("https://drill.localhost:%d/", port)
	// Warm up: both get in before anything changes. Caddy's local CA
	// issues the site's certificate shortly after it starts listening.
	for _, pair := range []tls.Certificate{alice, bob} {
		for i := 0; ; i++ {
			resp, err := newClient(pair).Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if i == 300 {
				fail("before the drill, %s: %v %v", pair.Leaf.Subject.CommonName, err, resp)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	var revokedAt atomic.Int64 // unix nanos once the revoking CRL is in place
	var aliceT, bobT tally
	stop := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i := range *clients {
		pair, t := alice, &aliceT
		if i%2 == 1 {
			pair, t = bob, &bobT
		}
		wg.Go(func() {
			client := newClient(pair)
			for time.Now().Before(stop) {
				sent := time.Now().UnixNano()
				resp, err := client.Get(url)
				if err != nil {
					t.failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.refused.Add(1)
					continue
				}
				t.ok.Add(1)
				if r := revokedAt.Load(); r != 0 && pair.Leaf == bob.Leaf {
					if sent > r {
						t.inAfter.Add(1)
					} else {
						t.inFlight.Add(1)
					}
				}
			}
		})
	}

	// The publisher: a fresh CRL every second, the CA file rewritten every
	// three, bob revoked halfway.
	crlPublished, caPublished := 0, 0
	half := time.Now().Add(*duration / 2)
	var revoked []*x509.Certificate
	for tick := 1; time.Now().Before(stop.Add(-time.Second)); tick++ {
		time.Sleep(time.Second)
		if revoked == nil && time.Now().After(half) {
			revoked = []*x509.Certificate{bob.Leaf}
			publish(crlFile, root.crl(revoked...))
			revokedAt.Store(time.Now().UnixNano())
		} else {
			publish(crlFile, root.crl(revoked...))
		}
		crlPublished++
		if tick%3 == 0 {
			if tick%6 == 0 {
				publish(caFile, certPEM(root.cert))
			} else {
				publish(caFile, certPEM(next.cert, root.cert))
			}
			caPublished++
		}
	}
	wg.Wait()

	logText, _ := os.ReadFile(filepath.Join(dir, "caddy.log"))
	reloads := strings.Count(string(logText), "client certificate CAs and CRLs reloaded")
	fmt.Printf("crl-rotate: %s, %d clients; %d CRLs and %d CA files published (no reload), %d rereads logged\n",
		*duration, *clients, crlPublished, caPublished, reloads)
	fmt.Printf("  alice (stays valid):   %d ok, %d refused, %d failed\n", aliceT.ok.Load(), aliceT.refused.Load(), aliceT.failed.Load())
	fmt.Printf("  bob (revoked halfway): %d ok, %d refused (495), %d failed; got in after the revoking CRL was in place: %d sent after it, %d in flight then\n",
		bobT.ok.Load(), bobT.refused.Load(), bobT.failed.Load(), bobT.inAfter.Load(), bobT.inFlight.Load())
	switch {
	case revokedAt.Load() == 0:
		fail("the run was too short to revoke bob")
	case aliceT.refused.Load()+aliceT.failed.Load() != 0:
		fail("alice, never revoked, had failed requests")
	case bobT.inAfter.Load() != 0:
		fail("bob got in after his revocation was published")
	case bobT.refused.Load() == 0:
		fail("bob was never refused")
	}
	fmt.Println("PASS")
}
