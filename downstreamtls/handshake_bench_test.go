package downstreamtls_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// What OCSP costs a TLS handshake once the responder's answer is cached:
// full TLS 1.3 handshakes with a client certificate over an in-memory
// pipe, the server verifying as tls.client_auth.verifier.iap does (VerifyDER
// of the downstreamtls cache in VerifyConnection), with ocsp off and with
// ocsp on against a real openssl ocsp responder whose answer was fetched
// before the timer starts. "known client" reuses the verification result of
// the chain (the usual case: a client reconnecting); "result not cached"
// verifies the chain on every handshake, so the OCSP answer cache is
// consulted every time.
//
// cpu-ns/op is the process's CPU time per handshake, client and server
// together, steadier than ns/op on a shared machine.
//
//	go test -run '^$' -bench BenchmarkHandshakeOCSP -benchtime 2s -count 6 ./downstreamtls/
func BenchmarkHandshakeOCSP(b *testing.B) {
	ca := testpki.NewCA(b, "bench root")
	port := testenv.OCSPPort(b)
	responder := testenv.StartOCSP(b, ca, port, 60)
	o := testpki.Client("alice")
	o.OCSPServer = []string{responder.URL()}
	alice := ca.Issue(b, o)
	responder.Good(b, alice.Cert)
	server := ca.Issue(b, testpki.Server("bench.test"))
	serverPair := tls.Certificate{Certificate: [][]byte{server.Cert.Raw}, PrivateKey: server.Key}
	clientPair := tls.Certificate{Certificate: [][]byte{alice.Cert.Raw}, PrivateKey: alice.Key}

	for _, mode := range []string{"off", "hard"} {
		v, _, err := downstreamtls.New(downstreamtls.Options{CA: b64(ca.CertPEM()), OCSP: mode}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(v.Close)
		if r := v.Verify(presented(alice), time.Now()); !r.Valid { // fetches the answer
			b.Fatal(r.Err)
		}
		for _, known := range []bool{true, false} {
			name := "ocsp " + mode
			if mode == "hard" {
				name += ", cached answer"
			}
			if known {
				name += "/known client"
			} else {
				name += "/result not cached"
			}
			b.Run(name, func(b *testing.B) {
				cache := downstreamtls.NewCache(v)
				serverCfg := &tls.Config{
					Certificates: []tls.Certificate{serverPair},
					ClientAuth:   tls.RequireAnyClientCert,
					MinVersion:   tls.VersionTLS13,
					// As Caddy does on connection policies with client
					// authentication; on a synchronous pipe, a ticket the
					// client does not read would also block the server.
					SessionTicketsDisabled: true,
					VerifyConnection: func(cs tls.ConnectionState) error {
						raw := make([][]byte, len(cs.PeerCertificates))
						for i, c := range cs.PeerCertificates {
							raw[i] = c.Raw
						}
						if !known {
							cache = downstreamtls.NewCache(v)
						}
						r, err := cache.VerifyDER(raw, time.Now())
						if err != nil {
							return err
						}
						if !r.Valid {
							return r.Err
						}
						return nil
					},
				}
				clientCfg := &tls.Config{
					ServerName:           "bench.test",
					InsecureSkipVerify:   true, //nolint:gosec // the server's certificate is not what is measured
					GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &clientPair, nil },
				}
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					c1, c2 := net.Pipe()
					errc := make(chan error, 1)
					go func() {
						s := tls.Server(c2, serverCfg)
						errc <- s.Handshake()
					}()
					c := tls.Client(c1, clientCfg)
					if err := c.Handshake(); err != nil {
						b.Fatal(err)
					}
					// TLS 1.3: the client is done before the server has
					// checked its certificate; wait for the server.
					if err := <-errc; err != nil {
						b.Fatal(err)
					}
					// The pipe, not the TLS conns: two close_notify alerts
					// written at once on a synchronous pipe wait for each
					// other.
					c1.Close()
					c2.Close()
				}
				reportCPU(b, cpu0)
			})
		}
	}
}

// The verification alone, every time (no result cache), with ocsp off and
// with ocsp on and the responder's answer cached: what OCSP adds is one
// lookup of the answer cache.
//
//	go test -run '^$' -bench BenchmarkVerifyOCSP -benchtime 2s -count 6 ./downstreamtls/
func BenchmarkVerifyOCSP(b *testing.B) {
	ca := testpki.NewCA(b, "bench root")
	responder := testenv.StartOCSP(b, ca, testenv.OCSPPort(b), 60)
	o := testpki.Client("alice")
	o.OCSPServer = []string{responder.URL()}
	alice := ca.Issue(b, o)
	responder.Good(b, alice.Cert)
	for _, mode := range []string{"off", "hard"} {
		v, _, err := downstreamtls.New(downstreamtls.Options{CA: b64(ca.CertPEM()), OCSP: mode}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(v.Close)
		certs := presented(alice)
		if r := v.Verify(certs, time.Now()); !r.Valid {
			b.Fatal(r.Err)
		}
		b.Run("ocsp "+mode, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if r := v.Verify(certs, time.Now()); !r.Valid {
					b.Fatal(r.Err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}

// cpuTime is the CPU time (user and system) this process has used. On a
// machine shared with other work, wall time per operation varies with the
// load; the CPU time each operation costs much less so.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since cpu0, client and
// server together for a handshake.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// What rereading ca_file and crl_file on change costs a known client: the
// cached result of a chain, from inline ca and crl (never reread) and from
// files (two stats per check).
//
//	go test -run '^$' -bench BenchmarkCachedFiles -benchtime 2s -count 6 ./downstreamtls/
func BenchmarkCachedFiles(b *testing.B) {
	ca := testpki.NewCA(b, "bench root")
	alice := ca.Issue(b, testpki.Client("alice"))
	dir := b.TempDir()
	caFile := ca.WriteCert(b, dir, "ca.pem")
	crlFile := filepath.Join(dir, "crl.pem")
	if err := os.WriteFile(crlFile, ca.CurrentCRL(b), 0o600); err != nil {
		b.Fatal(err)
	}
	raw := [][]byte{alice.Cert.Raw}
	for _, c := range []struct {
		name string
		opts downstreamtls.Options
	}{
		{"inline", downstreamtls.Options{CA: b64(ca.CertPEM()), CRL: b64(ca.CurrentCRL(b)), OCSP: "off"}},
		{"files", downstreamtls.Options{CAFile: caFile, CRLFile: crlFile, OCSP: "off"}},
	} {
		v, _, err := downstreamtls.New(c.opts, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		cache := downstreamtls.NewCache(v)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if r, err := cache.VerifyDER(raw, time.Now()); err != nil || !r.Valid {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}
