package pomerium

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/module"
)

// mergeClientCAs adds the client CAs of from to the connection policy into,
// for several routes of one host that each name their own client CA
// (tls_downstream_client_ca): the handshake names every one of them, since
// a browser offers only certificates whose issuer the server names, and
// each route's iap_mtls handler still verifies against its own CA. A
// handshake verifier (reject_connection) knows one CA only, so the merged
// policy has none: every route's handler then refuses an invalid
// certificate with 495 instead of a failed handshake.
func mergeClientCAs(into, from *caddytls.ClientAuthentication) error {
	a, err := clientCAList(into.CARaw)
	if err != nil {
		return err
	}
	b, err := clientCAList(from.CARaw)
	if err != nil {
		return err
	}
	if a.files != nil && b.files != nil {
		into.CARaw = caddyconfig.JSONModuleObject(caddytls.FileCAPool{TrustedCACertPEMFiles: append(a.files, b.files...)}, "provider", "file", nil)
	} else {
		der, err := a.inline()
		if err != nil {
			return err
		}
		more, err := b.inline()
		if err != nil {
			return err
		}
		into.CARaw = caddyconfig.JSONModuleObject(caddytls.InlineCAPool{TrustedCACerts: append(der, more...)}, "provider", "inline", nil)
	}
	if len(into.VerifiersRaw) > 0 || len(from.VerifiersRaw) > 0 {
		into.VerifiersRaw = nil
	}
	return nil
}

// caList is a CA pool of the file or inline provider.
type caList struct {
	files []string // PEM files (file)
	der   []string // base64 DER certificates (inline)
}

func clientCAList(raw json.RawMessage) (caList, error) {
	var p struct {
		Provider string   `json:"provider"`
		Files    []string `json:"pem_files"`
		Certs    []string `json:"trusted_ca_certs"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return caList{}, err
	}
	switch p.Provider {
	case "file":
		return caList{files: append([]string{}, p.Files...)}, nil
	case "inline":
		return caList{der: p.Certs}, nil
	}
	return caList{}, fmt.Errorf("client CA pool of provider %q", p.Provider)
}

// inline is the pool's certificates as base64 DER, reading its files.
func (l caList) inline() ([]string, error) {
	out := append([]string{}, l.der...)
	for _, f := range l.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for {
			var block *pem.Block
			block, b = pem.Decode(b)
			if block == nil {
				break
			}
			if block.Type == "CERTIFICATE" {
				out = append(out, base64.StdEncoding.EncodeToString(block.Bytes))
			}
		}
	}
	return out, nil
}

// hostMTLS is the iap_mtls handler of a host's own endpoints (the sign-in
// callback, ...), which belong to no route, when several routes of the
// host name their own client CA: a certificate of any of their CAs, with
// the first route's other options. The CAs are read now, inline: a route's
// own handler rereads its ca_file when it changes, this one at the next
// adapt.
func hostMTLS(routes []*downstreamtls.Options) (json.RawMessage, error) {
	o := *routes[0]
	var all []byte
	for _, r := range routes {
		var pemBytes []byte
		var err error
		if r.CAFile != "" {
			pemBytes, err = os.ReadFile(r.CAFile)
		} else {
			pemBytes, err = base64.StdEncoding.DecodeString(r.CA)
		}
		if err != nil {
			return nil, err
		}
		all = append(append(all, pemBytes...), '\n')
	}
	o.CA, o.CAFile = base64.StdEncoding.EncodeToString(all), ""
	return caddyconfig.JSONModuleObject(&module.MTLS{Options: o}, "handler", "iap_mtls", nil), nil
}
