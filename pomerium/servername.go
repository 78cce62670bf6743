package pomerium

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.yaml.in/yaml/v3"
)

// Pomerium's tls_downstream_server_name (per route) adds a name to the
// route's TLS domains (config.Options.GetAllRouteableHTTPHosts): Envoy
// serves a certificate for that server name and its filter chain (client
// certificates included) for connections made for it, and routes their
// requests by Host as ever. So a client that sends that SNI, and the
// route's host in Host, reaches the route.
//
// Here the name becomes: a certificate subject (tls.certificates.automate,
// and the automation policy's subjects) unless certificates are loaded,
// which must then cover it; a name of the route host's connection policy
// (its tls_downstream_client_ca, or the global downstream_mtls), so the
// same client certificates are asked for; and server_names of the iap_mtls
// handlers, which take a request for the host over a connection made for
// the name, with the server's strict_sni_host off (Caddy's own SNI-Host
// check would refuse it; iap_mtls checks it instead, on every route that
// asks for client certificates).

// serverNameRE is a host name as an SNI carries it: no wildcard, scheme,
// port or path.
var serverNameRE = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$`)

// serverName reads a route's tls_downstream_server_name: a host name,
// lowercased.
func (c *converter) serverName(n *yaml.Node) (string, error) {
	v, err := c.str(n)
	if err != nil {
		return "", err
	}
	name := strings.ToLower(strings.TrimSpace(v))
	if !serverNameRE.MatchString(name) {
		return "", c.errf(n, "tls_downstream_server_name: %q is not a host name (no wildcard, scheme, port or path)", v)
	}
	return name, nil
}

// readServerNames records the tls_downstream_server_name of each route of
// list by its host, before any route is converted: every route of a host
// takes connections made for any of its host's names. Routes whose from
// is wrong are left for route to report.
func (c *converter) readServerNames(list []*yaml.Node) error {
	for _, rn := range list {
		if rn.Kind != yaml.MappingNode {
			continue
		}
		var from, name *yaml.Node
		for _, kv := range pairs(rn) {
			switch kv[0].Value {
			case "from":
				from = kv[1]
			case "tls_downstream_server_name":
				name = kv[1]
			}
		}
		if from == nil || name == nil || from.Kind != yaml.ScalarNode {
			continue
		}
		host, err := c.hostOf(from, from.Value)
		if err != nil {
			continue
		}
		sn, err := c.serverName(name)
		if err != nil {
			return err
		}
		host = strings.ToLower(host)
		if sn == host || slices.Contains(c.serverNames[host], sn) {
			continue
		}
		if c.serverNames == nil {
			c.serverNames = map[string][]string{}
		}
		c.serverNames[host] = append(c.serverNames[host], sn)
	}
	return nil
}

// namesOf returns host's server names for an iap_mtls handler's
// server_names; nil when it has none.
func (c *converter) namesOf(host string) map[string][]string {
	names := c.serverNames[strings.ToLower(host)]
	if len(names) == 0 {
		return nil
	}
	return map[string][]string{strings.ToLower(host): names}
}

// allServerNames lists every route's server name once, in config order.
func (c *converter) allServerNames(routes []route) []string {
	var out []string
	for _, r := range routes {
		for _, n := range c.serverNames[strings.ToLower(r.host)] {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// checkServerNames refuses a server name whose connection policy would be
// two hosts': one named by a route with its own client CA
// (tls_downstream_client_ca) that is also a route's host, or also a name of
// another host's routes.
func (c *converter) checkServerNames(routes []route, hosts []string) error {
	for _, r := range routes {
		if r.downstream == nil || r.serverNameNode == nil {
			continue
		}
		name := r.serverName
		if slices.Contains(hosts, name) {
			return c.errf(r.serverNameNode, "route %s: tls_downstream_server_name %s is also the host of a route: a connection made for it cannot ask for this route's client certificates", r.host, name)
		}
		for host, names := range c.serverNames {
			if host != strings.ToLower(r.host) && slices.Contains(names, name) {
				return c.errf(r.serverNameNode, "route %s: tls_downstream_server_name %s is also named by a route of another host: a connection made for it cannot ask for this route's client certificates", r.host, name)
			}
		}
	}
	return nil
}

// withServerNames adds names to a connection policy's SNI matcher.
func withServerNames(p *caddytls.ConnectionPolicy, names []string) {
	if len(names) == 0 || p.MatchersRaw == nil {
		return
	}
	var sni []string
	_ = json.Unmarshal(p.MatchersRaw["sni"], &sni)
	for _, n := range names {
		if !slices.Contains(sni, n) {
			sni = append(sni, n)
		}
	}
	p.MatchersRaw = caddy.ModuleMap{"sni": caddyconfig.JSON(sni, nil)}
}

// checkCoverage warns of each server name that none of the loaded
// certificates (load_files or load_pem entries) covers: a client that
// sends it would fail its handshake. A file that does not read is left
// for Caddy to report.
func (c *converter) checkCoverage(routes []route, names []string, loads []map[string]any) {
	var leaves []*x509.Certificate
	for _, l := range loads {
		data, _ := l["certificate"].(string)
		if b, err := os.ReadFile(data); err == nil {
			data = string(b)
		} else if !strings.Contains(data, "-----BEGIN") {
			return
		}
		if block, _ := pem.Decode([]byte(data)); block != nil {
			if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
				leaves = append(leaves, cert)
			}
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(leaves, func(cert *x509.Certificate) bool { return cert.VerifyHostname(n) == nil }) {
			var at *yaml.Node
			if i := slices.IndexFunc(routes, func(r route) bool { return r.serverName == n }); i >= 0 {
				at = routes[i].serverNameNode
			}
			c.warn(at, "tls_downstream_server_name %s: no loaded certificate (certificate_file, certificates, certificate) covers it, so a client that sends it fails its handshake", n)
		}
	}
}
