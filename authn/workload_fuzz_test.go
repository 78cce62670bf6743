package authn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzWorkloadToken feeds bearer tokens to the workload verifier, whose
// issuer (a test OpenID provider on loopback) signed one good token: any
// input is refused as a bad token (or the issuer unavailable), never
// panics, and one accepted can only be the identity the issuer signed.
func FuzzWorkloadToken(f *testing.F) {
	op := startTestOP(f)
	now := time.Now()
	good := op.token(f, "k1", "", now, map[string]any{"groups": []string{"ci"}})
	for _, seed := range []string{
		good,
		op.token(f, "made-up", "", now, nil),
		op.token(f, "k1", "logout+jwt", now, nil),
		strings.Replace(good, ".", "..", 1),
		"e30.e30.",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiIifQ.",
	} {
		f.Add(seed)
	}
	w, err := NewWorkloads(WorkloadsConfig{
		Issuers: []WorkloadIssuer{{Name: "op", Issuer: op.URL, Audiences: []string{"caddy"}, SupportedAlgs: []string{"ES256"}}},
		Now:     func() time.Time { return now },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := w.Verify(context.Background(), raw, nil)
		switch {
		case err == nil && (s.Subject != "op/alice" || s.Workload != "op"):
			t.Fatalf("accepted as %q (%q)", s.Subject, s.Workload)
		case err != nil && !errors.Is(err, ErrBadBearer) && !errors.Is(err, ErrIdPUnavailable):
			t.Fatalf("an error that is neither a refusal nor the issuer unavailable: %v", err)
		}
	})
}
