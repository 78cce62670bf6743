package module

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-iap/caddy-iap/authn"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is caddy-iap's part of Caddy's admin API (the admin listener,
// localhost:2019 by default; Caddy loads every admin.api module itself, so
// there is nothing to configure). It revokes sessions on every instance
// sharing Caddy's storage:
//
//	POST /iap/sessions/revoke  {"sid": "<the assertion's sid>"}
//	POST /iap/users/revoke     {"sub": "<IdP subject>"} or {"email": "<email>"}
//	                           (optional "before": RFC 3339; default now)
//	GET  /iap/revocations      the revocations in force
//
// Revoking a user ends every session of that user signed in before the
// revocation ("sign out everywhere"); signing in again works at once.
// A revocation answers 200 once it is in storage, and 202 when storage
// could not be written: it applies on this instance and is written by the
// refresh loop when storage is back.
type AdminAPI struct{}

// liveApp is the iap app of the running config, for the admin API, whose
// handlers outlive a config reload.
var liveApp atomic.Pointer[App]

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.iap", New: func() caddy.Module { return new(AdminAPI) }}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/iap/sessions/revoke", Handler: caddy.AdminHandlerFunc(revokeSessionHandler)},
		{Pattern: "/iap/users/revoke", Handler: caddy.AdminHandlerFunc(revokeUserHandler)},
		{Pattern: "/iap/revocations", Handler: caddy.AdminHandlerFunc(listRevocationsHandler)},
	}
}

// adminRequest is the body of a revocation.
type adminRequest struct {
	SID    string    `json:"sid"`
	Sub    string    `json:"sub"`
	Email  string    `json:"email"`
	Before time.Time `json:"before"`
}

func readAdminRequest(r *http.Request) (*authn.Authenticator, adminRequest, error) {
	var req adminRequest
	if r.Method != http.MethodPost {
		return nil, req, caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed: use POST", r.Method)}
	}
	app := liveApp.Load()
	if app == nil || app.auth == nil {
		return nil, req, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errNoSignIn}
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, req, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("reading the JSON body: %v", err)}
	}
	return app.auth, req, nil
}

func revokeSessionHandler(w http.ResponseWriter, r *http.Request) error {
	auth, req, err := readAdminRequest(r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.SID) == "" || req.Sub != "" || req.Email != "" {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(`give the session's ID only: {"sid": "..."} (the sid claim of its assertion); to end every session of a user, POST /iap/users/revoke`)}
	}
	return answerRevocation(w, auth.Revocations().Revoke(r.Context(), authn.Revocation{Kind: authn.RevokeBySession, ID: req.SID}))
}

func revokeUserHandler(w http.ResponseWriter, r *http.Request) error {
	auth, req, err := readAdminRequest(r)
	if err != nil {
		return err
	}
	v := authn.Revocation{Before: req.Before}
	if req.Before.After(time.Now().Add(time.Minute)) {
		// A "before" in the future would also end the sessions the user
		// starts from now until then: a lockout, which this API is not.
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(`"before" %s is in the future: it ends the sessions signed in before it, so give a past time, or none for now`, req.Before.Format(time.RFC3339))}
	}
	switch {
	case req.SID != "" || (req.Sub == "") == (req.Email == ""):
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(`give one of {"sub": "..."} (the IdP's subject) or {"email": "..."}, and optionally "before" (RFC 3339, default now)`)}
	case req.Sub != "":
		v.Kind, v.ID = authn.RevokeBySubject, req.Sub
	default:
		v.Kind, v.ID = authn.RevokeByEmail, req.Email
	}
	return answerRevocation(w, auth.Revocations().Revoke(r.Context(), v))
}

// answerRevocation: 200 stored, 202 applies here and is retried.
func answerRevocation(w http.ResponseWriter, err error) error {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case err == nil:
		return json.NewEncoder(w).Encode(map[string]any{"revoked": true, "stored": true})
	case isPending(err):
		w.WriteHeader(http.StatusAccepted)
		return json.NewEncoder(w).Encode(map[string]any{"revoked": true, "stored": false, "error": err.Error()})
	default:
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
}

func listRevocationsHandler(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed: use GET", r.Method)}
	}
	app := liveApp.Load()
	if app == nil || app.auth == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errNoSignIn}
	}
	list, pending := app.auth.Revocations().List()
	if list == nil {
		list = []authn.Revocation{}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{
		"revocations": list, "pending": pending, "last_read": app.auth.Revocations().LastRead(),
	})
}

// Interface guards
var (
	_ caddy.AdminRouter = AdminAPI{}
)
