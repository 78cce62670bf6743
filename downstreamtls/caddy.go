package downstreamtls

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// ClientAuthentication maps the options onto the client_authentication of
// Caddy's TLS connection policy:
//
//   - reject_connection: mode "require", and the verifier module
//     tls.client_auth.verifier.iap (given as verifier) checks the chain,
//     depth, SANs and CRLs during the handshake, so a bad certificate fails
//     it;
//   - the policy modes: mode "request", so the handshake asks for a
//     certificate (naming the CAs, which lets browsers offer the right one)
//     but lets every client in, and the iap_mtls handler verifies at the
//     HTTP layer, where it can answer with a page.
//
// The CA pool is Caddy's own file or inline source.
func (o Options) ClientAuthentication(verifier json.RawMessage) (*caddytls.ClientAuthentication, error) {
	ca := new(caddytls.ClientAuthentication)
	switch {
	case o.CA != "" && o.CAFile != "":
		return nil, fmt.Errorf("ca and ca_file are both set: use one")
	case o.CAFile != "":
		ca.CARaw = caddyconfig.JSONModuleObject(caddytls.FileCAPool{TrustedCACertPEMFiles: []string{o.CAFile}}, "provider", "file", nil)
	case o.CA != "":
		pemBytes, err := base64.StdEncoding.DecodeString(o.CA)
		if err != nil {
			return nil, fmt.Errorf("ca: not base64-encoded PEM: %v", err)
		}
		certs, err := parseBlocks(pemBytes, "CERTIFICATE", x509.ParseCertificate)
		if err != nil {
			return nil, fmt.Errorf("ca: %v", err)
		}
		der := make([]string, len(certs))
		for i, c := range certs {
			der[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		ca.CARaw = caddyconfig.JSONModuleObject(caddytls.InlineCAPool{TrustedCACerts: der}, "provider", "inline", nil)
	default:
		return nil, fmt.Errorf("ca or ca_file is required")
	}
	if o.EnforcementMode() == RejectConnection {
		ca.Mode = "require"
		ca.VerifiersRaw = []json.RawMessage{verifier}
	} else {
		ca.Mode = "request"
	}
	return ca, nil
}
