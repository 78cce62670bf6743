package authz

// accept matches every request. Pomerium's allow_public_unauthenticated_access
// compiles to "allow: or: [accept: true]".
func init() { flagCriterion("accept", false, func(*Input) bool { return true }) }
