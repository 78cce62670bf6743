package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// tenRules mixes email, domain, groups, claim, path, method and client
// certificate criteria across ten rules, as a real route's policy might.
var tenRules = func() string {
	fp := sha256.Sum256([]byte("leaf"))
	return `[
 {"deny":  {"or": [{"http_method": {"is": "DELETE"}}, {"invalid_client_certificate": true}]}},
 {"deny":  {"and": [{"http_path": {"starts_with": "/admin"}}, {"groups": {"exclude": "admins"}}]}},
 {"allow": {"or": [{"email": {"is": "ceo@example.com"}}]}},
 {"allow": {"and": [{"domain": {"is": "partner.example"}}, {"http_method": {"in": ["GET", "HEAD"]}}]}},
 {"allow": {"or": [{"claim/department": {"has": "finance"}}]}},
 {"allow": {"and": [{"groups": {"has": "contractors"}}, {"http_path": {"starts_with": "/public"}}]}},
 {"allow": {"or": [{"user": {"in": ["u-1", "u-2", "u-3"]}}]}},
 {"allow": {"and": [{"client_certificate": {"fingerprint": "` + hex.EncodeToString(fp[:]) + `"}}, {"groups": {"has": "sre"}}]}},
 {"allow": {"or": [{"email": {"ends_with": "@ops.example"}}]}},
 {"allow": {"and": [{"groups": {"has": "admins"}}, {"domain": {"is": "example.com"}}]}}
]`
}()

// BenchmarkTenRules evaluates the ten-rule policy for a user allowed by the
// last rule, so every rule is tried.
func BenchmarkTenRules(b *testing.B) {
	p, err := Parse([]byte(tenRules), "bench.json")
	if err != nil {
		b.Fatal(err)
	}
	e, err := Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	claims := map[string]any{"department": "eng"}
	in := Input{
		User: &User{ID: "u-alice", Email: "alice@example.com", Groups: []string{"admins", "eng"},
			Claim: func(n string) (any, bool) { v, ok := claims[n]; return v, ok }},
		Cert:    &ClientCert{Presented: true, Valid: true, Fingerprint: sha256.Sum256([]byte("other"))},
		Request: Request{Method: "GET", Path: "/admin/users", ClientIP: netip.MustParseAddr("10.1.2.3"), Header: http.Header{}},
		Now:     time.Now(),
	}
	if d := e.Evaluate(&in); !d.Allow || d.Rule != 10 {
		b.Fatalf("decision %+v, want allowed by rule 10", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(&in)
	}
}

// BenchmarkTenRulesAnonymous evaluates the same policy for an anonymous
// request, which is decided with Pomerium's reasons (is it to sign in?),
// every rule tried.
func BenchmarkTenRulesAnonymous(b *testing.B) {
	p, err := Parse([]byte(tenRules), "bench.json")
	if err != nil {
		b.Fatal(err)
	}
	e, err := Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	in := Input{
		Request: Request{Method: "GET", Path: "/admin/users", ClientIP: netip.MustParseAddr("10.1.2.3"), Header: http.Header{}},
		Now:     time.Now(),
	}
	if d := e.Evaluate(&in); !d.NeedsSignIn() {
		b.Fatalf("decision %+v, want sign in", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(&in)
	}
}
