package upstreamtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
)

// Cause names, in a word a log reader can search for, why a connection to an
// upstream failed at the TLS layer. It returns "" for errors that are not
// about TLS.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		return "unknown-authority"
	case errors.As(err, &hostname):
		return "name-mismatch"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "certificate-expired"
		}
		return "certificate-invalid"
	case errors.As(err, &verify):
		return "certificate-invalid"
	case errors.As(err, &record):
		return "not-tls"
	}
	// Alerts from the upstream arrive as "remote error: tls: <alert>".
	msg := err.Error()
	for _, c := range []struct{ text, cause string }{
		{"remote error: tls: certificate required", "client-certificate-required"},
		{"remote error: tls: handshake failure", "handshake-failure"},
		{"remote error: tls: bad certificate", "client-certificate-rejected"},
		{"remote error: tls: unknown certificate authority", "client-certificate-rejected"},
		{"remote error: tls: certificate expired", "client-certificate-rejected"},
		{"remote error: tls: unsupported certificate", "client-certificate-rejected"},
		{"remote error: tls: certificate revoked", "client-certificate-rejected"},
		{"remote error: tls: access denied", "client-certificate-rejected"},
		{"tls: no renegotiation", "renegotiation-refused"},
		{"remote error: tls:", "tls-alert"},
		{"tls: ", "tls-error"},
	} {
		if strings.Contains(msg, c.text) {
			return c.cause
		}
	}
	return ""
}
