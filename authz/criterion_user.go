package authz

import "encoding/json"

// email, user and domain test the signed-in user with a string matcher:
// the email address, the user ID, and the domain part of the email.
// Without a signed-in user they do not match.
func init() {
	userString := func(name string, field func(*User) string) {
		register(name, func(_ string, data json.RawMessage) (matcher, error) {
			m, err := compileStringMatcher(data)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool { return in.User != nil && m(field(in.User)) }, nil
		})
	}
	userString("email", func(u *User) string { return u.Email })
	userString("user", func(u *User) string { return u.ID })
	userString("domain", func(u *User) string { return emailDomain(u.Email) })
}

func emailDomain(email string) string {
	for i := len(email) - 1; i >= 0; i-- {
		if email[i] == '@' {
			return email[i+1:]
		}
	}
	return ""
}
