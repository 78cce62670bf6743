package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// countingUpstream is a real HTTP server that counts the requests it gets
// and answers each one as told: "ok" (200), "500", or "close" (it drops
// the connection without an answer).
type countingUpstream struct {
	URL  string
	hits atomic.Int64
}

func newCountingUpstream(t *testing.T, answer string) *countingUpstream {
	t.Helper()
	u := &countingUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		switch answer {
		case "500":
			http.Error(w, "broken", http.StatusInternalServerError)
		case "close":
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// gateUpstream is a real HTTP server that holds every request until the
// test releases one, and counts the requests under way at once and the
// connections opened to it.
type gateUpstream struct {
	URL     string
	arrived chan struct{}
	release chan struct{}
	mu      sync.Mutex
	now     int // requests under way
	most    int // the most under way at once
	conns   int // connections opened
}

func newGateUpstream(t *testing.T) *gateUpstream {
	t.Helper()
	g := &gateUpstream{arrived: make(chan struct{}, 100), release: make(chan struct{}, 100)}
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.now++
		g.most = max(g.most, g.now)
		g.mu.Unlock()
		g.arrived <- struct{}{}
		select {
		case <-g.release:
		case <-stop:
		case <-r.Context().Done():
		}
		g.mu.Lock()
		g.now--
		g.mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			g.mu.Lock()
			g.conns++
			g.mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: frees held requests
	g.URL = srv.URL
	return g
}

func (g *gateUpstream) counts() (most, conns int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most, g.conns
}

// sent is a request sent in the background: written once Caddy has all
// of it, done with its answer.
type sent struct {
	written chan struct{}
	done    chan testenv.Response
}

func send(t *testing.T, client *http.Client, host string) sent {
	t.Helper()
	s := sent{written: make(chan struct{}), done: make(chan testenv.Response, 1)}
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(s.written) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			s.done <- testenv.Response{Body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		s.done <- testenv.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	}()
	return s
}

// Issue 13, end to end: a Pomerium config.yaml whose routes use Envoy's
// outlier_detection, healthy_panic_threshold and circuit_breaker_thresholds,
// run by the built Caddy against real upstreams that fail. Nothing is
// timed: the tests count requests at the upstreams.
func TestPomeriumConfigOutliersPanicAndCircuitBreakers(t *testing.T) {
	good500, bad500 := newCountingUpstream(t, "ok"), newCountingUpstream(t, "500")
	goodClose, badClose := newCountingUpstream(t, "ok"), newCountingUpstream(t, "close")
	panicGood, panicBadA, panicBadB := newCountingUpstream(t, "ok"), newCountingUpstream(t, "500"), newCountingUpstream(t, "close")
	calmGood, calmBadA, calmBadB := newCountingUpstream(t, "ok"), newCountingUpstream(t, "500"), newCountingUpstream(t, "close")
	keptGood, keptBad := newCountingUpstream(t, "ok"), newCountingUpstream(t, "500")
	limitReqs, limitConns, unlimited := newGateUpstream(t), newGateUpstream(t), newGateUpstream(t)

	// Ejections last an hour: within the test, an upstream taken out
	// stays out, whatever the machine's speed.
	const outlier = "    load_balancing_policy: ROUND_ROBIN\n    outlier_detection: {consecutive_5xx: 2, base_ejection_time: 1h, max_ejection_percent: 100}\n"
	httpsPort := testenv.FreePort(t)
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
circuit_breaker_thresholds:
  max_connections: 1
routes:
  - from: https://eject-500.pomerium.test
    to: [%s, %s]
    allow_public_unauthenticated_access: true
%s  - from: https://eject-close.pomerium.test
    to: [%s, %s]
    allow_public_unauthenticated_access: true
%s  - from: https://panic.pomerium.test
    to: [%s, %s, %s]
    allow_public_unauthenticated_access: true
%s  - from: https://no-panic.pomerium.test
    to: [%s, %s, %s]
    allow_public_unauthenticated_access: true
    healthy_panic_threshold: 0
%s  - from: https://envoy-default.pomerium.test
    to: [%s, %s]
    allow_public_unauthenticated_access: true
    load_balancing_policy: ROUND_ROBIN
    outlier_detection: {consecutive_5xx: 2}
  - from: https://max-requests.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
    circuit_breaker_thresholds: {max_requests: 2, max_connections: 4294967295}
  - from: https://guarded.pomerium.test
    to: %s
    allowed_users: [alice@example.com]
    circuit_breaker_thresholds: {max_requests: 2, max_connections: 4294967295}
  - from: https://max-connections.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
  - from: https://unlimited.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
    circuit_breaker_thresholds: {max_connections: 4294967295}
`, httpsPort, testenv.FreePort(t),
		good500.URL, bad500.URL, outlier,
		goodClose.URL, badClose.URL, outlier,
		panicGood.URL, panicBadA.URL, panicBadB.URL, outlier,
		calmGood.URL, calmBadA.URL, calmBadB.URL, outlier,
		keptGood.URL, keptBad.URL,
		limitReqs.URL, limitReqs.URL, limitConns.URL, unlimited.URL)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	hosts := []string{"eject-500.pomerium.test", "eject-close.pomerium.test", "panic.pomerium.test", "no-panic.pomerium.test", "envoy-default.pomerium.test",
		"max-requests.pomerium.test", "guarded.pomerium.test", "max-connections.pomerium.test", "unlimited.pomerium.test"}
	caddy.WaitCertificates(t, hosts...)
	client := caddy.Client(t)
	get := func(t *testing.T, host string) testenv.Response {
		t.Helper()
		r, err := caddy.Do(t, client, host, "/", http.Header{"Accept": {"application/json"}})
		if err != nil {
			t.Fatalf("GET https://%s/: %v", host, err)
		}
		return r
	}

	for _, c := range []struct {
		name      string
		host      string
		good, bad *countingUpstream
	}{
		{"an upstream answering 500 is taken out after consecutive_5xx of them", "eject-500.pomerium.test", good500, bad500},
		{"an upstream dropping connections is taken out after consecutive_5xx of them", "eject-close.pomerium.test", goodClose, badClose},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Round robin over two: the failing upstream gets every other
			// request until its second failure.
			for range 6 {
				get(t, c.host)
			}
			taken := c.bad.hits.Load()
			if c.bad == bad500 && taken != 2 {
				t.Errorf("the failing upstream got %d requests before it was taken out, want consecutive_5xx = 2", taken)
			}
			goodBefore := c.good.hits.Load()
			for i := range 10 {
				if r := get(t, c.host); r.Status != 200 || r.Body != "ok" {
					t.Errorf("request %d after the ejection: %d %s", i, r.Status, r.Body)
				}
			}
			if n := c.bad.hits.Load() - taken; n != 0 {
				t.Errorf("the ejected upstream still got %d requests", n)
			}
			if n := c.good.hits.Load() - goodBefore; n != 10 {
				t.Errorf("the healthy upstream got %d of the 10 requests", n)
			}
		})
	}

	t.Run("with Envoy's default max_ejection_percent (10%) a route of two upstreams ejects neither, as in Pomerium", func(t *testing.T) {
		for range 12 {
			get(t, "envoy-default.pomerium.test")
		}
		if n := keptBad.hits.Load(); n != 6 {
			t.Errorf("the failing upstream got %d of 12 round-robin requests, want 6", n)
		}
	})

	t.Run("below the healthy panic threshold requests go to every upstream, healthy or not", func(t *testing.T) {
		// Both failing upstreams are taken out (two failures each); then
		// one of three (33%) is healthy, under Envoy's default of 50%.
		for range 12 {
			get(t, "panic.pomerium.test")
		}
		a, b, good := panicBadA.hits.Load(), panicBadB.hits.Load(), panicGood.hits.Load()
		for range 9 {
			get(t, "panic.pomerium.test")
		}
		if panicBadA.hits.Load() == a || panicBadB.hits.Load() == b {
			t.Errorf("in panic, the unhealthy upstreams got %d and %d more requests, want some each",
				panicBadA.hits.Load()-a, panicBadB.hits.Load()-b)
		}
		if n := panicGood.hits.Load() - good; n == 9 || n == 0 {
			t.Errorf("in panic, the healthy upstream got %d of 9 requests, want a share", n)
		}
	})

	t.Run("with healthy_panic_threshold 0 the last healthy upstream takes everything", func(t *testing.T) {
		for range 12 {
			get(t, "no-panic.pomerium.test")
		}
		a, b, good := calmBadA.hits.Load(), calmBadB.hits.Load(), calmGood.hits.Load()
		for i := range 9 {
			if r := get(t, "no-panic.pomerium.test"); r.Status != 200 {
				t.Errorf("request %d: %d %s", i, r.Status, r.Body)
			}
		}
		if calmBadA.hits.Load() != a || calmBadB.hits.Load() != b || calmGood.hits.Load()-good != 9 {
			t.Errorf("the unhealthy upstreams got %d and %d more requests, the healthy one %d of 9",
				calmBadA.hits.Load()-a, calmBadB.hits.Load()-b, calmGood.hits.Load()-good)
		}
	})

	t.Run("max_requests: a third request while two are under way is refused with 503 and a reason", func(t *testing.T) {
		first := send(t, client, "max-requests.pomerium.test")
		<-limitReqs.arrived
		second := send(t, client, "max-requests.pomerium.test")
		<-limitReqs.arrived
		// Both are now counted at Caddy (it counts before proxying).
		third := get(t, "max-requests.pomerium.test")
		if third.Status != 503 || !strings.Contains(third.Body, `"reason":"no-upstream-available"`) || third.Header.Get("Retry-After") == "" {
			t.Errorf("the third request: %d %v %s", third.Status, third.Header, third.Body)
		}
		if strings.Contains(third.Body, strings.TrimPrefix(limitReqs.URL, "http://")) {
			t.Errorf("the 503 names the upstream: %s", third.Body)
		}
		// The policy decides first: on a route to the same full upstream
		// that this client may not use, the answer is the policy's, so
		// an outsider learns nothing of the upstream's load, and takes
		// none of its slots.
		if r := get(t, "guarded.pomerium.test"); r.Status == 503 || strings.Contains(r.Body, "no-upstream-available") {
			t.Errorf("an anonymous request to a guarded route: %d %s", r.Status, r.Body)
		}
		limitReqs.release <- struct{}{}
		limitReqs.release <- struct{}{}
		for _, s := range []sent{first, second} {
			if r := <-s.done; r.Status != 200 {
				t.Errorf("a request within the limit: %d %s", r.Status, r.Body)
			}
		}
		if most, _ := limitReqs.counts(); most != 2 {
			t.Errorf("the upstream had %d requests at once, want 2", most)
		}
		if !caddy.WaitLog(`"reason":"no-upstream-available"`) {
			t.Errorf("no log line with the reason:\n%s", caddy.Log())
		}
		// Once they are done, the route takes requests again.
		next := send(t, client, "max-requests.pomerium.test")
		<-limitReqs.arrived
		limitReqs.release <- struct{}{}
		if r := <-next.done; r.Status != 200 {
			t.Errorf("after the limit: %d %s", r.Status, r.Body)
		}
	})

	// The control: the harness sees three requests at once where nothing
	// limits them.
	t.Run("without a limit, three requests run at the upstream at once", func(t *testing.T) {
		var reqs []sent
		for range 3 {
			reqs = append(reqs, send(t, client, "unlimited.pomerium.test"))
		}
		for range 3 {
			<-unlimited.arrived
		}
		for range 3 {
			unlimited.release <- struct{}{}
		}
		for _, s := range reqs {
			if r := <-s.done; r.Status != 200 {
				t.Errorf("%d %s", r.Status, r.Body)
			}
		}
		if most, conns := unlimited.counts(); most != 3 || conns != 3 {
			t.Errorf("%d at once over %d connections, want 3 and 3", most, conns)
		}
	})

	t.Run("the global max_connections 1: three requests sent at once reach the upstream one by one over one connection", func(t *testing.T) {
		var reqs []sent
		for range 3 {
			reqs = append(reqs, send(t, client, "max-connections.pomerium.test"))
		}
		for _, s := range reqs {
			<-s.written // all three are at Caddy
		}
		for range 3 {
			<-limitConns.arrived
			if most, _ := limitConns.counts(); most != 1 {
				t.Fatalf("%d requests at once at the upstream, want 1", most)
			}
			limitConns.release <- struct{}{}
		}
		for _, s := range reqs {
			if r := <-s.done; r.Status != 200 {
				t.Errorf("%d %s", r.Status, r.Body)
			}
		}
		if most, conns := limitConns.counts(); most != 1 || conns != 1 {
			t.Errorf("%d at once over %d connections, want 1 and 1", most, conns)
		}
	})
}
