package authz

import "encoding/json"

// groups tests the signed-in user's groups (the IdP's groups claim) with a
// list matcher of strings. It never matches an anonymous request, not even
// with exclude, as in Pomerium (which finds no directory user to look at).
func init() {
	register(CriterionInfo{Name: "groups", NeedsUser: true, Syntax: groupsSyntax},
		func(_ string, data json.RawMessage) (matcher, error) {
			m, err := compileListMatcher(data, false)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool { return in.User != nil && m(values{strs: in.User.Groups}) }, nil
		})
}
