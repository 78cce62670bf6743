package authn

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Bearer tokens naming unknown key IDs cannot make Caddy fetch the IdP's
// key set more than once per interval (10 s by default), shared by all
// requests; meanwhile they are refused as invalid-bearer-token (issue 11:
// 100 such tokens made 100 JWKS fetches at Dex). The e2e counterpart
// counts Dex's /keys requests through its metrics.
func TestKeySetIsFetchedAtMostOncePerInterval(t *testing.T) {
	op := startTestOP(t)
	clock := &fakeClock{now: time.Now()}
	a := startAuthenticatorAt(t, op, clock, nil)

	for _, step := range []struct {
		name    string
		advance time.Duration
		rotate  string
		kids    []string
		ok      bool
		fetches int64
	}{
		{"a token signed with the IdP's key fetches the key set once", 0, "", []string{"k1"}, true, 1},
		{"100 tokens with unknown key IDs fetch nothing more and are refused", time.Second, "", unknownKids(100), false, 1},
		{"a token with a known key ID fetches nothing", 0, "", []string{"k1"}, true, 1},
		{"an unknown key ID after the interval fetches once more", 10 * time.Second, "", unknownKids(5), false, 2},
		{"a rotated key is not fetched within the interval", time.Second, "k2", []string{"k2"}, false, 2},
		{"a rotated key is accepted at the next fetch after the interval", 10 * time.Second, "", []string{"k2", "k2"}, true, 3},
	} {
		t.Run(step.name, func(t *testing.T) {
			clock.Advance(step.advance)
			if step.rotate != "" {
				op.addKey(step.rotate)
			}
			for _, kid := range step.kids {
				s, err := a.Session(httptest.NewRecorder(), bearerRequest(op.token(t, kid, "JWT", clock.Now(), nil)))
				if step.ok && err != nil {
					t.Fatalf("kid %s: %v", kid, err)
				}
				if !step.ok && (err == nil || !errors.Is(err, ErrBadBearer) || errors.Is(err, ErrIdPUnavailable)) {
					t.Fatalf("kid %s: session %v, err %v; want an invalid bearer token", kid, s, err)
				}
			}
			// go-oidc hands a fetch's result to its waiters before it
			// forgets the fetch, in a goroutine: let that goroutine end, so
			// that the next step starts a fetch of its own rather than
			// sharing this one's result (a race only a loaded machine
			// shows).
			time.Sleep(50 * time.Millisecond)
			if got := op.keyFetches.Load(); got != step.fetches {
				t.Errorf("the key set was fetched %d times in all, want %d", got, step.fetches)
			}
		})
	}
}

func unknownKids(n int) []string {
	kids := make([]string, n)
	for i := range kids {
		kids[i] = fmt.Sprintf("unknown-%s", randomID())
	}
	return kids
}

// The gate tells a refresh whose new ID token did not verify that a key
// fetch was refused meanwhile, so that it keeps the session (503) rather
// than ending it over a key the IdP may have just rotated in.
func TestKeyFetchGateSaysWhenItRefused(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	var fetched int
	g := newKeyFetchGate(&http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		fetched++
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})}, 10*time.Second, clock.Now)
	fetch := func() error {
		resp, err := g.client.Get("http://idp.test/keys")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, step := range []struct {
		name         string
		advance      time.Duration
		fetchOK      bool
		limitedAfter bool
		fetchedAfter int
	}{
		{"the first fetch goes through", 0, true, false, 1},
		{"a fetch within the interval is refused and marks the gate limited", 3 * time.Second, false, true, 1},
		{"the gate stays limited until the interval ends", 6 * time.Second, false, true, 1},
		{"after the interval a fetch goes through and the gate is open", 2 * time.Second, true, false, 2},
		{"a clock that went back lets a fetch through", -time.Hour, true, false, 3},
	} {
		clock.Advance(step.advance)
		err := fetch()
		if (err == nil) != step.fetchOK || err != nil && !errors.Is(err, errKeysFetchedRecently) {
			t.Errorf("%s: fetch error %v", step.name, err)
		}
		if g.limited() != step.limitedAfter || fetched != step.fetchedAfter {
			t.Errorf("%s: limited %v, %d fetches", step.name, g.limited(), fetched)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
