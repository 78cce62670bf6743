package downstreamtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The reasons a client certificate is refused. They appear in logs, in the
// 495 page and in its JSON.
const (
	ReasonRequired = "client-certificate-required"
	ReasonInvalid  = "invalid-client-certificate"
)

// The details of an invalid client certificate.
const (
	DetailExpired          = "expired"
	DetailNotYetValid      = "not-yet-valid"
	DetailUnknownAuthority = "unknown-authority"
	DetailRevoked          = "revoked"
	DetailSANMismatch      = "san-mismatch"
	DetailTooDeep          = "too-deep"
	DetailNotForClientAuth = "not-for-client-auth"
	DetailCRLInvalid       = "crl-invalid"
	DetailCRLOutOfDate     = "crl-out-of-date"
	DetailInvalid          = "invalid"
)

// Result is what verification found out about a client's certificate.
type Result struct {
	// Presented is true when the client sent a certificate.
	Presented bool
	// Valid is true when it passed every check.
	Valid bool
	// Reason is ReasonRequired or ReasonInvalid when not Valid.
	Reason string
	// Detail says why an invalid certificate failed (DetailExpired, ...).
	Detail string
	// Err is the underlying error, for logs.
	Err error
	// Leaf is the client's certificate, when presented.
	Leaf *x509.Certificate
	// Chain is the verified chain, leaf first and trust anchor last, when
	// Valid.
	Chain []*x509.Certificate
	// Intermediates are the certificates the client sent after its leaf.
	Intermediates []*x509.Certificate
	// NotAfter is when this result stops being true by the clock: the
	// earliest expiry of the chain or of a CRL used.
	NotAfter time.Time
	// LeafSHA256 and SPKISHA256 are the SHA-256 of the leaf's DER and of
	// its SubjectPublicKeyInfo, when presented.
	LeafSHA256, SPKISHA256 [32]byte
}

// Fingerprint is the leaf's SHA-256 fingerprint in lower-case hex, or "".
func (r *Result) Fingerprint() string {
	if r.Leaf == nil {
		return ""
	}
	return hex.EncodeToString(r.LeafSHA256[:])
}

// Subject is the leaf's subject, or "".
func (r *Result) Subject() string {
	if r.Leaf == nil {
		return ""
	}
	return r.Leaf.Subject.String()
}

// Verifier checks client certificates against compiled Options.
type Verifier struct {
	roots    *x509.CertPool
	anchors  []*x509.Certificate
	crls     map[string][]*x509.RevocationList // by issuer RawSubject
	anyCRL   bool
	maxDepth uint32
	sans     []sanMatcher
}

type sanMatcher struct {
	typ string
	re  *regexp.Regexp
}

// New loads and checks the options' files and patterns. It fails on a
// missing file, a file without a certificate or CRL, a CRL outside its
// validity window, a bad regular expression or an unknown word, naming the
// option. It warns about a CRL not signed by any configured CA.
func New(o Options, now time.Time) (v *Verifier, warnings []string, err error) {
	switch o.EnforcementMode() {
	case PolicyWithDefaultDeny, Policy, RejectConnection:
	default:
		return nil, nil, fmt.Errorf("enforcement: unknown mode %q (want policy_with_default_deny, policy or reject_connection)", o.Enforcement)
	}
	v = &Verifier{roots: x509.NewCertPool(), crls: map[string][]*x509.RevocationList{}, maxDepth: o.Depth()}

	caPEM, caOpt, err := oneOf("ca", o.CA, "ca_file", o.CAFile)
	if err != nil {
		return nil, nil, err
	}
	if caPEM == nil {
		return nil, nil, errors.New("ca or ca_file is required: the CA that client certificates must chain to")
	}
	v.anchors, err = parseBlocks(caPEM, "CERTIFICATE", x509.ParseCertificate)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", caOpt, err)
	}
	for _, c := range v.anchors {
		v.roots.AddCert(c)
	}

	crlPEM, crlOpt, err := oneOf("crl", o.CRL, "crl_file", o.CRLFile)
	if err != nil {
		return nil, nil, err
	}
	if crlPEM != nil {
		crls, err := parseBlocks(crlPEM, "X509 CRL", x509.ParseRevocationList)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", crlOpt, err)
		}
		for _, crl := range crls {
			if err := crlCurrent(crl, now); err != nil {
				return nil, nil, fmt.Errorf("%s: %v", crlOpt, err)
			}
			if !slices.ContainsFunc(v.anchors, func(ca *x509.Certificate) bool { return crl.CheckSignatureFrom(ca) == nil }) {
				warnings = append(warnings, fmt.Sprintf("%s: the CRL of %q is not signed by any CA in %s; it can only apply to intermediates that clients send", crlOpt, crl.Issuer, caOpt))
			}
			k := string(crl.RawIssuer)
			v.crls[k] = append(v.crls[k], crl)
		}
		v.anyCRL = true
	}

	for _, m := range o.MatchSubjectAltNames {
		if !slices.Contains(sanTypes, m.Type) {
			return nil, nil, fmt.Errorf("match_subject_alt_names: unknown type %q (want %s)", m.Type, strings.Join(sanTypes, ", "))
		}
		re, err := regexp.Compile("^(?:" + m.Pattern + ")$")
		if err != nil {
			return nil, nil, fmt.Errorf("match_subject_alt_names: %s pattern %q: %v", m.Type, m.Pattern, err)
		}
		v.sans = append(v.sans, sanMatcher{typ: m.Type, re: re})
	}
	return v, warnings, nil
}

// oneOf reads an option that is either inline base64 or a file; both is an
// error.
func oneOf(inlineOpt, inline, fileOpt, file string) ([]byte, string, error) {
	switch {
	case inline != "" && file != "":
		return nil, "", fmt.Errorf("%s and %s are both set: use one", inlineOpt, fileOpt)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", fmt.Errorf("%s: reading %s: %v", fileOpt, file, errors.Unwrap(err))
		}
		return b, fileOpt + " " + file, nil
	case inline != "":
		b, err := base64.StdEncoding.DecodeString(inline)
		if err != nil {
			return nil, "", fmt.Errorf("%s: not base64-encoded PEM: %v", inlineOpt, err)
		}
		return b, inlineOpt, nil
	}
	return nil, "", nil
}

func parseBlocks[T any](b []byte, typ string, parse func([]byte) (T, error)) ([]T, error) {
	var out []T
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != typ {
			continue
		}
		v, err := parse(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing %s %d: %v", typ, len(out)+1, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM %q block found", typ)
	}
	return out, nil
}

func crlCurrent(crl *x509.RevocationList, now time.Time) error {
	if now.Before(crl.ThisUpdate) {
		return fmt.Errorf("the CRL of %q is not valid before %s", crl.Issuer, crl.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		return fmt.Errorf("the CRL of %q expired at %s (its nextUpdate)", crl.Issuer, crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// Verify checks the certificates a client presented, leaf first.
func (v *Verifier) Verify(presented []*x509.Certificate, now time.Time) Result {
	if len(presented) == 0 {
		return Result{Reason: ReasonRequired, Err: errors.New("no client certificate presented")}
	}
	r := Result{Presented: true, Leaf: presented[0], Intermediates: presented[1:],
		LeafSHA256: sha256.Sum256(presented[0].Raw), SPKISHA256: sha256.Sum256(presented[0].RawSubjectPublicKeyInfo)}
	intermediates := x509.NewCertPool()
	for _, c := range presented[1:] {
		intermediates.AddCert(c)
	}
	chains, err := r.Leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CurrentTime:   now,
	})
	if err != nil {
		return r.invalid(verifyDetail(err, r.Leaf, now), err)
	}
	// Any one verified chain that passes the checks will do.
	var firstErr error
	var firstDetail string
	for _, chain := range chains {
		detail, notAfter, err := v.checkChain(chain, now)
		if err == nil {
			r.Valid, r.Chain, r.NotAfter = true, chain, notAfter
			return r
		}
		if firstErr == nil {
			firstErr, firstDetail = err, detail
		}
	}
	return r.invalid(firstDetail, firstErr)
}

func (r Result) invalid(detail string, err error) Result {
	r.Reason, r.Detail, r.Err = ReasonInvalid, detail, err
	return r
}

func verifyDetail(err error, leaf *x509.Certificate, now time.Time) string {
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			if invalid.Cert != nil && now.Before(invalid.Cert.NotBefore) {
				return DetailNotYetValid
			}
			return DetailExpired
		case x509.IncompatibleUsage:
			return DetailNotForClientAuth
		case x509.TooManyIntermediates:
			return DetailTooDeep
		}
	case errors.As(err, &unknown):
		return DetailUnknownAuthority
	}
	return DetailInvalid
}

// checkChain applies the checks crypto/x509 does not: depth, SANs and CRLs.
// It returns when the chain's validity ends.
func (v *Verifier) checkChain(chain []*x509.Certificate, now time.Time) (detail string, notAfter time.Time, err error) {
	if d := uint32(len(chain) - 1); v.maxDepth > 0 && d > v.maxDepth {
		return DetailTooDeep, notAfter, fmt.Errorf("chain depth %d exceeds max_verify_depth %d", d, v.maxDepth)
	}
	if len(v.sans) > 0 && !v.matchSANs(chain[0]) {
		return DetailSANMismatch, notAfter, errors.New("no subject alternative name matches match_subject_alt_names")
	}
	notAfter = chain[0].NotAfter
	for _, c := range chain {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	if !v.anyCRL {
		return "", notAfter, nil
	}
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		crls := v.crls[string(issuer.RawSubject)]
		if len(crls) == 0 {
			continue // no CRL for this issuer: nothing to check, as in Pomerium
		}
		var used *x509.RevocationList
		for _, crl := range crls {
			if crl.CheckSignatureFrom(issuer) == nil {
				used = crl
				break
			}
		}
		if used == nil {
			return DetailCRLInvalid, notAfter, fmt.Errorf("no CRL for issuer %q carries its signature", issuer.Subject)
		}
		if err := crlCurrent(used, now); err != nil {
			return DetailCRLOutOfDate, notAfter, err
		}
		for _, rc := range used.RevokedCertificateEntries {
			if rc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return DetailRevoked, notAfter, fmt.Errorf("certificate %q (serial %s) was revoked by %q", cert.Subject, cert.SerialNumber, issuer.Subject)
			}
		}
		if !used.NextUpdate.IsZero() && used.NextUpdate.Before(notAfter) {
			notAfter = used.NextUpdate
		}
	}
	return "", notAfter, nil
}

func (v *Verifier) matchSANs(leaf *x509.Certificate) bool {
	for _, m := range v.sans {
		for _, name := range sanValues(leaf, m.typ) {
			if m.re.MatchString(name) {
				return true
			}
		}
	}
	return false
}

func sanValues(c *x509.Certificate, typ string) []string {
	switch typ {
	case "dns":
		return c.DNSNames
	case "email":
		return c.EmailAddresses
	case "ip_address":
		out := make([]string, len(c.IPAddresses))
		for i, ip := range c.IPAddresses {
			out[i] = ip.String()
		}
		return out
	case "uri":
		out := make([]string, len(c.URIs))
		for i, u := range c.URIs {
			out[i] = u.String()
		}
		return out
	case "user_principal_name":
		return userPrincipalNames(c)
	}
	return nil
}

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	// OIDUserPrincipalName is Microsoft's UPN otherName.
	OIDUserPrincipalName = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// userPrincipalNames reads the UPN otherNames of the SAN extension, which
// crypto/x509 does not parse.
func userPrincipalNames(c *x509.Certificate) []string {
	var out []string
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		if _, err := asn1.Unmarshal(ext.Value, &names); err != nil {
			return nil
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != 0 { // otherName
				continue
			}
			var other struct {
				TypeID asn1.ObjectIdentifier
				Value  asn1.RawValue // [0] EXPLICIT, unwrapped below
			}
			if _, err := asn1.UnmarshalWithParams(n.FullBytes, &other, "tag:0"); err != nil || !other.TypeID.Equal(OIDUserPrincipalName) {
				continue
			}
			var upn asn1.RawValue
			if _, err := asn1.Unmarshal(other.Value.Bytes, &upn); err == nil && upn.Tag == asn1.TagUTF8String {
				out = append(out, string(upn.Bytes))
			}
		}
	}
	return out
}
