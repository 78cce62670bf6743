package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

const globalOptionName = "iap"

func init() {
	httpcaddyfile.RegisterGlobalOption(globalOptionName, parseGlobal)
}

// Global holds the `iap` global option: settings shared by every route.
type Global struct {
	upstreamtls.Defaults
}

// parseGlobal parses the global option:
//
//	{
//		iap {
//			certificate_authority_file <path>
//			certificate_authority <base64 PEM>
//		}
//	}
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	g, _ := existing.(*Global)
	if g == nil {
		g = new(Global)
	}
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var target *string
		switch opt {
		case "certificate_authority_file":
			target = &g.CertificateAuthorityFile
		case "certificate_authority":
			target = &g.CertificateAuthority
		default:
			return nil, d.Errf("unrecognized iap option %q", opt)
		}
		if !d.NextArg() {
			return nil, d.ArgErr()
		}
		*target = d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	return g, nil
}
