package module

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/downstreamtls"
)

// caddy-iap's Prometheus metrics, served with Caddy's own on the admin
// endpoint's /metrics (and by the `metrics` handler). Every label value
// comes from a fixed list (outcomes, results, caddy-iap's reasons) or from
// the config (route names, the IdP's issuer): never a path, a user or a
// header, so the number of series stays bounded.
//
// The counters are the process's, as Caddy's reverse_proxy keeps its
// collectors: each config load registers them in the new config's registry
// (Caddy makes one per load), so a reload neither drops the counts nor
// exports them twice. The IdPs' health gauge belongs to the config whose
// iap app it describes, and is registered in its registry alone.
var iapMetrics = struct {
	decisions, signIns, certs, idpFetchErrors *prometheus.CounterVec
}{
	decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "iap", Name: "decisions_total",
		Help: "Requests decided by caddy-iap, by route, outcome (allow, deny, sign_in) and reason.",
	}, []string{"route", "outcome", "reason"}),
	signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "iap", Name: "sign_ins_total",
		Help: "Sign-ins through the identity provider, by result (success, failure) and the failure's reason.",
	}, []string{"result", "reason"}),
	certs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "iap", Name: "client_certificate_verifications_total",
		Help: "Client certificates verified, by stage (handshake, request), result (valid, invalid), reason and detail.",
	}, []string{"stage", "result", "reason", "detail"}),
	idpFetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "iap", Name: "idp_fetch_errors_total",
		Help: "Failed fetches from an identity provider, by its issuer and the document (discovery, keys).",
	}, []string{"issuer", "document"}),
}

// The outcomes of caddy_iap_decisions_total and the access log's
// iap_decision.
const (
	outcomeAllow  = "allow"   // the policy let the request in
	outcomeDeny   = "deny"    // refused, with an error status
	outcomeSignIn = "sign_in" // a browser sent to the IdP to sign in
)

// The stages of caddy_iap_client_certificate_verifications_total.
const (
	stageHandshake = "handshake" // tls.client_auth.verifier.iap (reject_connection)
	stageRequest   = "request"   // the iap_mtls handler
)

// registerMetrics registers the counters in the registry of the config
// being loaded. Every caddy-iap module that counts calls it from
// Provision; the second call of a config finds them registered already.
func registerMetrics(ctx caddy.Context) {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return
	}
	for _, c := range []*prometheus.CounterVec{iapMetrics.decisions, iapMetrics.signIns, iapMetrics.certs, iapMetrics.idpFetchErrors} {
		register(reg, c)
	}
	// A series that exists before its first event, so that rates and
	// alerts on it work from the start.
	iapMetrics.signIns.WithLabelValues(authn.ResultSuccess, "")
}

// register registers c, ignoring that it is registered already, as Caddy's
// reverse_proxy does.
func register(reg *prometheus.Registry, c prometheus.Collector) {
	var already prometheus.AlreadyRegisteredError
	if err := reg.Register(c); err != nil && !errors.As(err, &already) {
		caddy.Log().Named("iap.metrics").Error("registering a collector", zap.Error(err))
	}
}

// authnObserver is the iap app's authn.Config.Observe, which its named
// IdPs share: it counts sign-ins and fetch errors, and keeps
// caddy_iap_idp_up, the gauge of this config's IdPs by issuer (authn
// names the issuer, a URL of the config, as the event's reason). The
// default IdP's series starts at 0, until it is discovered.
func authnObserver(ctx caddy.Context, issuer string) func(event, result, reason string) {
	registerMetrics(ctx)
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "iap", Name: "idp_up",
		Help: "Whether the identity provider was discovered and its last health check passed (1) or not (0), by issuer.",
	}, []string{"issuer"})
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		register(reg, up)
	}
	up.WithLabelValues(issuer).Set(0)
	iapMetrics.idpFetchErrors.WithLabelValues(issuer, authn.FetchDiscovery)
	iapMetrics.idpFetchErrors.WithLabelValues(issuer, authn.FetchKeys)
	iapMetrics.idpFetchErrors.WithLabelValues(issuer, authn.FetchUserinfo)
	return func(event, result, reason string) {
		switch event {
		case authn.EventSignIn:
			iapMetrics.signIns.WithLabelValues(result, labelValue(reason)).Inc()
		case authn.EventIdP:
			v := 0.0
			if result == authn.ResultUp {
				v = 1
			}
			up.WithLabelValues(reason).Set(v)
		case authn.EventIdPFetchError:
			iapMetrics.idpFetchErrors.WithLabelValues(reason, result).Inc()
		}
	}
}

// workloadObserver counts the failed fetches of the identity_providers'
// discovery documents and key sets, by issuer, as the IdPs' are counted.
func workloadObserver(ctx caddy.Context, issuers []authn.WorkloadIssuer) func(event, result, reason string) {
	registerMetrics(ctx)
	for _, w := range issuers {
		iapMetrics.idpFetchErrors.WithLabelValues(w.Issuer, authn.FetchDiscovery)
		iapMetrics.idpFetchErrors.WithLabelValues(w.Issuer, authn.FetchKeys)
	}
	return func(event, result, reason string) {
		if event == authn.EventIdPFetchError {
			iapMetrics.idpFetchErrors.WithLabelValues(reason, result).Inc()
		}
	}
}

// routeVar is the key, in Caddy's vars, of the route name that
// iap_authorize set, for the decision's route label.
const routeVar = "iap.route"

// setDecisionRoute names the route that decides the request, for the
// metrics of refusals made after it.
func setDecisionRoute(r *http.Request, route string) {
	if route != "" {
		caddyhttp.SetVar(r.Context(), routeVar, route)
	}
}

// observeDecision counts a decision and adds it to the access log, as
// iap_decision (allow, deny, sign_in) and iap_reason.
func observeDecision(r *http.Request, outcome, reason string) {
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Set(zap.String("iap_decision", outcome))
		extra.Set(zap.String("iap_reason", reason))
	}
	iapMetrics.decisions.WithLabelValues(routeLabel(r), outcome, labelValue(reason)).Inc()
}

// observeSignInRedirect counts a request that authn's Challenge answered
// itself, which is a redirect to the IdP (Challenge redirects only
// user-unauthenticated): a refusal it made instead (401, 503) is counted
// when the handler returns it.
func observeSignInRedirect(r *http.Request, st *request) {
	if st.refused == nil {
		observeDecision(r, outcomeSignIn, string(authz.ReasonUnauthenticated))
	}
}

// observeClientCert counts a client certificate's verification; err is a
// chain that did not even parse.
func observeClientCert(stage string, res *downstreamtls.Result, err error) {
	switch {
	case err != nil || res == nil:
		iapMetrics.certs.WithLabelValues(stage, "invalid", downstreamtls.ReasonInvalid, downstreamtls.DetailInvalid).Inc()
	case res.Valid:
		iapMetrics.certs.WithLabelValues(stage, "valid", "", "").Inc()
	default:
		iapMetrics.certs.WithLabelValues(stage, "invalid", labelValue(res.Reason), labelValue(res.Detail)).Inc()
	}
}

// routeLabel is the decision's route: the name iap_authorize gave it (the
// route's name, by default its site's addresses); before iap_authorize,
// the host the TLS connection was made for, which the site's certificates
// bound, as Caddy's per-host metrics allow HTTPS hosts; "_other" without
// TLS, where the Host header is anyone's.
func routeLabel(r *http.Request) string {
	if route, ok := caddyhttp.GetVar(r.Context(), routeVar).(string); ok && route != "" {
		return route
	}
	if r.TLS != nil && r.TLS.ServerName != "" {
		return strings.ToLower(r.TLS.ServerName)
	}
	return "_other"
}

// labelValue keeps a reason that is a word of caddy-iap's lists (lower
// case letters, digits and dashes, at most 64 characters), and "other"
// for anything else, so that no label can carry text from a request.
func labelValue(s string) string {
	if len(s) > 64 {
		return "other"
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return "other"
		}
	}
	return s
}
