package caddyfile

import (
	"reflect"
	"unsafe"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// Issue 14: Caddy keeps a policy's place in the list by the order of the
// site's directives and folds adjacent policies of equal settings into one
// before it folds a site's own policies together. A separate iap_mtls
// policy written after the site's `tls` therefore lost whenever another
// site on the port had the same certificate selection (one cert file, a
// wildcard): the first match, without client_authentication, won.
//
// So iap_mtls goes where Caddy's own `tls { client_auth }` goes: into the
// connection policy that the site's `tls` directive produces. Caddy offers
// plugins no hook into another directive's values, so the `tls` directive's
// setup function is wrapped: it runs unchanged, then takes the site's
// iap_mtls client_authentication into its policy. iap_mtls then adds no
// policy of its own for that site. A site without `tls` (automatic HTTPS)
// keeps iap_mtls's own policy, the only one for its hosts.
//
// registeredDirectives is Caddy's unexported directive table (Caddy
// v2.11.9, pinned in go.mod and xcaddy.sh): the one place where `tls`
// can be wrapped. TestMTLSMergesIntoTheSitesTLSPolicy fails if an upgrade
// changes this.
//
//go:linkname registeredDirectives github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile.registeredDirectives
var registeredDirectives map[string]httpcaddyfile.UnmarshalFunc

// tlsWrapped reports whether the `tls` directive merges iap_mtls.
var tlsWrapped bool

func init() {
	orig, ok := registeredDirectives["tls"]
	if !ok || orig == nil {
		return // iap_mtls keeps a policy of its own
	}
	registeredDirectives["tls"] = func(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
		vals, err := orig(h)
		if err != nil {
			return vals, err
		}
		return mergeMTLSIntoTLS(h, vals)
	}
	tlsWrapped = true
}

// mergeMTLSIntoTLS sets the client_authentication of the site's iap_mtls
// on the connection policies that its `tls` directive produced.
func mergeMTLSIntoTLS(h httpcaddyfile.Helper, vals []httpcaddyfile.ConfigValue) ([]httpcaddyfile.ConfigValue, error) {
	block, ok := siteBlock(h)
	if !ok {
		return vals, nil
	}
	seg := segmentOf(block, "iap_mtls")
	if seg == nil {
		return vals, nil
	}
	// A broken iap_mtls block is reported by iap_mtls itself, with its
	// own line; here it merges nothing.
	sh := h.WithDispenser(caddyfile.NewDispenser(seg))
	sh.Next()
	m, err := parseMTLSOptions(sh, newOptionLines(sh.Dispenser))
	if err != nil {
		return vals, nil
	}
	site, err := m.ForSite(nil)
	if err != nil {
		return vals, nil
	}
	for _, v := range vals {
		cp, ok := v.Value.(*caddytls.ConnectionPolicy)
		if v.Class != "tls.connection_policy" || !ok {
			continue
		}
		if cp.ClientAuthentication != nil {
			h.Reset() // name the tls line
			h.Next()
			return nil, h.Errf("iap_mtls (%s:%d) and tls { client_auth } both set the client authentication of this site: keep one (iap_mtls also checks CRLs, SANs and depth, and answers 495)",
				seg[0].File, seg[0].Line)
		}
		cp.ClientAuthentication = site.ConnectionPolicy.ClientAuthentication
	}
	return vals, nil
}

// hasTLSDirective reports whether the site block of h has a `tls`
// directive, and so whether iap_mtls is merged into it.
func hasTLSDirective(h httpcaddyfile.Helper) bool {
	if !tlsWrapped {
		return false
	}
	block, ok := siteBlock(h)
	return ok && segmentOf(block, "tls") != nil
}

// siteBlock returns the site block a directive is in. Caddy's Helper keeps
// it unexported; the type assertion makes a changed field a plain "no".
func siteBlock(h httpcaddyfile.Helper) (caddyfile.ServerBlock, bool) {
	f := reflect.ValueOf(&h).Elem().FieldByName("parentBlock")
	if !f.IsValid() || f.Type() != reflect.TypeOf(caddyfile.ServerBlock{}) {
		return caddyfile.ServerBlock{}, false
	}
	block, ok := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(caddyfile.ServerBlock)
	return block, ok
}

// segmentOf returns the block's first top-level directive named dir.
func segmentOf(block caddyfile.ServerBlock, dir string) caddyfile.Segment {
	for _, seg := range block.Segments {
		if len(seg) > 0 && seg.Directive() == dir {
			return seg
		}
	}
	return nil
}
