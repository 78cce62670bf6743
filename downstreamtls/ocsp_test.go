package downstreamtls_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// ocspWorld is a CA whose client certificates name an `openssl ocsp`
// responder on loopback in their AIA, and that responder.
type ocspWorld struct {
	ca        *testpki.CA
	caPEM     string
	responder *testenv.OCSPResponder
}

func newOCSPWorld(t *testing.T, nextUpdateMinutes int) ocspWorld {
	t.Helper()
	ca := testpki.NewCA(t, "ocsp root")
	port := testenv.OCSPPort(t)
	return ocspWorld{ca: ca, caPEM: b64(ca.CertPEM()), responder: testenv.StartOCSP(t, ca, port, nextUpdateMinutes)}
}

func (w ocspWorld) issue(t *testing.T, cn string) *testpki.Cert {
	o := testpki.Client(cn)
	o.OCSPServer = []string{w.responder.URL()}
	return w.ca.Issue(t, o)
}

// downURL is a loopback URL where nothing listens.
func downURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d/", testenv.FreePort(t))
}

// The attack: a client whose certificate its CA revoked at its OCSP
// responder still gets in, because nobody asks the responder.
func TestOCSPAgainstOpenSSL(t *testing.T) {
	w := newOCSPWorld(t, 0)
	good, revoked, unknown := w.issue(t, "good"), w.issue(t, "revoked"), w.issue(t, "unknown")
	w.responder.Good(t, good.Cert)
	w.responder.Revoke(t, revoked.Cert)
	down := testpki.Client("down")
	down.OCSPServer = []string{downURL(t)}
	downCert := w.ca.Issue(t, down)
	noAIA := w.ca.Issue(t, testpki.Client("no aia"))

	for _, c := range []struct {
		name       string
		opts       downstreamtls.Options
		cert       *testpki.Cert
		wantValid  bool
		wantReason string
		wantDetail string
		responder  string
	}{
		{"good", downstreamtls.Options{}, good, true, "", "", ""},
		{"revoked", downstreamtls.Options{}, revoked, false, downstreamtls.ReasonInvalid, downstreamtls.DetailRevoked, w.responder.URL()},
		{"revoked under soft", downstreamtls.Options{OCSP: "soft"}, revoked, false, downstreamtls.ReasonInvalid, downstreamtls.DetailRevoked, w.responder.URL()},
		{"unknown (hard by default)", downstreamtls.Options{}, unknown, false, downstreamtls.ReasonStatusUnavailable, downstreamtls.DetailOCSPUnknown, w.responder.URL()},
		{"unknown under soft", downstreamtls.Options{OCSP: "soft"}, unknown, true, "", "", ""},
		{"responder down (hard by default)", downstreamtls.Options{}, downCert, false, downstreamtls.ReasonStatusUnavailable, downstreamtls.DetailOCSPUnavailable, down.OCSPServer[0]},
		{"responder down under soft", downstreamtls.Options{OCSP: "soft"}, downCert, true, "", "", ""},
		{"ocsp off", downstreamtls.Options{OCSP: "off"}, revoked, true, "", "", ""},
		{"no responder named: nothing to ask", downstreamtls.Options{}, noAIA, true, "", "", ""},
		{"ocsp_responder for a certificate naming none", downstreamtls.Options{OCSPResponder: w.responder.URL()}, noAIA, false, downstreamtls.ReasonStatusUnavailable, downstreamtls.DetailOCSPUnknown, w.responder.URL()},
		{"ocsp_responder overrides the AIA", downstreamtls.Options{OCSPResponder: w.responder.URL()}, downCert, false, downstreamtls.ReasonStatusUnavailable, downstreamtls.DetailOCSPUnknown, w.responder.URL()},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.CA = w.caPEM
			v, _, err := downstreamtls.New(c.opts, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			r := v.Verify(presented(c.cert), time.Now())
			if r.Valid != c.wantValid || r.Reason != c.wantReason || r.Detail != c.wantDetail || r.Responder != c.responder {
				t.Fatalf("got valid=%v reason=%q detail=%q responder=%q (%v), want valid=%v reason=%q detail=%q responder=%q",
					r.Valid, r.Reason, r.Detail, r.Responder, r.Err, c.wantValid, c.wantReason, c.wantDetail, c.responder)
			}
			if !r.Valid && c.responder != "" && !strings.Contains(r.Err.Error(), c.responder) {
				t.Errorf("the error does not name the responder: %v", r.Err)
			}
		})
	}
}

// ocsp_chain asks about the intermediate too: a revoked intermediate
// refuses the leaves under it, which the leaf's own answer does not say.
// The leaf is unknown to the root's responder (it is the intermediate's),
// which ocsp soft lets through; only ocsp_chain reaches the revoked
// intermediate.
func TestOCSPChainChecksTheIntermediate(t *testing.T) {
	w := newOCSPWorld(t, 0)
	inter := w.ca.IssueCA(t, "revoked intermediate")
	leaf := inter.Issue(t, testpki.Client("leaf"))
	w.responder.Revoke(t, inter.Cert)
	for _, chain := range []bool{false, true} {
		v, _, err := downstreamtls.New(downstreamtls.Options{CA: w.caPEM, MaxVerifyDepth: depth(2),
			OCSPResponder: w.responder.URL(), OCSPChain: chain, OCSP: "soft"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		r := v.Verify(presented(leaf), time.Now())
		if chain && (r.Valid || r.Detail != downstreamtls.DetailRevoked) {
			t.Fatalf("with ocsp_chain: valid=%v detail=%q (%v), want revoked", r.Valid, r.Detail, r.Err)
		}
		if !chain && !r.Valid {
			t.Fatalf("without ocsp_chain (soft): %v", r.Err)
		}
	}
}

// countingProxy forwards to the real responder and counts what reaches it.
func countingProxy(t *testing.T, target string, n *atomic.Int64) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, _ := io.ReadAll(r.Body)
		resp, err := http.Post(target, "application/ocsp-request", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(s.Close)
	return s
}

// Answers are cached until their nextUpdate, concurrent checks of one
// certificate ask once, and a cached valid result ends no later than the
// answer it used.
func TestOCSPAnswersAreCachedAndFetchedOnce(t *testing.T) {
	w := newOCSPWorld(t, 3)
	var asked atomic.Int64
	proxy := countingProxy(t, w.responder.URL(), &asked)
	alice := w.issue(t, "alice")
	w.responder.Good(t, alice.Cert)
	v, _, err := downstreamtls.New(downstreamtls.Options{CA: w.caPEM, OCSPResponder: proxy.URL}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	now := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if r := v.Verify(presented(alice), now); !r.Valid {
				t.Errorf("got %+v", r.Err)
			}
		})
	}
	wg.Wait()
	if n := asked.Load(); n != 1 {
		t.Fatalf("16 concurrent checks asked the responder %d times, want 1", n)
	}
	r := downstreamtls.NewCache(v).Verify(presented(alice), now)
	if !r.Valid || r.NotAfter.After(now.Add(3*time.Minute+time.Second)) {
		t.Fatalf("a valid result outlives the OCSP answer's nextUpdate: NotAfter %s", r.NotAfter)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("a cached answer was asked for again (%d)", n)
	}
}

// A responder that answers too much is no answer.
func TestOCSPAnswerSizeIsBounded(t *testing.T) {
	ca := testpki.NewCA(t, "root")
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, downstreamtls.OCSPMaxResponse+1))
	}))
	t.Cleanup(big.Close)
	v, _, err := downstreamtls.New(downstreamtls.Options{CA: b64(ca.CertPEM()), OCSPResponder: big.URL}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	r := v.Verify(presented(ca.Issue(t, testpki.Client("alice"))), time.Now())
	if r.Valid || r.Detail != downstreamtls.DetailOCSPUnavailable || !strings.Contains(r.Err.Error(), "larger than") {
		t.Fatalf("got valid=%v detail=%q (%v)", r.Valid, r.Detail, r.Err)
	}
}

func TestOCSPOptionsAreChecked(t *testing.T) {
	ca := b64(testpki.NewCA(t, "root").CertPEM())
	for _, c := range []struct {
		opts downstreamtls.Options
		want string
	}{
		{downstreamtls.Options{CA: ca, OCSP: "strict"}, `ocsp: unknown mode "strict"`},
		{downstreamtls.Options{CA: ca, OCSPResponder: "ldap://x"}, `ocsp_responder: "ldap://x" is not an http or https URL`},
		{downstreamtls.Options{CA: ca, OCSPResponder: "http://x/", OCSP: "off"}, "ocsp_responder is set but ocsp is off"},
		{downstreamtls.Options{CA: ca, CRLExpired: "ignore"}, `crl_expired: unknown value "ignore"`},
	} {
		if _, _, err := downstreamtls.New(c.opts, time.Now()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
	}
}

// A responder that never answers is no answer once OCSPTimeout has passed:
// the handshake it holds up is refused (hard), not held forever.
func TestOCSPAnswerTimeIsBounded(t *testing.T) {
	ca := testpki.NewCA(t, "root")
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(silent.Close)
	t.Cleanup(func() { close(release) })
	v, _, err := downstreamtls.New(downstreamtls.Options{CA: b64(ca.CertPEM()), OCSPResponder: silent.URL}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	r := v.Verify(presented(ca.Issue(t, testpki.Client("alice"))), time.Now())
	if r.Valid || r.Detail != downstreamtls.DetailOCSPUnavailable || !strings.Contains(r.Err.Error(), "deadline exceeded") {
		t.Fatalf("got valid=%v detail=%q (%v)", r.Valid, r.Detail, r.Err)
	}
}
