package module

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
)

// The values of session_store.
const (
	sessionStoreCookie  = "cookie"
	sessionStoreStorage = "storage"
	// sessionSweepEvery is how often each instance deletes the stored
	// sessions that reached cookie_expire.
	sessionSweepEvery = 10 * time.Minute
)

// provisionSessionStore keeps every IdP's sessions in Caddy's storage
// under session_store storage.
func (a *App) provisionSessionStore(store authn.Store) error {
	switch a.SessionStore {
	case "", sessionStoreCookie:
		return nil
	case sessionStoreStorage:
	default:
		return fmt.Errorf("session_store: %q is not %q or %q", a.SessionStore, sessionStoreCookie, sessionStoreStorage)
	}
	if store == nil {
		return errors.New("session_store storage: this config has no Caddy storage")
	}
	for _, auth := range a.authenticators() {
		if err := auth.SetSessionStore(store); err != nil {
			return fmt.Errorf("session_store: %v", err)
		}
	}
	return nil
}

// sweepSessions deletes expired sessions from storage; a failure is
// logged and tried again at the next sweep.
func (a *App) sweepSessions() {
	for _, auth := range a.authenticators() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := auth.SweepSessions(ctx)
		cancel()
		if err != nil {
			a.logger.Warn("sessions: sweeping expired sessions from storage failed", zap.Error(err))
		} else if n > 0 {
			a.logger.Info("sessions: expired sessions deleted from storage", zap.Int("deleted", n))
		}
	}
}
