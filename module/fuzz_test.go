package module

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-iap/caddy-iap/authz"
)

// FuzzPolicyCaddyfile feeds Caddyfile text to the policy block parser:
// nothing may panic.
func FuzzPolicyCaddyfile(f *testing.F) {
	f.Add("policy {\n allow {\n or {\n email is a@b.c\n groups has admins\n claim/d in a b\n }\n }\n}")
	f.Add("policy {\n deny {\n nor {\n client_certificate {\n fingerprint aa\n san_email ends_with @x\n }\n }\n }\n}")
	f.Add("policy {\n allow {\n and {\n time_of_day timezone UTC after 09:00 before 17:00\n }\n }\n}")
	f.Add("policy {")
	f.Add("policy {\n allow {\n not {\n claim/org.team in true 3 \"x\"\n client_certificate san_email starts_with a ends_with b san_dns c\n client_certificate\n accept\n }\n }\n}")
	f.Fuzz(func(t *testing.T, src string) {
		tokens, err := caddyfile.Tokenize([]byte(src), "fuzz")
		if err != nil || len(tokens) == 0 {
			return
		}
		d := caddyfile.NewDispenser(tokens)
		d.Next()
		p, err := ParsePolicyBlock(d)
		if err != nil {
			return
		}
		_, _ = authz.Compile(p)
	})
}
