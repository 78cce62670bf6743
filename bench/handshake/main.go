// Command handshake measures TLS handshakes per second against a server,
// with or without a client certificate, new or resumed, from several
// goroutines:
//
//	go run ./bench/handshake -addr 127.0.0.1:8445 -sni mtls.localhost -cert c.pem -key k.pem -resume -duration 15s
//
// It prints the rate first, then the counts and the CPU time this client
// spent per handshake; with -pid, also the CPU time that process (the
// server) spent per handshake, from /proc/<pid>/stat. Client and server
// share the machine's cores, so the server's CPU per handshake is the fairer
// figure when comparing sites. The server's certificate is not verified.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	pid := flag.Int("pid", 0, "also report the CPU time of this process (the server) per handshake")
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
	server0, err := procCPU(*pid)
	if err != nil {
		log.Fatal(err)
	}
	client0 := selfCPU()
	start := time.Now()
	stop := start.Add(*duration)
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
	client := selfCPU() - client0
	server1, err := procCPU(*pid)
	if err != nil {
		log.Fatal(err)
	}
	n := done.Load() + failed.Load()
	perHandshake := func(d time.Duration) float64 {
		if n == 0 {
			return 0
		}
		return float64(d.Microseconds()) / float64(n)
	}
	// The first field is the rate: bench/run.sh reads it with awk '{print $1}'.
	fmt.Printf("%.0f handshakes/s (%d, %d resumed, %d failed) client CPU %.0f us/handshake", float64(done.Load())/duration.Seconds(), done.Load(), resumed.Load(), failed.Load(), perHandshake(client))
	if *pid != 0 {
		fmt.Printf(", server CPU %.0f us/handshake", perHandshake(server1-server0))
	}
	fmt.Println()
}

// selfCPU is the user plus system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user plus system CPU time of process pid (all its
// threads), from /proc/<pid>/stat, in clock ticks of 10 ms (Linux's
// USER_HZ); 0 for pid 0.
func procCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime: fields 14 and 15
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
