package authz

import (
	"strings"
	"testing"
)

// client_certificate_user binds the certificate to the signed-in user: a
// stolen certificate with another session, or a session with another
// certificate, is refused with client-certificate-user-mismatch; the
// certificate alone asks to sign in.
func TestClientCertificateUser(t *testing.T) {
	bob := &User{ID: "u-bob", Email: "bob@example.com"}
	cert := func(emails ...string) *ClientCert {
		return &ClientCert{Presented: true, Valid: true, Emails: emails, CommonName: "alice@example.com"}
	}
	aliceCert, bobCert := cert("alice@example.com"), cert("bob@example.com")
	in := func(u *User, c *ClientCert) Input {
		i := baseInput()
		i.User, i.Cert = u, c
		return i
	}
	bound := "allow:\n  and:\n    - client_certificate_user: true\n"
	for _, c := range []struct {
		name, policy string
		in           Input
		want         Reason
	}{
		{"alice with alice's certificate", bound, in(aliceUser, aliceCert), ReasonAllowed},
		{"alice with bob's certificate (a stolen session, or a lent laptop)", bound, in(aliceUser, bobCert), ReasonCertUserMismatch},
		{"bob with alice's certificate (a stolen certificate)", bound, in(bob, aliceCert), ReasonCertUserMismatch},
		{"alice's certificate without a session: sign in", bound, in(nil, aliceCert), ReasonUnauthenticated},
		{"no certificate and no session: sign in", bound, in(nil, nil), ReasonUnauthenticated},
		{"alice without a certificate", bound, in(aliceUser, nil), ReasonNotAllowed},
		{"alice with an invalid certificate naming her", bound, in(aliceUser, &ClientCert{Presented: true, Emails: []string{"alice@example.com"}}), ReasonNotAllowed},
		{"a user without an email", bound, in(&User{ID: "u-x"}, cert("")), ReasonCertUserMismatch},
		{"ASCII case does not matter", bound, in(&User{Email: "Alice@Example.COM"}, cert("aLICE@example.com")), ReasonAllowed},
		{"no Unicode folding: the Kelvin sign is not k", bound, in(&User{Email: "\u212Aate@example.com"}, cert("kate@example.com")), ReasonCertUserMismatch},
		{"a prefix is not the email", bound, in(&User{Email: "alice@example.com.evil"}, aliceCert), ReasonCertUserMismatch},
		{"any SAN email of the certificate", bound, in(bob, cert("alice@example.com", "bob@example.com")), ReasonAllowed},
		{"the object form, san_email", "allow:\n  and:\n    - client_certificate_user: {field: san_email}\n", in(aliceUser, aliceCert), ReasonAllowed},
		{"subject_common_name", "allow:\n  and:\n    - client_certificate_user: {field: subject_common_name}\n", in(aliceUser, cert()), ReasonAllowed},
		{"subject_common_name is not bob's", "allow:\n  and:\n    - client_certificate_user: {field: subject_common_name}\n", in(bob, bobCert), ReasonCertUserMismatch},
		{"with another criterion: both must hold", "allow:\n  and:\n    - client_certificate_user: true\n    - email: bob@example.com\n", in(aliceUser, aliceCert), ReasonNotAllowed},
		{"an alternative that lets the user in wins", "allow:\n  or:\n    - client_certificate_user: true\n    - email: alice@example.com\n", in(aliceUser, bobCert), ReasonAllowed},
		{"a deny rule still wins", bound + "deny:\n  or:\n    - http_method: GET\n", in(aliceUser, aliceCert), ReasonDenied},
		{"as a deny rule: not the user's certificate is denied", "allow:\n  or:\n    - accept: true\ndeny:\n  not:\n    - client_certificate_user: true\n", in(bob, aliceCert), ReasonDenied},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.policy), "policy.yaml")
			if err != nil {
				t.Fatal(err)
			}
			e, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !e.NeedsUser() {
				t.Error("client_certificate_user must need a user")
			}
			if d := e.Evaluate(&c.in); d.Reason != c.want || d.Allow != (c.want == ReasonAllowed) {
				t.Errorf("got %+v, want %s", d, c.want)
			}
		})
	}
}

func TestClientCertificateUserErrors(t *testing.T) {
	for data, want := range map[string]string{
		`"alice@example.com"`:            "want true or an object of field",
		`{"field": "san_dns"}`:           `field "san_dns": want san_email or subject_common_name`,
		`{"field": "san_email", "x": 1}`: "unknown field",
		`[true]`:                         "want true or an object of field",
	} {
		_, err := Compile(Policy{{Allow: &Action{Or: []Criterion{{Name: "client_certificate_user", Data: []byte(data)}}}}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", data, err, want)
		}
	}
}

// Deciding a request with client_certificate_user allocates nothing.
func TestClientCertificateUserAllocatesNothing(t *testing.T) {
	p, err := Parse([]byte("allow:\n  and:\n    - client_certificate_user: true\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	in := baseInput()
	in.Cert = &ClientCert{Presented: true, Valid: true, Emails: []string{"bob@example.com", "ALICE@example.com"}}
	if n := testing.AllocsPerRun(100, func() { e.Evaluate(&in) }); n != 0 {
		t.Errorf("%v allocations per decision", n)
	}
}

// BenchmarkClientCertificateUser decides a signed-in request with the
// user's certificate (allowed) and with another's (refused, with the
// reason that says so).
func BenchmarkClientCertificateUser(b *testing.B) {
	p, err := Parse([]byte("allow:\n  and:\n    - client_certificate_user: true\n    - groups: {has: eng}\n"), "p.yaml")
	if err != nil {
		b.Fatal(err)
	}
	e, err := Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		email string
		want  Reason
	}{{"own certificate", "Alice@example.com", ReasonAllowed}, {"another's certificate", "bob@example.com", ReasonCertUserMismatch}} {
		b.Run(c.name, func(b *testing.B) {
			in := baseInput()
			in.Cert = &ClientCert{Presented: true, Valid: true, Emails: []string{c.email}}
			if d := e.Evaluate(&in); d.Reason != c.want {
				b.Fatalf("decision %+v, want %s", d, c.want)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.Evaluate(&in)
			}
		})
	}
}
