package authz

import "encoding/json"

// reject matches no request.
func init() {
	register("reject", func(data json.RawMessage) (matcher, error) {
		if err := boolData(data); err != nil {
			return nil, err
		}
		return func(*Input) bool { return false }, nil
	})
}
