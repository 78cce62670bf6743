package pomerium

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-iap/caddy-iap/module"
)

// extraServers returns the servers of Pomerium's side listeners: the
// metrics endpoint (metrics_address, with metrics_basic_auth), HTTPS when
// mt is set (see metricsTLS), and the health checks (health_check_addr),
// plain HTTP on its address.
func (c *converter) extraServers(s settings, mt *metricsTLS) (map[string]any, error) {
	servers := map[string]any{}
	get := func(k string) string { v, _ := s.value(k); return strings.TrimSpace(v) }
	plain := func(addr string, routes ...caddyhttp.Route) map[string]any {
		return map[string]any{"listen": []string{addr}, "routes": routes, "automatic_https": map[string]any{"disable": true}}
	}
	if addr := get("metrics_address"); addr != "" {
		handlers := []json.RawMessage{}
		if v := get("metrics_basic_auth"); v != "" {
			// base64("user:password"), as Pomerium takes it.
			raw, err := module.DecodeBase64(v)
			user, pass, ok := strings.Cut(string(raw), ":")
			if err != nil || !ok || user == "" {
				return nil, fmt.Errorf("%s: metrics_basic_auth: not a base64-encoded user:password", c.file)
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
			if err != nil {
				return nil, fmt.Errorf("%s: metrics_basic_auth: %v", c.file, err)
			}
			handlers = append(handlers, caddyconfig.JSON(map[string]any{"handler": "authentication",
				"providers": map[string]any{"http_basic": map[string]any{"accounts": []map[string]string{{"username": user, "password": string(hash)}}}}}, nil))
		}
		handlers = append(handlers, caddyconfig.JSON(map[string]any{"handler": "metrics"}, nil))
		srv := plain(addr, caddyhttp.Route{HandlersRaw: handlers, Terminal: true})
		if mt != nil {
			// HTTPS with the metrics certificate, and client certificates
			// if asked for; automatic HTTPS stays off (no ACME, no
			// redirect). One policy covers every connection whatever its
			// SNI, so Caddy's strict SNI-Host check, which it turns on
			// with client authentication and which would refuse a scraper
			// that connects by IP address, guards nothing here. HTTP/1.1
			// and HTTP/2, as Pomerium's metrics listener.
			srv["tls_connection_policies"] = []*caddytls.ConnectionPolicy{mt.policy}
			srv["strict_sni_host"] = false
			srv["protocols"] = []string{"h1", "h2"}
		}
		servers["pomerium_metrics"] = srv
	} else {
		if get("metrics_basic_auth") != "" {
			c.warn(s.scalar["metrics_basic_auth"], "metrics_basic_auth is ignored: metrics_address is not set")
		}
	}
	if addr := get("health_check_addr"); addr != "" {
		servers["pomerium_health"] = plain(addr, healthRoute())
	}
	return servers, nil
}

// underscoreHeaders reads headers_with_underscores_action: Caddy drops
// request headers with underscores (Envoy's DROP_HEADER); REJECT_REQUEST
// and ALLOW are served the same way, with a warning.
func (c *converter) underscoreHeaders(s settings) error {
	v, ok := s.value("headers_with_underscores_action")
	if !ok {
		return nil
	}
	switch a := enum(v, "HEADERS_WITH_UNDERSCORES_ACTION_"); a {
	case "DROP_HEADER", "":
	case "REJECT_REQUEST", "ALLOW":
		c.warn(s.scalar["headers_with_underscores_action"], "headers_with_underscores_action: %s is served as DROP_HEADER: Caddy drops request headers with underscores before any handler sees them", a)
	default:
		return fmt.Errorf("%s: headers_with_underscores_action: %q is not one of ALLOW, REJECT_REQUEST and DROP_HEADER", c.file, v)
	}
	return nil
}
