package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
)

// Server-side sessions (SetSessionStore): the session cookie carries only
// a random reference, "s1." and 32 random bytes; the session lives in the
// Store under SessionPrefix/<IdP>/<sha256 of the reference> (<IdP>: a hash
// of the session cookie's name, which differs per IdP), sealed as cookies
// are (AES-256-GCM under a key derived from cookie_secret with HKDF, the
// previous secrets opening too) with the cookie's name and the storage key
// as associated data: a record moved to another key, or presented under
// another IdP's cookie, does not open. Whoever reads the storage learns
// neither the sessions nor the cookies that name them.
//
// A session is read from the Store the first time an instance sees its
// reference and then kept in memory; it is read again when it is due for
// a refresh (another instance may have refreshed it), so a refresh made
// anywhere is seen everywhere. Sign-out deletes it; an instance that had
// it in memory refuses it through the revocation list, as in cookie mode.
// There is no size limit: the 900-group user signs in.

// SessionPrefix is where server-side sessions live in the Store.
const SessionPrefix = "iap/sessions"

const (
	serverRefPrefix = "s1."
	serverRefBytes  = 32
	// sessionStoreTimeout bounds one read or write of a session.
	sessionStoreTimeout = 5 * time.Second
	// reloadAfter: a session due for a refresh is read again from the
	// Store when its copy in memory is older than this.
	reloadAfter = time.Second
)

// ErrSessionStoreUnavailable is a server-side session that could not be
// read from or written to the Store: the session is kept (its cookie is not
// cleared) and the request refused with 503 session-store-unavailable.
var ErrSessionStoreUnavailable = errors.New("the session storage cannot be reached")

type serverSessions struct {
	store  Store
	codecs codecs
	now    func() time.Time
	logger *zap.Logger

	mu    sync.RWMutex
	cache map[string]*storedSession // by reference
}

type storedSession struct {
	s      Session
	stale  bool
	loaded time.Time
}

// SetSessionStore keeps sessions in store instead of in the cookie (nil:
// in the cookie, the default). Sessions already in cookies keep working
// until they are written again (a refresh), which moves them to the store.
// Call it before serving.
func (a *Authenticator) SetSessionStore(store Store) error {
	if store == nil {
		a.server = nil
		return nil
	}
	cs, err := newCodecs(a.cfg.CookieSecret, a.cfg.PreviousCookieSecrets, "server session")
	if err != nil {
		return err
	}
	a.server = &serverSessions{store: store, codecs: cs, now: a.cfg.Now, logger: a.cfg.Logger, cache: map[string]*storedSession{}}
	return nil
}

// isServerRef reports whether a cookie value is a server-side session's
// reference.
func isServerRef(raw string) bool { return strings.HasPrefix(raw, serverRefPrefix) }

// sessionDir holds this IdP's sessions.
func (a *Authenticator) sessionDir() string {
	sum := sha256.Sum256([]byte(a.cfg.CookieName))
	return path.Join(SessionPrefix, hex.EncodeToString(sum[:6]))
}

func (a *Authenticator) sessionKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return path.Join(a.sessionDir(), hex.EncodeToString(sum[:]))
}

// sealName binds a record to its key and its cookie (its IdP).
func (a *Authenticator) sealName(key string) string { return a.cfg.CookieName + " " + key }

// openServerSession returns the session a reference names.
func (a *Authenticator) openServerSession(ref string) (Session, bool, error) {
	ss := a.server
	if ss == nil {
		return Session{}, false, fmt.Errorf("%w: a server-side session reference, and sessions are kept in cookies here", ErrCookie)
	}
	now := ss.now()
	ss.mu.RLock()
	c, ok := ss.cache[ref] // only well-formed references are cached
	ss.mu.RUnlock()
	if ok && (now.Add(refreshBefore).Before(c.s.IDTokenExpiry) || now.Sub(c.loaded) < reloadAfter) {
		return c.s, c.stale, nil
	}
	if b, err := base64.RawURLEncoding.DecodeString(ref[len(serverRefPrefix):]); err != nil || len(b) != serverRefBytes {
		return Session{}, false, fmt.Errorf("%w: malformed session reference", ErrCookie)
	}
	key := a.sessionKey(ref)
	ctx, cancel := context.WithTimeout(context.Background(), sessionStoreTimeout)
	defer cancel()
	b, err := ss.store.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		ss.forget(ref)
		return Session{}, false, fmt.Errorf("%w: no such session in storage (signed out, expired or removed)", ErrCookie)
	}
	if err != nil {
		if ok {
			return c.s, c.stale, nil // due for a refresh, which can wait
		}
		return Session{}, false, fmt.Errorf("%w: reading the session: %v", ErrSessionStoreUnavailable, err)
	}
	var s Session
	stale, err := ss.codecs.open(a.sealName(key), string(b), &s)
	if err != nil {
		return Session{}, false, err
	}
	ss.mu.Lock()
	if len(ss.cache) >= maxDecoded {
		clear(ss.cache)
	}
	ss.cache[ref] = &storedSession{s: s, stale: stale, loaded: now}
	ss.mu.Unlock()
	return s, stale, nil
}

func (ss *serverSessions) forget(ref string) {
	ss.mu.Lock()
	delete(ss.cache, ref)
	ss.mu.Unlock()
}

// writeServerSession stores s under the request's reference when it names
// this session (a refresh), else under a new one, and sets the cookie.
func (a *Authenticator) writeServerSession(w http.ResponseWriter, r *http.Request, s *Session) error {
	ss := a.server
	ref := ""
	if raw, err := a.jar.read(r); err == nil && isServerRef(raw) {
		ss.mu.RLock()
		if c, ok := ss.cache[raw]; ok && c.s.ID == s.ID {
			ref = raw
		}
		ss.mu.RUnlock()
	}
	if ref == "" {
		b := make([]byte, serverRefBytes)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		ref = serverRefPrefix + base64.RawURLEncoding.EncodeToString(b)
	}
	key := a.sessionKey(ref)
	v, err := ss.codecs.seal(a.sealName(key), s)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionStoreTimeout)
	defer cancel()
	if err := ss.store.Store(ctx, key, []byte(v)); err != nil {
		return fmt.Errorf("%w: writing the session: %v", ErrSessionStoreUnavailable, err)
	}
	ss.mu.Lock()
	if len(ss.cache) >= maxDecoded {
		clear(ss.cache)
	}
	ss.cache[ref] = &storedSession{s: *s, loaded: ss.now()}
	ss.mu.Unlock()
	return a.sessionJar().write(w, r, ref, a.sessionEnds(s.IssuedAt))
}

// deleteServerSession deletes the request's server-side session, if it
// has one (sign-out).
func (a *Authenticator) deleteServerSession(r *http.Request) {
	raw, err := a.jar.read(r)
	if err != nil || !isServerRef(raw) || a.server == nil {
		return
	}
	a.server.forget(raw)
	ctx, cancel := context.WithTimeout(context.Background(), sessionStoreTimeout)
	defer cancel()
	if err := a.server.store.Delete(ctx, a.sessionKey(raw)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.cfg.Logger.Warn("sign-out: deleting the session from storage failed; it is revoked all the same", zap.Error(err))
	}
}

// SweepSessions deletes the stored sessions that reached cookie_expire, or
// that no cookie secret in the list opens any more, and reports how many
// it deleted. A server runs it now and then.
func (a *Authenticator) SweepSessions(ctx context.Context) (int, error) {
	ss := a.server
	if ss == nil {
		return 0, nil
	}
	dir := a.sessionDir()
	keys, err := ss.store.List(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	deleted := 0
	now := ss.now()
	for _, key := range keys {
		if !strings.Contains(key, "/") {
			key = path.Join(dir, key)
		}
		b, err := ss.store.Load(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return deleted, err
		}
		var s Session
		if _, err := ss.codecs.open(a.sealName(key), string(b), &s); err == nil && now.Before(a.sessionEnds(s.IssuedAt)) {
			continue
		}
		if err := ss.store.Delete(ctx, key); err == nil {
			deleted++
		}
	}
	return deleted, nil
}

// sessionStoreUnavailable refuses a request whose server-side session
// cannot be read: 503, and the session is kept.
func (a *Authenticator) sessionStoreUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.retryLater(w, r, err, "session storage unavailable", authz.ReasonSessionStoreUnavailable,
		"Your session cannot be read right now: the session storage cannot be reached. Try again in a few seconds.")
}
