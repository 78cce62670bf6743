package authz

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	aliceUser = &User{ID: "u-alice", Email: "alice@example.com", Groups: []string{"admins", "eng"},
		Claim: func(name string) (any, bool) {
			v, ok := map[string]any{
				"department":               "eng",
				"roles":                    []any{"reader", "writer"},
				"level":                    float64(3),
				"address":                  map[string]any{"country": "FR"},
				"https://example.com/tier": "gold",
			}[name]
			return v, ok
		}}
	certFingerprint = sha256.Sum256([]byte("leaf"))
	certSPKI        = sha256.Sum256([]byte("spki"))
	validCert       = &ClientCert{Presented: true, Valid: true, Fingerprint: certFingerprint, SPKIHash: certSPKI,
		Emails: []string{"alice@example.com"}, DNSNames: []string{"laptop.corp.example"}, URIs: []string{"spiffe://example.com/alice"}}
	// A Wednesday, 10:30 UTC.
	wednesday = time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
)

func longHex(b [32]byte) string {
	parts := make([]string, 32)
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

// baseInput is a signed-in alice, GET /admin/x from 10.1.2.3 on a
// Wednesday morning, with a valid client certificate.
func baseInput() Input {
	return Input{User: aliceUser, Cert: validCert, Now: wednesday,
		Request: Request{Method: "GET", Path: "/admin/x", ClientIP: netip.MustParseAddr("10.1.2.3"), Header: http.Header{}}}
}

// Each criterion and operator, mostly with the examples of Pomerium's PPL
// documentation.
func TestCriteria(t *testing.T) {
	anon := func(in *Input) { in.User = nil }
	noCert := func(in *Input) { in.Cert = nil }
	invalidCert := func(in *Input) { in.Cert = &ClientCert{Presented: true} }
	at := func(ts time.Time) func(*Input) { return func(in *Input) { in.Now = ts } }
	preflight := func(in *Input) {
		in.Request.Method = "OPTIONS"
		in.Request.Header = http.Header{"Origin": {"https://x.example"}, "Access-Control-Request-Method": {"POST"}}
	}

	for _, c := range []struct {
		name      string
		criterion string
		edit      func(*Input)
		want      bool
	}{
		{"accept matches anyone", `{"accept": true}`, anon, true},
		{"reject matches no one", `{"reject": true}`, nil, false},
		{"authenticated_user matches a signed-in user", `{"authenticated_user": true}`, nil, true},
		{"authenticated_user does not match the anonymous", `{"authenticated_user": true}`, anon, false},

		{"email: a bare value is is", `{"email": "alice@example.com"}`, nil, true},
		{"email is", `{"email": {"is": "alice@example.com"}}`, nil, true},
		{"email is another", `{"email": {"is": "bob@example.com"}}`, nil, false},
		{"email not", `{"email": {"not": "bob@example.com"}}`, nil, true},
		{"email contains", `{"email": {"contains": "@example"}}`, nil, true},
		{"email starts_with", `{"email": {"starts_with": "alice@"}}`, nil, true},
		{"email ends_with", `{"email": {"ends_with": "@example.com"}}`, nil, true},
		{"email ends_with another", `{"email": {"ends_with": "@evil.example"}}`, nil, false},
		{"email in", `{"email": {"in": ["bob@example.com", "alice@example.com"]}}`, nil, true},
		{"email not_in", `{"email": {"not_in": ["alice@example.com"]}}`, nil, false},
		{"email operators all hold", `{"email": {"starts_with": "alice", "ends_with": "@evil.example"}}`, nil, false},
		{"email: an anonymous request has the email \"\", which not matches", `{"email": {"not": "bob@example.com"}}`, anon, true},
		{"email: an anonymous request matches no is", `{"email": {"is": "bob@example.com"}}`, anon, false},
		{"email: {} is no condition", `{"email": {}}`, nil, true},
		{"domain is", `{"domain": {"is": "example.com"}}`, nil, true},
		{"domain is a parent", `{"domain": {"is": "com"}}`, nil, false},
		{"user is the user ID", `{"user": "u-alice"}`, nil, true},

		{"groups: a bare value is has", `{"groups": "admins"}`, nil, true},
		{"groups has", `{"groups": {"has": "eng"}}`, nil, true},
		{"groups has another", `{"groups": {"has": "finance"}}`, nil, false},
		{"groups is needs exactly that one group", `{"groups": {"is": "admins"}}`, nil, false},
		{"groups exclude", `{"groups": {"exclude": "finance"}}`, nil, true},
		{"groups exclude a member group", `{"groups": {"exclude": "admins"}}`, nil, false},

		{"claim: a string claim", `{"claim/department": "eng"}`, nil, true},
		{"claim: a list claim has", `{"claim/roles": {"has": "writer"}}`, nil, true},
		{"claim: a list claim is", `{"claim/roles": {"is": "writer"}}`, nil, false},
		{"claim: a number", `{"claim/level": 3}`, nil, true},
		{"claim: a number is not its text", `{"claim/level": "3"}`, nil, false},
		{"claim: a nested claim by path", `{"claim/address/country": "FR"}`, nil, true},
		{"claim: a name with slashes", `{"claim/https://example.com/tier": "gold"}`, nil, true},
		{"claim: a missing claim", `{"claim/missing": "x"}`, nil, false},
		{"claim in", `{"claim/roles": {"in": ["admin", "writer"]}}`, nil, true},
		{"claim not_in", `{"claim/roles": {"not_in": ["reader"]}}`, nil, false},
		{"claim: exclude of a missing claim", `{"claim/missing": {"exclude": "x"}}`, nil, true},

		{"http_method is", `{"http_method": {"is": "GET"}}`, nil, true},
		{"http_method in lower case", `{"http_method": "get"}`, nil, true},
		{"http_method another", `{"http_method": {"is": "DELETE"}}`, nil, false},
		{"http_path starts_with", `{"http_path": {"starts_with": "/admin/"}}`, nil, true},
		{"http_path is", `{"http_path": "/admin"}`, nil, false},

		{"source_ip in a CIDR", `{"source_ip": "10.0.0.0/8"}`, nil, true},
		{"source_ip in a list", `{"source_ip": ["192.168.0.0/16", "10.1.2.3"]}`, nil, true},
		{"source_ip outside", `{"source_ip": ["192.168.0.0/16"]}`, nil, false},
		{"source_ip of an IPv4-mapped IPv6 client", `{"source_ip": "10.1.2.3"}`, func(in *Input) { in.Request.ClientIP = netip.MustParseAddr("::ffff:10.1.2.3") }, true},

		{"cors_preflight", `{"cors_preflight": true}`, preflight, true},
		{"cors_preflight without the headers", `{"cors_preflight": true}`, func(in *Input) { in.Request.Method = "OPTIONS" }, false},

		{"client_certificate fingerprint, short form", `{"client_certificate": {"fingerprint": "` + hex.EncodeToString(certFingerprint[:]) + `"}}`, nil, true},
		{"client_certificate fingerprint, long form in a list", `{"client_certificate": {"fingerprint": ["` + strings.Repeat("AB:", 31) + `AB", "` + longHex(certFingerprint) + `"]}}`, nil, true},
		{"client_certificate another fingerprint", `{"client_certificate": {"fingerprint": "` + strings.Repeat("ab", 32) + `"}}`, nil, false},
		{"client_certificate spki_hash", `{"client_certificate": {"spki_hash": "` + base64.StdEncoding.EncodeToString(certSPKI[:]) + `"}}`, nil, true},
		{"client_certificate san_email", `{"client_certificate": {"san_email": {"ends_with": "@example.com"}}}`, nil, true},
		{"client_certificate san_dns", `{"client_certificate": {"san_dns": "laptop.corp.example"}}`, nil, true},
		{"client_certificate san_uri", `{"client_certificate": {"san_uri": {"starts_with": "spiffe://example.com/"}}}`, nil, true},
		{"client_certificate conditions all hold", `{"client_certificate": {"san_dns": "laptop.corp.example", "san_email": "bob@example.com"}}`, nil, false},
		{"client_certificate needs a certificate", `{"client_certificate": {"san_dns": "laptop.corp.example"}}`, noCert, false},
		{"client_certificate needs a valid certificate", `{"client_certificate": {"fingerprint": "` + hex.EncodeToString(certFingerprint[:]) + `"}}`, invalidCert, false},
		{"invalid_client_certificate with a valid one", `{"invalid_client_certificate": true}`, nil, false},
		{"invalid_client_certificate with an invalid one", `{"invalid_client_certificate": true}`, invalidCert, true},
		{"invalid_client_certificate where none is asked for", `{"invalid_client_certificate": true}`, noCert, false},

		{"date after", `{"date": {"after": "2026-01-01T00:00:00Z"}}`, nil, true},
		{"date before", `{"date": {"before": "2026-01-01T00:00:00Z"}}`, nil, false},
		{"date between", `{"date": {"after": "2026-11-01T00:00:00Z", "before": "2026-12-01T00:00:00Z"}}`, nil, true},
		{"day_of_week range", `{"day_of_week": "mon-fri"}`, nil, true},
		{"day_of_week list", `{"day_of_week": "mon,thu"}`, nil, false},
		{"day_of_week star", `{"day_of_week": "*"}`, nil, true},
		{"day_of_week wrapping range", `{"day_of_week": "fri-mon"}`, nil, false},
		{"day_of_week in a zone where it is already Thursday", `{"day_of_week": {"days": "thu", "timezone": "Pacific/Kiritimati"}}`, at(wednesday.Add(12 * time.Hour)), true},
		{"time_of_day office hours", `{"time_of_day": {"after": "09:00", "before": "17:00"}}`, nil, true},
		{"time_of_day office hours in New York", `{"time_of_day": {"timezone": "America/New_York", "after": "09:00", "before": "17:00"}}`, nil, false},
		{"time_of_day across midnight", `{"time_of_day": {"after": "22:00", "before": "06:00"}}`, at(time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)), true},
		{"time_of_day across midnight, in the day", `{"time_of_day": {"after": "22:00", "before": "06:00"}}`, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p Policy
			if err := json.Unmarshal([]byte(`{"allow": {"or": [`+c.criterion+`]}}`), &p); err != nil {
				t.Fatal(err)
			}
			e, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			in := baseInput()
			if c.edit != nil {
				c.edit(&in)
			}
			if got := e.Evaluate(&in).Allow; got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestCriterionErrors(t *testing.T) {
	for _, c := range []struct{ criterion, want string }{
		{`{"email": {"matches": "x"}}`, `unknown string operator "matches"`},
		{`{"email": {"in": "x"}}`, ``},
		{`{"email": {"is": 3}}`, `is: expected a string`},
		{`{"email": []}`, `expected a string, or an object`},
		{`{"email": {"is": true}}`, `is: expected a string, got true (quote it)`},
		{`{"groups": 3}`, `expected a string, got 3 (quote it)`},
		{`{"groups": {"contains": "x"}}`, `unknown list operator "contains"`},
		{`{"claim": "x"}`, `criterion claim needs a name: claim/<name>`},
		{`{"email/x": "x"}`, `takes no /sub-path`},
		{`{"source_ip": "10.0.0.300"}`, `"10.0.0.300" is not an IP or CIDR`},
		{`{"client_certificate": {"fingerprint": "abc"}}`, `fingerprint "abc"`},
		{`{"client_certificate": {"spki_hash": "abc"}}`, `must be a base64-encoded SHA-256 hash`},
		{`{"client_certificate": {"serial": "1"}}`, `unknown condition "serial"`},
		{`{"date": {"after": "yesterday"}}`, `after:`},
		{`{"day_of_week": "someday"}`, `"someday" is not a day`},
		{`{"time_of_day": {"after": "9am"}}`, `"9am" is not HH:MM`},
		{`{"time_of_day": {"after": "09:00", "timezone": "Mars/Olympus"}}`, `timezone "Mars/Olympus"`},
		{`{"device": {"is": "x"}}`, `unknown criterion "device"`},
	} {
		var p Policy
		if err := json.Unmarshal([]byte(`{"allow": {"or": [`+c.criterion+`]}}`), &p); err != nil {
			t.Fatal(err)
		}
		_, err := Compile(p)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.criterion, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.criterion, err, c.want)
		}
	}
}

// Each criterion's description (what grammars other than JSON read) agrees
// with its compiler: every bare example and every key with its example
// compiles, alone where it can stand alone, and all keys together.
func TestCriteriaDescribeWhatCompiles(t *testing.T) {
	compiles := func(name string, data any) error {
		b, _ := json.Marshal(data)
		_, err := Compile(Policy{{Allow: &Action{Or: []Criterion{{Name: name, Data: b}}}}})
		return err
	}
	value := func(k Key) any {
		if k.Value == ListValue {
			return []string{k.Example}
		}
		return k.Example
	}
	if len(Criteria()) != len(registry) {
		t.Fatalf("Criteria() lists %d of %d", len(Criteria()), len(registry))
	}
	for _, info := range Criteria() {
		name := info.Name
		if info.SubPath {
			name += "/x"
		}
		if got, ok := LookupCriterion(name); !ok || got.Name != info.Name {
			t.Errorf("LookupCriterion(%q) = %v, %v", name, got, ok)
		}
		s := info.Syntax
		if s.Bare == NoValue && len(s.Keys) == 0 {
			for _, data := range []any{true, false, 1, nil} {
				if err := compiles(name, data); err != nil {
					t.Errorf("%s: %v: %v", name, data, err)
				}
			}
		}
		if s.Bare != NoValue {
			if err := compiles(name, s.BareExample); err != nil {
				t.Errorf("%s %q: %v", name, s.BareExample, err)
			}
		}
		all := map[string]any{}
		for _, k := range s.Keys {
			all[k.Name] = value(k)
			if k.Value == MatcherValue {
				for _, sub := range k.Sub.Keys {
					if err := compiles(name, map[string]any{k.Name: map[string]any{sub.Name: value(sub)}}); err != nil {
						t.Errorf("%s %s %s: %v", name, k.Name, sub.Name, err)
					}
				}
			}
		}
		if len(all) > 0 {
			if err := compiles(name, all); err != nil {
				t.Errorf("%s %v: %v", name, all, err)
			}
		}
	}
}
