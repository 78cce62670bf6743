// Command handshake measures TLS handshakes per second against a server,
// with or without a client certificate, new or resumed, from several
// goroutines:
//
//	go run ./bench/handshake -addr 127.0.0.1:8445 -sni mtls.localhost -cert c.pem -key k.pem -resume -duration 15s
//
// It prints the rate. The server's certificate is not verified.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "host:port")
	sni := flag.String("sni", "", "server name")
	certFile := flag.String("cert", "", "client certificate (PEM)")
	keyFile := flag.String("key", "", "client key (PEM)")
	resume := flag.Bool("resume", false, "resume sessions (TLS 1.3 tickets) after the first handshake")
	duration := flag.Duration("duration", 10*time.Second, "how long")
	workers := flag.Int("workers", 8, "concurrent handshakes")
	flag.Parse()

	cfg := &tls.Config{ServerName: *sni, InsecureSkipVerify: true} //nolint:gosec // a benchmark against the bench's own local CA
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	if *resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	var done, resumed, failed atomic.Int64
	stop := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				raw, err := net.DialTimeout("tcp", *addr, 5*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c := tls.Client(raw, cfg)
				err = c.Handshake()
				if err == nil {
					// TLS 1.3 servers check the client certificate after the
					// handshake; a read surfaces a refusal.
					c.SetReadDeadline(time.Now().Add(time.Millisecond))
					var b [1]byte
					if _, rerr := c.Read(b[:]); rerr != nil {
						if ne, ok := rerr.(net.Error); !ok || !ne.Timeout() {
							err = rerr
						}
					}
				}
				if err != nil {
					failed.Add(1)
				} else {
					done.Add(1)
					if c.ConnectionState().DidResume {
						resumed.Add(1)
					}
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%.0f handshakes/s (%d, %d resumed, %d failed)\n", float64(done.Load())/duration.Seconds(), done.Load(), resumed.Load(), failed.Load())
}
