package pomerium

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-iap/caddy-iap/module"
)

// accessLoggerName is the access logger of the adapter's server:
// http.log.access.<name>, which the log "pomerium_access" writes through a
// filter keeping the fields of access_log_fields.
const accessLoggerName = "pomerium"

// accessLogField is what one of Pomerium's access log fields
// (logfields.AccessLogField) keeps of Caddy's access log line.
type accessLogField struct {
	keep   []string // Caddy's fields, by the filter encoder's paths
	header string   // a request header kept in request>headers
	// appended: a field caddy-iap adds (log_append) with this value.
	appended, value string
	// missing says, for a field with no counterpart, why; listing it is
	// a warning.
	missing string
	// partial says what a field with a partial counterpart leaves out;
	// listing it is a warning too.
	partial string
}

// accessLogFields are Pomerium's access log fields (as of the commit of
// testdata/pomerium-settings.txt), onto Caddy's access log.
var accessLogFields = map[string]accessLogField{
	"authority":             {keep: []string{"request>host"}},
	"client-certificate":    {keep: []string{"request>tls"}, partial: "Caddy's request>tls names the client certificate by its common name and serial only, not its issuer, subject or subject alternative names"},
	"cluster-stat-name":     {missing: "Envoy's cluster statistics name; there is no Envoy cluster"},
	"duration":              {keep: []string{"duration"}},
	"forwarded-for":         {header: "X-Forwarded-For"},
	"ip":                    {keep: []string{"request>remote_ip", "request>client_ip"}},
	"method":                {keep: []string{"request>method"}},
	"path":                  {}, // request>uri, see uriFilter
	"query":                 {},
	"referer":               {header: "Referer"},
	"request-id":            {appended: "request_id", value: "{http.request.uuid}"},
	"response-code":         {keep: []string{"status"}},
	"response-code-details": {missing: "Envoy's response code details; iap_decision and iap_reason say why caddy-iap answered"},
	"size":                  {keep: []string{"size"}},
	"upstream-cluster":      {appended: "upstream", value: "{http.reverse_proxy.upstream.hostport}"},
	"user-agent":            {header: "User-Agent"},
}

// defaultAccessLogFields is Pomerium's default access_log_fields
// (logfields.DefaultAccessLogFields).
var defaultAccessLogFields = []string{"upstream-cluster", "method", "authority", "path", "user-agent", "referer",
	"forwarded-for", "request-id", "duration", "size", "response-code", "response-code-details"}

// caddyAccessFields are the fields of Caddy's access log line that
// access_log_fields chooses among; the filter deletes those not chosen.
// caddy-iap's own (iap_decision, iap_reason, iap_route_description) are
// always kept.
var caddyAccessFields = []string{"request>remote_ip", "request>remote_port", "request>client_ip", "request>proto",
	"request>method", "request>host", "request>uri", "request>headers", "request>transfer_encoding", "request>tls",
	"bytes_read", "user_id", "duration", "size", "status", "resp_headers", "uuid"}

// logFieldList reads authorize_log_fields or access_log_fields: a YAML
// list, values separated by commas, or the environment variable (which
// wins); nil when not set, an empty list when set to [].
func (c *converter) logFieldList(s settings, key string) ([]string, *yaml.Node, error) {
	n := s.nodes[key]
	if n == nil {
		return nil, nil, nil
	}
	var list []string
	if n.Kind == yaml.ScalarNode {
		// From the environment, or a scalar in the file: commas.
		for _, f := range strings.Split(n.Value, ",") {
			if f = strings.TrimSpace(f); f != "" {
				list = append(list, f)
			}
		}
	} else {
		var err error
		if list, err = c.strings(n); err != nil {
			return nil, nil, c.errf(n, "%s: a list of field names", key)
		}
	}
	if list == nil {
		list = []string{}
	}
	return list, n, nil
}

// fieldError names a bad log field at its line (or the environment
// variable it came from).
func (c *converter) fieldError(n *yaml.Node, key, field string, err error) error {
	if n != nil && n.Kind == yaml.SequenceNode {
		// The item's own line.
		if i := slices.IndexFunc(n.Content, func(item *yaml.Node) bool { return item.Value == field }); i >= 0 && n.Line != 0 {
			n = n.Content[i]
		}
	}
	if n == nil || n.Line == 0 {
		return fmt.Errorf("%s: %s (from the environment variable %s): %v", c.file, key, strings.ToUpper(key), err)
	}
	return c.errf(n, "%v", err)
}

// authorizeLogFields reads authorize_log_fields for the iap app: the list
// given, or Pomerium's default list.
func (c *converter) authorizeLogFields(s settings) ([]string, error) {
	list, n, err := c.logFieldList(s, "authorize_log_fields")
	if err != nil {
		return nil, err
	}
	if list == nil {
		return slices.Clone(module.DefaultAuthorizeLogFields), nil
	}
	for _, f := range list {
		if err := module.CheckAuthorizeLogFields([]string{f}); err != nil {
			return nil, c.fieldError(n, "authorize_log_fields", f, err)
		}
	}
	return list, nil
}

// accessLog maps access_log_fields (Pomerium's default list when unset)
// onto the server's access log: srv's logs name the logger, log holds the
// custom log writing it through a filter, and the returned route (nil
// when none is needed) goes first on the server, adding the fields Caddy
// does not log itself (request_id, and upstream). Caddy's own uuid field,
// which it adds once something asked for the request's ID, is deleted: it
// would name request_id's value twice.
func (c *converter) accessLog(s settings, srv map[string]any, level string) (log map[string]any, first *caddyhttp.Route, err error) {
	list, n, err := c.logFieldList(s, "access_log_fields")
	if err != nil {
		return nil, nil, err
	}
	if list == nil {
		list = defaultAccessLogFields
		n = nil
	}
	keep := map[string]bool{}
	var headers, appended []string
	var path, query bool
	for _, f := range list {
		if name, ok := strings.CutPrefix(f, "headers."); ok {
			if !httpguts.ValidHeaderFieldName(name) {
				return nil, nil, c.fieldError(n, "access_log_fields", f, fmt.Errorf("access_log_fields: %q: headers.<Name> needs a header name after the dot", f))
			}
			headers = append(headers, name)
			continue
		}
		m, ok := accessLogFields[f]
		if !ok {
			names := make([]string, 0, len(accessLogFields))
			for k := range accessLogFields {
				names = append(names, k)
			}
			slices.Sort(names)
			return nil, nil, c.fieldError(n, "access_log_fields", f, fmt.Errorf("access_log_fields: unknown field %q%s; the fields are %s and headers.<Name>",
				f, didYouMean(f, settingNames(names)), strings.Join(names, ", ")))
		}
		if (m.missing != "" || m.partial != "") && n != nil {
			// Only a list written out: Pomerium's default list maps as
			// far as it goes, silently.
			item := n
			if i := slices.IndexFunc(n.Content, func(item *yaml.Node) bool { return item.Value == f }); i >= 0 && n.Line != 0 {
				item = n.Content[i]
			}
			if m.missing != "" {
				c.warn(item, "access_log_fields: %s is not logged: %s", f, m.missing)
			} else {
				c.warn(item, "access_log_fields: %s is logged in part: %s", f, m.partial)
			}
		}
		switch {
		case m.missing != "":
		case f == "path":
			path = true
		case f == "query":
			query = true
		case m.header != "":
			headers = append(headers, m.header)
		case m.appended != "":
			if !slices.Contains(appended, f) {
				appended = append(appended, f)
			}
		}
		for _, k := range m.keep {
			keep[k] = true
		}
	}

	fields := map[string]json.RawMessage{}
	deleteField := json.RawMessage(`{"filter":"delete"}`)
	for _, f := range caddyAccessFields {
		switch {
		case f == "request>headers" && len(headers) > 0:
			fields[f] = caddyconfig.JSONModuleObject(module.LogHeaders{Keep: headers, StripQuery: []string{"Referer"}}, "filter", "iap_headers", nil)
		case f == "request>uri" && path && !query:
			// Pomerium's path has no query.
			fields[f] = caddyconfig.JSON(map[string]string{"filter": "regexp", "regexp": `\?.*$`, "value": ""}, nil)
		case f == "request>uri" && query && !path:
			fields[f] = caddyconfig.JSON(map[string]string{"filter": "regexp", "regexp": `^[^?]*\??`, "value": ""}, nil)
		case f == "request>uri" && path && query:
		case !keep[f]:
			fields[f] = deleteField
		}
	}
	log = map[string]any{
		"include": []string{"http.log.access." + accessLoggerName},
		"encoder": map[string]any{"format": "filter", "wrap": map[string]any{"format": "json"}, "fields": fields},
	}
	if level != "" {
		log["level"] = level
	}
	srv["logs"] = map[string]any{"default_logger_name": accessLoggerName}

	if len(appended) > 0 {
		var handlers []json.RawMessage
		for _, f := range appended {
			m := accessLogFields[f]
			handlers = append(handlers, caddyconfig.JSON(map[string]any{"handler": "log_append",
				"key": m.appended, "value": m.value, "early": f == "request-id"}, nil))
		}
		first = &caddyhttp.Route{HandlersRaw: handlers}
	}
	return log, first, nil
}

// settingNames makes a table of names, for didYouMean.
func settingNames(names []string) []knownSetting {
	out := make([]knownSetting, len(names))
	for i, n := range names {
		out[i] = knownSetting{name: n}
	}
	return out
}
