package authz

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// The certificates of Pomerium's client_certificate_test.go.
const (
	pomeriumTestCert = `
-----BEGIN CERTIFICATE-----
MIIBYTCCAQigAwIBAgICEAEwCgYIKoZIzj0EAwIwGjEYMBYGA1UEAxMPVHJ1c3Rl
ZCBSb290IENBMCAYDzAwMDEwMTAxMDAwMDAwWhcNMzMwNzMxMTUzMzE5WjAeMRww
GgYDVQQDExN0cnVzdGVkIGNsaWVudCBjZXJ0MFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEfAYP3ZwiKJgk9zXpR/CMHYlAxjweJaMJihIS2FTA5gb0xBcTEe5AGpNF
CHWPk4YCB25VeHg9GmY9Q1+qDD1hdqM4MDYwEwYDVR0lBAwwCgYIKwYBBQUHAwIw
HwYDVR0jBBgwFoAUXep6D8FTP6+5ZdR/HjP3pYfmxkwwCgYIKoZIzj0EAwIDRwAw
RAIgProROtxpvKS/qjrjonSvacnhdU0JwoXj2DgYvF/qjrUCIAXlHkdEzyXmTLuu
/YxuOibV35vlaIzj21GRj4pYmVR1
-----END CERTIFICATE-----`

	// DNS:1.example.com, DNS:2.example.com, email:email-1@example.com,
	// email:email-2@example.com, URI:https://example.com/uri-1 and
	// URI:https://example.com/uri-2.
	pomeriumTestCertWithSANs = `
-----BEGIN CERTIFICATE-----
MIIB9TCCAZugAwIBAgIDAIABMAoGCCqGSM49BAMCMBoxGDAWBgNVBAMTD1RydXN0
ZWQgUm9vdCBDQTAeFw0yNDAxMjIyMzU1NTNaFw0zNDAxMTkyMzU1NTNaMCUxIzAh
BgNVBAMTGmNsaWVudCBjZXJ0IHdpdGggbWFueSBTQU5zMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEJNVizgh7I/609xD6Dik7QrIzwSp6zIgSeKEfekic7r3rd8fC
0W84UORBjFXxRa4nxj8tyanN4PreD1veACPjHqOBxDCBwTATBgNVHSUEDDAKBggr
BgEFBQcDAjAfBgNVHSMEGDAWgBQ1yn6j/DJdpmqyNIV8/lJBYsIuyzCBiAYDVR0R
BIGAMH6CDTEuZXhhbXBsZS5jb22CDTIuZXhhbXBsZS5jb22BE2VtYWlsLTFAZXhh
bXBsZS5jb22BE2VtYWlsLTJAZXhhbXBsZS5jb22GGWh0dHBzOi8vZXhhbXBsZS5j
b20vdXJpLTGGGWh0dHBzOi8vZXhhbXBsZS5jb20vdXJpLTIwCgYIKoZIzj0EAwID
SAAwRQIgKqRs9N3EOmzW2ZPQgJh2un6XaQbXtyE9O9TZEQGFr2gCIQCC16tr754m
z60udX689FtwwnWYmteZsZstBoEbPSTzWw==
-----END CERTIFICATE-----`
)

// certInput is a request with the certificate, verified valid (authz asks
// for a valid certificate; Pomerium's tests do not say).
func certInput(t *testing.T, pemText string) Input {
	t.Helper()
	if pemText == "" {
		return Input{Cert: &ClientCert{}}
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c := &ClientCert{Presented: true, Valid: true,
		Fingerprint: sha256.Sum256(cert.Raw), SPKIHash: sha256.Sum256(cert.RawSubjectPublicKeyInfo),
		Emails: cert.EmailAddresses, DNSNames: cert.DNSNames}
	for _, u := range cert.URIs {
		c.URIs = append(c.URIs, u.String())
	}
	return Input{Cert: c}
}

// Pomerium's TestClientCertificate.
func TestPomeriumClientCertificate(t *testing.T) {
	policy := func(cond string) string { return "allow:\n  or:\n    - client_certificate:\n        " + cond }
	plain, sans := certInput(t, pomeriumTestCert), certInput(t, pomeriumTestCertWithSANs)
	runPomeriumCases(t, []pomeriumCase{
		{name: "no certificate", policy: policy("fingerprint: 17859273e8a980631d367b2d5a6a6635412b0f22835f69e47b3f65624546a704"), in: certInput(t, ""), want: ReasonNotAllowed},
		{name: "no fingerprint match", policy: policy("fingerprint: df6ff72fe9116521268f6f2dd4966f51df479883fe7037b39f75916ac3049d1a"), in: plain, want: ReasonNotAllowed},
		{name: "fingerprint match", policy: policy("fingerprint: 17859273e8a980631d367b2d5a6a6635412b0f22835f69e47b3f65624546a704"), in: plain, want: ReasonAllowed},
		{name: "fingerprint list match", policy: policy("fingerprint:\n          - 17859273e8a980631d367b2d5a6a6635412b0f22835f69e47b3f65624546a704\n          - df6ff72fe9116521268f6f2dd4966f51df479883fe7037b39f75916ac3049d1a"), in: plain, want: ReasonAllowed},
		{name: "spki hash match", policy: policy("spki_hash: FsDbM0rUYIiL3V339eIKqiz6HPSB+Pz2WeAWhqlqh8U="), in: plain, want: ReasonAllowed},
		{name: "spki hash list match", policy: policy("spki_hash:\n          - FsDbM0rUYIiL3V339eIKqiz6HPSB+Pz2WeAWhqlqh8U=\n          - NvqYIYSbgK2vCJpQhObf77vv+bQWtc5ek5RIOwPiC9A="), in: plain, want: ReasonAllowed},
		{name: "no email match", policy: policy("san_email:\n          is: not-present@example.com"), in: sans, want: ReasonNotAllowed},
		{name: "email match", policy: policy("san_email:\n          is: email-1@example.com"), in: sans, want: ReasonAllowed},
		{name: "no dns match", policy: policy("san_dns:\n          is: not-present.example.com"), in: sans, want: ReasonNotAllowed},
		{name: "dns match", policy: policy("san_dns:\n          is: 1.example.com"), in: sans, want: ReasonAllowed},
		{name: "no uri match", policy: policy("san_uri:\n          is: https://example.com/not-present"), in: sans, want: ReasonNotAllowed},
		{name: "uri match", policy: policy("san_uri:\n          is: 'https://example.com/uri-1'"), in: sans, want: ReasonAllowed},
	})
}

// Pomerium's TestCanonicalCertFingerprint and TestSPKIHashFormatErrors:
// which fingerprints and SPKI hashes a policy may give.
func TestPomeriumCertificateHashFormats(t *testing.T) {
	sans := certInput(t, pomeriumTestCertWithSANs)
	// The SANs certificate's fingerprint is not df6f...; a valid format
	// compiles and simply does not match it.
	policy := func(cond string) string { return "allow: {or: [client_certificate: {" + cond + "}]}" }
	runPomeriumCases(t, []pomeriumCase{
		{name: "fingerprint: object", policy: policy("fingerprint: {}"), wantErr: "fingerprint: expected a string or a list of strings"},
		{name: "fingerprint: empty", policy: policy(`fingerprint: ""`), wantErr: "must not be empty"},
		{name: "fingerprint: SHA-1", policy: policy(`fingerprint: "B1:E6:A2:DC:DD:6B:87:A4:9B:C5:7C:3B:7C:7F:1C:74:9A:DB:88:36"`), wantErr: "want 64 lower-case hex digits or 32 colon-separated upper-case pairs"},
		{name: "fingerprint: uppercase short", policy: policy(`fingerprint: "DF6FF72FE9116521268F6F2DD4966F51DF479883FE7037B39F75916AC3049D1A"`), wantErr: "want 64 lower-case hex digits"},
		{name: "fingerprint: valid short", policy: policy(`fingerprint: "df6ff72fe9116521268f6f2dd4966f51df479883fe7037b39f75916ac3049d1a"`), in: sans, want: ReasonNotAllowed},
		{name: "fingerprint: lowercase long", policy: policy(`fingerprint: "df:6f:f7:2f:e9:11:65:21:26:8f:6f:2d:d4:96:6f:51:df:47:98:83:fe:70:37:b3:9f:75:91:6a:c3:04:9d:1a"`), wantErr: "want 64 lower-case hex digits"},
		{name: "fingerprint: valid long", policy: policy(`fingerprint: "DF:6F:F7:2F:E9:11:65:21:26:8F:6F:2D:D4:96:6F:51:DF:47:98:83:FE:70:37:B3:9F:75:91:6A:C3:04:9D:1A"`), in: sans, want: ReasonNotAllowed},
		{name: "spki_hash: object", policy: policy("spki_hash: {}"), wantErr: "spki_hash: expected a string or a list of strings"},
		{name: "spki_hash: not base64", policy: policy(`spki_hash: "not%valid%base64%data"`), wantErr: "must be a base64-encoded SHA-256 hash"},
		{name: "spki_hash: SHA-1 hash", policy: policy(`spki_hash: "VYby3BAoHawLLtsyckwo5Q=="`), wantErr: "must be a base64-encoded SHA-256 hash"},
		{name: "spki_hash: valid", policy: policy(`spki_hash: "FsDbM0rUYIiL3V339eIKqiz6HPSB+Pz2WeAWhqlqh8U="`), in: sans, want: ReasonNotAllowed},
	})
	// The long and short forms are the same fingerprint.
	plain := certInput(t, pomeriumTestCert)
	long := strings.ToUpper("17:85:92:73:e8:a9:80:63:1d:36:7b:2d:5a:6a:66:35:41:2b:0f:22:83:5f:69:e4:7b:3f:65:62:45:46:a7:04")
	runPomeriumCases(t, []pomeriumCase{{name: "fingerprint: the long form of a match", policy: policy(`fingerprint: "` + long + `"`), in: plain, want: ReasonAllowed}})
}

// How Pomerium's Rego reads a SAN matcher: cert.DNSNames[_] in each of its
// expressions, so each operator may be satisfied by a different SAN; not
// holds when some SAN differs, not_in when no SAN is in the list.
func TestSANMatchersAsPomerium(t *testing.T) {
	sans := certInput(t, pomeriumTestCertWithSANs)
	policy := func(cond string) string { return "allow: {or: [client_certificate: {san_dns: " + cond + "}]}" }
	runPomeriumCases(t, []pomeriumCase{
		{name: "two operators, two SANs", policy: policy("{starts_with: '1.', ends_with: '2.example.com'}"), in: sans, want: ReasonAllowed},
		{name: "is and not, by two SANs", policy: policy("{is: 1.example.com, not: 1.example.com}"), in: sans, want: ReasonAllowed},
		{name: "not_in: no SAN is in the list", policy: policy("{not_in: [3.example.com]}"), in: sans, want: ReasonAllowed},
		{name: "not_in: one SAN is in the list", policy: policy("{not_in: [2.example.com]}"), in: sans, want: ReasonNotAllowed},
		{name: "in: one SAN is in the list", policy: policy("{in: [2.example.com, 9.example.com]}"), in: sans, want: ReasonAllowed},
		{name: "not_in with no SAN of the type", policy: "allow: {or: [client_certificate: {san_email: {not_in: [x@example.com]}}]}", in: certInput(t, pomeriumTestCert), want: ReasonAllowed},
		{name: "not with no SAN of the type", policy: "allow: {or: [client_certificate: {san_email: {not: x@example.com}}]}", in: certInput(t, pomeriumTestCert), want: ReasonNotAllowed},
		{name: "{} is any certificate", policy: "allow: {or: [client_certificate: {}]}", in: certInput(t, pomeriumTestCert), want: ReasonAllowed},
		{name: "{} is no certificate without one", policy: "allow: {or: [client_certificate: {}]}", in: certInput(t, ""), want: ReasonNotAllowed},
	})
}
