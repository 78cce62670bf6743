package caddyfile

import (
	"reflect"

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
