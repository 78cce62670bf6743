package authz

// reject matches no request.
func init() { boolCriterion("reject", func(*Input) bool { return false }) }
