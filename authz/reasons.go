package authz

// Reason names why a request was admitted or refused. The same words appear
// in logs, error pages and tests.
type Reason string

// The reasons a policy gives.
const (
	// ReasonAllowed: an allow rule matched and no deny rule did.
	ReasonAllowed Reason = "allowed"
	// ReasonDenied: a deny rule matched.
	ReasonDenied Reason = "denied"
	// ReasonNotAllowed: no allow rule matched.
	ReasonNotAllowed Reason = "not-allowed"
	// ReasonNoPolicy: the route has no allow rule at all, so it is closed
	// to everyone, as in Pomerium.
	ReasonNoPolicy Reason = "no-policy"
)

// PublicAccess is the policy that Pomerium's
// allow_public_unauthenticated_access stands for.
func PublicAccess() Policy {
	return Policy{{Allow: &Action{Or: []Criterion{{Name: "accept", Data: []byte("true")}}}}}
}
