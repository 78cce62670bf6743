package module

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
)

// StatusSSLCertificateError is the status nginx introduced, and Pomerium
// uses, for a request without a valid client certificate.
const StatusSSLCertificateError = 495

// refusal is a refused request's answer: a status, a reason from a fixed
// vocabulary (client-certificate-required, no-policy, ...), an optional
// detail, and a message for people.
type refusal struct {
	Status  int
	Reason  string
	Detail  string
	Message string
	// Cert is the client certificate the request presented, shown on the
	// page and in the JSON of a refusal about it (495, and 403
	// client-certificate-user-mismatch), so the user can tell which
	// certificate was refused; nil otherwise.
	Cert *certSummary
	// Trace is how the route's policy decided, shown under the route's
	// show_error_details; nil otherwise.
	Trace *authz.Trace
	// RequestID is Caddy's {http.request.uuid}, which the access log and
	// the refusal's log line carry too: a user quotes it to the
	// administrator, as Pomerium's error page asks.
	RequestID string
}

// certSummary is what a refusal says of the client certificate presented.
// Every field is text from the certificate: html/template escapes it on the
// page, encoding/json in JSON.
type certSummary struct {
	Subject     string   `json:"subject"`
	Issuer      string   `json:"issuer"`
	NotBefore   string   `json:"not_before"`
	NotAfter    string   `json:"not_after"`
	Fingerprint string   `json:"fingerprint"`
	SANEmail    []string `json:"san_email,omitempty"`
}

// withCert adds the presented client certificate to a refusal about it.
func (f refusal) withCert(r *http.Request) refusal {
	if f.Cert != nil || f.Status != StatusSSLCertificateError && f.Reason != string(authz.ReasonCertUserMismatch) {
		return f
	}
	st := requestOf(r)
	if st == nil || st.Cert == nil || st.Cert.Leaf == nil {
		return f
	}
	leaf := st.Cert.Leaf
	f.Cert = &certSummary{
		Subject:     leaf.Subject.String(),
		Issuer:      leaf.Issuer.String(),
		NotBefore:   leaf.NotBefore.UTC().Format(time.RFC3339),
		NotAfter:    leaf.NotAfter.UTC().Format(time.RFC3339),
		Fingerprint: st.Cert.Fingerprint(),
		SANEmail:    leaf.EmailAddresses,
	}
	return f
}

// Text is the status line's text.
func (f refusal) Text() string {
	if f.Status == StatusSSLCertificateError {
		return "SSL Certificate Error"
	}
	return http.StatusText(f.Status)
}

// respond answers the request; it is the one way caddy-iap refuses a
// request (400, 401, 403, 404, 421, 495, 503, ...), whichever step refuses. When a handle_errors route of the server
// would take this request, it returns a caddyhttp.Error so that the route can
// restyle it (the reason is the error's ID, {http.error.id}). Otherwise it
// writes a page for browsers and JSON for API clients, each naming the
// reason.
func (f refusal) respond(w http.ResponseWriter, r *http.Request) error {
	observeDecision(r, outcomeDeny, f.Reason)
	if hasErrorRoute(r) {
		return caddyhttp.HandlerError{StatusCode: f.Status, ID: f.Reason, Err: fmt.Errorf("%s: %s", f.Reason, f.Message)}
	}
	return f.write(w, r)
}

// write answers with a page for browsers and JSON for API clients.
func (f refusal) write(w http.ResponseWriter, r *http.Request) error {
	f = f.withCert(r)
	f.RequestID = requestID(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if authn.WantsHTML(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		w.WriteHeader(f.Status)
		return refusalPage.Execute(w, f)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	body := map[string]any{"error": f.Message, "reason": f.Reason}
	if f.Detail != "" {
		body["detail"] = f.Detail
	}
	if f.Cert != nil {
		body["certificate"] = f.Cert
	}
	if f.Trace != nil {
		body["policy_evaluation"] = f.Trace
	}
	if f.RequestID != "" {
		body["request_id"] = f.RequestID
	}
	return json.NewEncoder(w).Encode(body)
}

// requestID is the request's ID, Caddy's {http.request.uuid}; "" outside
// a Caddy server (the placeholder needs the server's access-log fields in
// the context, and would panic without them).
func requestID(r *http.Request) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if _, logged := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); !ok || !logged {
		return ""
	}
	id, _ := repl.GetString("http.request.uuid")
	return id
}

// hasErrorRoute reports whether one of the server's handle_errors routes
// matches the request. A Caddyfile's handle_errors is scoped to its site by
// a host matcher, so one site's error pages do not hide ours on another.
func hasErrorRoute(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv.Errors == nil {
		return false
	}
	for _, route := range srv.Errors.Routes {
		if match, err := route.MatcherSets.AnyMatchWithError(r); match && err == nil {
			return true
		}
	}
	return false
}

var refusalPage = template.Must(template.New("refusal").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Status}} {{.Text}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
code{background:#eee;padding:.1rem .3rem;border-radius:3px}
table{border-collapse:collapse}th,td{text-align:left;vertical-align:top;padding:.2rem .8rem .2rem 0}td{word-break:break-all}
td ul{margin:0;padding-left:1rem}.outcome{white-space:nowrap}.allow{color:#1a7f37}.deny{color:#c62828}.none{color:#666}</style></head>
<body><h1>{{.Status}} {{.Text}}</h1><p id="message">{{.Message}}</p>
{{- with .Cert}}
<h2>The certificate that was sent</h2>
<table id="certificate">
<tr><th>Subject</th><td id="cert-subject">{{.Subject}}</td></tr>
{{- if .SANEmail}}
<tr><th>Email</th><td id="cert-san-email">{{range $i, $e := .SANEmail}}{{if $i}}, {{end}}{{$e}}{{end}}</td></tr>
{{- end}}
<tr><th>Issued by</th><td id="cert-issuer">{{.Issuer}}</td></tr>
<tr><th>Valid from</th><td id="cert-not-before">{{.NotBefore}}</td></tr>
<tr><th>Expires</th><td id="cert-not-after">{{.NotAfter}}</td></tr>
<tr><th>SHA-256</th><td id="cert-fingerprint"><code>{{.Fingerprint}}</code></td></tr>
</table>
{{- end}}
{{- with .Trace}}
<h2>How the policy decided</h2>
<table id="policy-evaluation">
<tr><th>Outcome</th><th>Rule</th><th>Criteria</th></tr>
{{- range .Rules}}
<tr class="rule"><td class="outcome {{if not .Matched}}none{{else if eq .Action "deny"}}deny{{else}}allow{{end}}">{{if .Matched}}{{if eq .Action "deny"}}&#x2717; deny{{else}}&#x2713; allow{{end}}{{else}}&#x2013; no match{{end}}</td>
<td>rule {{.Rule}}: {{.Action}}</td>
<td><ul>{{range .Criteria}}<li class="criterion">{{.Operator}} <code>{{.Criterion}}: {{printf "%s" .Data}}</code> {{if .Matched}}matched{{else}}not matched{{end}}</li>{{end}}</ul></td></tr>
{{- else}}
<tr><td colspan="3">The policy has no rules.</td></tr>
{{- end}}
</table>
{{- end}}
<p>Reason: <code id="reason">{{.Reason}}</code>{{if .Detail}} (<code id="detail">{{.Detail}}</code>){{end}}</p>
{{- if .RequestID}}
<p>If you should have access, contact your administrator with your request ID <code id="request-id">{{.RequestID}}</code>.</p>
{{- end}}</body></html>
`))
