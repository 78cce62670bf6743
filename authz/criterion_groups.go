package authz

import "encoding/json"

// groups tests the signed-in user's groups (the IdP's groups claim) with a
// list matcher.
func init() {
	register("groups", func(_ string, data json.RawMessage) (matcher, error) {
		m, err := compileListMatcher(data)
		if err != nil {
			return nil, err
		}
		return func(in *Input) bool { return in.User != nil && m(listOf(in.User.Groups)) }, nil
	})
}
