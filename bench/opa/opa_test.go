// Package opa measures the ten-rule policy of authz's BenchmarkTenRules
// evaluated by OPA, the engine Pomerium compiles PPL into (as Rego), as a
// side-by-side reference. It is its own module so that the project does not
// depend on OPA:
//
//	cd bench/opa && go test -bench . -benchmem
//
// The Rego is written by hand to make the same decisions as the PPL; it is
// leaner than what Pomerium's generator emits (which also collects reasons
// and looks sessions up), so OPA's figure here is a lower bound.
package opa

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

const module = `package bench

default allow := false

default deny := false

deny if input.method == "DELETE"

deny if input.cert_invalid

deny if {
	startswith(input.path, "/admin")
	not "admins" in input.groups
}

allow if input.email == "ceo@example.com"

allow if {
	input.domain == "partner.example"
	input.method in ["GET", "HEAD"]
}

allow if "finance" in input.claims.department

allow if {
	"contractors" in input.groups
	startswith(input.path, "/public")
}

allow if input.user in ["u-1", "u-2", "u-3"]

allow if {
	input.cert_fingerprint == "c4f8e5a0b5c0d1e2f3a4b5c6d7e8f90112233445566778899aabbccddeeff0011"
	"sre" in input.groups
}

allow if endswith(input.email, "@ops.example")

allow if {
	"admins" in input.groups
	input.domain == "example.com"
}

decision := {"allow": allow, "deny": deny}
`

func BenchmarkOPATenRules(b *testing.B) {
	ctx := context.Background()
	q, err := rego.New(rego.Query("data.bench.decision"), rego.Module("bench.rego", module)).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	input := map[string]any{
		"user": "u-alice", "email": "alice@example.com", "domain": "example.com",
		"groups": []any{"admins", "eng"}, "claims": map[string]any{"department": []any{"eng"}},
		"method": "GET", "path": "/admin/users", "cert_invalid": false, "cert_fingerprint": "00",
	}
	rs, err := q.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		b.Fatal(err)
	}
	d := rs[0].Expressions[0].Value.(map[string]any)
	if d["allow"] != true || d["deny"] != false {
		b.Fatalf("decision %v, want allow", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := q.Eval(ctx, rego.EvalInput(input)); err != nil {
			b.Fatal(err)
		}
	}
}
