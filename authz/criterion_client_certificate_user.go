package authz

import (
	"encoding/json"
	"fmt"
	"strings"
)

// client_certificate_user matches a request whose valid client certificate
// was issued to the signed-in user: the user's email equals one of the
// certificate's SAN emails (the default, field san_email) or its subject
// common name (field subject_common_name), compared exactly except for
// the case of ASCII letters (A-Z and a-z are one; every other byte must be
// the same, so no Unicode folding such as the Kelvin sign K = k applies). It binds a device to a person in one rule: a stolen
// certificate with someone else's session, or a session with someone
// else's certificate, does not match.
//
//	client_certificate_user: true
//	client_certificate_user: {field: subject_common_name}
//
// It is a criterion of its own, not a condition of client_certificate,
// because it tests the signed-in user (NeedsUser): an anonymous request
// with a valid certificate is asked to sign in, whereas client_certificate
// alone never asks anyone to. It never matches without a user, without an
// email, or without a valid certificate. Pomerium has no such criterion.
//
// A refusal because the certificate is not the user's has its own reason,
// client-certificate-user-mismatch (see Evaluator.Evaluate).
func init() {
	register(CriterionInfo{Name: "client_certificate_user", NeedsUser: true, Syntax: Syntax{Keys: []Key{
		{Name: "field", Value: OneValue, Example: "san_email"},
	}}}, compileClientCertificateUser)
}

// The certificate fields client_certificate_user may compare with the
// user's email.
const (
	certFieldSANEmail   = "san_email"
	certFieldCommonName = "subject_common_name"
)

func compileClientCertificateUser(_ string, data json.RawMessage) (matcher, error) {
	field := certFieldSANEmail
	switch s := strings.TrimSpace(string(data)); {
	case s == "true" || s == "":
	case len(s) > 0 && s[0] == '{':
		var o struct {
			Field *string `json:"field"`
		}
		if err := strictUnmarshal(data, &o); err != nil {
			return nil, fmt.Errorf("want true or an object of field: %v", err)
		}
		if o.Field != nil {
			field = *o.Field
		}
	default:
		return nil, fmt.Errorf("want true or an object of field, got %s", s)
	}
	switch field {
	case certFieldSANEmail:
		return func(in *Input) bool {
			email, ok := bindable(in)
			if !ok {
				return false
			}
			for _, e := range in.Cert.Emails {
				if asciiEqualFold(e, email) {
					return true
				}
			}
			return false
		}, nil
	case certFieldCommonName:
		return func(in *Input) bool {
			email, ok := bindable(in)
			return ok && asciiEqualFold(in.Cert.CommonName, email)
		}, nil
	}
	return nil, fmt.Errorf("field %q: want %s or %s", field, certFieldSANEmail, certFieldCommonName)
}

// bindable returns the signed-in user's email when the request has a user
// with an email and a valid client certificate.
func bindable(in *Input) (string, bool) {
	if in.User == nil || in.User.Email == "" || in.Cert == nil || !in.Cert.Valid {
		return "", false
	}
	return in.User.Email, true
}

// asciiEqualFold reports whether a and b are the same bytes but for the
// case of ASCII letters.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// certUserMismatch reports whether a signed-in user sent a valid
// certificate that a client_certificate_user criterion of the policy does
// not bind to them: the reason of a refusal, when the policy refuses.
func (e *Evaluator) certUserMismatch(in *Input) bool {
	if in.User == nil || in.Cert == nil || !in.Cert.Valid {
		return false
	}
	for _, m := range e.certUser {
		if !m(in) {
			return true
		}
	}
	return false
}
