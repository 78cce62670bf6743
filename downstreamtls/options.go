// Package downstreamtls is downstream mutual TLS under Pomerium's names
// (`downstream_mtls`): which client certificates a site accepts, checked
// with crypto/x509 plus what Caddy's client_auth lacks (certificate
// revocation lists for every link of the chain, subject alternative name
// patterns, a maximum chain depth), and its mapping onto Caddy's TLS
// connection policy `client_authentication`.
package downstreamtls

import (
	"encoding/json"
	"fmt"
	"sort"
)

// The enforcement modes, as Pomerium names them.
const (
	// PolicyWithDefaultDeny asks for a certificate during the handshake and
	// answers every request that comes without a valid one with 495, as a
	// page or JSON the user can act on. The default.
	PolicyWithDefaultDeny = "policy_with_default_deny"
	// Policy asks for a certificate and records the verification result
	// for the route's policy to decide on; nothing is refused by default.
	Policy = "policy"
	// RejectConnection fails the TLS handshake of a client without a valid
	// certificate.
	RejectConnection = "reject_connection"
)

// Options configure downstream mTLS for a site. Each keeps Pomerium's name.
type Options struct {
	// A base64-encoded PEM bundle of the CA certificates that client
	// certificates must chain to. Roots and intermediates alike are trust
	// anchors. Exactly one of ca and ca_file is required.
	CA string `json:"ca,omitempty"`

	// A PEM file of CA certificates that client certificates must chain to.
	CAFile string `json:"ca_file,omitempty"`

	// A base64-encoded PEM bundle of certificate revocation lists. Every
	// certificate of a client's chain whose issuer has a CRL here is checked
	// against it (Pomerium checks the leaf only); the CRL's signature is
	// verified against the issuer.
	CRL string `json:"crl,omitempty"`

	// A PEM file of certificate revocation lists.
	CRLFile string `json:"crl_file,omitempty"`

	// What happens to clients without a valid certificate:
	// `policy_with_default_deny` (default: HTTP 495 with a page),
	// `policy` (the route's policy decides) or `reject_connection` (the
	// TLS handshake fails).
	Enforcement string `json:"enforcement,omitempty"`

	// Patterns that a subject alternative name of the client certificate
	// must match, any one of them. Each is an RE2 regular expression that
	// must match the whole name.
	MatchSubjectAltNames SANMatchers `json:"match_subject_alt_names,omitempty"`

	// The most certificates allowed above the leaf, the trust anchor
	// included. Default 1: the client certificate must be issued directly
	// by a configured CA. 0 means no limit.
	MaxVerifyDepth *uint32 `json:"max_verify_depth,omitempty"`

	// What an expired CRL (past its nextUpdate) does: `refuse` (default)
	// refuses the certificates it covers, as revocation-unknown; `warn`
	// keeps using it and logs a warning once per CRL. ca_file and crl_file
	// are reread when they change on disk, so publishing a new CRL needs
	// no reload.
	CRLExpired string `json:"crl_expired,omitempty"`

	// OCSP for client certificates: `hard` (default), `soft` or `off`.
	// A certificate that names an OCSP responder in its authority
	// information access (or any certificate, with ocsp_responder) is
	// checked with it; answers are cached until their nextUpdate (at most
	// an hour). `revoked` is refused in every mode. When the status
	// cannot be established (responder down, late, a bad or oversized
	// answer, or "unknown"), `hard` refuses and `soft` lets the
	// certificate through with a warning in the log. Under `policy` a
	// refused certificate is one the route's policy sees as not valid;
	// under `reject_connection` the handshake fails.
	OCSP string `json:"ocsp,omitempty"`

	// The URL of an OCSP responder to ask about every client certificate
	// instead of the one it names.
	OCSPResponder string `json:"ocsp_responder,omitempty"`

	// Check the intermediates of the chain with OCSP too, not only the
	// leaf.
	OCSPChain bool `json:"ocsp_chain,omitempty"`
}

// The values of crl_expired.
const (
	CRLExpiredRefuse = "refuse"
	CRLExpiredWarn   = "warn"
)

// OCSPMode returns ocsp, with its default.
func (o Options) OCSPMode() string {
	if o.OCSP == "" {
		return OCSPHard
	}
	return o.OCSP
}

// CRLExpiredMode returns crl_expired, with its default.
func (o Options) CRLExpiredMode() string {
	if o.CRLExpired == "" {
		return CRLExpiredRefuse
	}
	return o.CRLExpired
}

// EnforcementMode returns the enforcement, with its default.
func (o Options) EnforcementMode() string {
	if o.Enforcement == "" {
		return PolicyWithDefaultDeny
	}
	return o.Enforcement
}

// Depth returns max_verify_depth, with its default.
func (o Options) Depth() uint32 {
	if o.MaxVerifyDepth == nil {
		return 1
	}
	return *o.MaxVerifyDepth
}

// The SAN types of match_subject_alt_names.
var sanTypes = []string{"dns", "email", "ip_address", "uri", "user_principal_name"}

// SANMatcher is one entry of match_subject_alt_names: a SAN type and a
// regular expression.
type SANMatcher struct {
	Type    string
	Pattern string
}

// SANMatchers is match_subject_alt_names. In JSON it is Pomerium's form,
// an object per entry: `[{"email": ".*@example\\.com"}, {"dns": "..."}]`.
type SANMatchers []SANMatcher

// MarshalJSON writes Pomerium's form.
func (s SANMatchers) MarshalJSON() ([]byte, error) {
	out := make([]map[string]string, len(s))
	for i, m := range s {
		out[i] = map[string]string{m.Type: m.Pattern}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads Pomerium's form: a list of objects, or one object,
// each mapping SAN types to patterns.
func (s *SANMatchers) UnmarshalJSON(b []byte) error {
	var list []map[string]string
	if err := json.Unmarshal(b, &list); err != nil {
		var one map[string]string
		if err2 := json.Unmarshal(b, &one); err2 != nil {
			return fmt.Errorf("match_subject_alt_names: want a list of {type: pattern}: %v", err)
		}
		list = []map[string]string{one}
	}
	var out SANMatchers
	for _, m := range list {
		types := make([]string, 0, len(m))
		for t := range m {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			out = append(out, SANMatcher{Type: t, Pattern: m[t]})
		}
	}
	*s = out
	return nil
}
