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
		{"policy {\n allow {\n or {\n email is a b\n }\n }\n}", `is takes one value, got 2`},
		{"policy {\n allow {\n or {\n email is a is b\n }\n }\n}", `is is given twice`},
		{"policy x", `policy takes a block`},
	} {
		_, err := parseBlock(t, c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.src, err, c.want)
		}
	}
	// Compile errors carry the Caddyfile line.
	p, err := parseBlock(t, "policy {\n allow {\n or {\n emial x\n }\n }\n}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authz.Compile(p); err == nil || !strings.Contains(err.Error(), `Testfile:4: unknown criterion "emial"`) {
		t.Errorf("compile error %v", err)
	}
}

func TestShortcuts(t *testing.T) {
	p, err := Shortcuts{AllowedUsers: []string{"alice@example.com"}, AllowedDomains: []string{"example.org"},
		AllowedIDPClaims: map[string][]string{"department": {"eng"}}, CORSAllowPreflight: true}.Policy(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"allow":{"or":[{"user":"alice@example.com"},{"email":"alice@example.com"},{"domain":"example.org"},{"claim/department":"eng"},{"cors_preflight":true}]}}]`
	if got := jsonOf(t, p); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := (Shortcuts{AllowPublicUnauthenticatedAccess: true, AllowedUsers: []string{"x"}}).Policy(nil); err == nil ||
		!strings.Contains(err.Error(), "cannot be combined") {
		t.Errorf("public plus an allow-list: %v", err)
	}
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
