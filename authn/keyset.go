package authn

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// errKeysFetchedRecently is a key set fetch refused by keyFetchGate.
var errKeysFetchedRecently = errors.New("the key set was fetched less than the refresh interval ago")

// keyFetchGate lets the IdP's key set (JWKS) be fetched at most once per
// interval, for all requests together.
//
// go-oidc's RemoteKeySet fetches the key set again whenever a token names
// a key ID it does not hold, as OpenID Connect's key rotation asks, so
// without a bound anyone could make Caddy fetch it once per request by
// sending bearer tokens with made-up key IDs (issue 11: 100 tokens, 100
// fetches at Dex). The bound sits in the HTTP client that the RemoteKeySet
// was built with, the only way it fetches: a KeySet wrapper could not tell
// whether a verification would reach the network, and it would have to
// parse JWKS itself to hold the keys. The RemoteKeySet keeps its cached
// keys when a fetch fails, so tokens signed with known keys still verify;
// tokens naming a key not yet fetched are refused until the next fetch is
// allowed. A rotated key is picked up by the first token that names it
// after the interval, whoever sends it.
type keyFetchGate struct {
	client   *http.Client
	next     http.RoundTripper
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	last    time.Time // when the last fetch was let through
	refused time.Time // when a fetch was last refused since then

	// failed, when set, is called when a fetch let through fails (no
	// answer, or not 200 OK), for Config.Observe.
	failed func()
}

func newKeyFetchGate(base *http.Client, interval time.Duration, now func() time.Time) *keyFetchGate {
	g := &keyFetchGate{next: base.Transport, interval: interval, now: now}
	if g.next == nil {
		g.next = http.DefaultTransport
	}
	c := *base
	c.Transport = g
	g.client = &c
	return g
}

// RoundTrip lets a fetch through when the interval has passed since the
// last one (or the clock went back), and refuses it otherwise.
func (g *keyFetchGate) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	now := g.now()
	if !g.last.IsZero() && !now.Before(g.last) && now.Before(g.last.Add(g.interval)) {
		g.refused = now
		next := g.last.Add(g.interval)
		g.mu.Unlock()
		return nil, fmt.Errorf("%w (%s); the next fetch is allowed in %s",
			errKeysFetchedRecently, g.interval, next.Sub(now).Round(time.Millisecond))
	}
	g.last, g.refused = now, time.Time{}
	g.mu.Unlock()
	resp, err := g.next.RoundTrip(req)
	if g.failed != nil && (err != nil || resp.StatusCode != http.StatusOK) {
		g.failed()
	}
	return resp, err
}

// limited reports whether a fetch was refused since the last one let
// through, within its interval.
func (g *keyFetchGate) limited() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	return !g.refused.IsZero() && now.Before(g.last.Add(g.interval))
}
