package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
)

// Workload JWTs: bearer tokens that non-interactive clients (Kubernetes
// service accounts, CI jobs, SPIFFE JWT-SVIDs, an OAuth 2.0 server's
// client_credentials grant) get from an issuer of their own, as Pomerium's
// identity_providers with bearer_token_format jwt. They are verified here
// against the issuer's published keys, never sent anywhere, and they never
// become a session cookie: each request carries its token.

// WorkloadIssuer is one issuer of workload JWTs (an entry of Pomerium's
// identity_providers).
type WorkloadIssuer struct {
	// Name is the issuer's name, which routes list to accept it, and the
	// prefix of its users' IDs: "<name>/<sub>". Lowercase, without "/".
	Name string
	// Issuer is the tokens' iss, exactly. An https URL (http only on a
	// loopback host). Without JWKSURL, its OpenID Connect discovery
	// document names the key set.
	Issuer string
	// JWKSURL, when set, is the key set's URL, and no discovery is done.
	JWKSURL string
	// SupportedAlgs are the signing algorithms accepted; default
	// DefaultWorkloadAlgs. HMAC (HS*) and none are refused.
	SupportedAlgs []string
	// Audiences: a token's aud must name at least one. Required.
	Audiences []string
}

// DefaultWorkloadAlgs are the algorithms a WorkloadIssuer without
// SupportedAlgs accepts, as Pomerium's default.
var DefaultWorkloadAlgs = []string{"RS256", "ES256", "EdDSA"}

// workloadAlgs are the algorithms a WorkloadIssuer may list: asymmetric
// ones only. A shared-secret (HS*) or unsigned token cannot be verified
// with a public key set; accepting HS256 would let anyone sign with the
// published public key as the secret.
var workloadAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// MaxWorkloadToken bounds a workload token: a longer one is refused before
// it is parsed. Kubernetes service-account tokens and CI tokens are one or
// two kilobytes.
const MaxWorkloadToken = 16 << 10

// ErrWorkloadIssuerUnknown: the token's iss is none of the configured
// issuers.
var ErrWorkloadIssuerUnknown = errors.New("no identity provider of identity_providers has the token's issuer")

// CheckWorkloadIssuer checks one issuer's settings, as Pomerium does: its
// name, an absolute https issuer (http on loopback only; kubernetes:/// is
// not supported), an https jwks_url, audiences, and only asymmetric
// algorithms. The error names the setting.
func CheckWorkloadIssuer(w WorkloadIssuer) error {
	if w.Name == "" {
		return errors.New("an identity provider needs a name")
	}
	if strings.Contains(w.Name, "/") {
		return fmt.Errorf("identity provider %q: the name must not contain '/' (user IDs are <name>/<sub>)", w.Name)
	}
	if w.Name != strings.ToLower(w.Name) {
		return fmt.Errorf("identity provider %q: the name must be lowercase (Pomerium lowercases the map's keys, so a route could never name it)", w.Name)
	}
	if w.Issuer == "" {
		return fmt.Errorf("identity provider %q: issuer is required", w.Name)
	}
	u, err := url.Parse(w.Issuer)
	if err != nil {
		return fmt.Errorf("identity provider %q: issuer %q: %v", w.Name, w.Issuer, err)
	}
	if u.Scheme == "kubernetes" {
		return fmt.Errorf("identity provider %q: issuer %q: the in-cluster Kubernetes issuer is not supported; give the API server's issuer URL (kubectl get --raw /.well-known/openid-configuration) as issuer, and its jwks_url if caddy-iap cannot reach the discovery document", w.Name, w.Issuer)
	}
	if !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("identity provider %q: issuer %q must be an absolute URL (https://host[/path])", w.Name, w.Issuer)
	}
	if !secureKeyURL(u) {
		return fmt.Errorf("identity provider %q: issuer %q must use https (http only on a loopback host): its keys would be fetched in the clear, and anyone on the path could replace them", w.Name, w.Issuer)
	}
	if w.JWKSURL != "" {
		j, err := url.Parse(w.JWKSURL)
		if err != nil || !j.IsAbs() || j.Host == "" || !secureKeyURL(j) {
			return fmt.Errorf("identity provider %q: jwks_url %q must be an https URL (http only on a loopback host)", w.Name, w.JWKSURL)
		}
	}
	if len(w.Audiences) == 0 {
		return fmt.Errorf("identity provider %q: audiences are required: a token is accepted only for one of them", w.Name)
	}
	for _, a := range w.Audiences {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("identity provider %q: an empty audience", w.Name)
		}
	}
	for _, alg := range w.SupportedAlgs {
		if !slices.Contains(workloadAlgs, alg) {
			return fmt.Errorf("identity provider %q: supported_algs %q is not accepted: want one of %s (HMAC and none cannot be verified with a public key set)",
				w.Name, alg, strings.Join(workloadAlgs, ", "))
		}
	}
	return nil
}

// secureKeyURL: https, or http on a loopback host.
func secureKeyURL(u *url.URL) bool {
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	h := strings.ToLower(u.Hostname())
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback()
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// WorkloadsConfig configures Workloads.
type WorkloadsConfig struct {
	// Issuers are the issuers, each with its own name and issuer URL.
	Issuers []WorkloadIssuer
	// HTTPClient fetches discovery documents and key sets. Default: a
	// client with a 30s timeout.
	HTTPClient *http.Client
	// KeySetRefreshInterval bounds how often each issuer's key set (and
	// a failed discovery) is fetched: tokens naming a key ID not yet held
	// make at most one fetch per interval. Default: 10s.
	KeySetRefreshInterval time.Duration
	// Now is the clock. Default: time.Now.
	Now    func() time.Time
	Logger *zap.Logger
	// Observe, when set, is told of failed fetches as Config.Observe is:
	// EventIdPFetchError with FetchDiscovery or FetchKeys, and the
	// issuer's URL as the reason.
	Observe func(event, result, reason string)
}

// Workloads verifies workload JWTs of several issuers. It does nothing
// until a token names an issuer: then that issuer's discovery document
// (unless it has a jwks_url) and key set are fetched, and the keys are
// kept and fetched again when a token names a key ID that is not held
// (at most once per KeySetRefreshInterval).
type Workloads struct {
	cfg      WorkloadsConfig
	byIssuer map[string]*workloadIssuer
}

type workloadIssuer struct {
	WorkloadIssuer
	keys *keyFetchGate
	// keysFailed is when a key set fetch last failed (Unix nanoseconds),
	// 0 if none did.
	keysFailed atomic.Int64

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	failedAt time.Time // when discovery last failed
	lastErr  error
}

// NewWorkloads checks the issuers (CheckWorkloadIssuer, unique names and
// issuers) and returns their verifier. It fetches nothing.
func NewWorkloads(cfg WorkloadsConfig) (*Workloads, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.KeySetRefreshInterval == 0 {
		cfg.KeySetRefreshInterval = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	w := &Workloads{cfg: cfg, byIssuer: map[string]*workloadIssuer{}}
	names := map[string]bool{}
	for _, iss := range cfg.Issuers {
		if err := CheckWorkloadIssuer(iss); err != nil {
			return nil, err
		}
		if names[iss.Name] {
			return nil, fmt.Errorf("identity provider %q is defined twice", iss.Name)
		}
		names[iss.Name] = true
		if other, ok := w.byIssuer[iss.Issuer]; ok {
			return nil, fmt.Errorf("identity providers %q and %q have the same issuer %q: a token's iss must say which one verifies it", other.Name, iss.Name, iss.Issuer)
		}
		if len(iss.SupportedAlgs) == 0 {
			iss.SupportedAlgs = DefaultWorkloadAlgs
		}
		iss.SupportedAlgs = slices.Clone(iss.SupportedAlgs)
		iss.Audiences = slices.Clone(iss.Audiences)
		wi := &workloadIssuer{WorkloadIssuer: iss, keys: newKeyFetchGate(cfg.HTTPClient, cfg.KeySetRefreshInterval, cfg.Now)}
		issuer, now := iss.Issuer, cfg.Now
		wi.keys.failed = func() {
			wi.keysFailed.Store(now().UnixNano())
			if cfg.Observe != nil {
				cfg.Observe(EventIdPFetchError, FetchKeys, issuer)
			}
		}
		w.byIssuer[iss.Issuer] = wi
	}
	return w, nil
}

// Verify verifies a workload JWT and returns its identity, a Session
// (Bearer, Workload set) that is never written to a cookie. allowed names
// the issuers accepted (nil: all of them). The token must be at most
// MaxWorkloadToken bytes; its (unverified) iss selects the issuer, which
// must be allowed; then the signature (one of the issuer's algorithms, a
// key of its key set), iss, exp and nbf (go-oidc's checks, nbf with five
// minutes' leeway) and aud (one of the issuer's audiences) are checked, and
// sub is required. A refused token is ErrBadBearer; an issuer whose
// discovery document or key set cannot be fetched is ErrIdPUnavailable.
func (w *Workloads) Verify(ctx context.Context, raw string, allowed []string) (*Session, error) {
	if w == nil || len(w.byIssuer) == 0 {
		return nil, badWorkload(errors.New("no identity_providers are configured"))
	}
	if len(raw) > MaxWorkloadToken {
		return nil, badWorkload(fmt.Errorf("the token is %d bytes, over the %d accepted", len(raw), MaxWorkloadToken))
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, badWorkload(err)
	}
	wi := w.byIssuer[iss]
	if wi == nil {
		return nil, badWorkload(fmt.Errorf("%w (%q)", ErrWorkloadIssuerUnknown, truncate(iss, 100)))
	}
	if allowed != nil && !slices.Contains(allowed, wi.Name) {
		return nil, badWorkload(fmt.Errorf("identity provider %q (issuer %q) is not allowed on this route, which accepts %q", wi.Name, iss, allowed))
	}
	verifier, err := w.verifier(ctx, wi)
	if err != nil {
		return nil, err
	}
	tok, err := verifier.Verify(oidc.ClientContext(ctx, wi.keys.client), raw)
	if err != nil {
		// A key ID not held, while a fetch is refused, says so itself
		// (errKeysFetchedRecently): the token may be good, signed with a
		// key rotated in since. A key set that could not be fetched at all
		// is the issuer's fault, not the token's: 503, as a failed
		// discovery. (go-oidc keeps only the text of the cause.)
		// Until the next fetch is allowed, a key set whose last fetch
		// failed is still down.
		if msg := err.Error(); strings.Contains(msg, "fetching keys") &&
			(!strings.Contains(msg, errKeysFetchedRecently.Error()) || wi.keysDown(w.cfg.Now(), w.cfg.KeySetRefreshInterval)) {
			return nil, fmt.Errorf("%w: identity provider %q: %v", ErrIdPUnavailable, wi.Name, err)
		}
		return nil, badWorkload(fmt.Errorf("identity provider %q: %w", wi.Name, err))
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(wi.Audiences, a) }) {
		return nil, badWorkload(fmt.Errorf("identity provider %q: the token's audience %q is none of its audiences %q", wi.Name, tok.Audience, wi.Audiences))
	}
	if tok.Subject == "" {
		return nil, badWorkload(fmt.Errorf("identity provider %q: the token has no sub", wi.Name))
	}
	if typ, declared, _ := jwtType(raw); declared != nil && (typ == "logout+jwt" || typ == "secevent+jwt") {
		return nil, badWorkload(fmt.Errorf("identity provider %q: the token is typed %q, a security event (logout) token, not a bearer token", wi.Name, *declared))
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, badWorkload(err)
	}
	if _, ok := claims["events"]; ok {
		return nil, badWorkload(fmt.Errorf("identity provider %q: the token has an events claim: a security event (logout) token, not a bearer token", wi.Name))
	}
	s := &Session{
		ID:            "workload-" + wi.Name + "/" + tok.Subject,
		Subject:       wi.Name + "/" + tok.Subject,
		IDTokenExpiry: tok.Expiry,
		IssuedAt:      w.cfg.Now(),
		Claims:        claims,
		Kept:          slices.Sorted(maps.Keys(claims)),
		Bearer:        true,
		Workload:      wi.Name,
	}
	s.Email, _ = claims["email"].(string)
	s.Name, _ = claims["name"].(string)
	s.Groups = stringList(claims["groups"])
	return s, nil
}

// verifier returns the issuer's verifier, discovering it on first use. A
// failed discovery is tried again at most once per KeySetRefreshInterval;
// meanwhile its tokens get ErrIdPUnavailable.
func (w *Workloads) verifier(ctx context.Context, wi *workloadIssuer) (*oidc.IDTokenVerifier, error) {
	wi.mu.Lock()
	defer wi.mu.Unlock()
	if wi.verifier != nil {
		return wi.verifier, nil
	}
	now := w.cfg.Now()
	if !wi.failedAt.IsZero() && !now.Before(wi.failedAt) && now.Before(wi.failedAt.Add(w.cfg.KeySetRefreshInterval)) {
		return nil, fmt.Errorf("%w: identity provider %q: %v", ErrIdPUnavailable, wi.Name, wi.lastErr)
	}
	jwksURL := wi.JWKSURL
	if jwksURL == "" {
		// Discovery checks that the document's issuer is wi.Issuer. Its
		// context is the request's, bounded: the key set below keeps a
		// context of its own.
		dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), w.cfg.HTTPClient), 15*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(dctx, wi.Issuer)
		var doc struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err == nil {
			err = p.Claims(&doc)
		}
		if err == nil && doc.JWKSURI == "" {
			err = errors.New("the discovery document names no jwks_uri")
		}
		if err != nil {
			if w.cfg.Observe != nil {
				w.cfg.Observe(EventIdPFetchError, FetchDiscovery, wi.Issuer)
			}
			wi.failedAt, wi.lastErr = now, firstLineOf(err.Error())
			w.cfg.Logger.Warn("workload identity provider discovery failed; its tokens are refused with 503 until it works",
				zap.String("identity_provider", wi.Name), zap.String("issuer", wi.Issuer), zap.Error(err))
			return nil, fmt.Errorf("%w: identity provider %q: %v", ErrIdPUnavailable, wi.Name, wi.lastErr)
		}
		jwksURL = doc.JWKSURI
	}
	keySet := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), wi.keys.client), jwksURL)
	wi.verifier = oidc.NewVerifier(wi.Issuer, keySet, &oidc.Config{
		SkipClientIDCheck:    true, // the audiences are checked in Verify
		SupportedSigningAlgs: wi.SupportedAlgs,
		Now:                  w.cfg.Now,
	})
	w.cfg.Logger.Info("workload identity provider ready",
		zap.String("identity_provider", wi.Name), zap.String("issuer", wi.Issuer), zap.String("jwks_url", jwksURL))
	return wi.verifier, nil
}

// keysDown reports whether a key set fetch failed within the interval.
func (wi *workloadIssuer) keysDown(now time.Time, interval time.Duration) bool {
	t := wi.keysFailed.Load()
	return t != 0 && now.Before(time.Unix(0, t).Add(interval))
}

// unverifiedIssuer reads a JWT's iss without verifying anything, to pick
// the issuer that verifies it (and checks iss again).
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("the token is not a JWT (three dot-separated parts)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("the token's payload: %v", err)
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("the token's payload: %v", err)
	}
	if c.Iss == "" {
		return "", errors.New("the token has no iss")
	}
	return c.Iss, nil
}

// workloadError is a refused workload token: ErrBadBearer.
type workloadError struct{ err error }

func (e *workloadError) Error() string   { return ErrBadBearer.Error() + ": " + e.err.Error() }
func (e *workloadError) Unwrap() []error { return []error{ErrBadBearer, e.err} }

func badWorkload(err error) error { return &workloadError{err: err} }

// isWorkloadRefusal reports whether err refused a workload token.
func isWorkloadRefusal(err error) bool {
	var we *workloadError
	return errors.As(err, &we)
}

// workloadRefusal is what a client whose workload token was refused is
// told.
const workloadRefusal = "The bearer token is not a workload JWT this route accepts (its issuer is not one of the route's identity providers, or it is expired, for another audience, or not signed by its issuer). Send a current token from one of the route's identity providers."

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func firstLineOf(s string) error {
	s, _, _ = strings.Cut(s, "\n")
	return errors.New(truncate(s, 200))
}

// SentSessionCookie reports whether the request carries this
// Authenticator's session cookie, or a chunk of one (valid or not).
func (a *Authenticator) SentSessionCookie(r *http.Request) bool {
	for _, c := range r.Cookies() {
		if a.jar.owns(c.Name) {
			return true
		}
	}
	return false
}
