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
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ocsp"
)

// The reasons a client certificate is refused. They appear in logs, in the
// 495 page and in its JSON.
const (
	ReasonRequired = "client-certificate-required"
	ReasonInvalid  = "invalid-client-certificate"
	// ReasonStatusUnavailable: the certificate's revocation status could
	// not be established with its OCSP responder (Result.Responder), and
	// ocsp is hard.
	ReasonStatusUnavailable = "client-certificate-status-unavailable"
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
	DetailOCSPUnavailable  = "ocsp-unavailable"
	DetailOCSPUnknown      = "ocsp-unknown"
	DetailInvalid          = "invalid"
)

// Result is what verification found out about a client's certificate.
type Result struct {
	// Presented is true when the client sent a certificate.
	Presented bool
	// Valid is true when it passed every check.
	Valid bool
	// Reason is ReasonRequired, ReasonInvalid or ReasonStatusUnavailable
	// when not Valid.
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
	// earliest expiry of the chain, of a CRL used or of an OCSP answer
	// used. An invalid result that an OCSP responder may change sooner
	// (it did not answer) has it too.
	NotAfter time.Time
	// Responder is the OCSP responder whose answer (or failure to answer)
	// decided an invalid result, or "".
	Responder string
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

// Verifier checks client certificates against compiled Options. It rereads
// ca_file and crl_file when they change (see fileSource) and asks OCSP
// responders (see ocspChecker).
type Verifier struct {
	maxDepth uint32
	sans     []sanMatcher
	crlWarn  bool
	ocsp     *ocspChecker // nil when ocsp is off

	trust  atomic.Pointer[trust]
	files  *fileSource // nil when neither ca_file nor crl_file is set
	logger atomic.Pointer[zap.Logger]
}

// SetLogger is where reloads, load failures, OCSP failures and expired
// CRLs under crl_expired warn are logged. Without one they are not.
func (v *Verifier) SetLogger(l *zap.Logger) { v.logger.Store(l) }

func (v *Verifier) log() *zap.Logger {
	if l := v.logger.Load(); l != nil {
		return l
	}
	return zap.NewNop()
}

// Close lets go of what the verifier holds open: idle connections to OCSP
// responders.
func (v *Verifier) Close() {
	if v.ocsp != nil {
		v.ocsp.close()
	}
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
	switch o.CRLExpiredMode() {
	case CRLExpiredRefuse, CRLExpiredWarn:
	default:
		return nil, nil, fmt.Errorf("crl_expired: unknown value %q (want refuse or warn)", o.CRLExpired)
	}
	switch o.OCSPMode() {
	case OCSPHard, OCSPSoft, OCSPOff:
	default:
		return nil, nil, fmt.Errorf("ocsp: unknown mode %q (want hard, soft or off)", o.OCSP)
	}
	if o.OCSPResponder != "" {
		u, err := url.Parse(o.OCSPResponder)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, fmt.Errorf("ocsp_responder: %q is not an http or https URL", o.OCSPResponder)
		}
		if o.OCSPMode() == OCSPOff {
			return nil, nil, errors.New("ocsp_responder is set but ocsp is off: remove one")
		}
	}
	v = &Verifier{maxDepth: o.Depth(), crlWarn: o.CRLExpiredMode() == CRLExpiredWarn}
	if o.OCSPMode() != OCSPOff {
		v.ocsp = newOCSPChecker(o, v.log)
	}
	// The files' state is taken before they are read, so a change while
	// they are read is seen by the first check.
	var f fileSource
	if o.CAFile != "" {
		f.caFile, f.caStat = o.CAFile, stat(o.CAFile)
	}
	if o.CRLFile != "" {
		f.crlFile, f.crlStat = o.CRLFile, stat(o.CRLFile)
	}

	caPEM, caOpt, err := oneOf("ca", o.CA, "ca_file", o.CAFile)
	if err != nil {
		return nil, nil, err
	}
	if caPEM == nil {
		return nil, nil, errors.New("ca or ca_file is required: the CA that client certificates must chain to")
	}
	anchors, err := parseBlocks(caPEM, "CERTIFICATE", x509.ParseCertificate)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", caOpt, err)
	}

	crlPEM, crlOpt, err := oneOf("crl", o.CRL, "crl_file", o.CRLFile)
	if err != nil {
		return nil, nil, err
	}
	var crls []*x509.RevocationList
	if crlPEM != nil {
		crls, err = parseBlocks(crlPEM, "X509 CRL", x509.ParseRevocationList)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", crlOpt, err)
		}
		for _, crl := range crls {
			if err := crlCurrent(crl, now); err != nil {
				if !v.crlWarn {
					return nil, nil, fmt.Errorf("%s: %v", crlOpt, err)
				}
				warnings = append(warnings, fmt.Sprintf("%s: %v; it is used anyway (crl_expired warn)", crlOpt, err))
			}
		}
		warnings = append(warnings, crlWarnings(crls, anchors, crlOpt, caOpt)...)
	}
	v.trust.Store(newTrust(1, anchors, crls))
	if o.CAFile != "" || o.CRLFile != "" {
		f.caOpt, f.crlOpt = caOpt, crlOpt
		f.anchors, f.crls = anchors, crls
		v.files = &f
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

func stat(name string) os.FileInfo {
	fi, _ := os.Stat(name)
	return fi
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

// Verify checks the certificates a client presented, leaf first, with the
// CA and CRL files as they are now.
func (v *Verifier) Verify(presented []*x509.Certificate, now time.Time) Result {
	return v.verify(v.current(), presented, now)
}

func (v *Verifier) verify(t *trust, presented []*x509.Certificate, now time.Time) Result {
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
		Roots:         t.roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CurrentTime:   now,
	})
	if err != nil {
		return r.invalid(&failure{detail: verifyDetail(err, r.Leaf, now), err: err})
	}
	// Any one verified chain that passes the checks will do.
	var first *failure
	for _, chain := range chains {
		f, notAfter := v.checkChain(t, chain, now)
		if f == nil {
			r.Valid, r.Chain, r.NotAfter = true, chain, notAfter
			return r
		}
		if first == nil {
			first = f
		}
	}
	return r.invalid(first)
}

// failure is why a chain failed a check.
type failure struct {
	reason    string // ReasonInvalid when ""
	detail    string
	err       error
	responder string
	retry     time.Time // when an OCSP failure may be asked again
}

func (r Result) invalid(f *failure) Result {
	r.Reason, r.Detail, r.Err, r.Responder, r.NotAfter = f.reason, f.detail, f.err, f.responder, f.retry
	if r.Reason == "" {
		r.Reason = ReasonInvalid
	}
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

// checkChain applies the checks crypto/x509 does not: depth, SANs, CRLs and
// OCSP. It returns when the chain's validity ends.
func (v *Verifier) checkChain(t *trust, chain []*x509.Certificate, now time.Time) (*failure, time.Time) {
	var notAfter time.Time
	if d := uint32(len(chain) - 1); v.maxDepth > 0 && d > v.maxDepth {
		return &failure{detail: DetailTooDeep, err: fmt.Errorf("chain depth %d exceeds max_verify_depth %d", d, v.maxDepth)}, notAfter
	}
	if len(v.sans) > 0 && !v.matchSANs(chain[0]) {
		return &failure{detail: DetailSANMismatch, err: errors.New("no subject alternative name matches match_subject_alt_names")}, notAfter
	}
	notAfter = chain[0].NotAfter
	for _, c := range chain {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	if t.anyCRL {
		if f := v.checkCRLs(t, chain, now, &notAfter); f != nil {
			return f, notAfter
		}
	}
	if v.ocsp != nil {
		if f := v.checkOCSP(chain, now, &notAfter); f != nil {
			return f, notAfter
		}
	}
	return nil, notAfter
}

// checkOCSP asks the responders of the leaf (and with ocsp_chain of the
// intermediates) about them, lowering notAfter to when an answer used runs
// out.
func (v *Verifier) checkOCSP(chain []*x509.Certificate, now time.Time, notAfter *time.Time) *failure {
	links := len(chain) - 1
	if !v.ocsp.chain {
		links = min(links, 1)
	}
	for i := 0; i < links; i++ {
		cert, issuer := chain[i], chain[i+1]
		a := v.ocsp.check(cert, issuer, now)
		if a == nil {
			continue // no responder: nothing to ask
		}
		if a.until.Before(*notAfter) {
			*notAfter = a.until
		}
		var f *failure
		switch {
		case a.err != nil:
			f = &failure{reason: ReasonStatusUnavailable, detail: DetailOCSPUnavailable, responder: a.responder, retry: a.until,
				err: fmt.Errorf("OCSP responder %s gave no usable answer about %q (serial %s): %v", a.responder, cert.Subject, cert.SerialNumber, a.err)}
		case a.status == ocsp.Revoked:
			return &failure{detail: DetailRevoked, responder: a.responder,
				err: fmt.Errorf("certificate %q (serial %s) was revoked at %s, says OCSP responder %s", cert.Subject, cert.SerialNumber, a.revokedAt.UTC().Format(time.RFC3339), a.responder)}
		case a.status == ocsp.Unknown:
			f = &failure{reason: ReasonStatusUnavailable, detail: DetailOCSPUnknown, responder: a.responder, retry: a.until,
				err: fmt.Errorf("OCSP responder %s does not know certificate %q (serial %s)", a.responder, cert.Subject, cert.SerialNumber)}
		}
		if f != nil {
			if v.ocsp.mode == OCSPHard {
				return f
			}
			// soft: the fetch logged the failure; an unknown is logged here,
			// once per answer.
			if a.status == ocsp.Unknown {
				a.warnOnce.Do(func() {
					v.log().Warn("client certificate let through without a revocation status (ocsp soft)", zap.Error(f.err))
				})
			}
		}
	}
	return nil
}

// checkCRLs checks each link of the chain against its issuer's CRL,
// lowering notAfter to the nextUpdate of a CRL used.
func (v *Verifier) checkCRLs(t *trust, chain []*x509.Certificate, now time.Time, notAfter *time.Time) *failure {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		crls := t.crls[string(issuer.RawSubject)]
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
			return &failure{detail: DetailCRLInvalid, err: fmt.Errorf("no CRL for issuer %q carries its signature", issuer.Subject)}
		}
		expired := false
		if err := crlCurrent(used, now); err != nil {
			if !v.crlWarn || now.Before(used.ThisUpdate) {
				return &failure{detail: DetailCRLOutOfDate, err: err}
			}
			expired = true
			if _, seen := t.warned.LoadOrStore(used, true); !seen {
				v.log().Warn("using an expired CRL (crl_expired warn)", zap.Error(err))
			}
		}
		for _, rc := range used.RevokedCertificateEntries {
			if rc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return &failure{detail: DetailRevoked, err: fmt.Errorf("certificate %q (serial %s) was revoked by %q", cert.Subject, cert.SerialNumber, issuer.Subject)}
			}
		}
		if !expired && !used.NextUpdate.IsZero() && used.NextUpdate.Before(*notAfter) {
			*notAfter = used.NextUpdate
		}
	}
	return nil
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
