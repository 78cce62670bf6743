package upstreamtls

import (
	"crypto/tls"
	"os"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/internal/filestate"
)

// KeyPair is a client certificate and key read from files, and read again
// when either file changes.
type KeyPair struct {
	certFile, keyFile string
	logger            *zap.Logger

	mu                sync.Mutex
	cert              *tls.Certificate
	certStat, keyStat os.FileInfo
}

// NewKeyPair returns a KeyPair that starts from cert, already loaded from
// certFile and keyFile. The files' state now is what later changes are
// compared with.
func NewKeyPair(certFile, keyFile string, cert *tls.Certificate, logger *zap.Logger) *KeyPair {
	kp := &KeyPair{certFile: certFile, keyFile: keyFile, logger: logger, cert: cert}
	kp.certStat, _ = os.Stat(certFile)
	kp.keyStat, _ = os.Stat(keyFile)
	return kp
}

// GetClientCertificate is a tls.Config.GetClientCertificate. It rereads the
// pair when a file changed (another inode, size or modification time: an
// editor's rewrite, `cp`, `mv` or a Kubernetes secret's symlink swap). When
// the new pair does not load, for instance while the certificate has been
// replaced and the key not yet, it logs why and keeps the previous pair until
// a file changes again.
//
// Like crypto/tls with tls.Config.Certificates, it sends no certificate when
// the server's request rules this one out (CA names, signature schemes).
func (kp *KeyPair) GetClientCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	cert := kp.current()
	if err := cri.SupportsCertificate(cert); err != nil {
		return new(tls.Certificate), nil
	}
	return cert, nil
}

func (kp *KeyPair) current() *tls.Certificate {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	certStat, certErr := os.Stat(kp.certFile)
	keyStat, keyErr := os.Stat(kp.keyFile)
	if !filestate.Changed(kp.certStat, certStat) && !filestate.Changed(kp.keyStat, keyStat) {
		return kp.cert
	}
	// Whatever comes of it, this state of the files has been seen: a pair
	// that does not load is logged once, and tried again when a file changes
	// again (the other half of the pair arriving).
	kp.certStat, kp.keyStat = certStat, keyStat
	if certErr != nil || keyErr != nil {
		kp.logger.Warn("upstream client certificate files are unreadable; keeping the previous certificate",
			zap.NamedError("cert_error", certErr), zap.NamedError("key_error", keyErr))
		return kp.cert
	}
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		kp.logger.Warn("upstream client certificate files changed but do not load; keeping the previous certificate", zap.Error(err))
		return kp.cert
	}
	kp.cert = &cert
	kp.logger.Info("upstream client certificate reloaded",
		zap.String("subject", cert.Leaf.Subject.String()),
		zap.String("serial", cert.Leaf.SerialNumber.String()),
		zap.Time("not_after", cert.Leaf.NotAfter))
	return kp.cert
}
