package authz

import "encoding/json"

// email, user and domain test the signed-in user with a string matcher:
// the email address, the user ID, and the domain of the email address.
//
// As in Pomerium, an anonymous request has the email "", so that
// `email: {not_in: [...]}` or `email: {not: ...}` match it; it has no user
// ID, so user never matches it; and an email without an @ (or none) has no
// domain, so domain never matches it.
func init() {
	register(CriterionInfo{Name: "email", NeedsUser: true, Syntax: stringSyntax},
		func(_ string, data json.RawMessage) (matcher, error) {
			m, err := compileStringMatcher(data, nil)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool {
				if in.User == nil {
					return m("")
				}
				return m(in.User.Email)
			}, nil
		})
	register(CriterionInfo{Name: "user", NeedsUser: true, Syntax: stringSyntax},
		func(_ string, data json.RawMessage) (matcher, error) {
			m, err := compileStringMatcher(data, nil)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool { return in.User != nil && m(in.User.ID) }, nil
		})
	register(CriterionInfo{Name: "domain", NeedsUser: true, Syntax: stringSyntax},
		func(_ string, data json.RawMessage) (matcher, error) {
			m, err := compileStringMatcher(data, nil)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool {
				if in.User == nil {
					return false
				}
				d, ok := emailDomain(in.User.Email)
				return ok && m(d)
			}, nil
		})
}

// emailDomain returns what follows the last @ of an email address.
// Pomerium takes what follows the first @ (up to a second one): for
// "a@b.example@c.example" it says b.example, and a user with such an
// address would pass `domain: b.example`.
func emailDomain(email string) (string, bool) {
	for i := len(email) - 1; i >= 0; i-- {
		if email[i] == '@' {
			return email[i+1:], true
		}
	}
	return "", false
}
