package module

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/downstreamtls"
)

// policyInput fills in what a policy decides on from the request and what
// the handlers before it found out: the signed-in user (iap_authenticate)
// and the client certificate result (iap_mtls).
func policyInput(r *http.Request, in *authz.Input, user *authz.User, cert *authz.ClientCert) {
	in.Now = time.Now()
	in.Request.Method = r.Method
	in.Request.Path = r.URL.Path
	in.Request.Header = r.Header
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		in.Request.ClientIP, _ = netip.ParseAddr(ip)
	}
	if s := sessionFrom(r.Context()); s != nil {
		*user = authz.User{ID: s.Subject, Email: s.Email, Groups: s.Groups, Claim: s.Claim}
		in.User = user
	}
	if res := downstreamtls.ResultFrom(r.Context()); res != nil {
		*cert = authz.ClientCert{Presented: res.Presented, Valid: res.Valid,
			Fingerprint: res.LeafSHA256, SPKIHash: res.SPKISHA256}
		if res.Leaf != nil {
			cert.Emails, cert.DNSNames = res.Leaf.EmailAddresses, res.Leaf.DNSNames
			for _, u := range res.Leaf.URIs {
				cert.URIs = append(cert.URIs, u.String())
			}
		}
		in.Cert = cert
	}
}

// Shortcuts are Pomerium's route shortcuts for common policies. Each
// compiles into ordinary PPL rules.
type Shortcuts struct {
	// Open the route to everyone, signed in or not: allow: or: [accept].
	// It cannot be combined with a policy or the other shortcuts.
	AllowPublicUnauthenticatedAccess bool `json:"allow_public_unauthenticated_access,omitempty"`

	// Open the route to every signed-in user: allow: or:
	// [authenticated_user].
	AllowAnyAuthenticatedUser bool `json:"allow_any_authenticated_user,omitempty"`

	// Users allowed in, by email address or user ID.
	AllowedUsers []string `json:"allowed_users,omitempty"`

	// Email domains allowed in, e.g. example.com.
	AllowedDomains []string `json:"allowed_domains,omitempty"`

	// ID token claims allowed in: a user with any of the values of any of
	// the claims, e.g. {"groups": ["admins"], "department": ["eng"]}.
	AllowedIDPClaims map[string][]string `json:"allowed_idp_claims,omitempty"`

	// Let CORS preflight requests (OPTIONS with Origin and
	// Access-Control-Request-Method) through without signing in.
	CORSAllowPreflight bool `json:"cors_allow_preflight,omitempty"`
}

// Policy returns the route's policy: the shortcuts' rules plus the policy
// given. It fails where Pomerium does, on public access combined with
// allow-lists.
func (s Shortcuts) Policy(policy authz.Policy) (authz.Policy, error) {
	if s.AllowPublicUnauthenticatedAccess {
		if len(policy) > 0 || s.AllowAnyAuthenticatedUser || len(s.AllowedUsers) > 0 || len(s.AllowedDomains) > 0 || len(s.AllowedIDPClaims) > 0 {
			return nil, fmt.Errorf("allow_public_unauthenticated_access cannot be combined with a policy, allow_any_authenticated_user, allowed_users, allowed_domains or allowed_idp_claims: it already admits everyone")
		}
		return authz.PublicAccess(), nil
	}
	out := append(authz.Policy(nil), policy...)
	var or []authz.Criterion
	add := func(name string, data any) {
		or = append(or, authz.Criterion{Name: name, Data: mustJSON(data)})
	}
	if s.AllowAnyAuthenticatedUser {
		add("authenticated_user", true)
	}
	for _, u := range s.AllowedUsers {
		add("user", u)
		add("email", u)
	}
	for _, d := range s.AllowedDomains {
		add("domain", d)
	}
	for _, claim := range slices.Sorted(maps.Keys(s.AllowedIDPClaims)) {
		for _, v := range s.AllowedIDPClaims[claim] {
			add("claim/"+claim, v)
		}
	}
	if s.CORSAllowPreflight {
		add("cors_preflight", true)
	}
	if len(or) > 0 {
		out = append(out, authz.Rule{Allow: &authz.Action{Or: or}})
	}
	return out, nil
}

// IsPublic reports whether the route lets everyone in without signing in.
func (s Shortcuts) IsPublic() bool { return s.AllowPublicUnauthenticatedAccess }

// LoadPolicyFile reads a YAML or JSON policy file.
func LoadPolicyFile(path string) (authz.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy_file: %v", err)
	}
	return authz.Parse(b, path)
}
