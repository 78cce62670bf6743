package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// assertionTTL is the lifetime of an identity assertion; a signed assertion
// is reused until assertionReuse before it expires.
const (
	assertionTTL   = 5 * time.Minute
	assertionReuse = 4 * time.Minute
	maxCached      = 10000
)

// assertionSigner signs identity assertions (ES256) and serves the JWKS.
type assertionSigner struct {
	signer jose.Signer
	kid    string
	jwks   []byte
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedAssertion
}

type cachedAssertion struct {
	jwt        string
	reuseUntil time.Time
}

func newAssertionSigner(key crypto.Signer, now func() time.Time) (*assertionSigner, error) {
	ec, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the signing key must be ECDSA P-256 (ES256)")
	}
	pub := jose.JSONWebKey{Key: ec, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &assertionSigner{signer: signer, kid: pub.KeyID, jwks: jwks, now: now, cache: map[string]cachedAssertion{}}, nil
}

// assertionClaims are the identity assertion's claims.
type assertionClaims struct {
	jwt.Claims
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups"`
	SID    string   `json:"sid"`
}

// Assertion returns a signed JWT saying who the user is, for the upstream
// of the route at host: iss and aud are that host's name (without a port).
// An assertion is signed once per session, host and identity and reused
// for most of its life.
func (a *Authenticator) Assertion(s *Session, host string) (string, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return a.signer.assertion(s, strings.ToLower(host))
}

func (as *assertionSigner) assertion(s *Session, host string) (string, error) {
	key := cacheKey(s, host)
	now := as.now()
	as.mu.Lock()
	if c, ok := as.cache[key]; ok && now.Before(c.reuseUntil) {
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
			Issuer: host, Audience: jwt.Audience{host}, Subject: s.Subject,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			Expiry: jwt.NewNumericDate(now.Add(assertionTTL)), ID: randomID(),
		},
		Email: s.Email, Name: s.Name, Groups: groups, SID: s.ID,
	}
	signed, err := jwt.Signed(as.signer).Claims(claims).Serialize()
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
	as.cache[key] = cachedAssertion{jwt: signed, reuseUntil: now.Add(assertionReuse)}
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
