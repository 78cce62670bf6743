package pomerium

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/caddy-iap/caddy-iap/module"
)

// The tags of the certificates the adapter loads into the tls app. A
// Caddy process keeps one certificate cache for every server, and picks a
// certificate by the name the client asks for; a server whose connection
// policies select by tag sees only the certificates with that tag. So the
// metrics certificate answers on the metrics server alone, and, where the
// route certificates are loaded too, only those answer on the main server.
const (
	metricsCertTag = "pomerium_metrics"
	routeCertTag   = "pomerium"
)

// metricsTLS is what Pomerium's metrics TLS settings become: the
// certificate of the metrics server (metrics_certificate and
// metrics_certificate_key, base64-encoded PEM, or metrics_certificate_file
// and metrics_certificate_key_file) and the CA its clients' certificates
// must chain to (metrics_client_ca, base64-encoded PEM, or
// metrics_client_ca_file).
type metricsTLS struct {
	// policy is the metrics server's one TLS connection policy: the
	// certificate tagged metricsCertTag and, with a client CA,
	// client_authentication in mode require_and_verify.
	policy *caddytls.ConnectionPolicy
	// pem or file is the certificate for the tls app, tagged
	// metricsCertTag; one of them is set.
	pem  *caddytls.CertKeyPEMPair
	file *caddytls.CertKeyFilePair
	// setting names the settings the certificate came from, for errors.
	setting string
	// names are the certificate's names (common name, DNS and IP
	// subject alternative names), in lower case, as Caddy indexes it.
	names []string
}

// metricsTLS reads the metrics TLS settings as Pomerium does. It returns
// nil when the metrics endpoint is plain HTTP.
//
// Pomerium (config.Options.Validate, GetMetricsCertificate and
// envoyconfig's buildMetricsListener) checks each complete pair, the
// inline one and the files, and refuses to start on a bad one; it serves
// TLS with the inline pair if complete, else with the files if complete,
// else plain HTTP; and it asks for client certificates only when it
// serves TLS, from metrics_client_ca if set, else metrics_client_ca_file.
// Where Pomerium quietly ignores a setting (one half of a pair, a client
// CA without a certificate, the files beside a complete inline pair, or
// any of them without metrics_address), the adapter ignores it too, with a
// warning that says what is served instead.
func (c *converter) metricsTLS(s settings) (*metricsTLS, error) {
	get := func(k string) string { v, _ := s.value(k); return strings.TrimSpace(v) }
	keys := []string{"metrics_certificate", "metrics_certificate_key", "metrics_certificate_file", "metrics_certificate_key_file",
		"metrics_client_ca", "metrics_client_ca_file"}
	if get("metrics_address") == "" {
		for _, k := range keys {
			if get(k) != "" {
				c.warn(s.scalar[k], "%s is ignored: metrics_address is not set", k)
			}
		}
		return nil, nil
	}
	cert, key := get("metrics_certificate"), get("metrics_certificate_key")
	certFile, keyFile := get("metrics_certificate_file"), get("metrics_certificate_key_file")
	for _, pair := range [][2]string{{"metrics_certificate", "metrics_certificate_key"}, {"metrics_certificate_file", "metrics_certificate_key_file"}} {
		if a, b := get(pair[0]), get(pair[1]); (a == "") != (b == "") {
			set, unset := pair[0], pair[1]
			if a == "" {
				set, unset = unset, set
			}
			c.warn(s.scalar[set], "%s is ignored: %s is not set, and Pomerium uses the two together only", set, unset)
		}
	}

	m := new(metricsTLS)
	var inline, fromFiles *tls.Certificate
	if cert != "" && key != "" {
		cb, err := module.DecodeBase64(cert)
		if err != nil {
			return nil, fmt.Errorf("%s: metrics_certificate: not base64-encoded PEM", c.file)
		}
		kb, err := module.DecodeBase64(key)
		if err != nil {
			return nil, fmt.Errorf("%s: metrics_certificate_key: not base64-encoded PEM", c.file)
		}
		pair, err := tls.X509KeyPair(cb, kb)
		if err != nil {
			return nil, fmt.Errorf("%s: metrics_certificate and metrics_certificate_key: %v", c.file, err)
		}
		inline = &pair
		m.pem = &caddytls.CertKeyPEMPair{CertificatePEM: string(cb), KeyPEM: string(kb), Tags: []string{metricsCertTag}}
		m.setting = "metrics_certificate"
	}
	if certFile != "" && keyFile != "" {
		// Read here as Pomerium reads them at start, so that a missing or
		// mismatched file fails `caddy adapt` naming the setting; Caddy
		// reads them again when it loads the config.
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: metrics_certificate_file and metrics_certificate_key_file: %v", c.file, err)
		}
		fromFiles = &pair
		if inline != nil {
			c.warn(s.scalar["metrics_certificate_file"], "metrics_certificate_file and metrics_certificate_key_file are ignored: metrics_certificate and metrics_certificate_key are served, as in Pomerium")
		} else {
			m.file = &caddytls.CertKeyFilePair{Certificate: certFile, Key: keyFile, Tags: []string{metricsCertTag}}
			m.setting = "metrics_certificate_file"
		}
	}
	ca, caFile := get("metrics_client_ca"), get("metrics_client_ca_file")
	served := inline
	if served == nil {
		served = fromFiles
	}
	if served == nil {
		for _, k := range []string{"metrics_client_ca", "metrics_client_ca_file"} {
			if get(k) != "" {
				c.warn(s.scalar[k], "%s is ignored: there is no metrics certificate (metrics_certificate and metrics_certificate_key, or metrics_certificate_file and metrics_certificate_key_file), so the metrics endpoint is plain HTTP and asks for no client certificate, as in Pomerium", k)
			}
		}
		return nil, nil
	}
	m.names = certNames(served.Leaf)

	m.policy = &caddytls.ConnectionPolicy{CertSelection: &caddytls.CustomCertSelectionPolicy{AnyTag: []string{metricsCertTag}}}
	var pool []byte
	switch {
	case ca != "":
		b, err := module.DecodeBase64(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: metrics_client_ca: not base64-encoded PEM", c.file)
		}
		certs, err := pemCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("%s: metrics_client_ca: %v", c.file, err)
		}
		der := make([]string, len(certs))
		for i, cert := range certs {
			der[i] = base64.StdEncoding.EncodeToString(cert.Raw)
		}
		pool = caddyconfig.JSONModuleObject(caddytls.InlineCAPool{TrustedCACerts: der}, "provider", "inline", nil)
		if caFile != "" {
			c.warn(s.scalar["metrics_client_ca_file"], "metrics_client_ca_file is ignored: metrics_client_ca is used, as in Pomerium")
		}
	case caFile != "":
		b, err := os.ReadFile(caFile)
		if err == nil {
			_, err = pemCertificates(b)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: metrics_client_ca_file: %v", c.file, err)
		}
		pool = caddyconfig.JSONModuleObject(caddytls.FileCAPool{TrustedCACertPEMFiles: []string{caFile}}, "provider", "file", nil)
	}
	if pool != nil {
		// The handshake fails unless the client presents a certificate
		// that chains to these CAs and is valid now, as Envoy's
		// require_client_certificate with VERIFY_TRUST_CHAIN.
		m.policy.ClientAuthentication = &caddytls.ClientAuthentication{CARaw: pool, Mode: "require_and_verify"}
	}
	return m, nil
}

// pemCertificates parses every CERTIFICATE block of b; b must hold one at
// least, and nothing that is not PEM.
func pemCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		return nil, errors.New("data that is not PEM")
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// certNames returns the names Caddy's certificate cache files leaf under.
func certNames(leaf *x509.Certificate) []string {
	var names []string
	add := func(n string) {
		if n = strings.ToLower(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	add(leaf.Subject.CommonName)
	for _, n := range leaf.DNSNames {
		add(n)
	}
	for _, ip := range leaf.IPAddresses {
		add(ip.String())
	}
	return names
}

// applyMetricsTLS makes the main server choose no certificate but its own,
// once the metrics certificate is in the tls app too. loaded says whether
// the route certificates are loaded (certificate_file, certificates,
// certificate): they are then tagged, and every connection policy of the
// main server selects that tag. Otherwise Caddy manages the route hosts'
// certificates, which carry no tag: the main server must not take a route
// host for covered by the metrics certificate (ignore_loaded_certificates),
// and a metrics certificate that names a route host exactly is an error,
// as Caddy could present it there.
func (c *converter) applyMetricsTLS(m *metricsTLS, srv map[string]any, hosts []string, loaded bool,
	loads []map[string]any, policies []*caddytls.ConnectionPolicy) error {
	if loaded {
		for _, p := range loads {
			p["tags"] = []string{routeCertTag}
		}
		if len(policies) == 0 {
			policies = []*caddytls.ConnectionPolicy{{}}
			srv["tls_connection_policies"] = policies
		}
		for _, p := range policies {
			p.CertSelection = &caddytls.CustomCertSelectionPolicy{AnyTag: []string{routeCertTag}}
		}
		return nil
	}
	for _, h := range hosts {
		if slices.Contains(m.names, strings.ToLower(h)) {
			return fmt.Errorf("%s: %s: the metrics certificate names %s, a route host whose certificate Caddy gets (autocert, or its local CA): "+
				"Caddy could present the metrics certificate there; use a certificate for the metrics endpoint's own name, or load the route certificates (certificate_file, certificates)",
				c.file, m.setting, h)
		}
	}
	ah, _ := srv["automatic_https"].(map[string]any)
	if ah == nil {
		ah = map[string]any{}
		srv["automatic_https"] = ah
	}
	ah["ignore_loaded_certificates"] = true
	return nil
}
