package pomerium

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.yaml.in/yaml/v3"
)

// redirectKeys are the settings of a route's redirect, as Pomerium names
// them (config.PolicyRedirect), each mapped onto Envoy's RedirectAction.
var redirectKeys = []string{"https_redirect", "scheme_redirect", "host_redirect", "port_redirect",
	"path_redirect", "prefix_rewrite", "response_code", "strip_query"}

// redirectCodes are the response codes Pomerium accepts for a redirect;
// 301 when unset, as Envoy's default.
var redirectCodes = []int{301, 302, 303, 307, 308}

// literal escapes a config value for a Caddy field that expands
// placeholders, so that its braces stay braces.
func literal(s string) string {
	return strings.NewReplacer(`{`, `\{`, `}`, `\}`).Replace(s)
}

// redirect builds the handlers that answer a redirect route, after its
// policy: rewrites of the request's URI (strip_query, then path_redirect
// or prefix_rewrite of what the route matched), then a static_response
// whose Location is the new scheme, host and port and the rewritten URI.
func (c *converter) redirect(n *yaml.Node, paths pathSpec) ([]json.RawMessage, error) {
	if n.Kind != yaml.MappingNode {
		return nil, c.errf(n, "redirect is a mapping of %s", strings.Join(redirectKeys, ", "))
	}
	v := map[string]*yaml.Node{}
	for _, kv := range pairs(n) {
		if !slices.Contains(redirectKeys, kv[0].Value) {
			return nil, c.errf(kv[0], "unknown redirect setting %q", kv[0].Value)
		}
		v[kv[0].Value] = kv[1]
	}
	str := func(k string) (string, bool, error) {
		if v[k] == nil {
			return "", false, nil
		}
		s, err := c.str(v[k])
		return s, err == nil, err
	}
	flag := func(k string) (bool, bool, error) {
		if v[k] == nil {
			return false, false, nil
		}
		b, err := c.boolean(v[k])
		return b, err == nil, err
	}

	// The scheme: https_redirect (even false) wins over scheme_redirect,
	// as in Pomerium; neither keeps the request's.
	scheme := "{http.request.scheme}"
	if b, set, err := flag("https_redirect"); err != nil {
		return nil, err
	} else if set {
		if b {
			scheme = "https"
		}
	} else if s, set, err := str("scheme_redirect"); err != nil {
		return nil, err
	} else if set && s != "" {
		scheme = literal(s)
	}

	// The host and port, as Envoy builds them: host_redirect replaces the
	// request's Host (its port too), port_redirect replaces the port, and
	// otherwise the Host stays as the client sent it. (Envoy also drops an
	// explicit :80 or :443 when the scheme changes from http or https;
	// browsers never send those.)
	host, hostSet, err := str("host_redirect")
	if err != nil {
		return nil, err
	}
	hostport := "{http.request.hostport}"
	switch {
	case hostSet && host != "":
		hostport = literal(host)
	case v["port_redirect"] != nil:
		hostport = "{http.request.host}"
	}
	if p := v["port_redirect"]; p != nil {
		port, err := strconv.ParseUint(p.Value, 10, 16)
		if err != nil || port == 0 {
			return nil, c.errf(p, "port_redirect: %q is not a port number", p.Value)
		}
		hostport += ":" + strconv.FormatUint(port, 10)
	}

	code := 301
	if rc := v["response_code"]; rc != nil {
		code, err = strconv.Atoi(rc.Value)
		if err != nil || !slices.Contains(redirectCodes, code) {
			return nil, c.errf(rc, "response_code: %q is not one of 301, 302, 303, 307 and 308", rc.Value)
		}
	}

	var handlers []json.RawMessage
	rewrite := func(h map[string]any) {
		h["handler"] = "rewrite"
		handlers = append(handlers, caddyconfig.JSON(h, nil))
	}
	if b, _, err := flag("strip_query"); err != nil {
		return nil, err
	} else if b {
		rewrite(map[string]any{"uri": "?"})
	}
	// path_redirect replaces the path (and the query, if it has one);
	// else prefix_rewrite replaces what the route matched.
	if p, set, err := str("path_redirect"); err != nil {
		return nil, err
	} else if set {
		if !strings.HasPrefix(p, "/") {
			return nil, c.errf(v["path_redirect"], "path_redirect: %q is not a path (it begins with /)", p)
		}
		rewrite(map[string]any{"uri": literal(p)})
	} else if p, set, err := str("prefix_rewrite"); err != nil {
		return nil, err
	} else if set {
		rewrite(map[string]any{"path_regexp": []map[string]string{{"find": paths.rewrite, "replace": strings.ReplaceAll(literal(p), "$", "$$")}}})
	}
	handlers = append(handlers, staticResponse(code, map[string]string{"Location": scheme + "://" + hostport + "{http.request.uri}"}, ""))
	return handlers, nil
}

// response builds the handler of a response route: Pomerium's direct
// response, a status and a body, as Envoy sends it (text/plain).
func (c *converter) response(n *yaml.Node) (json.RawMessage, error) {
	if n.Kind != yaml.MappingNode {
		return nil, c.errf(n, "response is a mapping of status and body")
	}
	var status int
	var body string
	for _, kv := range pairs(n) {
		switch kv[0].Value {
		case "status":
			s, err := strconv.Atoi(kv[1].Value)
			if err != nil || s < 200 || s > 599 {
				return nil, c.errf(kv[1], "response status: %q is not an HTTP status from 200 to 599", kv[1].Value)
			}
			status = s
		case "body":
			b, err := c.str(kv[1])
			if err != nil {
				return nil, err
			}
			body = b
		default:
			return nil, c.errf(kv[0], "unknown response setting %q", kv[0].Value)
		}
	}
	if status == 0 {
		return nil, c.errf(n, "response needs a status")
	}
	var header map[string]string
	if body != "" {
		header = map[string]string{"Content-Type": "text/plain"}
	}
	return staticResponse(status, header, literal(body)), nil
}

// action names what a route does: "to" (proxy), "redirect" or
// "response", exactly one of which Pomerium requires.
func (c *converter) action(n *yaml.Node, fields map[string]*yaml.Node) (string, error) {
	var set []string
	for _, k := range []string{"to", "redirect", "response"} {
		if fields[k] != nil {
			set = append(set, k)
		}
	}
	switch len(set) {
	case 0:
		return "", fmt.Errorf("%s:%d: a route needs to, redirect or response", c.file, n.Line)
	case 1:
		return set[0], nil
	}
	return "", c.errf(fields[set[1]], "a route has one of to, redirect and response, not %s", strings.Join(set, " and "))
}
