package module

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-iap/caddy-iap/authn"
)

// WorkloadIssuer is an issuer of workload JWTs: bearer tokens that
// machines (Kubernetes service accounts, CI jobs, SPIFFE JWT-SVIDs, an
// OAuth 2.0 server's client_credentials grant) get from an issuer of their
// own and send as "Authorization: Bearer <JWT>". Pomerium's
// identity_providers entry. The tokens are verified here against the
// issuer's published keys; they never become a browser session.
type WorkloadIssuer struct {
	// The tokens' iss, exactly, which also picks this issuer for a token.
	// An https URL (http only on a loopback host). Unless jwks_url is set,
	// its OpenID Connect discovery document
	// (<issuer>/.well-known/openid-configuration) names the key set, and
	// its issuer must be this one. Required, and unique among the
	// identity_providers.
	Issuer string `json:"issuer,omitempty"`

	// The key set's URL, when the discovery document cannot be reached
	// (or there is none): then it is fetched directly, and the tokens' iss
	// must still be issuer. An https URL (http only on a loopback host).
	// Default: the discovery document's jwks_uri.
	JWKSURL string `json:"jwks_url,omitempty"`

	// The signing algorithms accepted: RS256, RS384, RS512, PS256, PS384,
	// PS512, ES256, ES384, ES512, EdDSA. HMAC (HS*) and none are refused.
	// Default: RS256, ES256, EdDSA.
	SupportedAlgs []string `json:"supported_algs,omitempty"`

	// The audiences accepted: a token's aud must name at least one of
	// them. Required: a workload token for another service is not one for
	// this one.
	Audiences []string `json:"audiences,omitempty"`
}

// workloadIssuers returns the app's identity_providers for authn, sorted
// by name.
func (a *App) workloadIssuers() []authn.WorkloadIssuer {
	var out []authn.WorkloadIssuer
	for _, name := range slices.Sorted(maps.Keys(a.IdentityProviders)) {
		w := a.IdentityProviders[name]
		if w == nil {
			w = new(WorkloadIssuer)
		}
		out = append(out, authn.WorkloadIssuer{Name: name, Issuer: w.Issuer, JWKSURL: w.JWKSURL,
			SupportedAlgs: w.SupportedAlgs, Audiences: w.Audiences})
	}
	return out
}

// provisionWorkloads checks the identity_providers and makes their
// verifier; it fetches nothing. Keys are fetched over TLS trusting the
// system roots plus the app's certificate_authority(_file), as Pomerium
// fetches them. Failed fetches count in caddy_iap_idp_fetch_errors_total
// under the issuer.
func (a *App) provisionWorkloads(ctx caddy.Context) error {
	if len(a.IdentityProviders) == 0 {
		return nil
	}
	client, err := a.workloadHTTPClient()
	if err != nil {
		return fmt.Errorf("identity_providers: %v", err)
	}
	w, err := authn.NewWorkloads(authn.WorkloadsConfig{
		Issuers: a.workloadIssuers(), HTTPClient: client, Logger: a.logger,
		Observe: workloadObserver(ctx, a.workloadIssuers()),
	})
	if err != nil {
		return fmt.Errorf("identity_providers: %v", err)
	}
	a.workloads = w
	return nil
}

// workloadHTTPClient is the client of key set fetches: the system roots,
// plus certificate_authority(_file) when set.
func (a *App) workloadHTTPClient() (*http.Client, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	if a.CertificateAuthority == "" && a.CertificateAuthorityFile == "" {
		return client, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if a.CertificateAuthorityFile != "" {
		pem, err := os.ReadFile(a.CertificateAuthorityFile)
		if err != nil {
			return nil, fmt.Errorf("certificate_authority_file: %v", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("certificate_authority_file %s: no PEM certificate in it", a.CertificateAuthorityFile)
		}
	}
	if a.CertificateAuthority != "" {
		pem, err := base64.StdEncoding.DecodeString(a.CertificateAuthority)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("certificate_authority: not base64-encoded PEM certificates")
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client.Transport = t
	return client, nil
}

// checkWorkloadNames checks a route's identity_providers against the app's.
func (a *App) checkWorkloadNames(names []string) error {
	for _, n := range names {
		if a == nil || a.IdentityProviders[n] == nil {
			var have []string
			if a != nil {
				have = slices.Sorted(maps.Keys(a.IdentityProviders))
			}
			return fmt.Errorf("identity_providers: %q is not one of the iap app's identity_providers (%q)", n, have)
		}
	}
	return nil
}

// provisionWorkloads sets up a route's reading of workload JWTs when its
// bearer_token_format (or the app's) is jwt: the app must have
// identity_providers, the route's must be among them, and there must be a
// sign-in IdP. identity_providers on a route that does not read workload
// JWTs is an error, as in Pomerium.
func (h *Authenticate) provisionWorkloads() error {
	format := h.BearerTokenFormat
	if format == "" && h.app != nil {
		format = h.app.BearerTokenFormat
	}
	if format != authn.BearerJWT {
		if len(h.IdentityProviders) > 0 {
			return fmt.Errorf("iap_authenticate: identity_providers %q: only routes whose bearer_token_format is jwt read workload JWTs (this one's is %q)", h.IdentityProviders, format)
		}
		return nil
	}
	if h.app == nil || h.app.workloads == nil {
		return errors.New("iap_authenticate: bearer_token_format jwt: the iap app has no identity_providers, so no workload JWT could be verified")
	}
	if h.app.auth == nil {
		return errors.New("iap_authenticate: bearer_token_format jwt: caddy-iap reads workload JWTs on servers with a sign-in identity provider (idp in the iap app; idp_provider_url in Pomerium), whose keys sign the identity assertion")
	}
	if err := h.app.checkWorkloadNames(h.IdentityProviders); err != nil {
		return fmt.Errorf("iap_authenticate: %v", err)
	}
	h.bearer.Format = authn.BearerJWT
	h.bearer.Workloads = h.app.workloads
	h.bearer.IdentityProviders = nil
	if len(h.IdentityProviders) > 0 {
		h.bearer.IdentityProviders = h.IdentityProviders
	}
	return nil
}

// cookieAndBearer reports whether a request carries an Authorization:
// Bearer header and a session cookie of one of the app's IdPs.
func (h *Authenticate) cookieAndBearer(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
		return false
	}
	for _, a := range h.app.authenticators() {
		if a.SentSessionCookie(r) {
			return true
		}
	}
	return false
}
