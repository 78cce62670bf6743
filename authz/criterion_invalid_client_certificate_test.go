package authz

import "testing"

// Pomerium's TestInvalidClientCertificate (a deny-only policy: when the
// deny does not match, nothing allows).
func TestPomeriumInvalidClientCertificate(t *testing.T) {
	const policy = "\ndeny:\n  or:\n    - invalid_client_certificate: true"
	runPomeriumCases(t, []pomeriumCase{
		{name: "not presented", policy: policy, in: Input{Cert: &ClientCert{}}, want: ReasonDenied},
		{name: "invalid", policy: policy, in: Input{Cert: &ClientCert{Presented: true}}, want: ReasonDenied},
		{name: "valid", policy: policy, in: Input{Cert: &ClientCert{Presented: true, Valid: true}}, want: ReasonNoPolicy},
		// A site without client certificates: Pomerium counts every
		// request's certificate valid then.
		{name: "no client certificates asked for", policy: policy, want: ReasonNoPolicy},
	})
}
