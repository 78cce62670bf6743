package authz

// reject matches no request.
func init() { flagCriterion("reject", false, func(*Input) bool { return false }) }
