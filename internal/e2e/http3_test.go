package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Issue 14 part 1: iap_mtls over HTTP/3. Caddy serves HTTP/3 on its HTTPS
// port (UDP), with the TLS connection policies of TCP; a quic-go client
// (curl here has no HTTP/3) gets the same answers as a TCP client: a valid
// certificate 200, none or one from another CA 495 under
// policy_with_default_deny, a failed handshake under reject_connection.
// Only hosts with iap_mtls ask for a certificate in the QUIC handshake.
func TestMTLSOverHTTP3(t *testing.T) {
	dir := t.TempDir()
	clientCA := testpki.NewCA(t, "h3 client root")
	caFile := clientCA.WriteCert(t, dir, "ca.pem")
	pair := func(c *testpki.Cert, name string) tls.Certificate {
		certFile, keyFile := c.Write(t, dir, name)
		p, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	certs := map[string]*tls.Certificate{"none": nil}
	alice, eve := pair(clientCA.Issue(t, testpki.Client("alice")), "alice"), pair(testpki.NewCA(t, "stranger").Issue(t, testpki.Client("eve")), "eve")
	certs["valid"], certs["another CA"] = &alice, &eve

	up := echoUpstream(t)
	site := func(host, enforcement string) string {
		mtls := ""
		if enforcement != "" {
			mtls = fmt.Sprintf("\tiap_mtls {\n\t\tca_file %s\n\t\tenforcement %s\n\t}\n", caFile, enforcement)
		}
		return fmt.Sprintf("%s {\n\ttls internal\n%s\tiap_route {\n\t\tto %s\n\t\tallow_public_unauthenticated_access\n\t}\n}\n", host, mtls, up)
	}
	caddy := testenv.StartCaddy(t, "", site("deny.h3.test", "policy_with_default_deny")+
		site("reject.h3.test", "reject_connection")+site("open.h3.test", ""))
	caddy.WaitCertificates(t, "deny.h3.test", "reject.h3.test", "open.h3.test")

	// answer is what a request got: the status and reason, or a failed
	// TLS handshake.
	type answer struct {
		status int
		reason string
		err    bool
	}
	read := func(resp *http.Response, err error) answer {
		if err != nil {
			if !strings.Contains(err.Error(), "tls:") {
				return answer{reason: err.Error()} // not a failed handshake
			}
			return answer{err: true}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body struct{ Reason string }
		_ = json.Unmarshal(b, &body)
		return answer{status: resp.StatusCode, reason: body.Reason}
	}
	// getH3 requests https://host/ over HTTP/3 with the certificate, and
	// reports whether the handshake asked for one.
	getH3 := func(t *testing.T, host string, cert *tls.Certificate) (answer, bool) {
		t.Helper()
		var asked atomic.Bool
		cfg := caddy.TLSConfig(t, func(cfg *tls.Config) {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked.Store(true)
				if cert == nil {
					return &tls.Certificate{}, nil
				}
				return cert, nil
			}
		})
		tr := &http3.Transport{TLSClientConfig: cfg,
			Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, qcfg *quic.Config) (*quic.Conn, error) {
				return quic.DialAddrEarly(ctx, fmt.Sprintf("127.0.0.1:%d", caddy.HTTPSPort), tlsCfg, qcfg)
			}}
		defer tr.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := tr.RoundTrip(req)
		if err == nil && resp.ProtoMajor != 3 {
			t.Fatalf("answered over %s, want HTTP/3", resp.Proto)
		}
		a := read(resp, err)
		if err != nil {
			t.Logf("HTTP/3 to %s: %v", host, err)
		}
		return a, asked.Load()
	}
	getTCP := func(t *testing.T, host string, cert *tls.Certificate) answer {
		t.Helper()
		c := caddy.Client(t, func(cfg *tls.Config) {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if cert == nil {
					return &tls.Certificate{}, nil
				}
				return cert, nil
			}
		})
		defer c.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+host+"/", nil)
		req.Header.Set("Accept", "application/json")
		return read(c.Do(req))
	}

	for _, c := range []struct {
		host, cert string
		want       answer
		asks       bool
	}{
		{"deny.h3.test", "valid", answer{status: 200}, true},
		{"deny.h3.test", "none", answer{status: 495, reason: "client-certificate-required"}, true},
		{"deny.h3.test", "another CA", answer{status: 495, reason: "invalid-client-certificate"}, true},
		{"reject.h3.test", "valid", answer{status: 200}, true},
		{"reject.h3.test", "none", answer{err: true}, true},
		{"reject.h3.test", "another CA", answer{err: true}, true},
		{"open.h3.test", "valid", answer{status: 200}, false},
		{"open.h3.test", "none", answer{status: 200}, false},
	} {
		t.Run(c.host+" "+strings.ReplaceAll(c.cert, " ", "-"), func(t *testing.T) {
			got, asked := getH3(t, c.host, certs[c.cert])
			if got != c.want {
				t.Errorf("over HTTP/3: got %+v, want %+v", got, c.want)
			}
			if asked != c.asks {
				t.Errorf("over HTTP/3: the handshake asked for a client certificate: %v, want %v", asked, c.asks)
			}
			if tcp := getTCP(t, c.host, certs[c.cert]); tcp != got {
				t.Errorf("over TCP: got %+v, over HTTP/3 %+v: they differ", tcp, got)
			}
		})
	}
}
