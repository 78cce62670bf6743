// Package module registers caddy-iap's Caddy modules and glues the authn and
// authz libraries into Caddy's request handling.
package module

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

func init() {
	caddy.RegisterModule(Authorize{})
}

// Authorize decides each request with a policy written in Pomerium Policy
// Language: requests the policy does not admit get 403 Forbidden, and the
// others go on to the next handler. With no policy, every request is
// refused, as in Pomerium.
//
// It also logs, with the route's name, why a request to the upstream failed
// at the TLS layer, since the client only sees 502 Bad Gateway.
type Authorize struct {
	// The route's name (its site address), used in logs.
	Route string `json:"route,omitempty"`

	// The policy, in PPL's JSON form: a rule or a list of rules, e.g.
	// `[{"allow":{"or":[{"accept":true}]}}]`.
	Policy authz.Policy `json:"policy,omitempty"`

	eval   *authz.Evaluator
	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Authorize) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.iap_authorize",
		New: func() caddy.Module { return new(Authorize) },
	}
}

// Provision compiles the policy.
func (a *Authorize) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger().With(zap.String("route", a.Route))
	eval, err := authz.Compile(a.Policy)
	if err != nil {
		return fmt.Errorf("route %s: policy: %v", a.Route, err)
	}
	a.eval = eval
	if app, err := ctx.AppIfConfigured("iap"); err == nil {
		a.app, _ = app.(*App)
	}
	if a.app != nil && a.app.auth != nil {
		a.app.auth.KeepClaims(a.Policy.ClaimNames()...)
	}
	return nil
}

// ServeHTTP refuses or admits the request.
func (a *Authorize) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Placeholders that set_request_headers may use are empty, not left as
	// text, when there is no certificate or no user.
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if downstreamtls.ResultFrom(r.Context()) == nil {
		// No iap_mtls on this site, so no client certificate was verified:
		// RFC 9440 headers can only be forged by the client.
		r.Header.Del("Client-Cert")
		r.Header.Del("Client-Cert-Chain")
		repl.Map(clientCertPlaceholders(nil))
	}
	if sessionFrom(r.Context()) == nil {
		// No iap_authenticate ran: any identity header is the client's,
		// and a session cookie for this host is not the upstream's either.
		stripIdentityHeaders(r, a.app)
		if a.app != nil && a.app.auth != nil {
			a.app.auth.StripCookies(r.Header)
		}
		repl.Set("http.auth.user.jwt", "")
	}
	var (
		in   authz.Input
		user authz.User
		cert authz.ClientCert
	)
	policyInput(r, &in, &user, &cert)
	d := a.eval.Evaluate(&in)
	if !d.Allow {
		a.logger.Info("request refused",
			zap.String("reason", string(d.Reason)),
			zap.Int("rule", d.Rule),
			zap.String("user_id", user.ID),
			zap.String("email", user.Email),
			zap.String("remote_ip", r.RemoteAddr),
			zap.String("host", r.Host),
			zap.String("uri", r.RequestURI))
		return refusal{Status: http.StatusForbidden, Reason: string(d.Reason), Message: forbiddenMessage(d.Reason)}.respond(w, r)
	}
	err := next.ServeHTTP(w, r)
	if cause := upstreamtls.Cause(err); cause != "" {
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		upstream, _ := repl.GetString("http.reverse_proxy.upstream.hostport")
		a.logger.Error("upstream TLS connection failed",
			zap.String("upstream", upstream),
			zap.String("cause", cause),
			zap.Error(rootCause(err)))
	}
	return err
}

func forbiddenMessage(reason authz.Reason) string {
	if reason == authz.ReasonNoPolicy {
		return "This route has no policy, so access is denied to everyone."
	}
	return "You are not allowed to access this page."
}

// rootCause drops Caddy's wrapping, for a shorter log line.
func rootCause(err error) error {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.Err != nil {
		return he.Err
	}
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Authorize)(nil)
	_ caddyhttp.MiddlewareHandler = (*Authorize)(nil)
)
