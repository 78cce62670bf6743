package authz

import (
	"encoding/json"
	"fmt"
	"strings"
)

// claim/<name> tests an ID token claim of the signed-in user with a list
// matcher. A claim that is one value is a list of one, a missing claim an
// empty list; numbers and booleans compare as their JSON text. A name with
// slashes, claim/a/b, looks up b inside the object claim a when there is no
// claim named "a/b".
func init() {
	register("claim", func(name string, data json.RawMessage) (matcher, error) {
		m, err := compileListMatcher(data)
		if err != nil {
			return nil, err
		}
		path := strings.Split(name, "/")
		return func(in *Input) bool {
			if in.User == nil {
				return false
			}
			var v any
			var ok bool
			if in.User.Claim != nil {
				v, ok = in.User.Claim(name)
			}
			if !ok && len(path) > 1 && in.User.Claim != nil {
				v, ok = in.User.Claim(path[0])
				for _, p := range path[1:] {
					obj, isObj := v.(map[string]any)
					if !ok || !isObj {
						v, ok = nil, false
						break
					}
					v, ok = obj[p]
				}
			}
			if !ok {
				return m(strList{})
			}
			return m(claimValues(v))
		}, nil
	})
}

// ClaimNames lists the claims a policy tests, so that sessions keep them.
func (p Policy) ClaimNames() []string {
	var names []string
	for _, r := range p {
		for _, a := range []*Action{r.Allow, r.Deny} {
			if a == nil {
				continue
			}
			for _, list := range [][]Criterion{a.And, a.Or, a.Not, a.Nor} {
				for _, c := range list {
					if name, ok := strings.CutPrefix(c.Name, "claim/"); ok {
						first, _, _ := strings.Cut(name, "/")
						names = append(names, name, first)
					}
				}
			}
		}
	}
	return names
}

func claimValues(v any) strList {
	switch v := v.(type) {
	case string:
		return strList{one: v, isOne: true}
	case []string:
		return listOf(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, claimText(x))
		}
		return listOf(out)
	case nil:
		return strList{}
	}
	return strList{one: claimText(v), isOne: true}
}

func claimText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
