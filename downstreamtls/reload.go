package downstreamtls

import (
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/internal/filestate"
)

// trust is one state of the CA and CRL files: what certificates chain to and
// what revokes them. Each reload makes a new one with the next generation;
// results computed with an older one are not reused.
type trust struct {
	gen     uint64
	roots   *x509.CertPool
	anchors []*x509.Certificate
	crls    map[string][]*x509.RevocationList // by issuer RawSubject
	anyCRL  bool
	// expired CRLs already logged under crl_expired warn.
	warned sync.Map
}

func newTrust(gen uint64, anchors []*x509.Certificate, crls []*x509.RevocationList) *trust {
	t := &trust{gen: gen, roots: x509.NewCertPool(), anchors: anchors, crls: map[string][]*x509.RevocationList{}, anyCRL: len(crls) > 0}
	for _, c := range anchors {
		t.roots.AddCert(c)
	}
	for _, crl := range crls {
		k := string(crl.RawIssuer)
		t.crls[k] = append(t.crls[k], crl)
	}
	return t
}

// crlWarnings names the CRLs that no configured CA signed.
func crlWarnings(crls []*x509.RevocationList, anchors []*x509.Certificate, crlOpt, caOpt string) []string {
	var out []string
	for _, crl := range crls {
		if !slices.ContainsFunc(anchors, func(ca *x509.Certificate) bool { return crl.CheckSignatureFrom(ca) == nil }) {
			out = append(out, fmt.Sprintf("%s: the CRL of %q is not signed by any CA in %s; it can only apply to intermediates that clients send", crlOpt, crl.Issuer, caOpt))
		}
	}
	return out
}

// fileSource rereads ca_file and crl_file when they change on disk, in the
// manner of upstreamtls.KeyPair: each check compares the files' state
// (inode, size, modification time) with what was seen last; a changed file
// is parsed again, and one that does not parse (half-written) is logged once
// and the previous contents stay in use until the file changes again.
type fileSource struct {
	caFile, crlFile string // "" for an inline ca or crl, which never changes
	caOpt, crlOpt   string

	mu              sync.Mutex
	caStat, crlStat os.FileInfo
	anchors         []*x509.Certificate
	crls            []*x509.RevocationList
}

// current returns the trust to verify with, rereading changed files first.
func (v *Verifier) current() *trust {
	f := v.files
	if f == nil {
		return v.trust.Load()
	}
	var caStat, crlStat os.FileInfo
	var caErr, crlErr error
	if f.caFile != "" {
		caStat, caErr = os.Stat(f.caFile)
	}
	if f.crlFile != "" {
		crlStat, crlErr = os.Stat(f.crlFile)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	caChanged := f.caFile != "" && filestate.Changed(f.caStat, caStat)
	crlChanged := f.crlFile != "" && filestate.Changed(f.crlStat, crlStat)
	if !caChanged && !crlChanged {
		return v.trust.Load()
	}
	// Whatever comes of it, this state of the files has been seen.
	loaded := false
	if caChanged {
		f.caStat = caStat
		anchors, err := f.loadCA(caErr)
		if err != nil {
			v.log().Warn("ca_file changed but does not load; keeping the previous CAs", zap.String("file", f.caFile), zap.Error(err))
		} else {
			f.anchors, loaded = anchors, true
		}
	}
	if crlChanged {
		f.crlStat = crlStat
		crls, err := f.loadCRL(crlErr)
		if err != nil {
			v.log().Warn("crl_file changed but does not load; keeping the previous CRLs", zap.String("file", f.crlFile), zap.Error(err))
		} else {
			f.crls, loaded = crls, true
		}
	}
	if !loaded {
		return v.trust.Load()
	}
	for _, w := range crlWarnings(f.crls, f.anchors, f.crlOpt, f.caOpt) {
		v.log().Warn(w)
	}
	t := newTrust(v.trust.Load().gen+1, f.anchors, f.crls)
	v.trust.Store(t)
	v.log().Info("client certificate CAs and CRLs reloaded",
		zap.String("ca_file", f.caFile), zap.String("crl_file", f.crlFile),
		zap.Int("cas", len(f.anchors)), zap.Int("crls", len(f.crls)), zap.Uint64("generation", t.gen))
	return t
}

func (f *fileSource) loadCA(statErr error) ([]*x509.Certificate, error) {
	if statErr != nil {
		return nil, statErr
	}
	b, err := os.ReadFile(f.caFile)
	if err != nil {
		return nil, err
	}
	return parseBlocks(b, "CERTIFICATE", x509.ParseCertificate)
}

func (f *fileSource) loadCRL(statErr error) ([]*x509.RevocationList, error) {
	if statErr != nil {
		return nil, statErr
	}
	b, err := os.ReadFile(f.crlFile)
	if err != nil {
		return nil, err
	}
	return parseBlocks(b, "X509 CRL", x509.ParseRevocationList)
}
