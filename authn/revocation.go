package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
)

// Revocations end sessions before cookie_expire, on every instance that
// shares a Store: one session by its ID (sign-out, an admin, a back-channel
// logout), or every session of a user signed in before a time ("sign out
// everywhere", by subject or by email).
//
// Each instance keeps the list in memory, so checking a request reads no
// storage: an atomic load and up to three map lookups. Refresh reads the
// Store again (a server calls it on a timer); a revocation made on this
// instance applies here at once and is written to the Store, or kept and
// written again at each Refresh until the Store takes it. While the Store
// cannot be read, the last list read stays in force.
//
// Stored records are immutable, one per revocation, under
// RevocationPrefix; each is forgotten (and deleted from the Store by the
// first instance to notice) when the sessions it names would have expired
// anyway: cookie_expire after they were issued.
type Revocations struct {
	store        Store
	cookieExpire time.Duration
	now          func() time.Time
	logger       *zap.Logger

	snap atomic.Pointer[revocationSnapshot]

	mu sync.Mutex
	// known are the records read or written, by storage key.
	known map[string]Revocation
	// pending are records not yet written to the Store, by storage key.
	pending map[string]Revocation
	// lastRead is when the Store was last read in full; zero before.
	lastRead atomic.Int64
	// started is when the list was made: the fail-closed bound counts
	// from it until the first read.
	started time.Time
}

// Store is where revocations (and server-side sessions) are shared between
// instances: Caddy's storage in a Caddy server, anything keyed by strings
// elsewhere. Keys are slash-separated paths. Load of a missing key and List
// of a missing prefix return an error wrapping fs.ErrNotExist.
type Store interface {
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	// List returns the keys directly under prefix.
	List(ctx context.Context, prefix string) ([]string, error)
}

// RevocationPrefix is where revocation records live in the Store.
const RevocationPrefix = "iap/revocations"

// The kinds of revocation.
const (
	// RevokeBySession ends one session: ID is its sid.
	RevokeBySession = "session"
	// RevokeBySubject ends every session of a user (ID is the IdP's sub)
	// issued before Before.
	RevokeBySubject = "subject"
	// RevokeByEmail ends every session of a user (ID is the email) issued
	// before Before.
	RevokeByEmail = "email"
)

// Revocation is one revocation, as stored and as listed.
type Revocation struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Before: sessions issued before it end (subject and email).
	Before time.Time `json:"before,omitzero"`
	// Expires is when the revocation is forgotten: when every session it
	// names has reached cookie_expire.
	Expires time.Time `json:"expires"`
	// Created is when it was made.
	Created time.Time `json:"created"`
}

// revocationSnapshot is the list in force, read without a lock.
type revocationSnapshot struct {
	sessions map[string]time.Time // sid -> expires
	subjects map[string]time.Time // sub -> before
	emails   map[string]time.Time // email -> before
	// The back-channel logouts' (IdPSessionRevocationID,
	// IdPSubjectRevocationID) again, by issuer then IdP sid or sub, so
	// that checking a session builds no key (no allocation).
	idpSessions map[string]map[string]bool      // issuer -> IdP sid
	idpSubjects map[string]map[string]time.Time // issuer -> sub -> before
}

// The prefixes of IdPSessionRevocationID and IdPSubjectRevocationID,
// which are "<prefix><issuer> <id>".
const (
	idpSIDPrefix = "idp-sid:"
	idpSubPrefix = "idp-sub:"
)

// byIssuer splits an IdP-scoped revocation ID into its issuer and ID.
func byIssuer(id, prefix string) (issuer, rest string, ok bool) {
	if rest, ok = strings.CutPrefix(id, prefix); !ok {
		return "", "", false
	}
	return strings.Cut(rest, " ")
}

func (s *revocationSnapshot) empty() bool {
	return len(s.sessions) == 0 && len(s.subjects) == 0 && len(s.emails) == 0
}

// ErrRevocationPending is returned by a revocation that applies on this
// instance but could not be written to the Store yet: it is written again
// at each Refresh until the Store takes it, and reaches the other
// instances then.
var ErrRevocationPending = errors.New("revocation applies on this instance; writing it to the shared storage failed and is retried")

// ErrRevocationsUnavailable is a session refused because the revocation
// list could not be read for longer than the configured bound (fail
// closed): it may have been revoked elsewhere.
var ErrRevocationsUnavailable = errors.New("the revocation list could not be read from storage for too long")

// NewRevocations returns a revocation list over store (nil: this instance
// only). cookieExpire is the longest a session lives; now defaults to
// time.Now.
func NewRevocations(store Store, cookieExpire time.Duration, now func() time.Time, logger *zap.Logger) *Revocations {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if cookieExpire <= 0 {
		cookieExpire = 14 * time.Hour
	}
	r := &Revocations{store: store, cookieExpire: cookieExpire, now: now, logger: logger,
		known: map[string]Revocation{}, pending: map[string]Revocation{}, started: now()}
	r.snap.Store(&revocationSnapshot{})
	return r
}

// revokedSession reports whether s, a session of the IdP issuer, was
// revoked. It reads no storage.
func (r *Revocations) revokedSession(s *Session, issuer string) bool {
	snap := r.snap.Load()
	if snap.empty() {
		return false
	}
	if _, ok := snap.sessions[s.ID]; ok {
		return true
	}
	if s.IdPSessionID != "" && snap.idpSessions[issuer][s.IdPSessionID] {
		return true // a back-channel logout of its IdP session (logout.go)
	}
	if before, ok := snap.subjects[s.Subject]; ok && s.IssuedAt.Before(before) {
		return true
	}
	if before, ok := snap.idpSubjects[issuer][s.Subject]; ok && s.IssuedAt.Before(before) {
		return true // a back-channel logout of its user (logout.go)
	}
	if s.Email != "" {
		if before, ok := snap.emails[strings.ToLower(s.Email)]; ok && s.IssuedAt.Before(before) {
			return true
		}
	}
	return false
}

// LastRead is when the Store was last read in full; zero if never.
func (r *Revocations) LastRead() time.Time {
	n := r.lastRead.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Revoke adds a revocation: it applies on this instance at once and is
// written to the Store. An error wrapping ErrRevocationPending means it
// applies here and is written at the next Refresh that can. v.Expires and
// v.Created are filled in when zero.
func (r *Revocations) Revoke(ctx context.Context, v Revocation) error {
	now := r.now()
	switch v.Kind {
	case RevokeBySession:
		if v.ID == "" {
			return errors.New("revoking a session needs its ID (sid)")
		}
		v.Before = time.Time{}
		if v.Expires.IsZero() {
			v.Expires = now.Add(r.cookieExpire)
		}
	case RevokeBySubject, RevokeByEmail:
		if v.ID == "" {
			return fmt.Errorf("revoking by %s needs a %s", v.Kind, v.Kind)
		}
		if v.Kind == RevokeByEmail {
			v.ID = strings.ToLower(v.ID)
		}
		if v.Before.IsZero() {
			v.Before = now
		}
		// The youngest session it ends was issued just before Before.
		v.Expires = v.Before.Add(r.cookieExpire)
	default:
		return fmt.Errorf("unknown revocation kind %q (want %s, %s or %s)", v.Kind, RevokeBySession, RevokeBySubject, RevokeByEmail)
	}
	if v.Created.IsZero() {
		v.Created = now
	}
	if !v.Expires.After(now) {
		return nil // every session it names has ended already
	}
	key := revocationKey(v)
	r.mu.Lock()
	r.known[key] = v
	r.pending[key] = v
	r.publishLocked()
	r.mu.Unlock()
	if r.store == nil {
		r.mu.Lock()
		delete(r.pending, key)
		r.mu.Unlock()
		return nil
	}
	b, _ := json.Marshal(v)
	if err := r.store.Store(ctx, key, b); err != nil {
		r.logger.Warn("revocation applies on this instance; writing it to storage failed, retrying at each refresh",
			zap.String("kind", v.Kind), zap.String("key", key), zap.Error(err))
		return fmt.Errorf("%w: %v", ErrRevocationPending, err)
	}
	r.mu.Lock()
	delete(r.pending, key)
	r.mu.Unlock()
	return nil
}

// revocationKey names a record: its kind, a hash of its ID (subjects and
// emails may hold any character) and its time, so that records never
// change once written.
func revocationKey(v Revocation) string {
	sum := sha256.Sum256([]byte(v.Kind + "\x00" + v.ID))
	t := v.Before
	if t.IsZero() {
		t = v.Created
	}
	return path.Join(RevocationPrefix, v.Kind+"-"+hex.EncodeToString(sum[:12])+"-"+strconv.FormatInt(t.UnixNano(), 10))
}

// Refresh writes pending revocations, then reads the Store: records other
// instances wrote are added, expired ones dropped (and deleted from the
// Store). On an error the list in force stays as it was.
func (r *Revocations) Refresh(ctx context.Context) error {
	if r.store == nil {
		r.mu.Lock()
		r.publishLocked()
		r.mu.Unlock()
		return nil
	}
	var errs []error
	r.mu.Lock()
	pending := make(map[string]Revocation, len(r.pending))
	for k, v := range r.pending {
		pending[k] = v
	}
	r.mu.Unlock()
	for key, v := range pending {
		b, _ := json.Marshal(v)
		if err := r.store.Store(ctx, key, b); err != nil {
			errs = append(errs, fmt.Errorf("writing revocation %s: %w", key, err))
			continue
		}
		r.mu.Lock()
		delete(r.pending, key)
		r.mu.Unlock()
		r.logger.Info("pending revocation written to storage", zap.String("kind", v.Kind), zap.String("key", key))
	}
	keys, err := r.store.List(ctx, RevocationPrefix)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Join(append(errs, fmt.Errorf("listing %s: %w", RevocationPrefix, err))...)
	}
	now := r.now()
	listed := make(map[string]bool, len(keys))
	var fresh []string
	r.mu.Lock()
	for _, key := range keys {
		if !strings.Contains(key, "/") {
			key = path.Join(RevocationPrefix, key)
		}
		listed[key] = true
		if _, ok := r.known[key]; !ok {
			fresh = append(fresh, key)
		}
	}
	r.mu.Unlock()
	loaded := map[string]Revocation{}
	for _, key := range fresh {
		b, err := r.store.Load(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since listed
		}
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("reading %s: %w", key, err))...)
		}
		var v Revocation
		if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
			r.logger.Warn("revocation record in storage ignored: not one", zap.String("key", key), zap.Error(err))
			continue
		}
		loaded[key] = v
	}
	var expired []string
	r.mu.Lock()
	for key, v := range loaded {
		r.known[key] = v
	}
	for key, v := range r.known {
		_, isPending := r.pending[key]
		switch {
		case !v.Expires.After(now):
			delete(r.known, key)
			delete(r.pending, key)
			if listed[key] {
				expired = append(expired, key)
			}
		case !listed[key] && !isPending:
			// Lost by the Store (a Redis restarted without persistence,
			// a wiped directory): written again at the next Refresh, so
			// that no instance forgets it and new ones learn it.
			r.pending[key] = v
		}
	}
	r.publishLocked()
	r.mu.Unlock()
	for _, key := range expired {
		if err := r.store.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.logger.Debug("deleting an expired revocation failed", zap.String("key", key), zap.Error(err))
		}
	}
	if len(errs) == 0 {
		r.lastRead.Store(now.UnixNano())
	}
	return errors.Join(errs...)
}

// publishLocked makes the known records the list in force.
func (r *Revocations) publishLocked() {
	now := r.now()
	snap := &revocationSnapshot{sessions: map[string]time.Time{}, subjects: map[string]time.Time{}, emails: map[string]time.Time{}}
	for _, v := range r.known {
		if !v.Expires.After(now) {
			continue
		}
		switch v.Kind {
		case RevokeBySession:
			snap.sessions[v.ID] = v.Expires
			if issuer, sid, ok := byIssuer(v.ID, idpSIDPrefix); ok {
				if snap.idpSessions == nil {
					snap.idpSessions = map[string]map[string]bool{}
				}
				if snap.idpSessions[issuer] == nil {
					snap.idpSessions[issuer] = map[string]bool{}
				}
				snap.idpSessions[issuer][sid] = true
			}
		case RevokeBySubject:
			if v.Before.After(snap.subjects[v.ID]) {
				snap.subjects[v.ID] = v.Before
			}
			if issuer, sub, ok := byIssuer(v.ID, idpSubPrefix); ok {
				if snap.idpSubjects == nil {
					snap.idpSubjects = map[string]map[string]time.Time{}
				}
				if snap.idpSubjects[issuer] == nil {
					snap.idpSubjects[issuer] = map[string]time.Time{}
				}
				if v.Before.After(snap.idpSubjects[issuer][sub]) {
					snap.idpSubjects[issuer][sub] = v.Before
				}
			}
		case RevokeByEmail:
			if v.Before.After(snap.emails[v.ID]) {
				snap.emails[v.ID] = v.Before
			}
		}
	}
	r.snap.Store(snap)
}

// List returns the revocations in force, oldest first, and how many of
// them are not in the Store yet.
func (r *Revocations) List() (list []Revocation, pending int) {
	now := r.now()
	r.mu.Lock()
	for _, v := range r.known {
		if v.Expires.After(now) {
			list = append(list, v)
		}
	}
	pending = len(r.pending)
	r.mu.Unlock()
	slices.SortFunc(list, func(a, b Revocation) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Kind+a.ID, b.Kind+b.ID)
	})
	return list, pending
}

// SetRevocations makes the Authenticator refuse revoked sessions, and
// failClosedAfter > 0 refuse every session once the list has not been read
// from its Store for that long (ErrRevocationsUnavailable); 0 keeps using
// the last list read however old. Call it before serving.
func (a *Authenticator) SetRevocations(r *Revocations, failClosedAfter time.Duration) {
	a.revocations.Store(r)
	a.revocationsFailClosed = failClosedAfter
}

// Revocations returns the Authenticator's revocation list: the one set with
// SetRevocations, or one of this instance only, made on first use.
func (a *Authenticator) Revocations() *Revocations {
	if r := a.revocations.Load(); r != nil {
		return r
	}
	a.revocations.CompareAndSwap(nil, NewRevocations(nil, a.cfg.CookieExpire, a.cfg.Now, a.cfg.Logger))
	return a.revocations.Load()
}

// RevokeSession ends the session sid on every instance sharing the
// revocation Store. until is when the session would end anyway (its
// IssuedAt plus cookie_expire); zero means cookie_expire from now. An
// error wrapping ErrRevocationPending still revoked it here.
func (a *Authenticator) RevokeSession(sid string, until time.Time) error {
	return a.Revocations().Revoke(context.Background(), Revocation{Kind: RevokeBySession, ID: sid, Expires: until})
}

// RevokeSubject ends every session of the user sub issued before before
// (zero: now), on every instance: "sign out everywhere". Sessions started
// after it are not affected.
func (a *Authenticator) RevokeSubject(sub string, before time.Time) error {
	return a.Revocations().Revoke(context.Background(), Revocation{Kind: RevokeBySubject, ID: sub, Before: before})
}

// RevokeEmail is RevokeSubject by the user's email (compared without
// case).
func (a *Authenticator) RevokeEmail(email string, before time.Time) error {
	return a.Revocations().Revoke(context.Background(), Revocation{Kind: RevokeByEmail, ID: email, Before: before})
}

// checkRevoked returns an error for a session that must not be used: it
// was revoked, or the list is stale past the fail-closed bound.
func (a *Authenticator) checkRevoked(s *Session) error {
	r := a.revocations.Load()
	if r == nil {
		return nil
	}
	if r.revokedSession(s, a.cfg.ProviderURL) {
		return errSessionRevoked
	}
	if a.revocationsFailClosed > 0 && r.store != nil {
		last := r.started
		if n := r.lastRead.Load(); n != 0 {
			last = time.Unix(0, n)
		}
		if a.cfg.Now().Sub(last) > a.revocationsFailClosed {
			return ErrRevocationsUnavailable
		}
	}
	return nil
}

// errSessionRevoked is a session that was revoked (signed out, or by an
// administrator).
var errSessionRevoked = errors.New("the session was revoked (signed out, or by an administrator)")

// revocationsUnavailable refuses a signed-in request while the revocation
// list is stale past the fail-closed bound: 503, as for an IdP that is down.
func (a *Authenticator) revocationsUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.retryLater(w, r, err, "session refused: revocation list unavailable", authz.ReasonRevocationsUnavailable,
		"Signed-in requests are refused for now: the list of ended sessions cannot be read from storage. Try again in a few seconds.")
}
