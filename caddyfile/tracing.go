package caddyfile

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/module"
)

func init() {
	httpcaddyfile.RegisterDirective("iap_tracing", parseTracingHandler)
}

// parseTracingHandler traces a site's requests with the global iap
// option's tracing settings:
//
//	iap_tracing [<matcher>] {
//		span <name>
//	}
func parseTracingHandler(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // the directive name
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	h.Next() // the directive name again: ExtractMatcherSet rewinds
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	handler := new(module.TracingHandler)
	for h.NextBlock(0) {
		switch h.Val() {
		case "span":
			if !h.NextArg() {
				return nil, h.Err("span takes a name")
			}
			handler.SpanName = h.Val()
			if h.NextArg() {
				return nil, h.ArgErr()
			}
		default:
			return nil, h.Errf("unrecognized iap_tracing option %q: the collector and sampler are set in the global iap option's tracing block", h.Val())
		}
	}
	r := caddyhttp.Route{HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(handler, "handler", "iap_tracing", nil)}}
	if matcherSet != nil {
		r.MatcherSetsRaw = []caddy.ModuleMap{matcherSet}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: r}}, nil
}

// parseTracing parses the global iap option's tracing block:
//
//	tracing {
//		endpoint <url>
//		protocol http/protobuf|grpc
//		header <name> <value>
//		timeout <duration>
//		resource_attribute <key> <value>
//		sampler_arg <0 to 1>
//		schedule_delay <duration>
//		max_export_batch_size <n>
//		attribute_value_length_limit <n>
//		log_level debug|info|warn|error
//	}
func parseTracing(d *caddyfile.Dispenser) (*module.Tracing, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	t := new(module.Tracing)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		switch opt {
		case "header", "resource_attribute":
			if len(args) != 2 {
				return nil, d.Errf("%s takes a name and a value", opt)
			}
			target := &t.Headers
			if opt == "resource_attribute" {
				target = &t.ResourceAttributes
			}
			if *target == nil {
				*target = map[string]string{}
			}
			(*target)[args[0]] = args[1]
			continue
		}
		if len(args) != 1 {
			return nil, d.Errf("tracing %s takes one value", opt)
		}
		v := args[0]
		switch opt {
		case "endpoint":
			t.Endpoint = v
		case "protocol":
			t.Protocol = v
		case "log_level":
			t.LogLevel = v
		case "timeout", "schedule_delay":
			dur, err := parseDuration(v)
			if err != nil || dur <= 0 {
				return nil, d.Errf("tracing %s takes a positive duration such as 10s, got %q", opt, v)
			}
			if opt == "timeout" {
				t.Timeout = dur
			} else {
				t.ScheduleDelay = dur
			}
		case "sampler_arg":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return nil, d.Errf("tracing sampler_arg takes a number from 0 to 1, got %q", v)
			}
			t.SamplerArg = &f
		case "max_export_batch_size", "attribute_value_length_limit":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, d.Errf("tracing %s takes a positive whole number, got %q", opt, v)
			}
			if opt == "max_export_batch_size" {
				t.MaxExportBatchSize = n
			} else {
				t.AttributeValueLengthLimit = n
			}
		default:
			return nil, d.Errf("unrecognized tracing option %q", opt)
		}
	}
	if err := t.Check(); err != nil {
		return nil, d.Errf("tracing: %v", err)
	}
	return t, nil
}
