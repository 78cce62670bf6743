package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// dexUserinfoCalls is how many requests Dex's userinfo endpoint served.
func dexUserinfoCalls(t *testing.T, dex *testenv.Dex) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(dex.Metrics(t), "\n") {
		if strings.HasPrefix(l, "http_requests_total{") && regexp.MustCompile(`handler="[^"]*/userinfo"`).MatchString(l) {
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metric line %q", l)
			}
			n += int(v)
		}
	}
	return n
}

// The userinfo answers kept for access tokens, against a real Dex, with
// the Authenticator's clock moved instead of waiting: kept for a minute at
// most and never past the token's exp, shared by concurrent requests, and
// never for a refused token.
func TestAccessTokenCache(t *testing.T) {
	dex := testenv.StartDex(t, testenv.DexOptions{Telemetry: true,
		Users: []testenv.DexUser{{Email: "alice@example.com", Password: "pw", Groups: []string{"admins"}}}})
	a := newTestAuthenticator(t, dex.Issuer)
	var offset atomic.Int64
	a.cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a.cfg.Bearer = BearerTokens{Format: BearerAccessToken, AllowedAudiences: []string{"caddy"}}
	var userinfoErrors atomic.Int64
	a.cfg.Observe = func(event, result, reason string) {
		if event == EventIdPFetchError && result == FetchUserinfo && reason == dex.Issuer {
			userinfoErrors.Add(1)
		}
	}
	a.idp = newIdP(&a.cfg)
	a.Start()
	defer a.Stop()
	waitDiscovered(t, a)
	token := func() string {
		return dex.PasswordGrant(t, "caddy", "caddy-secret", "alice@example.com", "pw", "openid email groups").AccessToken
	}
	session := func(tok string, override *BearerTokens) (*Session, error) {
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if override != nil {
			r = r.WithContext(WithBearerTokens(r.Context(), *override))
		}
		return a.Session(httptest.NewRecorder(), r)
	}
	calls := func() int { return dexUserinfoCalls(t, dex) }

	t.Run("one call for a minute, then another", func(t *testing.T) {
		tok := token()
		before := calls()
		for _, step := range []struct {
			at    time.Duration
			calls int
		}{{0, 1}, {30 * time.Second, 1}, {59 * time.Second, 1}, {61 * time.Second, 2}, {90 * time.Second, 2}} {
			offset.Store(int64(step.at))
			s, err := session(tok, nil)
			if err != nil || s.Email != "alice@example.com" || len(s.Groups) != 1 || !s.Bearer {
				t.Fatalf("at +%s: %+v %v", step.at, s, err)
			}
			if n := calls() - before; n != step.calls {
				t.Errorf("at +%s: %d userinfo calls, want %d", step.at, n, step.calls)
			}
		}
		offset.Store(0)
	})

	t.Run("concurrent requests with a new token make one call", func(t *testing.T) {
		tok := token()
		before := calls()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 20 {
			wg.Go(func() {
				if _, err := session(tok, nil); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() != 0 {
			t.Errorf("%d of 20 failed", failed.Load())
		}
		if n := calls() - before; n != 1 {
			t.Errorf("20 concurrent requests made %d userinfo calls", n)
		}
	})

	t.Run("a token past its exp is refused, even while Dex (on the real clock) still takes it", func(t *testing.T) {
		tok := token()
		if _, err := session(tok, nil); err != nil {
			t.Fatal(err)
		}
		offset.Store(int64(25 * time.Hour))
		defer offset.Store(0)
		_, err := session(tok, nil)
		if !errors.Is(err, ErrBadBearer) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("got %v", err)
		}
	})

	t.Run("a refused token is asked about each time and never accepted", func(t *testing.T) {
		bad := token()
		bad = bad[:len(bad)-4] + "AAAA"
		before := calls()
		for range 3 {
			if _, err := session(bad, nil); !errors.Is(err, ErrBadBearer) {
				t.Fatalf("got %v", err)
			}
		}
		if n := calls() - before; n != 3 {
			t.Errorf("%d userinfo calls for 3 requests with a refused token", n)
		}
	})

	t.Run("the request's context overrides the format and the audiences", func(t *testing.T) {
		tok := token()
		if _, err := session(tok, &BearerTokens{AllowedAudiences: []string{"cli"}}); !errors.Is(err, ErrBadBearer) || !strings.Contains(err.Error(), "audience") {
			t.Errorf("audiences [cli]: %v", err)
		}
		if s, err := session(tok, &BearerTokens{Format: BearerPassthrough}); s != nil || errors.Is(err, ErrBadBearer) {
			t.Errorf("passthrough: %+v %v, want no user and no bearer error", s, err)
		}
	})

	t.Run("an oversize token is refused before any call", func(t *testing.T) {
		before := calls()
		if _, err := session(strings.Repeat("x", maxAccessToken+1), nil); !errors.Is(err, ErrBadBearer) {
			t.Errorf("got %v", err)
		}
		if n := calls() - before; n != 0 {
			t.Errorf("%d userinfo calls", n)
		}
	})

	t.Run("beyond the calls in flight, a new token is ErrIdPUnavailable; a verified one still works", func(t *testing.T) {
		known, fresh := token(), token()
		if _, err := session(known, nil); err != nil {
			t.Fatal(err)
		}
		a.access.calls.Add(maxUserinfoCalls)
		defer a.access.calls.Add(-maxUserinfoCalls)
		before := calls()
		if _, err := session(fresh, nil); !errors.Is(err, ErrIdPUnavailable) {
			t.Errorf("a new token: %v", err)
		}
		if _, err := session(known, nil); err != nil {
			t.Errorf("a verified token: %v", err)
		}
		if n := calls() - before; n != 0 {
			t.Errorf("%d userinfo calls", n)
		}
	})

	t.Run("the IdP down is ErrIdPUnavailable, not a bad token", func(t *testing.T) {
		tok := token()
		dex.Stop()
		_, err := session(tok, nil)
		if !errors.Is(err, ErrIdPUnavailable) || errors.Is(err, ErrBadBearer) {
			t.Errorf("got %v", err)
		}
		if n := userinfoErrors.Load(); n != 1 {
			t.Errorf("%d userinfo fetch errors observed, want 1 (for metrics)", n)
		}
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "https://app.test/", nil)
		a.Challenge(rec, r, err)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("challenge: %d %v", rec.Code, rec.Header())
		}
	})
}

func TestCheckBearerFormat(t *testing.T) {
	for f, want := range map[string]string{
		"": "", BearerIDToken: "", BearerAccessToken: "", BearerPassthrough: "",
		BearerJWT: "", "default": "write passthrough for Pomerium's default", "IDP_ACCESS_TOKEN": "want idp_identity_token",
	} {
		err := CheckBearerFormat(f)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", f, err, want)
		}
	}
}
