package authz

// authenticated_user matches any signed-in user. Pomerium's
// allow_any_authenticated_user compiles to "allow: or: [authenticated_user: true]".
func init() {
	flagCriterion("authenticated_user", true, func(in *Input) bool { return in.User != nil })
}
