package authn

import (
	"net"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// events records what Config.Observe is told.
type events struct {
	mu   sync.Mutex
	seen []string // "event result reason"
	more chan struct{}
}

func newEvents() *events { return &events{more: make(chan struct{}, 1)} }

func (e *events) observe(event, result, reason string) {
	e.mu.Lock()
	e.seen = append(e.seen, event+" "+result+" "+reason)
	e.mu.Unlock()
	select {
	case e.more <- struct{}{}:
	default:
	}
}

// waitFor waits until want has been observed; it fails the test after 30s
// (a bound on a hang, not a timed assertion).
func (e *events) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		e.mu.Lock()
		ok := slices.Contains(e.seen, want)
		seen := slices.Clone(e.seen)
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-e.more:
		case <-deadline:
			t.Fatalf("never observed %q; observed %q", want, seen)
		}
	}
}

// Observe hears a discovered IdP, and a key set fetch that failed.
func TestObserveKeySetFetchError(t *testing.T) {
	op := startTestOP(t)
	ev := newEvents()
	a := startAuthenticatorAt(t, op, &fakeClock{now: time.Now()}, func(c *Config) { c.Observe = ev.observe })
	ev.waitFor(t, EventIdP+" "+ResultUp+" "+op.URL)

	// The IdP goes away; a token naming a key not fetched yet makes a key
	// set fetch, which fails.
	op.Close()
	_, _ = a.Session(httptest.NewRecorder(), bearerRequest(op.token(t, "k9", "JWT", time.Now(), nil)))
	ev.waitFor(t, EventIdPFetchError+" "+FetchKeys+" "+op.URL)
}

// Observe hears a failed sign-in callback, with the refusal's reason.
func TestObserveSignInFailure(t *testing.T) {
	op := startTestOP(t)
	ev := newEvents()
	a := startAuthenticatorAt(t, op, &fakeClock{now: time.Now()}, func(c *Config) { c.Observe = ev.observe })
	// A callback with no sign-in in progress in this browser.
	r := httptest.NewRequest("GET", "https://app.test/.iap/callback?state=x&code=y", nil)
	a.ServeEndpoint(httptest.NewRecorder(), r)
	ev.waitFor(t, EventSignIn+" "+ResultFailure+" invalid-callback")
}

// An IdP that cannot be discovered is observed down, with the failed
// discovery fetch.
func TestObserveDiscoveryFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ev := newEvents()
	a := newTestAuthenticator(t, "http://"+addr)
	a.cfg.Observe = ev.observe
	a.Start()
	t.Cleanup(a.Stop)
	ev.waitFor(t, EventIdPFetchError+" "+FetchDiscovery+" http://"+addr)
	ev.waitFor(t, EventIdP+" "+ResultDown+" http://"+addr)
}
