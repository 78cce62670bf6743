package module

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/internal/suggest"
)

// The fields of the "authorize check" log line, by Pomerium's names
// (authorize_log_fields), each the key it is logged under. Fields of
// Pomerium that caddy-iap never has a value for (impersonation, service
// accounts, MCP, Envoy's route, a request body) are accepted, so that a
// Pomerium list works unchanged, and never logged, as Pomerium leaves out
// a field it has no value for.
var authorizeLogFieldNames = []string{
	"body",                   // never: the policy does not read the body
	"check-request-id",       // the request's ID, as request-id
	"cluster-stat-name",      // never: no Envoy cluster
	"email",                  // the user's email ("" without a user)
	"envoy-route-checksum",   // never: no Envoy route
	"envoy-route-id",         // never: no Envoy route
	"headers",                // every request header (see authorizeLog.headers)
	"host",                   // the Host
	"id-token",               // the user's raw ID token, when the session keeps it: a secret
	"id-token-claims",        // the user's ID token claims
	"impersonate-email",      // never: no impersonation
	"impersonate-session-id", // never
	"impersonate-user-id",    // never
	"ip",                     // the client's address (the TCP peer's, or trusted_proxies')
	"mcp-method",             // never: no MCP routes
	"mcp-tool",               // never
	"mcp-tool-parameters",    // never
	"method",                 // the method
	"path",                   // the path the policy decided on
	"query",                  // the query string
	"removed-groups-count",   // never: no groups filter
	"request-id",             // the request's ID, Caddy's {http.request.uuid}
	"route-checksum",         // a checksum of the route's iap_authorize config
	"route-id",               // the route's name
	"service-account-id",     // never: no service accounts
	"session-id",             // the session's ID (the assertion's sid)
	"user",                   // the user's ID, the IdP's sub ("" without a user)
}

// DefaultAuthorizeLogFields is Pomerium's default authorize_log_fields
// (logfields.DefaultAuthorizeLogFields), in its order.
var DefaultAuthorizeLogFields = []string{
	"request-id", "check-request-id", "method", "path", "host", "ip", "session-id",
	"impersonate-session-id", "impersonate-user-id", "impersonate-email", "removed-groups-count",
	"service-account-id", "user", "email", "envoy-route-checksum", "envoy-route-id",
	"route-checksum", "route-id",
}

// CheckAuthorizeLogFields reports the first name that is not a field of
// the authorize log: one of authorizeLogFieldNames, or headers.<Name> for
// one request header.
func CheckAuthorizeLogFields(fields []string) error {
	for _, f := range fields {
		if name, ok := strings.CutPrefix(f, "headers."); ok {
			if !httpguts.ValidHeaderFieldName(name) {
				return fmt.Errorf("authorize_log_fields: %q: headers.<Name> needs a header name after the dot", f)
			}
			continue
		}
		if !slices.Contains(authorizeLogFieldNames, f) {
			return fmt.Errorf("authorize_log_fields: unknown field %q%s; the fields are %s and headers.<Name>",
				f, suggest.DidYouMean(f, authorizeLogFieldNames), strings.Join(authorizeLogFieldNames, ", "))
		}
	}
	return nil
}

// authorizeLog writes the "authorize check" line of each decision, with
// the fields of the app's authorize_log_fields.
type authorizeLog struct {
	fields []string
	// allHeaders: "headers" is listed: every request header, with
	// credentials (Cookie, Authorization, Proxy-Authorization) REDACTED,
	// as Caddy's access log writes them, unless named one by one.
	allHeaders bool
	// headers are the headers.<Name> listed, canonical.
	headers []string
	logger  *zap.Logger
}

// newAuthorizeLog compiles a checked list; nil for no list (no line).
func newAuthorizeLog(fields []string, logger *zap.Logger) *authorizeLog {
	if fields == nil {
		return nil
	}
	l := &authorizeLog{logger: logger}
	for _, f := range fields {
		// A name listed twice is logged once: a JSON line has each key once.
		switch name, ok := strings.CutPrefix(f, "headers."); {
		case ok && !slices.Contains(l.headers, http.CanonicalHeaderKey(name)):
			l.headers = append(l.headers, http.CanonicalHeaderKey(name))
		case f == "headers":
			l.allHeaders = true
		case !ok && !slices.Contains(l.fields, f):
			l.fields = append(l.fields, f)
		}
	}
	return l
}

// routeChecksum is route-checksum: FNV-64a of the handler's config
// (without its Kubernetes token, a secret), so that a line tells which
// version of a route decided.
func routeChecksum(a *Authorize) uint64 {
	c := *a
	c.KubernetesServiceAccountToken = ""
	b, _ := json.Marshal(&c)
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// log writes one decision: the listed fields, the headers, then allow,
// deny and caddy-iap's reason.
func (l *authorizeLog) log(r *http.Request, st *request, d authz.Decision, route string, checksum uint64) {
	if l == nil {
		return
	}
	ce := l.logger.Check(zap.InfoLevel, "authorize check")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, len(l.fields)+5)
	s := st.Session
	for _, f := range l.fields {
		switch f {
		case "request-id", "check-request-id":
			// The ID refusal pages show too.
			fields = append(fields, zap.String(f, requestID(r)))
		case "method":
			fields = append(fields, zap.String(f, r.Method))
		case "path":
			fields = append(fields, zap.String(f, r.URL.Path))
		case "query":
			fields = append(fields, zap.String(f, r.URL.RawQuery))
		case "host":
			fields = append(fields, zap.String(f, r.Host))
		case "ip":
			ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
			fields = append(fields, zap.String(f, ip))
		case "user":
			id := ""
			if s != nil {
				id = s.Subject
			}
			fields = append(fields, zap.String(f, id))
		case "email":
			email := ""
			if s != nil {
				email = s.Email
			}
			fields = append(fields, zap.String(f, email))
		case "session-id":
			if s != nil && s.ID != "" {
				fields = append(fields, zap.String(f, s.ID))
			}
		case "id-token":
			if s != nil && s.RawIDToken != "" {
				fields = append(fields, zap.String(f, s.RawIDToken))
			}
		case "id-token-claims":
			if claims := idTokenClaims(st); claims != nil {
				fields = append(fields, zap.Any(f, claims))
			}
		case "route-id":
			fields = append(fields, zap.String(f, route))
		case "route-checksum":
			fields = append(fields, zap.Uint64(f, checksum))
		}
	}
	if l.allHeaders || len(l.headers) > 0 {
		h := map[string]string{}
		for name, values := range r.Header {
			named := slices.Contains(l.headers, name)
			if !named && !l.allHeaders {
				continue
			}
			v := strings.Join(values, ",")
			if !named && isCredentialHeader(name) {
				v = "REDACTED"
			}
			h[name] = v
		}
		fields = append(fields, zap.Any("headers", h))
	}
	fields = append(fields,
		zap.Bool("allow", d.Allow),
		zap.Bool("deny", d.Reason == authz.ReasonDenied),
		zap.String("reason", string(d.Reason)))
	ce.Write(fields...)
}

// isCredentialHeader: the request headers Caddy's access log redacts.
func isCredentialHeader(name string) bool {
	switch name {
	case "Cookie", "Authorization", "Proxy-Authorization":
		return true
	}
	return false
}

// idTokenClaims are the claims of the user's ID token (its payload, which
// was verified at sign-in), or, when the session does not keep the token,
// the claims it keeps; nil without a user.
func idTokenClaims(st *request) map[string]any {
	s := st.Session
	if s == nil {
		return nil
	}
	if parts := strings.Split(s.RawIDToken, "."); len(parts) == 3 {
		if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var m map[string]any
			if json.Unmarshal(payload, &m) == nil {
				return m
			}
		}
	}
	m := map[string]any{"sub": s.Subject}
	if s.Email != "" {
		m["email"] = s.Email
	}
	if s.Name != "" {
		m["name"] = s.Name
	}
	if len(s.Groups) > 0 {
		m["groups"] = s.Groups
	}
	for k, v := range s.Claims {
		m[k] = v
	}
	return m
}
