// Package testpki makes certificate authorities and certificates for tests,
// with crypto/x509: roots, intermediates, server and client leaves, expired
// and not-yet-valid ones.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain holds the CAs above an intermediate, nearest first, without
	// the root.
	Chain []*x509.Certificate
}

// Cert is an issued certificate and its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain holds the issuing intermediates, leaf-side first, not the root.
	Chain []*x509.Certificate
}

// Options describe a certificate to issue. The zero value is a server
// certificate valid from an hour ago for a day.
type Options struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Emails     []string
	URIs       []*url.URL
	// UPN adds a Microsoft user principal name otherName to the SANs.
	UPN string
	// ExtKeyUsage defaults to server auth.
	ExtKeyUsage []x509.ExtKeyUsage
	NotBefore   time.Time
	NotAfter    time.Time
	// OCSPServer names OCSP responders in the authority information access
	// extension.
	OCSPServer []string
}

// Client returns options for a client certificate.
func Client(cn string) Options {
	return Options{CommonName: cn, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

// Server returns options for a server certificate for the given names.
func Server(names ...string) Options {
	o := Options{CommonName: names[0]}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			o.IPs = append(o.IPs, ip)
		} else {
			o.DNSNames = append(o.DNSNames, n)
		}
	}
	return o
}

// Expired makes the options describe a certificate that expired yesterday.
func (o Options) Expired() Options {
	o.NotBefore = time.Now().Add(-72 * time.Hour)
	o.NotAfter = time.Now().Add(-24 * time.Hour)
	return o
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func caTemplate(t testing.TB, name string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"caddy-iap tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// NewCA makes a self-signed root CA.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := caTemplate(t, name)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// IssueCA makes an intermediate CA under ca.
func (ca *CA) IssueCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, caTemplate(t, name), ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, Chain: ca.issuers()}
}

// issuers is the chain a certificate issued by ca carries: ca itself unless
// it is a root, then its own chain.
func (ca *CA) issuers() []*x509.Certificate {
	if ca.Cert.CheckSignatureFrom(ca.Cert) == nil {
		return nil
	}
	return append([]*x509.Certificate{ca.Cert}, ca.Chain...)
}

// CRL makes a PEM certificate revocation list signed by ca, revoking the
// given certificates, valid from thisUpdate to nextUpdate.
func (ca *CA) CRL(t testing.TB, thisUpdate, nextUpdate time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: serial(t), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// CurrentCRL is a CRL valid from an hour ago for a day.
func (ca *CA) CurrentCRL(t testing.TB, revoked ...*x509.Certificate) []byte {
	t.Helper()
	return ca.CRL(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), revoked...)
}

// Issue signs a leaf certificate.
func (ca *CA) Issue(t testing.TB, o Options) *Cert {
	t.Helper()
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if o.ExtKeyUsage == nil {
		o.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:   serial(t),
		Subject:        pkix.Name{CommonName: o.CommonName, Organization: []string{"caddy-iap tests"}},
		NotBefore:      o.NotBefore,
		NotAfter:       o.NotAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    o.ExtKeyUsage,
		DNSNames:       o.DNSNames,
		IPAddresses:    o.IPs,
		EmailAddresses: o.Emails,
		URIs:           o.URIs,
		OCSPServer:     o.OCSPServer,
	}
	if o.UPN != "" {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, sanWithUPN(t, o))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Cert: cert, Key: key, Chain: ca.issuers()}
}

// sanWithUPN is a subjectAltName extension with the options' names plus a
// Microsoft user principal name otherName (OID 1.3.6.1.4.1.311.20.2.3, a
// UTF8String), which crypto/x509 cannot write itself.
func sanWithUPN(t testing.TB, o Options) pkix.Extension {
	t.Helper()
	ctx := func(tag int, compound bool, b []byte) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: compound, Bytes: b}
	}
	var names []asn1.RawValue
	for _, e := range o.Emails {
		names = append(names, ctx(1, false, []byte(e)))
	}
	for _, d := range o.DNSNames {
		names = append(names, ctx(2, false, []byte(d)))
	}
	for _, u := range o.URIs {
		names = append(names, ctx(6, false, []byte(u.String())))
	}
	for _, ip := range o.IPs {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		names = append(names, ctx(7, false, ip))
	}
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	utf8, err := asn1.MarshalWithParams(o.UPN, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	value, err := asn1.Marshal(ctx(0, true, utf8))
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, ctx(0, true, append(oid, value...)))
	seq, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: seq}
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return certPEM(ca.Cert) }

// WriteCert writes the CA certificate to dir/name and returns the path.
func (ca *CA) WriteCert(t testing.TB, dir, name string) string {
	t.Helper()
	return write(t, filepath.Join(dir, name), ca.CertPEM())
}

// CertPEM returns the certificate, then its chain, as PEM.
func (c *Cert) CertPEM() []byte {
	out := certPEM(c.Cert)
	for _, ic := range c.Chain {
		out = append(out, certPEM(ic)...)
	}
	return out
}

// KeyPEM returns the private key as PKCS#8 PEM.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Write writes dir/name.pem and dir/name-key.pem and returns their paths.
func (c *Cert) Write(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	return write(t, filepath.Join(dir, name+".pem"), c.CertPEM()),
		write(t, filepath.Join(dir, name+"-key.pem"), c.KeyPEM())
}

// Base64 returns the certificate and key as base64-encoded PEM, the form of
// Pomerium's inline options.
func (c *Cert) Base64() (cert, key string) {
	return base64.StdEncoding.EncodeToString(c.CertPEM()), base64.StdEncoding.EncodeToString(c.KeyPEM())
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func write(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
