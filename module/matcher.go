package module

import (
	"errors"
	"fmt"
	"net/http"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
)

func init() {
	caddy.RegisterModule(MatchPolicy{})
}

// MatchPolicy matches requests that a policy, in Pomerium Policy Language,
// allows. It sees what the handlers before it found out: the signed-in user
// and the client certificate (iap_mtls). When its policy turns on who the
// user is and no iap_authenticate ran before it, it reads the user itself
// from a bearer ID token or the session cookie (never refreshing or
// redirecting), so it never decides on an identity nobody looked up. Like
// the handlers, it decides on the cleaned path and cleans the request's path
// in place, so the handlers it selects serve that path; a request with an
// ambiguous path is refused with 400 (ambiguous-path).
//
//	@admins iap_policy {
//		allow {
//			or {
//				groups has admins
//			}
//		}
//	}
//
// In CEL expressions it is the function iap_policy('<policy as YAML or
// JSON>'), e.g. `expression iap_policy('{"allow":{"or":[{"groups":"admins"}]}}')`.
type MatchPolicy struct {
	// The policy, in PPL's JSON form.
	Policy authz.Policy `json:"policy,omitempty"`

	eval   *authz.Evaluator
	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (MatchPolicy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.matchers.iap_policy", New: func() caddy.Module { return new(MatchPolicy) }}
}

// Provision compiles the policy.
func (m *MatchPolicy) Provision(ctx caddy.Context) error {
	eval, err := authz.Compile(m.Policy)
	if err != nil {
		return fmt.Errorf("iap_policy: %v", err)
	}
	m.eval = eval
	m.app = configuredApp(ctx)
	m.logger = ctx.Logger()
	if m.app != nil && m.app.auth != nil {
		m.app.keepClaims(m.Policy.ClaimNames()...)
	}
	return nil
}

// MatchWithError reports whether the policy allows the request.
func (m *MatchPolicy) MatchWithError(r *http.Request) (bool, error) {
	var (
		in   authz.Input
		user authz.User
		cert authz.ClientCert
	)
	st, refused := begin(r, m.app)
	if refused == nil {
		// A matcher cannot tell what handles the request: SPDY is for
		// routes that allow it (iap_route's allow_spdy).
		refused = st.refuseSPDY(false)
	}
	if refused != nil {
		return false, caddyhttp.HandlerError{StatusCode: refused.Status, ID: refused.Reason, Err: errors.New(refused.Message)}
	}
	st.input(r, &in, &user, &cert)
	d := m.eval.Evaluate(&in)
	if d.NeedsSignIn() && !st.identified && st.Session == nil && m.app != nil && m.app.auth != nil {
		// The outcome turns on the user and no iap_authenticate ran before
		// this matcher (directives order it later than most): look the user
		// up here, never deciding on an identity nobody looked for.
		s, err := m.app.auth.Peek(r)
		if err != nil {
			m.logger.Info("iap_policy: the request's credential is not usable here; deciding as anonymous",
				zap.String("host", r.Host), zap.String("uri", r.RequestURI), zap.Error(err))
		}
		if s != nil {
			st.Session = s
			st.input(r, &in, &user, &cert)
			d = m.eval.Evaluate(&in)
		}
	}
	return d.Allow, nil
}

// Match is MatchWithError without the error.
func (m *MatchPolicy) Match(r *http.Request) bool {
	ok, _ := m.MatchWithError(r)
	return ok
}

// UnmarshalCaddyfile reads the policy block.
func (m *MatchPolicy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for d.Next() {
		p, err := ParsePolicyBlock(d)
		if err != nil {
			return err
		}
		m.Policy = append(m.Policy, p...)
	}
	if len(m.Policy) == 0 {
		return d.Err("iap_policy needs a policy block: allow { or { ... } }")
	}
	// Check the criteria's data now, so that `caddy adapt` refuses a bad
	// value, not only provisioning: each criterion names its file:line.
	if _, err := authz.Compile(m.Policy); err != nil {
		return fmt.Errorf("iap_policy: %w", err)
	}
	return nil
}

// CELLibrary makes iap_policy('<YAML or JSON policy>') a CEL function.
func (MatchPolicy) CELLibrary(ctx caddy.Context) (cel.Library, error) {
	return caddyhttp.CELMatcherImpl("iap_policy", "iap_policy_request", []*cel.Type{cel.StringType},
		func(data ref.Val) (caddyhttp.RequestMatcherWithError, error) {
			src, ok := data.Value().(string)
			if !ok {
				return nil, fmt.Errorf("iap_policy takes a string, got %v", data.Type())
			}
			p, err := authz.Parse([]byte(src), "iap_policy")
			if err != nil {
				return nil, err
			}
			m := &MatchPolicy{Policy: p}
			return m, m.Provision(ctx)
		})
}

// Interface guards
var (
	_ caddy.Provisioner                 = (*MatchPolicy)(nil)
	_ caddyhttp.RequestMatcherWithError = (*MatchPolicy)(nil)
	_ caddyfile.Unmarshaler             = (*MatchPolicy)(nil)
	_ caddyhttp.CELLibraryProducer      = (*MatchPolicy)(nil)
)
