package pomerium

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// skip_xff_append (Envoy's option of the same name, with
// use_remote_address on, as Pomerium sets it): the upstream gets the
// client's X-Forwarded-For unchanged, nothing appended, or none when the
// client sent none. Caddy's reverse_proxy writes its own (the peer's
// address, for a peer that is not a trusted proxy) before its header
// operations run, so each proxy sets the header back to the client's and
// deletes it when the client sent none: xffAbsent, a placeholder of the
// map handler xffMap, is the header's name then and empty otherwise (a
// constant, never text of the request). Which address the policy sees
// does not change: source_ip takes Caddy's client IP, the TCP peer.
const xffAbsent = "{iap.xff_absent}"

// xffMap is the map handler that answers xffAbsent, first on the server.
func xffMap() json.RawMessage {
	return caddyconfig.JSON(map[string]any{
		"handler":      "map",
		"source":       "{http.request.header.X-Forwarded-For}",
		"destinations": []string{xffAbsent},
		"mappings":     []map[string]any{{"input_regexp": "^$", "outputs": []string{"X-Forwarded-For"}}},
		"defaults":     []string{""},
	}, nil)
}

// keepClientXFF makes rp send the client's X-Forwarded-For as it came.
func keepClientXFF(rp *reverseproxy.Handler) {
	if rp.Headers == nil {
		rp.Headers = new(headers.Handler)
	}
	if rp.Headers.Request == nil {
		rp.Headers.Request = new(headers.HeaderOps)
	}
	ops := rp.Headers.Request
	if ops.Set == nil {
		ops.Set = http.Header{}
	}
	ops.Set["X-Forwarded-For"] = []string{"{http.request.header.X-Forwarded-For}"}
	ops.Delete = append(ops.Delete, xffAbsent)
}

// setsHeader reports whether a route's set_request_headers names header.
func setsHeader(set map[string]string, header string) bool {
	for k := range set {
		if strings.EqualFold(strings.TrimSpace(k), header) {
			return true
		}
	}
	return false
}
