package module

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
)

// The assertions' keys: signing_key_file or signing_key when set (one or
// more PEM keys: the first signs, all are published, as Pomerium's
// signing_key), else a key ring kept in Caddy's storage under
// signingKeyStorageKey and shared by every instance using that storage.
//
// The stored ring is a PEM file of PKCS#8 keys, oldest first, each but a
// first one that always signed with a Signs-From header: the time from
// which it signs. A file of one key without the header, as earlier
// versions wrote it, is a ring of that key. Every instance reads the same
// ring and computes the same signer from the clock, so they switch keys
// together without talking to each other; only changes to the ring (the
// first key, a next key, dropping retired keys) are written, under the
// storage's lock, after reading the ring again under it.
//
// With signing_key_rotate R, the ring always holds a next key, generated
// and published R before it signs: when a key starts signing, the first
// instance to notice adds the one after it, for now+R. A key that stopped
// signing stays published for the assertions' lifetime plus
// retiredKeyMargin, then is dropped.
const (
	signingKeyStorageKey = "iap/signing-key.pem"
	signingKeyLockName   = "iap/signing-key"
	signsFromHeader      = "Signs-From"
	// retiredKeyMargin is how much longer than an assertion's lifetime a
	// retired key stays published: clock differences between instances
	// and requests in flight.
	retiredKeyMargin = time.Minute
	// minSigningKeyRotate bounds signing_key_rotate from below.
	minSigningKeyRotate = time.Second
	// storageLockTimeout bounds the wait for the storage's lock.
	storageLockTimeout = time.Minute
)

// signingKeys returns the configured keys, or the ring in storage
// (maintained first when it needs it); fromStorage says which.
func (a *App) signingKeys(ctx caddy.Context) (keys []authn.SigningKey, fromStorage bool, err error) {
	if a.SigningKeyFile != "" || a.SigningKey != "" {
		if a.SigningKeyRotate != 0 {
			return nil, false, errors.New("signing_key_rotate rotates the generated key in Caddy's storage; with signing_key or signing_key_file, " +
				"rotate by listing the new key after the current one, then first, then removing the old one")
		}
		if a.SigningKeyFile != "" {
			b, err := os.ReadFile(a.SigningKeyFile)
			if err != nil {
				return nil, false, fmt.Errorf("signing_key_file: %v", err)
			}
			keys, err := parseSigningKeys(b, false)
			if err != nil {
				return nil, false, fmt.Errorf("signing_key_file %s: %v", a.SigningKeyFile, err)
			}
			return keys, false, nil
		}
		b, err := base64.StdEncoding.DecodeString(a.SigningKey)
		if err != nil {
			return nil, false, fmt.Errorf("signing_key: not base64: %v", err)
		}
		keys, err := parseSigningKeys(b, false)
		if err != nil {
			return nil, false, fmt.Errorf("signing_key: %v", err)
		}
		return keys, false, nil
	}
	if a.SigningKeyRotate < 0 || a.SigningKeyRotate > 0 && time.Duration(a.SigningKeyRotate) < minSigningKeyRotate {
		return nil, false, fmt.Errorf("signing_key_rotate: %s is not a duration of at least %s", time.Duration(a.SigningKeyRotate), minSigningKeyRotate)
	}
	keys, err = storedSigningKeys(ctx, ctx.Storage(), time.Duration(a.SigningKeyRotate), time.Now(), storageLockTimeout, a.logger)
	return keys, true, err
}

// storedSigningKeys loads the ring from storage. When it needs a change
// (no key yet, no next key while rotating, retired keys to drop), it takes
// the storage's lock, loads it again, and changes and stores it only if
// it still needs it, so that instances starting together generate one key,
// not one each.
//
// lockWait bounds the wait for the lock. A watcher waits less than its
// interval and, when another instance holds the lock (doing the same
// work), keeps the ring it has until its next look: waiting for a file
// lock, polled every second, could otherwise starve an instance whose
// looks fall in step with another's.
func storedSigningKeys(ctx context.Context, storage certmagic.Storage, rotate time.Duration, now time.Time, lockWait time.Duration, logger *zap.Logger) ([]authn.SigningKey, error) {
	ring, err := loadRing(ctx, storage)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if _, changed, _ := maintainRing(ring, rotate, now); !changed {
		return ring, nil
	}
	lockCtx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	if err := storage.Lock(lockCtx, signingKeyLockName); err != nil {
		if len(ring) > 0 && errors.Is(lockCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return ring, nil // another instance is at it
		}
		return nil, fmt.Errorf("locking %s in storage: %v", signingKeyLockName, err)
	}
	defer func() {
		if err := storage.Unlock(context.WithoutCancel(ctx), signingKeyLockName); err != nil && logger != nil {
			logger.Error("unlocking the signing key in storage", zap.Error(err))
		}
	}()
	ring, err = loadRing(ctx, storage)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	next, changed, err := maintainRing(ring, rotate, time.Now())
	if err != nil || !changed {
		return ring, err
	}
	b, err := encodeRing(next)
	if err != nil {
		return nil, err
	}
	if err := storage.Store(ctx, signingKeyStorageKey, b); err != nil {
		return nil, fmt.Errorf("storing %s: %v", signingKeyStorageKey, err)
	}
	if logger != nil {
		logRingChange(logger, ring, next)
	}
	return next, nil
}

// loadRing reads the stored ring; fs.ErrNotExist when there is none.
func loadRing(ctx context.Context, storage certmagic.Storage) ([]authn.SigningKey, error) {
	b, err := storage.Load(ctx, signingKeyStorageKey)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("loading %s from storage: %v", signingKeyStorageKey, err)
	}
	ring, err := parseSigningKeys(b, true)
	if err != nil {
		return nil, fmt.Errorf("%s in storage: %v", signingKeyStorageKey, err)
	}
	return ring, nil
}

// maintainRing returns the ring as it should be at now: a first key when
// there is none; with rotate, a next key, signing from now+rotate, when
// none is scheduled; without the keys that stopped signing longer ago than
// an assertion lives, plus the margin. changed reports a difference.
func maintainRing(ring []authn.SigningKey, rotate time.Duration, now time.Time) (out []authn.SigningKey, changed bool, err error) {
	out = slices.Clone(ring)
	slices.SortStableFunc(out, func(x, y authn.SigningKey) int { return x.SignsFrom.Compare(y.SignsFrom) })
	if len(out) == 0 {
		k, err := newSigningKey(time.Time{})
		if err != nil {
			return nil, false, err
		}
		out, changed = append(out, k), true
	}
	// Drop retired keys: key i stopped signing when key i+1 started.
	for len(out) > 1 && !out[1].SignsFrom.Add(authn.AssertionLifetime+retiredKeyMargin).After(now) {
		out, changed = out[1:], true
	}
	if rotate > 0 && !out[len(out)-1].SignsFrom.After(now) {
		k, err := newSigningKey(now.Add(rotate).Truncate(time.Second))
		if err != nil {
			return nil, false, err
		}
		out, changed = append(out, k), true
	}
	return out, changed, nil
}

func newSigningKey(signsFrom time.Time) (authn.SigningKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return authn.SigningKey{}, err
	}
	return authn.SigningKey{Key: k, SignsFrom: signsFrom}, nil
}

// encodeRing writes a ring as parseSigningKeys reads it.
func encodeRing(ring []authn.SigningKey) ([]byte, error) {
	var buf bytes.Buffer
	for _, k := range ring {
		der, err := x509.MarshalPKCS8PrivateKey(k.Key)
		if err != nil {
			return nil, err
		}
		block := &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		if !k.SignsFrom.IsZero() {
			block.Headers = map[string]string{signsFromHeader: k.SignsFrom.UTC().Format(time.RFC3339)}
		}
		if err := pem.Encode(&buf, block); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// parseSigningKeys reads every private key of a PEM file, in order: PKCS#8
// or SEC 1 (EC PRIVATE KEY, as `openssl ecparam -genkey` writes it), each
// ECDSA P-256. EC PARAMETERS blocks are skipped. With schedule, a
// Signs-From header gives the key's time (the stored ring).
func parseSigningKeys(b []byte, schedule bool) ([]authn.SigningKey, error) {
	var keys []authn.SigningKey
	for n := 1; ; {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		k, err := parseECKey(block)
		if err != nil {
			return nil, fmt.Errorf("key %d (%s): %v", n, block.Type, err)
		}
		sk := authn.SigningKey{Key: k}
		if v := block.Headers[signsFromHeader]; schedule && v != "" {
			if sk.SignsFrom, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, fmt.Errorf("key %d: %s: %v", n, signsFromHeader, err)
			}
		}
		keys = append(keys, sk)
		n++
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM private key")
	}
	return keys, nil
}

func parseECKey(block *pem.Block) (*ecdsa.PrivateKey, error) {
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if ec, ok := k.(*ecdsa.PrivateKey); ok && ec.Curve == elliptic.P256() {
			return ec, nil
		}
		return nil, errors.New("not an ECDSA P-256 key")
	}
	k, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#8 or EC private key: %v", err)
	}
	if k.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return k, nil
}

// keyID is a key's published key ID, for logs.
func keyID(k authn.SigningKey) string {
	kid, _ := authn.KeyID(k.Key.Public())
	return kid
}

// logRingChange logs the keys a change of the stored ring added and
// dropped.
func logRingChange(logger *zap.Logger, before, after []authn.SigningKey) {
	had := map[string]bool{}
	for _, k := range before {
		had[keyID(k)] = true
	}
	has := map[string]bool{}
	for _, k := range after {
		kid := keyID(k)
		has[kid] = true
		if !had[kid] {
			signs := "now"
			if !k.SignsFrom.IsZero() {
				signs = k.SignsFrom.UTC().Format(time.RFC3339)
			}
			logger.Info("signing key generated and published in the JWKS", zap.String("kid", kid),
				zap.String("signs_from", signs), zap.String("storage_key", signingKeyStorageKey))
		}
	}
	for kid := range had {
		if !has[kid] {
			logger.Info("retired signing key removed from the JWKS: the assertions it signed have expired", zap.String("kid", kid))
		}
	}
}

// sameRing reports whether two rings hold the same keys with the same
// times.
func sameRing(x, y []authn.SigningKey) bool {
	return slices.EqualFunc(x, y, func(a, b authn.SigningKey) bool {
		return a.SignsFrom.Equal(b.SignsFrom) && keyID(a) == keyID(b)
	})
}

// watchSigningKeys reloads the stored ring every interval until stop is
// closed, maintaining it (adding the next key, dropping retired ones) when
// it is due, and hands a changed ring to the Authenticator, so that a key
// generated by another instance is published here too before it signs.
func (a *App) watchSigningKeys(ctx context.Context, storage certmagic.Storage, ring []authn.SigningKey, stop <-chan struct{}) {
	rotate := time.Duration(a.SigningKeyRotate)
	interval := min(max(rotate/8, 250*time.Millisecond), time.Minute)
	if rotate == 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	signing := a.auth.SigningKeyID()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := storedSigningKeys(ctx, storage, rotate, time.Now(), interval/2, a.logger)
		if err != nil {
			a.logger.Error("signing keys in storage", zap.Error(err))
		} else if !sameRing(ring, next) {
			if err := a.setSigningKeys(next); err != nil {
				a.logger.Error("signing keys in storage", zap.Error(err))
			} else {
				ring = next
			}
		}
		if now := a.auth.SigningKeyID(); now != signing {
			a.logger.Info("assertions are now signed with the next key", zap.String("kid", now), zap.String("previous_kid", signing))
			signing = now
		}
	}
}
