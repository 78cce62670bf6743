package module

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

// jsonNames lists the JSON names of a config struct's fields, descending
// into embedded structs of this module (downstreamtls.Options in MTLS, say)
// but not into Caddy's own (reverseproxy.HTTPTransport in iap_http), whose
// options Caddy documents.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			if strings.HasPrefix(f.Type.PkgPath(), modulePath+"/") {
				out = append(out, jsonNames(f.Type)...)
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// documents reports whether text names the option as a whole word in code:
// "`name`", "`name <value>`", "`name [true|false]`", but not `name_more`
// nor `more_name`.
func documents(text, name string) bool {
	return regexp.MustCompile("`"+regexp.QuoteMeta(name)+"(`|[^A-Za-z0-9_.`][^`]*`)").MatchString(text) ||
		// Inside a code span of several words: "`a.b.name`", "`{... "name": ...}`".
		regexp.MustCompile("`[^`\n]*[^A-Za-z0-9_`]"+regexp.QuoteMeta(name)+"([^A-Za-z0-9_][^`\n]*)?`").MatchString(text)
}

// The config types whose every JSON field the README's option tables must
// name: the app, the route, each handler, the matcher, the verifier, the CA
// pool source and the transport.
var documentedTypes = []any{
	App{}, IDP{}, Route{}, upstreamtls.Defaults{},
	Authenticate{}, Authorize{}, MatchPolicy{}, MTLS{}, MTLSVerifier{},
	upstreamtls.SystemPlusCAPool{}, upstreamtls.Transport{}, HealthyPanic{},
	Tracing{}, TracingHandler{},
}

// The README's option tables must name every option the config structs
// have, each as a whole name, so the docs cannot drift from the code.
func TestREADMEListsEveryOption(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, v := range documentedTypes {
		typ := reflect.TypeOf(v)
		for _, name := range jsonNames(typ) {
			if name == "policy" {
				continue // documented with the policy language
			}
			if !documents(readme, name) {
				t.Errorf("README.md does not document %s's option %q (as `%s` or `%s <value>`)", typ.Name(), name, name, name)
			}
		}
		if m, ok := v.(caddy.Module); ok {
			if id := string(m.CaddyModule().ID); !documents(readme, id) {
				t.Errorf("README.md does not name the module %s (%s)", id, typ.Name())
			}
		}
	}
}

// The check matches whole names only.
func TestREADMEOptionMatchIsWholeName(t *testing.T) {
	for text, want := range map[string]bool{
		"`hosts`":                          true,
		"`hosts <host>...`":                true,
		"`tls_skip_verify [true\\|false]`": true,
		"`iap_authorize` `route`":          true,
		"`transport.tls.server_name`":      false,
		"`hostsx`":                         false,
		"`hosts_more`":                     false,
		"`cors_allow_preflight`":           false,
		"hosts":                            false,
		"`{\"hosts\": [...]}`":             true,
		"`apps.iap.hosts`":                 true,
	} {
		name := "hosts"
		if strings.Contains(text, "route") {
			name = "route"
		}
		if strings.Contains(text, "preflight") {
			name = "allow_cors_preflight"
		}
		if strings.Contains(text, "skip") {
			name = "tls_skip_verify"
		}
		if got := documents(text, name); got != want {
			t.Errorf("documents(%q, %q) = %v, want %v", text, name, got, want)
		}
	}
}
