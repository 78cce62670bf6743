package module

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-iap/caddy-iap/authz"
)

func parseBlock(t *testing.T, src string) (authz.Policy, error) {
	t.Helper()
	d := caddyfile.NewTestDispenser(src)
	d.Next()
	return ParsePolicyBlock(d)
}

// jsonOf drops positions, so policies from different forms compare.
func jsonOf(t *testing.T, p authz.Policy) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	_ = json.Unmarshal(b, &v)
	b, _ = json.Marshal(v)
	return string(b)
}

// The Caddyfile form reads like the YAML and means the same policy.
func TestCaddyfilePolicyMeansWhatTheYAMLMeans(t *testing.T) {
	got, err := parseBlock(t, `policy {
		allow {
			or {
				email is alice@example.com
				domain example.com
				groups has admins
				claim/department in eng ops
				client_certificate fingerprint 3f7a000000000000000000000000000000000000000000000000000000000000
				client_certificate san_email ends_with @example.com
				time_of_day timezone Europe/Paris after 09:00 before 17:00
				source_ip 10.0.0.0/8 192.168.0.0/16
				authenticated_user
				client_certificate {
					spki_hash AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=
					san_dns is laptop.corp.example
				}
			}
		}
		deny {
			not {
				http_method is GET
			}
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want, err := authz.Parse([]byte(`
- allow:
    or:
      - email: {is: alice@example.com}
      - domain: example.com
      - groups: {has: admins}
      - claim/department: {in: [eng, ops]}
      - client_certificate: {fingerprint: [3f7a000000000000000000000000000000000000000000000000000000000000]}
      - client_certificate: {san_email: {ends_with: "@example.com"}}
      - time_of_day: {timezone: Europe/Paris, after: "09:00", before: "17:00"}
      - source_ip: [10.0.0.0/8, 192.168.0.0/16]
      - authenticated_user: true
      - client_certificate: {spki_hash: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=], san_dns: {is: laptop.corp.example}}
- deny:
    not:
      - http_method: {is: GET}
`), "want.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
		t.Errorf("Caddyfile form:\n%s\nYAML form:\n%s", g, w)
	}
	if _, err := authz.Compile(got); err != nil {
		t.Errorf("compiling: %v", err)
	}
	if got[0].Allow.Or[0].Pos != "Testfile:4" {
		t.Errorf("position %q", got[0].Allow.Or[0].Pos)
	}
}

func TestCaddyfilePolicyErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"policy {\n permit {\n }\n}", `unknown action "permit"`},
		{"policy {\n allow {\n xor {\n accept\n }\n }\n}", `unknown operator "xor"`},
		{"policy {\n allow {\n or {\n email is a b\n }\n }\n}", `email: is takes one value, got 2`},
		{"policy {\n allow {\n or {\n email is a is b\n }\n }\n}", `email: is is given twice`},
		{"policy x", `policy takes a block`},
		{"policy {\n allow {\n or {\n emial x\n }\n }\n}", `unknown criterion "emial" (known: accept, authenticated_user, claim,`},
		{"policy {\n allow {\n or {\n accept true\n }\n }\n}", `accept takes no value`},
		{"policy {\n allow {\n or {\n email a b\n }\n }\n}", `email takes one value, or operators (is, not, contains, starts_with, ends_with, in, not_in) and their values`},
		{"policy {\n allow {\n or {\n email\n }\n }\n}", `email needs a value`},
		{"policy {\n allow {\n or {\n client_certificate serial 1\n }\n }\n}", `client_certificate: unknown key "serial"`},
		{"policy {\n allow {\n or {\n time_of_day {\n after 09:00\n at 10:00\n }\n }\n }\n}", `time_of_day: unknown key "at"`},
		{"policy {\n allow {\n or {\n email in\n }\n }\n}", `email: in needs a value`},
	} {
		_, err := parseBlock(t, c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.src, err, c.want)
		}
	}
	// Errors of the data carry the Caddyfile line.
	p, err := parseBlock(t, "policy {\n allow {\n or {\n source_ip 10.0.0.300\n }\n }\n}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authz.Compile(p); err == nil || !strings.Contains(err.Error(), `Testfile:4: criterion "source_ip": "10.0.0.300" is not an IP or CIDR`) {
		t.Errorf("compile error %v", err)
	}
}

// Every criterion and every operator or key authz describes parses in the
// Caddyfile form into the data the JSON form would have, and compiles: a
// new operator in authz cannot be mis-parsed here.
func TestEveryCriterionAndOperatorParses(t *testing.T) {
	one := func(k authz.Key) any {
		switch k.Value {
		case authz.ListValue:
			return []any{k.Example}
		}
		return k.Example
	}
	for _, info := range authz.Criteria() {
		name := info.Name
		if info.SubPath {
			name += "/example"
		}
		s := info.Syntax
		// compile: the data is whole (a lone timezone is not).
		type form struct {
			line    string
			want    any
			compile bool
		}
		var forms []form
		switch {
		case s.Bare == authz.NoValue && len(s.Keys) == 0:
			forms = append(forms, form{name, true, true})
		case s.Bare != authz.NoValue:
			if s.BareExample == "" {
				t.Errorf("%s: takes a bare value but has no BareExample", info.Name)
			}
			forms = append(forms, form{name + " " + s.BareExample, s.BareExample, true})
		}
		all, allLine := map[string]any{}, name
		for _, k := range s.Keys {
			if k.Example == "" {
				t.Errorf("%s %s: no Example", info.Name, k.Name)
			}
			forms = append(forms,
				form{name + " " + k.Name + " " + k.Example, map[string]any{k.Name: one(k)}, false},
				form{name + " {\n" + k.Name + " " + k.Example + "\n}", map[string]any{k.Name: one(k)}, false})
			all[k.Name], allLine = one(k), allLine+" "+k.Name+" "+k.Example
			if k.Value != authz.MatcherValue {
				continue
			}
			for _, sub := range k.Sub.Keys {
				if _, clash := s.Key(sub.Name); clash {
					t.Errorf("%s %s: the operator %s is also a key of %s, so a line cannot say which it is", info.Name, k.Name, sub.Name, info.Name)
				}
				forms = append(forms, form{name + " " + k.Name + " " + sub.Name + " " + sub.Example,
					map[string]any{k.Name: map[string]any{sub.Name: one(sub)}}, true})
			}
		}
		if len(s.Keys) > 0 {
			forms = append(forms, form{allLine, all, true})
		}
		for _, f := range forms {
			p, err := parseBlock(t, "policy {\n allow {\n or {\n"+f.line+"\n }\n }\n}")
			if err != nil {
				t.Errorf("%q: %v", f.line, err)
				continue
			}
			want, _ := json.Marshal(map[string]any{name: f.want})
			if got := jsonOf(t, authz.Policy{{Allow: &authz.Action{Or: p[0].Allow.Or}}}); got != `[{"allow":{"or":[`+string(want)+`]}}]` {
				t.Errorf("%q: got %s, want %s", f.line, got, want)
			}
			if _, err := authz.Compile(p); f.compile && err != nil {
				t.Errorf("%q: %v", f.line, err)
			}
		}
	}
}

// Claims are typed: an unquoted true, false or number is a boolean or a
// number, as in YAML, and quoting keeps the string. Quoting also makes an
// operator word a value.
func TestCaddyfileValuesAndQuotes(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`claim/email_verified true`, `{"claim/email_verified":true}`},
		{`claim/email_verified "true"`, `{"claim/email_verified":"true"}`},
		{`claim/level in 3 4.5 x`, `{"claim/level":{"in":[3,4.5,"x"]}}`},
		{`claim/level exclude -1`, `{"claim/level":{"exclude":-1}}`},
		{`groups has 1234`, `{"groups":{"has":"1234"}}`},
		{`user 1234`, `{"user":"1234"}`},
		{`email is "is"`, `{"email":{"is":"is"}}`},
		{`email "not"`, `{"email":"not"}`},
		{`client_certificate san_email starts_with alice ends_with @example.com san_dns laptop.example`,
			`{"client_certificate":{"san_dns":"laptop.example","san_email":{"ends_with":"@example.com","starts_with":"alice"}}}`},
		{`client_certificate`, `{"client_certificate":{}}`},
		{`source_ip 10.0.0.0/8`, `{"source_ip":"10.0.0.0/8"}`},
	} {
		p, err := parseBlock(t, "policy {\n allow {\n or {\n"+c.line+"\n }\n }\n}")
		if err != nil {
			t.Errorf("%s: %v", c.line, err)
			continue
		}
		if got := string(must(json.Marshal(p[0].Allow.Or[0]))); got != c.want {
			t.Errorf("%s: got %s, want %s", c.line, got, c.want)
		}
	}
	d := caddyfile.NewTestDispenser(`allowed_idp_claims email_verified true "false" 7 eng`)
	d.Next()
	var s authz.Shortcuts
	if err := ParseAllowedIDPClaims(d, &s); err != nil {
		t.Fatal(err)
	}
	if got := string(must(json.Marshal(s.AllowedIDPClaims))); got != `{"email_verified":[true,"false",7,"eng"]}` {
		t.Errorf("allowed_idp_claims: %s", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// Two and blocks in one allow are two alternatives, not one long and.
func TestRepeatedOperatorsAreAlternatives(t *testing.T) {
	p, err := parseBlock(t, "policy {\n allow {\n and {\n reject\n }\n and {\n accept\n }\n }\n}")
	if err != nil {
		t.Fatal(err)
	}
	e, err := authz.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || !e.Evaluate(&authz.Input{}).Allow {
		t.Errorf("got %d rules, allowed %v; want 2 rules, allowed", len(p), e.Evaluate(&authz.Input{}).Allow)
	}
}
