// Package pomerium is a Caddy config adapter that runs an existing Pomerium
// config.yaml: `caddy run --adapter pomerium --config config.yaml`. Every
// route compiles through module.Route, the same struct the Caddyfile's
// iap_route fills, so options mean the same thing either way.
//
// A key the adapter knows but does not support yet is a warning that names
// it; an unknown key is an error with its line.
package pomerium

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/downstreamtls"
)

func init() {
	caddyconfig.RegisterAdapter("pomerium", Adapter{})
}

// Adapter adapts a Pomerium config.yaml to Caddy JSON.
type Adapter struct{}

// Adapt converts the config. options["filename"] names the file in errors.
func (Adapter) Adapt(body []byte, options map[string]any) ([]byte, []caddyconfig.Warning, error) {
	return adaptWithEnv(body, options, lookupEnv)
}

// adaptWithEnv is Adapt with the environment read through env, so that
// tests can give each case its own environment.
func adaptWithEnv(body []byte, options map[string]any, env func(string) (string, bool)) ([]byte, []caddyconfig.Warning, error) {
	name, _ := options["filename"].(string)
	if name == "" {
		name = "config.yaml"
	}
	doc, err := oneDocument(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%s: a Pomerium config is a mapping of settings", name)
	}
	c := &converter{file: name, env: env}
	cfg, err := c.convert(doc.Content[0])
	if err != nil {
		return nil, c.warnings, err
	}
	out, err := json.Marshal(cfg)
	return out, c.warnings, err
}

// oneDocument parses YAML that must be one document. yaml.v3 (and so
// Pomerium, through viper) reads the first document and drops the rest
// without a word: a file that starts "{}" loses every setting after it,
// and one with a second document after "---" loses that document. Both
// are errors here, since dropped routes or policies change who gets in.
func oneDocument(src []byte) (yaml.Node, error) {
	var doc, more yaml.Node
	d := yaml.NewDecoder(bytes.NewReader(src))
	if err := d.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return doc, err
	}
	switch err := d.Decode(&more); {
	case errors.Is(err, io.EOF):
		return doc, nil
	case err != nil:
		return doc, fmt.Errorf("%v: the text after the end of the first YAML document would be ignored (Pomerium ignores it too); a config is one mapping of settings", err)
	default:
		return doc, fmt.Errorf("line %d: a second YAML document would be ignored (Pomerium reads only the first); put every setting in one document", more.Line)
	}
}

// lookupEnv reads an environment variable as Pomerium (viper) does: set
// but empty counts as unset.
func lookupEnv(key string) (string, bool) {
	v, ok := os.LookupEnv(key)
	return v, ok && v != ""
}

// converter walks the YAML and builds the Caddy config.
type converter struct {
	file     string
	env      func(string) (string, bool)
	warnings []caddyconfig.Warning

	// upgrades is the global allow_upgrades, nil when unset.
	upgrades []string

	// routeMTLS is a global downstream_mtls without ca or ca_file (a CRL,
	// say): it adds to the deprecated per-route client CAs, nil when unset.
	routeMTLS *downstreamtls.Options

	// defaultTimeout is default_upstream_timeout, 0 when unset.
	defaultTimeout time.Duration

	// respHeaders is the global set_response_headers, nil when unset.
	respHeaders map[string]string

	// resolvers are dns_resolvers as Caddy's upstream resolver addresses.
	resolvers []string

	// circuitBreakerDefaults is the global circuit_breaker_thresholds,
	// under each route's own; nil when unset.
	circuitBreakerDefaults fields

	// warnedOnce holds the warnings given once per config.
	warnedOnce map[string]bool

	// azure: idp_provider is azure, whose access tokens Pomerium verifies
	// in its own way (see bearer.go).
	azure bool
	// skipXFF is skip_xff_append: proxies send the client's
	// X-Forwarded-For unchanged (xff.go).
	skipXFF bool

	// serverNames are the routes' tls_downstream_server_name, by route
	// host (lowercase), read before the routes are converted.
	serverNames map[string][]string
}

// warn adds a warning at n's line; n is nil for a setting that came from
// an environment variable only.
func (c *converter) warn(n *yaml.Node, format string, args ...any) {
	w := caddyconfig.Warning{File: c.file, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		w.Line = n.Line
	}
	c.warnings = append(c.warnings, w)
}

func (c *converter) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", c.file, n.Line, fmt.Sprintf(format, args...))
}

// pairs returns a mapping node's key/value pairs.
func pairs(n *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

// str decodes a scalar.
func (c *converter) str(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", c.errf(n, "expected a single value")
	}
	return n.Value, nil
}

func (c *converter) boolean(n *yaml.Node) (bool, error) {
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, c.errf(n, "expected true or false, got %q", n.Value)
	}
	return b, nil
}

func (c *converter) strings(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return nil, c.errf(n, "expected a value or a list of values")
	}
	return list, nil
}

// fileOrInline reads a Pomerium pair like cookie_secret/cookie_secret_file.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// hostOf returns the host of a route's `from` URL.
func (c *converter) hostOf(n *yaml.Node, from string) (string, error) {
	u, err := url.Parse(from)
	if err != nil || u.Host == "" {
		return "", c.errf(n, "from: %q is not a URL such as https://app.example.com", from)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", c.errf(n, "from: %s routes (TCP, UDP, SSH) are not supported", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return "", c.errf(n, "from: a path in from is not allowed; use prefix or path")
	}
	return u.Hostname(), nil
}

// portOf returns the port of a listen address like ":443" or "0.0.0.0:8443".
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}
