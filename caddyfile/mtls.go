package caddyfile

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
	"github.com/caddy-iap/caddy-iap/module"
)

func init() {
	httpcaddyfile.RegisterDirective("iap_mtls", parseMTLS)
}

// parseMTLS sets up downstream mTLS for the site:
//
//	iap_mtls {
//		ca_file <path> | ca <base64 PEM>
//		crl_file <path> | crl <base64 PEM>
//		enforcement policy_with_default_deny | policy | reject_connection
//		match_subject_alt_names {
//			<dns|email|ip_address|uri|user_principal_name> <regexp>
//		}
//		max_verify_depth <n>
//		pass_client_certificate
//		crl_expired refuse | warn
//		ocsp hard | soft | off
//		ocsp_responder <url>
//		ocsp_chain
//		server_names <name...>
//	}
//
// It yields two things: client_authentication for the site's hosts, and
// the http.handlers.iap_mtls handler, ordered before every other handler of
// the site. Both come from module.MTLS.ForSite, as they do for the Pomerium
// adapter's downstream_mtls. The client_authentication goes into the
// connection policy of the site's own `tls` directive, as Caddy's
// `tls { client_auth }` does (see mtls_tls.go); a site without `tls` gets a
// connection policy of its own for its hosts. A host gets one iap_mtls: a
// second is an error, and so is `tls { client_auth }` beside it.
//
// server_names (Pomerium's tls_downstream_server_name) lets a connection
// made for one of those names carry requests for any of the site's hosts.
// Each must also be one of the site's addresses, which gives it a
// certificate and this client-certificate policy, and the server needs
// `servers { strict_sni_host insecure_off }` in the global options: Caddy
// turns its own SNI-Host check on when client certificates are asked for,
// and iap_mtls then checks it instead.
func parseMTLS(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // the directive name
	if h.NextArg() {
		return nil, h.Errf("iap_mtls takes no arguments (no matcher either: it covers the whole site)")
	}

	// One client-certificate policy per host.
	here := fmt.Sprintf("%s:%d", h.File(), h.Line())
	for _, addr := range siteAddresses(h) {
		key := "iap_mtls " + addr
		if prev, ok := h.State[key].(string); ok && prev != here {
			return nil, h.Errf("%s already has iap_mtls at %s: a host has one client-certificate policy", addr, prev)
		}
		h.State[key] = here
	}

	lines := newOptionLines(h.Dispenser)
	m, err := parseMTLSOptions(h, lines)
	if err != nil {
		return nil, err
	}
	if names := m.ServerNames[""]; names != nil {
		// server_names: for each of the site's hosts.
		delete(m.ServerNames, "")
		for _, n := range names {
			if !slices.ContainsFunc(siteHosts(h), func(host string) bool { return strings.EqualFold(host, n) }) {
				return nil, lines.wrap(fmt.Errorf("iap_mtls: server_names %s: add it to the site's addresses too, which gives it a certificate and this client-certificate policy", n))
			}
		}
		for _, host := range siteHosts(h) {
			for _, n := range names {
				if !strings.EqualFold(host, n) {
					m.ServerNames[strings.ToLower(host)] = append(m.ServerNames[strings.ToLower(host)], strings.ToLower(n))
				}
			}
		}
	}

	// ForSite checks files, CRL windows and patterns now, so `caddy adapt`
	// and `caddy validate` name the option's line. Caddy sets the policy's
	// SNI matcher to the site's hosts.
	site, err := m.ForSite(siteHosts(h))
	if err != nil {
		return nil, lines.wrap(fmt.Errorf("iap_mtls: %v", err))
	}
	for _, w := range site.Warnings {
		at := lines.at(w) // the line of the option the warning is about
		caddy.Log().Named("iap").Warn(w, zap.String("file", at.File), zap.Int("line", at.Line))
	}
	route := httpcaddyfile.ConfigValue{Class: "route", Value: caddyhttp.Route{HandlersRaw: []json.RawMessage{site.Handler}}}
	if hasTLSDirective(h) {
		// The site's `tls` directive carries the client_authentication in
		// its own connection policy (see mtls_tls.go).
		return []httpcaddyfile.ConfigValue{route}, nil
	}
	return []httpcaddyfile.ConfigValue{{Class: "tls.connection_policy", Value: site.ConnectionPolicy}, route}, nil
}

// parseMTLSOptions reads the options block of an iap_mtls directive whose
// name has been consumed.
// lines records where each option was written.
func parseMTLSOptions(h httpcaddyfile.Helper, lines *optionLines) (module.MTLS, error) {
	var m module.MTLS
	set := map[string]bool{}
	for h.NextBlock(0) {
		opt := h.Val()
		lines.note(h.Dispenser)
		if set[opt] && opt != "match_subject_alt_names" {
			return m, h.Errf("%s is set twice", opt)
		}
		set[opt] = true
		str := map[string]*string{
			"ca": &m.CA, "ca_file": &m.CAFile, "crl": &m.CRL, "crl_file": &m.CRLFile, "enforcement": &m.Enforcement,
			"crl_expired": &m.CRLExpired, "ocsp": &m.OCSP, "ocsp_responder": &m.OCSPResponder,
		}
		flags := map[string]*bool{"pass_client_certificate": &m.PassClientCertificate, "ocsp_chain": &m.OCSPChain}
		switch {
		case str[opt] != nil:
			args := h.RemainingArgs()
			if len(args) != 1 {
				return m, h.Errf("%s takes exactly one value, got %d", opt, len(args))
			}
			*str[opt] = args[0]
		case opt == "max_verify_depth":
			args := h.RemainingArgs()
			if len(args) != 1 {
				return m, h.Errf("max_verify_depth takes one number")
			}
			n, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil {
				return m, h.Errf("max_verify_depth: %q is not a whole number (0 means no limit)", args[0])
			}
			d := uint32(n)
			m.MaxVerifyDepth = &d
		case flags[opt] != nil:
			args := h.RemainingArgs()
			*flags[opt] = true
			if len(args) == 1 {
				b, err := strconv.ParseBool(args[0])
				if err != nil {
					return m, h.Errf("%s takes true or false, got %q", opt, args[0])
				}
				*flags[opt] = b
			} else if len(args) > 1 {
				return m, h.ArgErr()
			}
		case opt == "server_names":
			args := h.RemainingArgs()
			if len(args) == 0 {
				return m, h.Errf("server_names takes one or more host names: other names (SNI) that connections for the site's hosts may be made for")
			}
			// Keyed by the site's hosts in parseMTLS.
			m.ServerNames = map[string][]string{"": args}
		case opt == "match_subject_alt_names":
			if h.NextArg() {
				return m, h.Errf("match_subject_alt_names takes a block of <type> <regexp> lines")
			}
			for nesting := h.Nesting(); h.NextBlock(nesting); {
				typ := h.Val()
				args := h.RemainingArgs()
				if len(args) != 1 {
					return m, h.Errf("match_subject_alt_names: %s takes one regular expression, got %d", typ, len(args))
				}
				m.MatchSubjectAltNames = append(m.MatchSubjectAltNames, downstreamtls.SANMatcher{Type: typ, Pattern: args[0]})
			}
		default:
			return m, h.Errf("unrecognized iap_mtls option %q", opt)
		}
	}

	return m, nil
}
