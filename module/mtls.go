package module

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/downstreamtls"
)

func init() {
	caddy.RegisterModule(MTLS{})
}

// MTLS is a site's downstream mutual TLS at the HTTP layer. It runs first,
// before any other handler of the site. It verifies the client certificate
// of each request (results are cached per certificate chain) and records the
// result for the route's policy. Under the enforcement
// policy_with_default_deny it answers a request without a valid certificate
// with 495, as a page for browsers and JSON for API clients, before anything
// else (no login redirect). Client-Cert and Client-Cert-Chain headers that
// clients send never pass (see begin).
//
// The Caddyfile directive iap_mtls sets it up together with the TLS
// connection policy that asks clients for a certificate.
type MTLS struct {
	downstreamtls.Options

	// Send the verified client certificate to upstreams, in the RFC 9440
	// headers Client-Cert (the leaf) and Client-Cert-Chain (the
	// intermediates the client sent), each a byte sequence of DER.
	PassClientCertificate bool `json:"pass_client_certificate,omitempty"`

	// Other TLS server names (SNI) that connections for a host may be made
	// for, by host: {"app.example.com": ["legacy.example.com"]} lets a
	// connection made for legacy.example.com carry requests for
	// app.example.com (Pomerium's tls_downstream_server_name). By default
	// a request's Host must be the name its connection was made for, or
	// it is refused with 421, so that the connection policy that asked for
	// (or did not ask for) a client certificate is the host's own. Each
	// name needs a certificate and this site's client_authentication in a
	// connection policy for it, and the server's strict_sni_host must be
	// false (Caddy turns it on when client certificates are asked for),
	// leaving the check to this handler.
	ServerNames map[string][]string `json:"server_names,omitempty"`

	cache  *downstreamtls.Cache
	app    *App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (MTLS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.iap_mtls",
		New: func() caddy.Module { return new(MTLS) },
	}
}

// Provision loads the CAs, CRLs and patterns.
func (m *MTLS) Provision(ctx caddy.Context) (err error) {
	m.logger = ctx.Logger()
	m.app = configuredApp(ctx)
	registerMetrics(ctx)
	m.cache, err = newVerifierCache(m.Options, m.logger)
	return err
}

// servesName reports whether ServerNames lets a connection made for sni
// carry requests for host. A key "*.example.com" stands for the hosts one
// label under example.com, as a wildcard route's host does.
func (m *MTLS) servesName(host, sni string) bool {
	for h, names := range m.ServerNames {
		_, parent, _ := strings.Cut(host, ".")
		if strings.EqualFold(h, host) || strings.HasPrefix(h, "*.") && parent != "" && strings.EqualFold(h[2:], parent) {
			for _, n := range names {
				if strings.EqualFold(n, sni) {
					return true
				}
			}
		}
	}
	return false
}

// Cleanup lets go of connections to OCSP responders.
func (m *MTLS) Cleanup() error {
	if m.cache != nil {
		m.cache.Close()
	}
	return nil
}

// newVerifierCache compiles downstream mTLS options, logging warnings, and
// later the rereading of ca_file and crl_file and OCSP failures.
func newVerifierCache(o downstreamtls.Options, logger *zap.Logger) (*downstreamtls.Cache, error) {
	v, warnings, err := downstreamtls.New(o, time.Now())
	if err != nil {
		return nil, fmt.Errorf("iap_mtls: %v", err)
	}
	v.SetLogger(logger)
	for _, w := range warnings {
		logger.Warn(w)
	}
	return downstreamtls.NewCache(v), nil
}

// responderNote names the OCSP responder that decided a refusal, so the
// user can tell the administrator which service failed.
func responderNote(res *downstreamtls.Result) string {
	if res.Responder == "" {
		return ""
	}
	return " The certificate's status was asked of the OCSP responder " + res.Responder + "."
}

// ServeHTTP verifies the client certificate.
func (m *MTLS) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	st, refused := begin(r, m.app)
	if refused != nil {
		st.logRefusal(m.logger, r, "request refused")
		return refused.respond(w, r)
	}
	var presented []*x509.Certificate
	if r.TLS != nil {
		// The certificate was asked for by the connection policy of the
		// handshake's server name: it must be this request's host too.
		// Caddy checks this already (strict_sni_host); this keeps it so
		// even if that is turned off.
		if sni := r.TLS.ServerName; sni != "" && !strings.EqualFold(sni, hostOnly(r.Host)) && !m.servesName(hostOnly(r.Host), sni) {
			f := st.refuse(http.StatusMisdirectedRequest, authz.ReasonMisdirected, "",
				fmt.Sprintf("This connection was made for %s, not %s: open a new connection for that host.", sni, hostOnly(r.Host)))
			st.logRefusal(m.logger, r, "request refused", zap.String("sni", sni))
			return f.respond(w, r)
		}
		presented = r.TLS.PeerCertificates
	}
	res := m.cache.Verify(presented, time.Now())
	observeClientCert(stageRequest, res, nil)
	st.Cert = res

	if !res.Valid {
		msg := "client certificate refused"
		if m.EnforcementMode() == downstreamtls.Policy {
			msg = "client certificate not valid; the route's policy decides"
		}
		m.logger.Info(msg,
			zap.String("remote_addr", r.RemoteAddr),
			zap.String("host", r.Host),
			zap.String("subject", res.Subject()),
			zap.String("fingerprint", res.Fingerprint()),
			zap.String("reason", res.Reason),
			zap.String("detail", res.Detail),
			zap.Error(res.Err))
		if m.EnforcementMode() != downstreamtls.Policy {
			// The health check and the JWKS answer without a certificate, as
			// Pomerium's do: load balancers and upstreams verifying
			// assertions have none. They are answered here, never passed on.
			if answered := serveOpenEndpoint(w, r, m.app); answered {
				return st.answered(w, r)
			}
			return st.refuse(StatusSSLCertificateError, authz.Reason(res.Reason), res.Detail, certMessage(res)+responderNote(res)).respond(w, r)
		}
	} else if m.PassClientCertificate {
		r.Header.Set("Client-Cert", sfBinary(res.Leaf.Raw))
		if len(res.Intermediates) > 0 {
			items := make([]string, len(res.Intermediates))
			for i, c := range res.Intermediates {
				items[i] = sfBinary(c.Raw)
			}
			r.Header.Set("Client-Cert-Chain", strings.Join(items, ", "))
		}
	}
	return next.ServeHTTP(w, r)
}

// clientCertPlaceholder answers {http.iap.client_cert.fingerprint} (the
// SHA-256 of the leaf, hex), {http.iap.client_cert.san_dns} and
// {http.iap.client_cert.san_email} (comma-separated), the values of
// Pomerium's $pomerium.client_cert_*, by name (fingerprint, ...). They are
// empty unless res is a valid certificate, so no placeholder text reaches
// an upstream.
func clientCertPlaceholder(res *downstreamtls.Result, key string) (any, bool) {
	name, ok := strings.CutPrefix(key, "client_cert.")
	if !ok || name != "fingerprint" && name != "san_dns" && name != "san_email" {
		return nil, false
	}
	if res == nil || !res.Valid {
		return "", true
	}
	switch name {
	case "fingerprint":
		return res.Fingerprint(), true
	case "san_dns":
		return strings.Join(res.Leaf.DNSNames, ","), true
	}
	return strings.Join(res.Leaf.EmailAddresses, ","), true
}

// certMessage tells the user what to do: which certificate was refused
// (its subject and issuer; the page and the JSON list its fields), why, and
// what would get them in.
func certMessage(res *downstreamtls.Result) string {
	if res.Reason == downstreamtls.ReasonRequired || res.Leaf == nil {
		return "A valid client certificate is required to access this site, and your browser or client sent none. Install the certificate your organization issued you, then reload (a browser may need to be restarted to offer a newly installed certificate)."
	}
	leaf := res.Leaf
	return fmt.Sprintf("A valid client certificate is required to access this site. The certificate sent (%s, issued by %s) was refused: %s. %s",
		res.Subject(), leaf.Issuer.String(), detailText(res.Detail, leaf), detailAdvice(res.Detail))
}

func detailText(detail string, leaf *x509.Certificate) string {
	switch detail {
	case downstreamtls.DetailExpired:
		return "it expired on " + leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	case downstreamtls.DetailNotYetValid:
		return "it is not valid until " + leaf.NotBefore.UTC().Format("2006-01-02 15:04 MST")
	case downstreamtls.DetailUnknownAuthority:
		return "it is not issued by a certificate authority this site trusts"
	case downstreamtls.DetailRevoked:
		return "it has been revoked"
	case downstreamtls.DetailSANMismatch:
		return "its names are not among those this site accepts"
	case downstreamtls.DetailTooDeep:
		return "its chain of issuers is longer than this site allows"
	case downstreamtls.DetailNotForClientAuth:
		return "it is not meant for client authentication"
	case downstreamtls.DetailCRLInvalid, downstreamtls.DetailCRLOutOfDate:
		return "its revocation status cannot be checked"
	case downstreamtls.DetailOCSPUnavailable, downstreamtls.DetailOCSPUnknown:
		return "its revocation status could not be established with its OCSP responder"
	}
	return "it is not valid"
}

// detailAdvice is what the user can do about a refused certificate.
func detailAdvice(detail string) string {
	switch detail {
	case downstreamtls.DetailExpired, downstreamtls.DetailRevoked:
		return "Ask your organization for a new certificate, install it, and remove this one."
	case downstreamtls.DetailNotYetValid:
		return "Check your device's clock, or wait until then."
	case downstreamtls.DetailCRLInvalid, downstreamtls.DetailCRLOutOfDate, downstreamtls.DetailOCSPUnavailable, downstreamtls.DetailOCSPUnknown:
		return "This is the site's problem, not yours: tell its administrator."
	}
	return "Choose the certificate your organization issued you for this site (restart the browser to be asked again), or ask your organization for one."
}

// sfBinary encodes bytes as an RFC 8941 byte sequence.
func sfBinary(b []byte) string {
	return ":" + base64.StdEncoding.EncodeToString(b) + ":"
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// Interface guards
var (
	_ caddy.Provisioner           = (*MTLS)(nil)
	_ caddy.CleanerUpper          = (*MTLS)(nil)
	_ caddyhttp.MiddlewareHandler = (*MTLS)(nil)
)
