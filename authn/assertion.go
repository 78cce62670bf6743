package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionLifetime is how long an identity assertion is valid. A key that
// stopped signing must stay in the JWKS at least this long after, for the
// assertions it signed last.
const AssertionLifetime = assertionTTL

// assertionTTL is the lifetime of an identity assertion; a signed assertion
// is reused until assertionReuse before it expires.
const (
	assertionTTL   = 5 * time.Minute
	assertionReuse = 4 * time.Minute
	maxCached      = 10000
)

// defaultJWKSMaxAge is how long clients may cache the JWKS by default.
const defaultJWKSMaxAge = 5 * time.Minute

// SigningKey is one key of the assertions' key ring.
type SigningKey struct {
	// Key is an ECDSA P-256 private key (ES256).
	Key crypto.Signer
	// SignsFrom is when the key starts signing; zero for a key that
	// signs from the start. Of the keys whose time has come, the one
	// with the latest SignsFrom signs (the first listed among equals);
	// every key of the ring is published in the JWKS, so a key listed
	// before its time is published before it signs, and one kept after
	// it is published while its assertions live.
	SignsFrom time.Time
}

// KeyID is the key ID ("kid") under which a public key is published and
// names the assertions it verifies: its RFC 7638 thumbprint, base64url.
func KeyID(pub crypto.PublicKey) (string, error) {
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return "", errors.New("the signing key must be ECDSA P-256 (ES256)")
	}
	thumb, err := (&jose.JSONWebKey{Key: ec}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(thumb), nil
}

// assertionSigner signs identity assertions (ES256) and serves the JWKS.
// Its key ring can be replaced while it serves (SetSigningKeys).
type assertionSigner struct {
	ring atomic.Pointer[keyRing]
	now  func() time.Time
	// idp is the named IdP's name, the assertion's idp claim (Config.IDPName).
	idp string

	mu    sync.Mutex
	cache map[string]cachedAssertion
}

// keyRing is a key ring ready to use: the signers and the JWKS.
type keyRing struct {
	keys []ringKey
	jwks []byte
}

type ringKey struct {
	signer    jose.Signer
	kid       string
	signsFrom time.Time
}

type cachedAssertion struct {
	jwt        string
	kid        string
	reuseUntil time.Time
}

func newAssertionSigner(keys []SigningKey, now func() time.Time) (*assertionSigner, error) {
	as := &assertionSigner{now: now, cache: map[string]cachedAssertion{}}
	if err := as.setKeys(keys); err != nil {
		return nil, err
	}
	return as, nil
}

// setKeys replaces the key ring.
func (as *assertionSigner) setKeys(keys []SigningKey) error {
	if len(keys) == 0 {
		return errors.New("a signing key is required")
	}
	ring := &keyRing{}
	var set jose.JSONWebKeySet
	seen := map[string]bool{}
	for i, k := range keys {
		if k.Key == nil {
			return fmt.Errorf("signing key %d is missing", i+1)
		}
		kid, err := KeyID(k.Key.Public())
		if err != nil {
			return fmt.Errorf("signing key %d: %v", i+1, err)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.Key, KeyID: kid}},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return fmt.Errorf("signing key %d: %v", i+1, err)
		}
		ring.keys = append(ring.keys, ringKey{signer: signer, kid: kid, signsFrom: k.SignsFrom})
		if !seen[kid] {
			seen[kid] = true
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key.Public(), KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
		}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return err
	}
	ring.jwks = jwks
	as.ring.Store(ring)
	return nil
}

// current is the key that signs at now: of those whose time has come, the
// latest (the first listed among equals); the earliest when none has.
func (r *keyRing) current(now time.Time) *ringKey {
	best := -1
	for i := range r.keys {
		k := &r.keys[i]
		if k.signsFrom.After(now) {
			continue
		}
		if best < 0 || k.signsFrom.After(r.keys[best].signsFrom) {
			best = i
		}
	}
	if best < 0 {
		best = 0
		for i := range r.keys {
			if r.keys[i].signsFrom.Before(r.keys[best].signsFrom) {
				best = i
			}
		}
	}
	return &r.keys[best]
}

// SetSigningKeys replaces the assertions' key ring while the Authenticator
// serves: the JWKS then lists every key given, and the key whose time has
// come signs. It is for rotation by a schedule kept elsewhere (Caddy's
// storage); a key changed by a config reload needs no call.
func (a *Authenticator) SetSigningKeys(keys []SigningKey) error {
	return a.signer.setKeys(keys)
}

// SigningKeyID is the key ID of the key that signs assertions now.
func (a *Authenticator) SigningKeyID() string {
	return a.signer.ring.Load().current(a.signer.now()).kid
}

// assertionClaims are the identity assertion's claims.
type assertionClaims struct {
	jwt.Claims
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups"`
	SID    string   `json:"sid"`
	// IDP names the named IdP that signed the user in (the iap app's
	// idps); absent for the default IdP. An upstream behind routes of
	// several IdPs tells their users apart by it: sub is only unique
	// within one IdP.
	IDP string `json:"idp,omitempty"`
}

// Assertion returns a signed JWT saying who the user is, for the upstream
// of the route at host: iss and aud are that host's name (without a port).
// An assertion is signed once per session, host and identity and reused
// for most of its life.
func (a *Authenticator) Assertion(s *Session, host string) (string, error) {
	return a.AssertionFor(s, host, false)
}

// AssertionFor is Assertion with iss written as a URI, https://<host>/,
// when uriIssuer is set (Pomerium's jwt_issuer_format uri); aud stays the
// host's name.
func (a *Authenticator) AssertionFor(s *Session, host string, uriIssuer bool) (string, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return a.signer.assertion(s, strings.ToLower(host), uriIssuer)
}

func (as *assertionSigner) assertion(s *Session, host string, uriIssuer bool) (string, error) {
	key, issuer := cacheKey(s, host), host
	if uriIssuer {
		key, issuer = key+"uri", "https://"+host+"/"
	}
	now := as.now()
	signing := as.ring.Load().current(now)
	as.mu.Lock()
	// An assertion of a key that no longer signs is not reused: every
	// instance switches keys together.
	if c, ok := as.cache[key]; ok && now.Before(c.reuseUntil) && c.kid == signing.kid {
		as.mu.Unlock()
		return c.jwt, nil
	}
	as.mu.Unlock()

	groups := s.Groups
	if groups == nil {
		groups = []string{}
	}
	claims := assertionClaims{
		Claims: jwt.Claims{
			Issuer: issuer, Audience: jwt.Audience{host}, Subject: s.Subject,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			Expiry: jwt.NewNumericDate(now.Add(assertionTTL)), ID: randomID(),
		},
		Email: s.Email, Name: s.Name, Groups: groups, SID: s.ID, IDP: as.idp,
	}
	signed, err := jwt.Signed(signing.signer).Claims(claims).Serialize()
	if err != nil {
		return "", err
	}
	as.mu.Lock()
	if len(as.cache) >= maxCached {
		for k, c := range as.cache {
			if now.After(c.reuseUntil) {
				delete(as.cache, k)
			}
		}
		if len(as.cache) >= maxCached {
			clear(as.cache)
		}
	}
	as.cache[key] = cachedAssertion{jwt: signed, kid: signing.kid, reuseUntil: now.Add(assertionReuse)}
	as.mu.Unlock()
	return signed, nil
}

// cacheKey changes whenever anything the assertion says changes.
func cacheKey(s *Session, host string) string {
	h := sha256.New()
	for _, part := range append([]string{s.ID, host, s.Subject, s.Email, s.Name}, s.Groups...) {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return string(h.Sum(nil))
}
