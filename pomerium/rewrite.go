package pomerium

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"
)

// The placeholders of the host rewrites: the path the route matched,
// kept before any path rewrite, and the Host a map handler computes.
const (
	matchedPathVar  = "pomerium.matched_path"
	hostRewriteDest = "{pomerium.host_rewrite}"
)

// envoySubstitution turns an Envoy regex substitution (\1 for a group,
// RE2's syntax) into a Go replacement template for a pattern whose groups
// are shifted by shift ($ is literal, braces stay braces).
func envoySubstitution(sub string, shift int) string {
	var b strings.Builder
	for i := 0; i < len(sub); i++ {
		ch := sub[i]
		switch {
		case ch == '\\' && i+1 < len(sub) && sub[i+1] >= '0' && sub[i+1] <= '9':
			j := i + 1
			for j < len(sub) && sub[j] >= '0' && sub[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(sub[i+1 : j])
			b.WriteString("${" + strconv.Itoa(n+shift) + "}")
			i = j - 1
		case ch == '\\' && i+1 < len(sub) && sub[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case ch == '$':
			b.WriteString("$$")
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// regexSetting reads a route's regular expression setting, which Envoy
// compiles as RE2, as Go does.
func (c *converter) regexSetting(fields map[string]*yaml.Node, key string) (string, *regexp.Regexp, error) {
	n := fields[key]
	if n == nil {
		return "", nil, nil
	}
	v, err := c.str(n)
	if err != nil || v == "" {
		return "", nil, err
	}
	re, err := regexp.Compile(v)
	if err != nil {
		return "", nil, c.errf(n, "%s: %v", key, err)
	}
	return v, re, nil
}

// hostRewrite returns the Host the upstream gets, as Pomerium decides it
// (envoyconfig setHostRewriteOptions): host_rewrite, else the request
// header that host_rewrite_header names, else host_path_regex_rewrite_*
// applied to the path; "" leaves it to preserve_host_header and the
// default (the upstream's own host).
func (c *converter) hostRewrite(fields map[string]*yaml.Node) (string, error) {
	if n := fields["host_rewrite"]; n != nil {
		v, err := c.str(n)
		if err != nil || v != "" {
			return literal(v), err
		}
	}
	if n := fields["host_rewrite_header"]; n != nil {
		v, err := c.str(n)
		if err != nil {
			return "", err
		}
		if v != "" {
			if !httpguts.ValidHeaderFieldName(v) {
				return "", c.errf(n, "host_rewrite_header: %q is not a header name", v)
			}
			return hostRewriteDest, nil
		}
	}
	if pattern, _, err := c.regexSetting(fields, "host_path_regex_rewrite_pattern"); err != nil || pattern != "" {
		if err == nil && fields["host_path_regex_rewrite_substitution"] == nil {
			err = c.errf(fields["host_path_regex_rewrite_pattern"], "host_path_regex_rewrite_pattern needs host_path_regex_rewrite_substitution")
		}
		return hostRewriteDest, err
	}
	return "", nil
}

// rewrites returns the handlers that go between the route's policy and its
// reverse_proxy: what the host rewrite needs, then the path rewrite, as
// Pomerium has Envoy do them (envoyconfig getRewriteOptions): prefix_rewrite
// replaces what the route matched; else regex_rewrite_pattern's matches are
// replaced by regex_rewrite_substitution; else the first upstream URL's
// path replaces what the route matched.
func (c *converter) rewrites(fields map[string]*yaml.Node, paths pathSpec, toPath string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	host, err := c.hostRewrite(fields)
	if err != nil {
		return nil, err
	}
	if host == hostRewriteDest {
		h, err := c.hostMap(fields)
		if err != nil {
			return nil, err
		}
		out = append(out, h...)
	}

	prefix, hasPrefix := "", false
	if n := fields["prefix_rewrite"]; n != nil {
		v, err := c.str(n)
		if err != nil {
			return nil, err
		}
		prefix, hasPrefix = v, v != ""
	}
	pattern, _, err := c.regexSetting(fields, "regex_rewrite_pattern")
	if err != nil {
		return nil, err
	}
	switch {
	case hasPrefix:
		if pattern != "" {
			c.warn(fields["regex_rewrite_pattern"], "regex_rewrite_pattern is ignored: prefix_rewrite is set, and wins, as in Pomerium")
		}
	case pattern != "":
		if fields["regex_rewrite_substitution"] == nil {
			return nil, c.errf(fields["regex_rewrite_pattern"], "regex_rewrite_pattern needs regex_rewrite_substitution")
		}
		sub, err := c.str(fields["regex_rewrite_substitution"])
		if err != nil {
			return nil, err
		}
		out = append(out, caddyconfig.JSON(map[string]any{"handler": "rewrite",
			"path_regexp": []map[string]string{{"find": pattern, "replace": literal(envoySubstitution(sub, 0))}}}, nil))
		return out, nil
	case toPath != "":
		prefix, hasPrefix = toPath, true
	}
	if hasPrefix {
		out = append(out, caddyconfig.JSON(map[string]any{"handler": "rewrite",
			"path_regexp": []map[string]string{{"find": paths.rewrite, "replace": strings.ReplaceAll(literal(prefix), "$", "$$")}}}, nil))
	}
	return out, nil
}

// hostMap returns the handlers that compute the Host of
// host_rewrite_header or host_path_regex_rewrite_* into hostRewriteDest: a
// map handler, whose default when the header is absent or the pattern does
// not match is the request's own Host (Envoy leaves the Host alone then).
// The path is the one the route matched, before any path rewrite, kept by
// a vars handler.
func (c *converter) hostMap(fields map[string]*yaml.Node) ([]json.RawMessage, error) {
	if n := fields["host_rewrite_header"]; n != nil && n.Value != "" && (fields["host_rewrite"] == nil || fields["host_rewrite"].Value == "") {
		return []json.RawMessage{caddyconfig.JSON(map[string]any{"handler": "map",
			"source":       "{http.request.header." + n.Value + "}",
			"destinations": []string{hostRewriteDest},
			"mappings":     []map[string]any{{"input_regexp": "^(.+)$", "outputs": []string{"${1}"}}},
			"defaults":     []string{"{http.request.hostport}"},
		}, nil)}, nil
	}
	pattern, re, err := c.regexSetting(fields, "host_path_regex_rewrite_pattern")
	if err != nil {
		return nil, err
	}
	sub, err := c.str(fields["host_path_regex_rewrite_substitution"])
	if err != nil {
		return nil, err
	}
	// Envoy replaces every match in the path; the map handler expands one
	// match of its pattern, so the pattern is wrapped to match the whole
	// path: what comes before the first match, the match, and the rest.
	// (A pattern matching more than once in a path is rare for a host.)
	wrapped := "^((?s:.*?))(?:" + pattern + ")((?s:.*))$"
	out := "${1}" + envoySubstitution(sub, 1) + "${" + strconv.Itoa(re.NumSubexp()+2) + "}"
	return []json.RawMessage{
		caddyconfig.JSON(map[string]any{"handler": "vars", matchedPathVar: "{http.request.uri.path}"}, nil),
		caddyconfig.JSON(map[string]any{"handler": "map",
			"source":       "{http.vars." + matchedPathVar + "}",
			"destinations": []string{hostRewriteDest},
			"mappings":     []map[string]any{{"input_regexp": wrapped, "outputs": []string{out}}},
			"defaults":     []string{"{http.request.hostport}"},
		}, nil),
	}, nil
}
