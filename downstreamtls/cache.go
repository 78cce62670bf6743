package downstreamtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// Cache remembers verification results by the certificates presented, so a
// client's chain is verified once per connection burst rather than on every
// request. A valid result is kept until the chain, a CRL or an OCSP answer
// it used expires, and at most MaxAge; an invalid one for MaxAge, or until
// the OCSP responder that did not answer is asked again. A result is never
// reused once the CA or CRL file has changed: entries carry the generation
// of the files they were verified with.
type Cache struct {
	v       *Verifier
	mu      sync.Mutex
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	r     *Result
	gen   uint64
	until time.Time
}

// MaxAge bounds how long a result is reused; MaxEntries how many are kept.
const (
	MaxAge     = 5 * time.Minute
	MaxEntries = 4096
)

// NewCache returns a cache in front of v.
func NewCache(v *Verifier) *Cache {
	return &Cache{v: v, entries: make(map[[32]byte]cacheEntry)}
}

// Verify returns the cached result for these certificates, or verifies them.
func (c *Cache) Verify(presented []*x509.Certificate, now time.Time) *Result {
	if len(presented) == 0 {
		r := c.v.Verify(nil, now)
		return &r
	}
	t := c.v.current()
	key := chainKey(presented, func(c *x509.Certificate) []byte { return c.Raw })
	if r := c.lookup(key, t.gen, now); r != nil {
		return r
	}
	return c.verify(t, key, presented, now)
}

// VerifyDER is Verify for certificates in DER, as a TLS handshake's verifier
// receives them: a chain seen before is answered from the cache without
// parsing it (crypto/tls has parsed it already), which is most of what
// verifying a known client costs. It parses the certificates only to verify
// them; the error is a certificate that does not parse, and then there is no
// result.
func (c *Cache) VerifyDER(rawCerts [][]byte, now time.Time) (*Result, error) {
	if len(rawCerts) == 0 {
		return c.Verify(nil, now), nil
	}
	t := c.v.current()
	key := chainKey(rawCerts, func(der []byte) []byte { return der })
	if r := c.lookup(key, t.gen, now); r != nil {
		return r, nil
	}
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	return c.verify(t, key, certs, now), nil
}

// Close lets go of what the verifier holds open.
func (c *Cache) Close() { c.v.Close() }

// chainKey names a list of certificates by the SHA-256 of each one's
// length and DER, so that certificates run together cannot alias a chain.
// x509.ParseCertificate refuses trailing data, so cert.Raw is the DER it
// parsed and Verify and VerifyDER make the same key.
func chainKey[T any](certs []T, der func(T) []byte) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		b := der(c)
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var key [32]byte
	h.Sum(key[:0])
	return key
}

func (c *Cache) lookup(key [32]byte, gen uint64, now time.Time) *Result {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && e.gen == gen && now.Before(e.until) {
		return e.r
	}
	return nil
}

func (c *Cache) verify(t *trust, key [32]byte, presented []*x509.Certificate, now time.Time) *Result {
	r := c.v.verify(t, presented, now)
	until := now.Add(MaxAge)
	if !r.NotAfter.IsZero() && r.NotAfter.Before(until) {
		until = r.NotAfter
	}
	c.mu.Lock()
	if len(c.entries) >= MaxEntries {
		clear(c.entries)
	}
	c.entries[key] = cacheEntry{r: &r, gen: t.gen, until: until}
	c.mu.Unlock()
	return &r
}
