package authz

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Shortcuts are Pomerium's route shortcuts for common policies. Each adds a
// criterion to one allow rule, which joins the route's policy, as
// Pomerium's Policy.ToPPL does; so a public route may still have deny
// rules, and they apply.
type Shortcuts struct {
	// Open the route to everyone, signed in or not: allow: or: [accept].
	// It may be combined with a policy (whose deny rules still apply),
	// cors_allow_preflight and allowed_idp_claims; with
	// allow_any_authenticated_user, allowed_users or allowed_domains it is
	// an error, as in Pomerium.
	AllowPublicUnauthenticatedAccess bool `json:"allow_public_unauthenticated_access,omitempty"`

	// Open the route to every signed-in user: allow: or:
	// [authenticated_user].
	AllowAnyAuthenticatedUser bool `json:"allow_any_authenticated_user,omitempty"`

	// Users allowed in, by user ID or email address.
	AllowedUsers []string `json:"allowed_users,omitempty"`

	// Email domains allowed in, e.g. example.com.
	AllowedDomains []string `json:"allowed_domains,omitempty"`

	// ID token claims allowed in: a user with any of the values of any of
	// the claims, e.g. {"groups": ["admins"], "email_verified": [true]}.
	// Values compare by type (true is not "true"); a member of an object
	// claim is named with dots (org.team), as in Pomerium.
	AllowedIDPClaims map[string][]any `json:"allowed_idp_claims,omitempty"`

	// Let CORS preflight requests (OPTIONS with Origin and
	// Access-Control-Request-Method) through without signing in.
	CORSAllowPreflight bool `json:"cors_allow_preflight,omitempty"`
}

// validate refuses what Pomerium refuses: public access with an allow-list
// that it makes pointless.
func (s Shortcuts) validate() error {
	if s.AllowPublicUnauthenticatedAccess && (s.AllowAnyAuthenticatedUser || s.AllowedUsers != nil || s.AllowedDomains != nil) {
		return fmt.Errorf("allow_public_unauthenticated_access cannot be combined with allow_any_authenticated_user, allowed_users or allowed_domains: it already admits everyone (deny rules in a policy may narrow it)")
	}
	return nil
}

// Policy returns the route's policy: the rules given, then one allow rule
// with the shortcuts' criteria (none when no shortcut is set).
func (s Shortcuts) Policy(policy Policy) (Policy, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	out := append(Policy(nil), policy...)
	var or []Criterion
	add := func(name string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		or = append(or, Criterion{Name: name, Data: b})
		return nil
	}
	if s.AllowPublicUnauthenticatedAccess {
		_ = add("accept", true)
	}
	if s.AllowAnyAuthenticatedUser {
		_ = add("authenticated_user", true)
	}
	for _, u := range s.AllowedUsers {
		_ = add("user", u)
		_ = add("email", u)
	}
	for _, d := range s.AllowedDomains {
		_ = add("domain", d)
	}
	for _, claim := range slices.Sorted(maps.Keys(s.AllowedIDPClaims)) {
		for _, v := range s.AllowedIDPClaims[claim] {
			if err := add("claim/"+claim, v); err != nil {
				return nil, fmt.Errorf("allowed_idp_claims: %v", err)
			}
		}
	}
	if s.CORSAllowPreflight {
		_ = add("cors_preflight", true)
	}
	if len(or) > 0 {
		out = append(out, Rule{Allow: &Action{Or: or}})
	}
	return out, nil
}

// IsPublic reports whether allow_public_unauthenticated_access is set.
// Whether a request needs its user is for the policy to say: see
// Policy.NeedsIdentity and Decision.NeedsSignIn (a deny rule on the user
// makes a public route ask anonymous requests to sign in, as in Pomerium).
func (s Shortcuts) IsPublic() bool { return s.AllowPublicUnauthenticatedAccess }
