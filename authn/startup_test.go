package authn

import (
	"net/http/httptest"
	"testing"
	"time"
)

// A request that arrives just after start, while the first discovery of
// the IdP is still under way, waits for it and is answered: it used to get
// 503 idp-unavailable from a server whose IdP was up (seen as a flaky first
// sign-in on a loaded machine).
func TestRequestDuringFirstDiscoveryWaitsForIt(t *testing.T) {
	op := startTestOP(t)
	gate := make(chan struct{})
	op.mu.Lock()
	op.gate = gate
	op.mu.Unlock()
	a := newTestAuthenticator(t, op.URL)
	a.idp = newIdP(&a.cfg)
	a.Start()
	t.Cleanup(a.Stop)
	tok := op.token(t, "k1", "", time.Now(), nil)
	go func() {
		time.Sleep(200 * time.Millisecond) // the request below is waiting by then
		close(gate)
	}()
	s, err := a.Session(httptest.NewRecorder(), bearerRequest(tok))
	if err != nil || s.Email != "alice@example.com" {
		t.Fatalf("session %+v, err %v: want alice, the IdP was up", s, err)
	}
}

// Once the first discovery has failed (IdP down at start), requests do
// not wait: they get ErrIdPUnavailable at once, and the retry goes on.
func TestRequestAfterFailedFirstDiscoveryDoesNotWait(t *testing.T) {
	op := startTestOP(t)
	url := op.URL
	op.Close()
	a := newTestAuthenticator(t, url)
	a.idp = newIdP(&a.cfg)
	a.Start()
	t.Cleanup(a.Stop)
	a.idp.mu.RLock()
	first := a.idp.first
	a.idp.mu.RUnlock()
	<-first
	if _, _, _, err := a.idp.get(); err != ErrIdPUnavailable {
		t.Fatalf("got %v, want ErrIdPUnavailable", err)
	}
}
