package module

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
)

// Revocations (sign-out, the admin API's /iap/sessions/revoke and
// /iap/users/revoke) are records in Caddy's storage, under
// iap/revocations/, whatever storage module the config uses. Each
// instance keeps them in memory (authn.Revocations) and reads the storage
// again every revocation_refresh: a revocation made on one instance ends
// the session on every instance within revocation_refresh plus one read of
// the storage (revocationReadTimeout at most).
const (
	// defaultRevocationRefresh is revocation_refresh's default: with the
	// read timeout, a revocation reaches every instance within 5 s.
	defaultRevocationRefresh = 2 * time.Second
	// minRevocationRefresh bounds revocation_refresh from below.
	minRevocationRefresh = 100 * time.Millisecond
	// revocationReadTimeout bounds one refresh; the bound a revocation
	// takes to reach every instance is revocation_refresh plus it.
	revocationReadTimeout = 3 * time.Second
	// revocationLogEvery is how often a storage outage is logged again.
	revocationLogEvery = time.Minute
)

// storageStore is authn's Store over Caddy's storage (ctx.Storage()):
// file_system by default, or Redis, Postgres, Consul, ... modules.
type storageStore struct{ s certmagic.Storage }

func (s storageStore) Store(ctx context.Context, key string, v []byte) error {
	return s.s.Store(ctx, key, v)
}

func (s storageStore) Load(ctx context.Context, key string) ([]byte, error) {
	return s.s.Load(ctx, key)
}

func (s storageStore) Delete(ctx context.Context, key string) error {
	return s.s.Delete(ctx, key)
}

func (s storageStore) List(ctx context.Context, prefix string) ([]string, error) {
	return s.s.List(ctx, prefix, false)
}

// provisionRevocations gives the Authenticators (every IdP's) the one
// revocation list kept in storage, read once now (an unreachable storage
// is logged, not fatal: the refresh loop keeps trying). A context without
// a config (some tests) has no storage: the list is then this instance's
// only.
func (a *App) provisionRevocations(ctx caddy.Context) error {
	refresh := time.Duration(a.RevocationRefresh)
	if refresh == 0 {
		refresh = defaultRevocationRefresh
	}
	if refresh < minRevocationRefresh {
		return fmt.Errorf("revocation_refresh: %s is under the least of %s", refresh, minRevocationRefresh)
	}
	failClosed := time.Duration(a.RevocationFailClosedAfter)
	if failClosed < 0 {
		return fmt.Errorf("revocation_fail_closed_after: %s is negative", failClosed)
	}
	if failClosed > 0 && failClosed < 2*refresh+revocationReadTimeout {
		return fmt.Errorf("revocation_fail_closed_after: %s would refuse sessions between two ordinary refreshes; "+
			"use at least twice revocation_refresh (%s) plus %s", failClosed, refresh, revocationReadTimeout)
	}
	var store authn.Store
	if storage := contextStorage(ctx); storage != nil {
		store = storageStore{storage}
	}
	list := authn.NewRevocations(store, time.Duration(a.CookieExpire), nil, a.logger)
	for _, auth := range a.authenticators() {
		auth.SetRevocations(list, failClosed)
	}
	if err := a.provisionSessionStore(store); err != nil {
		return err
	}
	if store == nil {
		return nil
	}
	a.revocationRefresh = refresh
	readCtx, cancel := context.WithTimeout(context.Background(), revocationReadTimeout)
	defer cancel()
	if err := list.Refresh(readCtx); err != nil {
		a.logger.Warn("revocations: reading them from storage failed; trying again every revocation_refresh",
			zap.Duration("revocation_refresh", refresh), zap.Error(err))
	}
	return nil
}

// contextStorage is ctx.Storage(), or nil for a context made without a
// config, whose Storage panics.
func contextStorage(ctx caddy.Context) (s certmagic.Storage) {
	defer func() {
		if recover() != nil {
			s = nil
		}
	}()
	return ctx.Storage()
}

// startRevocations reads the revocations from storage every
// revocation_refresh until stopRevocations.
func (a *App) startRevocations() {
	if a.auth == nil || a.revocationRefresh == 0 {
		return
	}
	liveApp.Store(a)
	stop, done := make(chan struct{}), make(chan struct{})
	a.stopRevocationWatch, a.revocationWatchDone = stop, done
	go func() {
		defer close(done)
		a.watchRevocations(a.auth.Revocations(), a.revocationRefresh, stop)
	}()
}

// stopRevocations ends the loop and waits for it.
func (a *App) stopRevocations() {
	liveApp.CompareAndSwap(a, nil) // a reload started the next app first
	if a.stopRevocationWatch == nil {
		return
	}
	close(a.stopRevocationWatch)
	<-a.revocationWatchDone
	a.stopRevocationWatch, a.revocationWatchDone = nil, nil
}

// watchRevocations refreshes the list on a timer. While storage cannot be
// read, the last list read stays in force and revocations made here are
// written when it is back; the log says when the outage starts (and every
// minute on), and when it ends.
func (a *App) watchRevocations(list *authn.Revocations, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	var failingSince, lastLog time.Time
	lastSweep := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if a.SessionStore == sessionStoreStorage && time.Since(lastSweep) >= sessionSweepEvery {
			lastSweep = time.Now()
			a.sweepSessions()
		}
		ctx, cancel := context.WithTimeout(context.Background(), min(every, revocationReadTimeout))
		err := list.Refresh(ctx)
		cancel()
		now := time.Now()
		switch {
		case err != nil && failingSince.IsZero():
			failingSince, lastLog = now, now
			a.logger.Error("revocations: storage unreachable; keeping the last list read, and writing new revocations when it is back",
				zap.Time("last_read", list.LastRead()), zap.Error(err))
		case err != nil && now.Sub(lastLog) >= revocationLogEvery:
			lastLog = now
			a.logger.Error("revocations: storage still unreachable", zap.Duration("for", now.Sub(failingSince)),
				zap.Time("last_read", list.LastRead()), zap.Error(err))
		case err == nil && !failingSince.IsZero():
			a.logger.Info("revocations: storage reachable again", zap.Duration("outage", now.Sub(failingSince)))
			failingSince = time.Time{}
		}
	}
}

func isPending(err error) bool { return errors.Is(err, authn.ErrRevocationPending) }

// errNoSignIn is the admin API's answer without an iap app that signs in.
var errNoSignIn = errors.New("this Caddy's config has no iap app with an idp: there are no sessions to revoke")
