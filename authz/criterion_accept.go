package authz

import "encoding/json"

// accept matches every request. Pomerium's allow_public_unauthenticated_access
// compiles to "allow: or: [accept: true]".
func init() {
	register("accept", func(data json.RawMessage) (matcher, error) {
		if err := boolData(data); err != nil {
			return nil, err
		}
		return func(*Input) bool { return true }, nil
	})
}
