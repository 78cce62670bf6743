package module

import (
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/downstreamtls"
)

// request is what caddy-iap learns about one request, written by the step
// that learns it and read by every later step, by logs, placeholders and
// error pages:
//
//  1. begin (the first caddy-iap handler or matcher): client-sent identity
//     headers removed, the path checked and cleaned, the Upgrade checked;
//  2. iap_mtls: the client certificate's result;
//  3. iap_authenticate: the signed-in user, if any;
//  4. iap_authorize: the decision and its reason;
//  5. identity out: the assertion and claim headers for the upstream.
type request struct {
	app *App
	// auth is the Authenticator of the IdP the route's iap_authenticate
	// names; nil: the default (see authn).
	auth *authn.Authenticator
	r    *http.Request // the request as begin saw it, for the assertion's host

	// Cert is iap_mtls's verdict on the client certificate; nil when the
	// site has no iap_mtls.
	Cert *downstreamtls.Result

	// Session is the signed-in user; nil for an anonymous request.
	Session *authn.Session
	// identified: iap_authenticate looked for a user with an IdP, so an
	// anonymous request may be asked to sign in.
	identified bool
	// identityErr says why a credential the client sent was not accepted
	// (an expired cookie, a bad bearer token, the IdP down), for the
	// sign-in challenge.
	identityErr error
	// passBearer keeps an accepted Authorization: Bearer header for the
	// upstream.
	passBearer bool
	// identityOut: the assertion and claim headers are set.
	identityOut bool
	// passIdentity is the route's pass_identity_headers (iap_authorize's),
	// which overrides the app's; nil follows the app.
	passIdentity *bool
	// issuerFormat is the route's jwt_issuer_format; "" follows the app.
	issuerFormat string

	// Decision is the policy's decision, once iap_authorize ran.
	Decision *authz.Decision
	// Reason is why the request was refused, or "allowed".
	Reason authz.Reason

	// refused holds a refusal authn made (through its Refuse hook), for
	// the handler to return as a Caddy error.
	refused *refusal

	// spdy: the request asks for a SPDY/3.1 upgrade, which only a route
	// that allows it lets through (see refuseSPDY).
	spdy bool
}

// requestVar is the key of the request's state in Caddy's vars.
const requestVar = "iap.request"

// requestOf returns the request's state, or nil before begin.
func requestOf(r *http.Request) *request {
	st, _ := caddyhttp.GetVar(r.Context(), requestVar).(*request)
	return st
}

// begin returns the request's state, creating it on the first call: it
// removes identity headers the client sent, refuses an Upgrade other than
// websocket, and checks and cleans the path (in place, so the upstream gets
// the path the policy decides on). A refusal is returned as a *refusal.
func begin(r *http.Request, app *App) (*request, *refusal) {
	if st := requestOf(r); st != nil {
		return st, nil
	}
	st := &request{app: app, r: r}
	caddyhttp.SetVar(r.Context(), requestVar, st)
	stripIdentityHeaders(r, app)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(st.placeholder)
	}
	if up := upgradeOf(r); len(up) > 0 && !onlyWebSocket(up) {
		if !isSPDY(r, up) {
			return st, st.refuse(http.StatusBadRequest, authz.ReasonUpgradeRefused, "",
				"Only WebSocket upgrades (and SPDY/3.1 on routes that allow it) are allowed here; the upgrade to "+
					strings.TrimSpace(strings.Join(up, ", "))+" is refused.")
		}
		st.spdy = true
	}
	if err := normalizePath(r.URL); err != nil {
		return st, st.refuse(http.StatusBadRequest, authz.ReasonAmbiguousPath, "",
			"The path has an encoded slash, backslash, dot segment or NUL, so its meaning depends on who decodes it. Send the path unencoded.")
	}
	r.RequestURI = r.URL.RequestURI()
	return st, nil
}

// upgradeOf returns the protocols a request asks to switch to: its Upgrade
// header over HTTP/1.1, or the :protocol of an extended CONNECT over HTTP/2
// and HTTP/3 (RFC 8441, RFC 9220), which Caddy's reverse_proxy turns into an
// HTTP/1.1 Upgrade to the upstream.
func upgradeOf(r *http.Request) []string {
	if r.Method == http.MethodConnect {
		if p := r.Header.Get(":protocol"); r.ProtoMajor == 2 && p != "" {
			return []string{p}
		}
		if r.ProtoMajor == 3 && r.Proto != "" && !strings.HasPrefix(r.Proto, "HTTP/") {
			return []string{r.Proto}
		}
	}
	return r.Header.Values("Upgrade")
}

// isSPDY reports whether an HTTP/1.1 request's Upgrade values (up) ask
// for SPDY/3.1 alone, as kubectl exec, attach and port-forward do. SPDY
// named beside another protocol, or through an extended CONNECT, is not.
func isSPDY(r *http.Request, up []string) bool {
	return r.ProtoMajor == 1 && r.Method != http.MethodConnect && len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), SPDYProtocol)
}

// SPDYProtocol is the Upgrade token of SPDY, as Pomerium and Envoy name it
// (allow_upgrades: [spdy/3.1]).
const SPDYProtocol = "SPDY/3.1"

// refuseSPDY refuses a SPDY upgrade unless allow: the handlers that decide
// for a route (iap_authenticate, iap_authorize, the iap_policy matcher)
// each call it, with the route's allow_spdy, so that a SPDY upgrade passes
// only where every one of them allows it. iap_mtls, which runs for a whole
// site before its routes, leaves the decision to them.
func (st *request) refuseSPDY(allow bool) *refusal {
	if !st.spdy || allow {
		return nil
	}
	return st.refuse(http.StatusBadRequest, authz.ReasonUpgradeRefused, "",
		"SPDY upgrades (kubectl exec, attach and port-forward) are turned off on this route (allow_spdy).")
}

func onlyWebSocket(values []string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if !strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return false
			}
		}
	}
	return true
}

// refuse records a refusal's reason on the request and returns it.
func (st *request) refuse(status int, reason authz.Reason, detail, message string) *refusal {
	st.Reason = reason
	return &refusal{Status: status, Reason: string(reason), Detail: detail, Message: message}
}

// answered returns what authn's refusal hook recorded, as the handler's
// result: nil when authn wrote its answer (a redirect, a page) itself.
func (st *request) answered(w http.ResponseWriter, r *http.Request) error {
	if st.refused == nil {
		return nil
	}
	f := st.refused
	st.refused = nil
	return f.respond(w, r)
}

// logRefusal logs a refusal with the request's reason and user.
func (st *request) logRefusal(logger *zap.Logger, r *http.Request, msg string, fields ...zap.Field) {
	fields = append(fields,
		zap.String("reason", string(st.Reason)),
		zap.String("request_id", requestID(r)),
		zap.String("remote_ip", r.RemoteAddr),
		zap.String("host", r.Host),
		zap.String("uri", r.RequestURI))
	if st.Session != nil {
		fields = append(fields, zap.String("user_id", st.Session.Subject), zap.String("email", st.Session.Email))
	}
	logger.Info(msg, fields...)
}

// placeholder answers caddy-iap's placeholders from the request's state,
// only when a config uses them, and empty (never left as text) when there
// is no user or no valid certificate:
//   - {http.auth.user.id}, .email, .name, .groups (comma-separated),
//     .claim.<name>, and .jwt (the signed assertion, Pomerium's
//     $pomerium.jwt);
//   - {http.iap.client_cert.fingerprint} (SHA-256 hex), .san_dns and
//     .san_email (comma-separated), Pomerium's $pomerium.client_cert_*;
//   - {http.iap.reason}: why the request was refused, or "allowed".
func (st *request) placeholder(key string) (any, bool) {
	if name, ok := strings.CutPrefix(key, "http.auth.user."); ok {
		s := st.Session
		if s == nil {
			return "", name == "id" || name == "email" || name == "name" || name == "groups" || name == "jwt" || strings.HasPrefix(name, "claim.")
		}
		var v string
		switch name {
		case "id":
			v = s.Subject
		case "email":
			v = s.Email
		case "name":
			v = s.Name
		case "groups":
			v = claimString(s.Groups)
		}
		if v != "" {
			if !httpguts.ValidHeaderFieldValue(v) {
				v = "" // no placeholder may split a header it is written into
			}
			return v, true
		}
		switch name {
		case "id", "email", "name", "groups":
			return "", true
		case "jwt":
			auth := st.authn()
			if auth == nil {
				return "", true
			}
			jwt, err := auth.AssertionFor(s, st.r.Host, st.uriIssuer())
			return jwt, err == nil
		}
		if claim, ok := strings.CutPrefix(name, "claim."); ok {
			v, ok := s.Claim(claim)
			if !ok {
				return "", true
			}
			if v := claimString(v); httpguts.ValidHeaderFieldValue(v) {
				return v, true
			}
			return "", true
		}
		return nil, false
	}
	if name, ok := strings.CutPrefix(key, "http.iap."); ok {
		if name == "reason" {
			return string(st.Reason), true
		}
		return clientCertPlaceholder(st.Cert, name)
	}
	return nil, false
}

// input fills in what a policy decides on: the request (with its cleaned
// path), the signed-in user and the client certificate's result. user and
// cert are the caller's, so that nothing escapes to the heap.
func (st *request) input(r *http.Request, in *authz.Input, user *authz.User, cert *authz.ClientCert) {
	in.Now = time.Now()
	in.Request.Method = r.Method
	in.Request.Path = r.URL.Path
	in.Request.Header = r.Header
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		in.Request.ClientIP, _ = netip.ParseAddr(ip)
	}
	if s := st.Session; s != nil {
		*user = authz.User{ID: s.Subject, Email: s.Email, Groups: s.Groups, Claim: s.Claim}
		in.User = user
	}
	if res := st.Cert; res != nil {
		*cert = authz.ClientCert{Presented: res.Presented, Valid: res.Valid,
			Fingerprint: res.LeafSHA256, SPKIHash: res.SPKISHA256}
		if res.Leaf != nil {
			cert.Emails, cert.DNSNames = res.Leaf.EmailAddresses, res.Leaf.DNSNames
			cert.CommonName = res.Leaf.Subject.CommonName
			for _, u := range res.Leaf.URIs {
				cert.URIs = append(cert.URIs, u.String())
			}
		}
		in.Cert = cert
	}
}
