package module

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(LogHeaders{})
}

// LogHeaders is a log field filter for the headers object of Caddy's
// access log (`request>headers`, or `resp_headers`) that keeps the headers
// it names and leaves out every other, so that an access log holds the
// headers someone chose rather than whatever a client sent. The Pomerium
// adapter uses it for access_log_fields (user-agent, referer,
// forwarded-for, headers.<Name>). Credentials (Cookie, Authorization, ...)
// stay REDACTED unless the server logs credentials.
//
//	format filter {
//		request>headers iap_headers User-Agent Referer {
//			strip_query Referer
//		}
//	}
type LogHeaders struct {
	// The headers to keep, by name (any case). Default: none, which
	// leaves an empty object.
	Keep []string `json:"keep,omitempty"`

	// Kept headers whose values are logged without their query string
	// (from the first "?"), as Pomerium logs the Referer, whose query may
	// hold a token of another site.
	StripQuery []string `json:"strip_query,omitempty"`

	keep, strip map[string]bool
}

// CaddyModule returns the Caddy module information.
func (LogHeaders) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.filter.iap_headers",
		New: func() caddy.Module { return new(LogHeaders) },
	}
}

// Provision puts the names in canonical form.
func (f *LogHeaders) Provision(caddy.Context) error {
	f.keep, f.strip = map[string]bool{}, map[string]bool{}
	for _, h := range f.Keep {
		f.keep[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range f.StripQuery {
		f.strip[http.CanonicalHeaderKey(h)] = true
	}
	return nil
}

// UnmarshalCaddyfile reads `iap_headers <name...> { keep <name...>;
// strip_query <name...> }`.
func (f *LogHeaders) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the filter's name
	f.Keep = append(f.Keep, d.RemainingArgs()...)
	for d.NextBlock(0) {
		switch d.Val() {
		case "keep":
			f.Keep = append(f.Keep, d.RemainingArgs()...)
		case "strip_query":
			f.StripQuery = append(f.StripQuery, d.RemainingArgs()...)
		default:
			return d.Errf("iap_headers: unknown option %q (keep, strip_query)", d.Val())
		}
	}
	return nil
}

// Filter keeps the named headers of a headers object; anything else (a
// field that is not Caddy's headers object) is left out, never passed
// through unfiltered.
func (f *LogHeaders) Filter(in zapcore.Field) zapcore.Field {
	h, ok := in.Interface.(caddyhttp.LoggableHTTPHeader)
	if !ok {
		return zap.Skip()
	}
	kept := http.Header{}
	for name, values := range h.Header {
		name = http.CanonicalHeaderKey(name)
		if !f.keep[name] {
			continue
		}
		if f.strip[name] {
			stripped := make([]string, len(values))
			for i, v := range values {
				stripped[i], _, _ = strings.Cut(v, "?")
			}
			values = stripped
		}
		kept[name] = append(kept[name], values...)
	}
	return zap.Object(in.Key, caddyhttp.LoggableHTTPHeader{Header: kept, ShouldLogCredentials: h.ShouldLogCredentials})
}

// Interface guards
var (
	_ caddy.Provisioner      = (*LogHeaders)(nil)
	_ caddyfile.Unmarshaler  = (*LogHeaders)(nil)
	_ logging.LogFieldFilter = (*LogHeaders)(nil)
)
