package downstreamtls

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ocsp"
)

// The OCSP modes of the option ocsp.
const (
	// OCSPHard refuses a certificate whose status cannot be established:
	// the responder is down, answers late, too much or something that does
	// not verify, or answers "unknown". The default.
	OCSPHard = "hard"
	// OCSPSoft lets such a certificate through, with a warning in the log.
	// A certificate the responder says is revoked is refused either way.
	OCSPSoft = "soft"
	// OCSPOff asks no responder.
	OCSPOff = "off"
)

// Bounds on talking to an OCSP responder.
const (
	// OCSPTimeout bounds one exchange with a responder, connection
	// included.
	OCSPTimeout = 5 * time.Second
	// OCSPMaxResponse bounds the size of a responder's answer.
	OCSPMaxResponse = 64 << 10
	// OCSPMaxAge bounds how long an answer is reused, whatever its
	// nextUpdate says; an answer without nextUpdate is reused for MaxAge.
	OCSPMaxAge = time.Hour
	// OCSPRetry is how long a failure to get an answer is reused before the
	// responder is asked again, so a dead responder is not asked (and
	// waited for) on every handshake.
	OCSPRetry = 10 * time.Second
	// OCSPSkew is the clock difference allowed with a responder's
	// thisUpdate.
	OCSPSkew = 5 * time.Minute
)

// ocspChecker asks OCSP responders about certificates, caching answers
// until their nextUpdate (at most OCSPMaxAge) and letting one request per
// certificate and responder be in flight at a time.
type ocspChecker struct {
	mode      string
	responder string // configured: used instead of the certificates' own
	chain     bool
	client    *http.Client
	logger    func() *zap.Logger

	mu       sync.Mutex
	answers  map[ocspKey]*ocspAnswer
	inflight map[ocspKey]*ocspCall
}

type ocspKey struct {
	responder string
	issuer    [32]byte // SHA-256 of the issuer's DER
	serial    string
}

type ocspCall struct {
	done chan struct{}
	a    *ocspAnswer
}

// ocspAnswer is what a responder said about a certificate, or why it said
// nothing useful (err).
type ocspAnswer struct {
	responder string
	status    int // ocsp.Good, ocsp.Revoked, ocsp.Unknown when err is nil
	revokedAt time.Time
	err       error
	until     time.Time // reuse until then
	warnOnce  sync.Once
}

func newOCSPChecker(o Options, logger func() *zap.Logger) *ocspChecker {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxResponseHeaderBytes = 16 << 10
	// A connection per question: answers are cached, so questions are
	// rare, and a responder that closes idle connections (openssl ocsp
	// serves one at a time) never fails a POST that cannot be retried.
	transport.DisableKeepAlives = true
	return &ocspChecker{
		mode:      o.OCSPMode(),
		responder: o.OCSPResponder,
		chain:     o.OCSPChain,
		client: &http.Client{
			Timeout:   OCSPTimeout,
			Transport: transport,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("more than 3 redirects")
				}
				return nil
			},
		},
		logger:   logger,
		answers:  map[ocspKey]*ocspAnswer{},
		inflight: map[ocspKey]*ocspCall{},
	}
}

// responderFor is the responder to ask about cert: the configured one, or
// the first http(s) URL of the certificate's AIA; "" when there is none.
func (c *ocspChecker) responderFor(cert *x509.Certificate) string {
	if c.responder != "" {
		return c.responder
	}
	for _, u := range cert.OCSPServer {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return u
		}
	}
	return ""
}

// check returns the answer about cert, issued by issuer, or nil when no
// responder is known for it.
func (c *ocspChecker) check(cert, issuer *x509.Certificate, now time.Time) *ocspAnswer {
	responder := c.responderFor(cert)
	if responder == "" {
		return nil
	}
	key := ocspKey{responder: responder, issuer: sha256.Sum256(issuer.Raw), serial: string(cert.SerialNumber.Bytes())}
	c.mu.Lock()
	if a, ok := c.answers[key]; ok && now.Before(a.until) {
		c.mu.Unlock()
		return a
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-call.done
		return call.a
	}
	call := &ocspCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()

	call.a = c.fetch(responder, cert, issuer, now)

	c.mu.Lock()
	if len(c.answers) >= MaxEntries {
		clear(c.answers)
	}
	c.answers[key] = call.a
	delete(c.inflight, key)
	c.mu.Unlock()
	close(call.done)
	return call.a
}

func (c *ocspChecker) fetch(responder string, cert, issuer *x509.Certificate, now time.Time) *ocspAnswer {
	a := &ocspAnswer{responder: responder}
	resp, err := c.ask(responder, cert, issuer)
	if err != nil {
		a.err, a.until = err, now.Add(OCSPRetry)
		c.logger().Warn("OCSP responder gave no usable answer",
			zap.String("responder", responder),
			zap.String("subject", cert.Subject.String()),
			zap.String("serial", cert.SerialNumber.String()),
			zap.String("ocsp", c.mode),
			zap.Error(err))
		return a
	}
	if now.Add(OCSPSkew).Before(resp.ThisUpdate) {
		a.err, a.until = fmt.Errorf("the answer's thisUpdate %s is in the future", resp.ThisUpdate.UTC().Format(time.RFC3339)), now.Add(OCSPRetry)
		return a
	}
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
		a.err, a.until = fmt.Errorf("the answer is out of date (nextUpdate %s)", resp.NextUpdate.UTC().Format(time.RFC3339)), now.Add(OCSPRetry)
		return a
	}
	a.status, a.revokedAt = resp.Status, resp.RevokedAt
	a.until = now.Add(MaxAge)
	if !resp.NextUpdate.IsZero() {
		a.until = resp.NextUpdate
		if limit := now.Add(OCSPMaxAge); a.until.After(limit) {
			a.until = limit
		}
	}
	return a
}

// ask POSTs an OCSP request for cert and verifies the answer: it must be
// signed by issuer or by a responder certificate issuer delegated, and be
// about cert.
func (c *ocspChecker) ask(responder string, cert, issuer *x509.Certificate) (*ocsp.Response, error) {
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, fmt.Errorf("making the request: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), OCSPTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, responder, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	hresp, err := c.client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", hresp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(hresp.Body, OCSPMaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %v", err)
	}
	if len(body) > OCSPMaxResponse {
		return nil, fmt.Errorf("the answer is larger than %d bytes", OCSPMaxResponse)
	}
	resp, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return nil, fmt.Errorf("the answer does not verify: %v", err)
	}
	return resp, nil
}

// close lets go of idle connections to responders.
func (c *ocspChecker) close() {
	c.client.CloseIdleConnections()
}
