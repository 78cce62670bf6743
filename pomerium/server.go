package pomerium

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// letsEncryptStaging is the ACME directory of Let's Encrypt's staging
// environment, Pomerium's autocert_use_staging.
const letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"

// duration reads a global duration setting as Pomerium does (Go's
// time.ParseDuration); ok is false when it is unset.
func (c *converter) duration(s settings, key string) (time.Duration, bool, error) {
	v, ok := s.value(key)
	if !ok || strings.TrimSpace(v) == "" {
		return 0, false, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		return 0, false, fmt.Errorf("%s: %s: %q is not a duration such as 30s or 5m", c.file, key, v)
	}
	return d, true, nil
}

// flag reads a global true/false setting.
func (c *converter) flag(s settings, key string) (bool, error) {
	v, ok := s.value(key)
	if !ok || strings.TrimSpace(v) == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("%s: %s: %q is not true or false", c.file, key, v)
	}
	return b, nil
}

// enum reads a Pomerium enum setting as Pomerium's decoder does: the name
// without case, with or without its type's prefix (CODEC_TYPE_HTTP1,
// http1). It returns the upper-case name without the prefix.
func enum(v, prefix string) string {
	v = strings.ToUpper(strings.TrimSpace(v))
	return strings.TrimPrefix(v, prefix)
}

// pathRules maps normalize_path, merge_slashes and
// path_with_escaped_slashes_action onto the path rules every iap_route
// applies (module/path.go): dot segments removed, slashes merged, and an
// encoded / or \ refused with 400 ambiguous-path, which is Pomerium's
// default for all three. Turning the cleaning off cannot be honoured
// without letting the policy and the upstream see different paths, so it
// is a warning (the path is still cleaned); an action that would let an
// encoded slash through is an error, since it needs a weaker rule.
func (c *converter) pathRules(s settings) error {
	for _, key := range []string{"normalize_path", "merge_slashes"} {
		v, ok := s.value(key)
		if !ok {
			continue
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %s: %q is not true or false", c.file, key, v)
		}
		if !b {
			c.warn(s.scalar[key], "%s: false is ignored: caddy-iap always cleans the path (dot segments, repeated slashes) before the policy decides, so that the policy and the upstream see the same path", key)
		}
	}
	if v, ok := s.value("path_with_escaped_slashes_action"); ok {
		switch a := enum(v, "PATH_WITH_ESCAPED_SLASHES_ACTION_"); a {
		case "REJECT_REQUEST", "", "IMPLEMENTATION_SPECIFIC_DEFAULT":
			// What module/path.go does: 400 ambiguous-path.
		case "KEEP_UNCHANGED", "UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD":
			return fmt.Errorf("%s: path_with_escaped_slashes_action: %s is not supported: caddy-iap refuses a path with an encoded slash or backslash (%%2F, %%5C) with 400 ambiguous-path, because the policy and the upstream could read it differently; remove the setting or use REJECT_REQUEST", c.file, a)
		default:
			return fmt.Errorf("%s: path_with_escaped_slashes_action: %q is not one of KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT and UNESCAPE_AND_FORWARD", c.file, v)
		}
	}
	return nil
}

// services reads the services setting: caddy-iap is all of Pomerium's
// services in one process.
func (c *converter) services(s settings) error {
	v, ok := s.value("services")
	if !ok {
		return nil
	}
	for svc := range strings.SplitSeq(v, ",") {
		switch strings.TrimSpace(svc) {
		case "all", "":
		case "authenticate", "authorize", "proxy", "databroker":
			return fmt.Errorf("%s: services: %q is not supported: caddy-iap runs every service in one process; use all (the default)", c.file, v)
		default:
			return fmt.Errorf("%s: services: %q is not one of all, authenticate, authorize, proxy and databroker", c.file, v)
		}
	}
	return nil
}

// server applies the server settings: timeouts, the PROXY protocol, the
// HTTP versions, and plain HTTP (insecure_server). tls says whether the
// server serves TLS.
func (c *converter) server(s settings, srv map[string]any) error {
	for key, field := range map[string]string{"timeout_read": "read_timeout", "timeout_write": "write_timeout", "timeout_idle": "idle_timeout"} {
		d, ok, err := c.duration(s, key)
		if err != nil {
			return err
		}
		if ok && d > 0 {
			srv[field] = d.String()
		}
	}
	insecure, err := c.flag(s, "insecure_server")
	if err != nil {
		return err
	}
	if v, ok := s.value("codec_type"); ok {
		switch t := enum(v, "CODEC_TYPE_"); t {
		case "AUTO", "":
		case "HTTP1":
			srv["protocols"] = []string{"h1"}
		case "HTTP2":
			if insecure {
				srv["protocols"] = []string{"h2c"}
			} else {
				srv["protocols"] = []string{"h2"}
			}
		case "HTTP3":
			if insecure {
				return fmt.Errorf("%s: codec_type: http3 needs TLS, and insecure_server is true", c.file)
			}
			srv["protocols"] = []string{"h1", "h2", "h3"}
		default:
			return fmt.Errorf("%s: codec_type: %q is not one of auto, http1, http2 and http3", c.file, v)
		}
	}
	proxyProtocol, err := c.flag(s, "use_proxy_protocol")
	if err != nil {
		return err
	}
	if proxyProtocol {
		// As Envoy's proxy_protocol listener filter in Pomerium: a PROXY
		// header is read from any client. It goes before TLS.
		wrappers := []map[string]any{{"wrapper": "proxy_protocol", "allow": []string{"0.0.0.0/0", "::/0"}}}
		if !insecure {
			wrappers = append(wrappers, map[string]any{"wrapper": "tls"})
		}
		srv["listener_wrappers"] = wrappers
	}
	return nil
}

// acmeIssuer builds the ACME issuer of autocert from the autocert_*
// settings; nil when none is set. Each such setting without autocert: true
// is a warning, as it changes nothing.
func (c *converter) acmeIssuer(s settings, autocert bool) (map[string]any, bool, error) {
	keys := []string{"autocert_ca", "autocert_email", "autocert_use_staging", "autocert_eab_key_id", "autocert_eab_mac_key",
		"autocert_must_staple", "autocert_trusted_ca_file"}
	issuer := map[string]any{"module": "acme"}
	set := false
	for _, k := range keys {
		if v, ok := s.value(k); ok && v != "" {
			if !autocert {
				c.warn(s.scalar[k], "%s is ignored: autocert is not true", k)
				continue
			}
			set = true
		}
	}
	if !set {
		return nil, false, nil
	}
	get := func(k string) string { v, _ := s.value(k); return strings.TrimSpace(v) }
	staging, err := c.flag(s, "autocert_use_staging")
	if err != nil {
		return nil, false, err
	}
	if staging {
		issuer["ca"] = letsEncryptStaging
	}
	if v := get("autocert_ca"); v != "" {
		issuer["ca"] = v
	}
	if v := get("autocert_email"); v != "" {
		issuer["email"] = v
	}
	id, mac := get("autocert_eab_key_id"), get("autocert_eab_mac_key")
	if (id == "") != (mac == "") {
		return nil, false, fmt.Errorf("%s: autocert_eab_key_id and autocert_eab_mac_key go together", c.file)
	}
	if id != "" {
		issuer["external_account"] = map[string]string{"key_id": id, "mac_key": mac}
	}
	var roots []string
	if v := get("autocert_trusted_ca_file"); v != "" {
		roots = append(roots, v)
	}
	if len(roots) > 0 {
		issuer["trusted_roots_pem_files"] = roots
	}
	mustStaple, err := c.flag(s, "autocert_must_staple")
	if err != nil {
		return nil, false, err
	}
	return issuer, mustStaple, nil
}

// dnsResolvers reads dns_resolvers (URLs such as udp://10.0.0.2:53, as
// Pomerium takes them) and dns_use_tcp into the addresses of Caddy's
// upstream resolver (udp/10.0.0.2:53), which every route's transport then
// uses to look its upstreams up. dns_use_tcp without resolvers is a
// warning: the system resolver cannot be told to use TCP.
func (c *converter) dnsResolvers(s settings) ([]string, error) {
	useTCP, err := c.flag(s, "dns_use_tcp")
	if err != nil {
		return nil, err
	}
	n := s.nodes["dns_resolvers"]
	if n == nil {
		if useTCP {
			c.warn(s.scalar["dns_use_tcp"], "dns_use_tcp is ignored: dns_resolvers is not set, and the system resolver is used")
		}
		return nil, nil
	}
	list, err := c.strings(n)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range list {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		network, addr, ok := strings.Cut(r, "://")
		if !ok {
			network, addr = "udp", r
		}
		switch network = strings.ToLower(network); {
		case network != "udp" && network != "tcp":
			return nil, fmt.Errorf("%s: dns_resolvers: %q is not a resolver such as udp://10.0.0.2:53", c.file, r)
		case useTCP:
			network = "tcp"
		}
		if addr == "" || strings.ContainsAny(addr, "/?#") {
			return nil, fmt.Errorf("%s: dns_resolvers: %q is not a resolver such as udp://10.0.0.2:53", c.file, r)
		}
		out = append(out, network+"/"+addr)
	}
	return out, nil
}
