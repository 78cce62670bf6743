package caddyfile

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// siteAddresses returns the addresses of the site block a directive is in,
// such as "app.example.com" or "https://:8443", or nil if they cannot be
// read. Caddy's Helper keeps its parent block unexported, so this reads it
// by reflection and degrades to nil should Caddy rename it; callers keep a
// fallback.
func siteAddresses(h httpcaddyfile.Helper) []string {
	keys := reflect.ValueOf(h).FieldByName("parentBlock").FieldByName("Keys")
	if !keys.IsValid() || keys.Kind() != reflect.Slice {
		return nil
	}
	out := make([]string, 0, keys.Len())
	for i := 0; i < keys.Len(); i++ {
		if text := keys.Index(i).FieldByName("Text"); text.IsValid() && text.Kind() == reflect.String {
			out = append(out, text.String())
		}
	}
	return out
}

// siteHosts returns the host names of the site's addresses.
func siteHosts(h httpcaddyfile.Helper) []string {
	var hosts []string
	for _, a := range siteAddresses(h) {
		if addr, err := httpcaddyfile.ParseAddress(a); err == nil && addr.Host != "" {
			hosts = append(hosts, addr.Host)
		}
	}
	return hosts
}

// siteURL returns the URL of the site's first address that names a host,
// for the routes portal: https://host, with the port when it is not the
// scheme's default (an address without a port is served on https_port,
// or http_port for http://). "" when no address names a host.
func siteURL(h httpcaddyfile.Helper) string {
	for _, a := range siteAddresses(h) {
		addr, err := httpcaddyfile.ParseAddress(a)
		if err != nil || addr.Host == "" {
			continue
		}
		scheme, port := addr.Scheme, addr.Port
		if scheme == "" {
			scheme = "https"
			if port == "80" {
				scheme = "http"
			}
		}
		if port == "" {
			option := map[string]string{"https": "https_port", "http": "http_port"}[scheme]
			if p, ok := h.Option(option).(int); ok {
				port = strconv.Itoa(p)
			}
		}
		host := addr.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // an IPv6 address
		}
		if port != "" && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80") {
			host += ":" + port
		}
		return scheme + "://" + host
	}
	return ""
}
