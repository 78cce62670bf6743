package authz

import "encoding/json"

// authenticated_user matches any signed-in user. Pomerium's
// allow_any_authenticated_user compiles to "allow: or: [authenticated_user: true]".
func init() {
	register("authenticated_user", func(data json.RawMessage) (matcher, error) {
		if err := boolData(data); err != nil {
			return nil, err
		}
		return func(in *Input) bool { return in.User != nil }, nil
	})
}
