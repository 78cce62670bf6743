package upstreamtls

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"
)

func TestCauseNamesTheTLSFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"a certificate from an unknown CA", fmt.Errorf("wrapped: %w", x509.UnknownAuthorityError{}), "unknown-authority"},
		{"a certificate for another name", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}, "name-mismatch"},
		{"an expired certificate", x509.CertificateInvalidError{Reason: x509.Expired}, "certificate-expired"},
		{"an upstream that wants a client certificate (TLS 1.3)", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, "client-certificate-required"},
		{"an upstream that rejects the client certificate", &net.OpError{Op: "remote error", Err: errors.New("tls: unknown certificate authority")}, "client-certificate-rejected"},
		{"a refused renegotiation", &net.OpError{Op: "local error", Err: errors.New("tls: no renegotiation")}, "renegotiation-refused"},
		{"a refused TCP connection is not about TLS", &net.OpError{Op: "dial", Err: errors.New("connect: connection refused")}, ""},
		{"no error", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Cause(c.err); got != c.want {
				t.Errorf("Cause(%v) = %q, want %q", c.err, got, c.want)
			}
		})
	}
}
