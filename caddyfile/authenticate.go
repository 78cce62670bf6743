package caddyfile

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/module"
)

func init() {
	httpcaddyfile.RegisterDirective("iap_authenticate", parseAuthenticate)
}

// parseAuthenticate sets up sign-in for a whole site, in front of whatever
// handlers it has (iap_route puts it in front of its own proxy already):
//
//	iap_authenticate [<matcher>]
func parseAuthenticate(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // the directive name
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	h.Next() // the directive name again: ExtractMatcherSet rewinds
	if h.NextArg() || h.NextBlock(0) {
		return nil, h.Err("iap_authenticate takes no options: the identity provider and cookies are set in the global iap option")
	}
	handler := caddyconfig.JSONModuleObject(&module.Authenticate{Hosts: siteHosts(h)}, "handler", "iap_authenticate", nil)
	r := caddyhttp.Route{HandlersRaw: []json.RawMessage{handler}}
	if matcherSet != nil {
		r.MatcherSetsRaw = []caddy.ModuleMap{matcherSet}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: r}}, nil
}
