package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// ErrIdPUnavailable is returned while the identity provider's discovery
// document cannot be fetched.
var ErrIdPUnavailable = errors.New("identity provider unavailable")

// idp is the identity provider, discovered in the background: a failed
// discovery at start is not fatal, it is retried with backoff, and requests
// that need the IdP get ErrIdPUnavailable meanwhile. go-oidc's remote key
// set follows the IdP's key rotation, fetching at most once per
// KeySetRefreshInterval (keyFetchGate).
type idp struct {
	cfg *Config

	mu       sync.RWMutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	endURL   string
	keys     *keyFetchGate // the verifier's key set fetches go through it
	lastErr  error
	down     bool // a discovered IdP failed its last health check

	// logoutVerifier checks back-channel logout tokens (logout.go): the
	// same key set, issuer and audience as verifier, without the expiry
	// check (a logout token's exp is optional; its iat is checked).
	logoutVerifier *oidc.IDTokenVerifier
	// logoutJTIs are the jti of the logout tokens accepted, until they
	// are too old to be accepted again.
	logoutJTIs *jtiCache

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// first is closed when the first discovery attempt after start ends,
	// well or not (nil before start).
	first chan struct{}
}

// firstDiscoveryWait bounds how long a request that arrives while the IdP
// is still being discovered at start waits for that first attempt, rather
// than getting a 503 a moment before the IdP is known.
const firstDiscoveryWait = 5 * time.Second

func newIdP(cfg *Config) *idp {
	return &idp{cfg: cfg, wake: make(chan struct{}, 1), lastErr: ErrIdPUnavailable, logoutJTIs: newJTICache(maxLogoutJTIs)}
}

// start discovers the provider, retrying with backoff until it succeeds
// or stop is called.
func (p *idp) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	first := make(chan struct{})
	p.mu.Lock()
	p.first = first
	p.mu.Unlock()
	go func() {
		defer close(p.done)
		backoff := 500 * time.Millisecond
		for {
			err := p.discover(ctx)
			if first != nil {
				close(first)
				first = nil
			}
			if err == nil {
				p.watch(ctx)
				return
			}
			if ctx.Err() == nil {
				p.cfg.observe(EventIdPFetchError, FetchDiscovery, p.cfg.ProviderURL)
				p.cfg.observe(EventIdP, ResultDown, p.cfg.ProviderURL)
			}
			p.cfg.Logger.Warn("identity provider discovery failed; retrying",
				zap.String("provider_url", p.cfg.ProviderURL), zap.Duration("retry_in", backoff), zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			case <-p.wake:
			}
			backoff = min(backoff*2, 30*time.Second)
		}
	}()
}

// healthInterval is how often a discovered IdP is checked, so that new
// sign-ins get 503 rather than a redirect to an IdP that is down.
const healthInterval = 5 * time.Second

// watch fetches the discovery document every healthInterval until ctx
// ends, and marks the IdP unreachable while that fails. Sessions and bearer
// tokens do not depend on it; only new sign-ins do.
func (p *idp) watch(ctx context.Context) {
	client := *p.cfg.HTTPClient
	client.Timeout = 3 * time.Second
	url := strings.TrimSuffix(p.cfg.ProviderURL, "/") + "/.well-known/openid-configuration"
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(healthInterval):
		}
		var err error
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("discovery document: %s", resp.Status)
			}
		}
		p.mu.Lock()
		was := p.down
		p.down = err != nil && ctx.Err() == nil
		p.lastErr = err
		p.mu.Unlock()
		if p.down {
			p.cfg.observe(EventIdPFetchError, FetchDiscovery, p.cfg.ProviderURL)
		}
		switch {
		case p.down && !was:
			p.cfg.observe(EventIdP, ResultDown, p.cfg.ProviderURL)
			p.cfg.Logger.Warn("identity provider unreachable; new sign-ins get 503", zap.String("provider_url", p.cfg.ProviderURL), zap.Error(err))
		case !p.down && was:
			p.cfg.observe(EventIdP, ResultUp, p.cfg.ProviderURL)
			p.cfg.Logger.Info("identity provider reachable again", zap.String("provider_url", p.cfg.ProviderURL))
		}
	}
}

// reachable reports whether the last health check of a discovered IdP
// succeeded.
func (p *idp) reachable() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.down {
		return fmt.Errorf("%w: %v", ErrIdPUnavailable, p.lastErr)
	}
	return nil
}

func (p *idp) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
}

func (p *idp) discover(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, p.cfg.HTTPClient), 15*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, p.cfg.ProviderURL)
	if err != nil {
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		return err
	}
	var extra struct {
		EndSession string   `json:"end_session_endpoint"`
		JWKSURI    string   `json:"jwks_uri"`
		Algs       []string `json:"id_token_signing_alg_values_supported"`
	}
	_ = provider.Claims(&extra)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.provider = provider
	p.keys = newKeyFetchGate(p.cfg.HTTPClient, p.cfg.KeySetRefreshInterval, p.cfg.Now)
	p.keys.failed = func() { p.cfg.observe(EventIdPFetchError, FetchKeys, p.cfg.ProviderURL) }
	// One key set for ID tokens and logout tokens: one cache, one bound on
	// fetches. As provider.VerifierContext does, but shared.
	keySet := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), p.keys.client), extra.JWKSURI)
	algs := signingAlgs(extra.Algs)
	p.verifier = oidc.NewVerifier(p.cfg.ProviderURL, keySet,
		&oidc.Config{ClientID: p.cfg.ClientID, Now: p.cfg.Now, SupportedSigningAlgs: algs})
	p.logoutVerifier = oidc.NewVerifier(p.cfg.ProviderURL, keySet,
		&oidc.Config{ClientID: p.cfg.ClientID, Now: p.cfg.Now, SupportedSigningAlgs: algs, SkipExpiryCheck: true})
	p.oauth = oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		Endpoint:     provider.Endpoint(),
		Scopes:       p.cfg.Scopes,
	}
	p.endURL = extra.EndSession
	p.lastErr = nil
	p.cfg.Logger.Info("identity provider ready", zap.String("provider_url", p.cfg.ProviderURL))
	p.cfg.observe(EventIdP, ResultUp, p.cfg.ProviderURL)
	return nil
}

// get returns the provider's verifier and OAuth2 config, or
// ErrIdPUnavailable (and nudges the retry loop).
func (p *idp) get() (*oidc.IDTokenVerifier, oauth2.Config, string, error) {
	p.mu.RLock()
	first, known := p.first, p.provider != nil
	p.mu.RUnlock()
	if !known && first != nil {
		select {
		case <-first: // the first attempt is over: no wait, and no timer, while the IdP stays down
		default:
			t := time.NewTimer(firstDiscoveryWait)
			select {
			case <-first:
			case <-t.C:
			}
			t.Stop()
		}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.provider == nil {
		select {
		case p.wake <- struct{}{}:
		default:
		}
		return nil, oauth2.Config{}, "", ErrIdPUnavailable
	}
	return p.verifier, p.oauth, p.endURL, nil
}

// oidcProvider returns the discovered provider, or ErrIdPUnavailable (and
// nudges the retry loop).
func (p *idp) oidcProvider() (*oidc.Provider, error) {
	if _, _, _, err := p.get(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.provider, nil
}

func (p *idp) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.cfg.HTTPClient)
}

// keysLimited reports whether a key set fetch was refused in the current
// interval: a token that failed to verify meanwhile may be signed with a
// key the IdP has just rotated in, so it says nothing about the token.
func (p *idp) keysLimited() bool {
	p.mu.RLock()
	g := p.keys
	p.mu.RUnlock()
	return g != nil && g.limited()
}
