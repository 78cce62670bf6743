package authz

import (
	"encoding/json"
	"strings"
)

// claim/<name> tests an ID token claim of the signed-in user with a list
// matcher whose values may be strings, numbers or booleans, compared by
// type as in Pomerium (`claim/email_verified: true` is the boolean).
//
// As Pomerium stores claims flattened into lists:
//   - a claim that is one value is a list of one;
//   - a missing claim, and every claim of an anonymous request, is an
//     empty list (so exclude and not_in match it);
//   - an object claim is no value itself; its members are claims named
//     with dots: claim/org.team is the member team of the claim org.
//
// claim/org/team means the same (in Pomerium it finds nothing, as its
// stored claims are flattened). A name that is a claim of its own, with
// dots or slashes in it (claim/https://example.com/tier), is that claim.
func init() {
	register(CriterionInfo{Name: "claim", SubPath: true, NeedsUser: true, Syntax: claimSyntax},
		func(name string, data json.RawMessage) (matcher, error) {
			m, err := compileListMatcher(data, true)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool {
				if in.User == nil || in.User.Claim == nil {
					return m(values{})
				}
				v, ok := lookupClaim(in.User.Claim, name)
				if !ok {
					return m(values{})
				}
				return m(claimValues(v))
			}, nil
		})
}

// lookupClaim finds a claim by its flattened name: the claim of that name,
// else a member of an object claim named by a prefix up to a dot or slash.
func lookupClaim(get func(string) (any, bool), name string) (any, bool) {
	if v, ok := get(name); ok && !isObject(v) {
		return v, true
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' || name[i] == '/' {
			if obj, ok := get(name[:i]); ok {
				if v, ok := lookupMember(obj, name[i+1:]); ok {
					return v, true
				}
			}
		}
	}
	return nil, false
}

// lookupMember is lookupClaim inside an object claim (without a closure,
// which would allocate).
func lookupMember(obj any, name string) (any, bool) {
	m, ok := obj.(map[string]any)
	if !ok {
		return nil, false
	}
	if v, ok := m[name]; ok && !isObject(v) {
		return v, true
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' || name[i] == '/' {
			if v, ok := lookupMember(m[name[:i]], name[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

func isObject(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

// claimValues is a claim as the list a list matcher tests.
func claimValues(v any) values {
	switch v := v.(type) {
	case []any:
		return values{anys: v}
	case []string:
		return values{strs: v}
	}
	return values{one: v, isOne: true}
}

// ClaimNames lists the claims a policy may look up, so that sessions keep
// them: each claim/<name>, and each prefix of it up to a dot or slash (the
// object claims it may be a member of).
func (p Policy) ClaimNames() []string {
	var names []string
	p.each(func(c Criterion) {
		name, ok := strings.CutPrefix(c.Name, "claim/")
		if !ok {
			return
		}
		names = append(names, name)
		for i := 0; i < len(name); i++ {
			if name[i] == '.' || name[i] == '/' {
				names = append(names, name[:i])
			}
		}
	})
	return names
}
