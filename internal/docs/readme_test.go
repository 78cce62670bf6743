// Package docs tests the documentation against the code: every code block
// of README.md and examples/*/README.md runs, and the module table lists
// every module the plugin registers.
package docs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"

	_ "github.com/caddy-iap/caddy-iap"
	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// root is the repository, from this package's directory.
const root = "../.."

// skipped lists the blocks that cannot run here, each by its file and
// first line, so that they stay few and each is chosen: a block is skipped
// only with `<!-- test: skip <reason> -->` on the line before its fence,
// and only if it is listed here too.
var skipped = []string{
	"README.md: ./quickstart.sh       # build ./caddy with caddy-iap and start the demo: Dex, an mTLS upstream, Caddy (Ctrl-C stops it)",
	"README.md: # one session: the sid claim of its assertion (X-Iap-Jwt-Assertion)",
	"README.md: xcaddy build --with github.com/caddy-iap/caddy-iap@v0.1.0",
	"README.md: xcaddy build v2.11.9 --with github.com/caddy-iap/caddy-iap@v0.0.0=$(pwd)",
	"examples/downstream-mtls/README.md: ./xcaddy.sh                        # builds ./caddy",
	"examples/upstream-mtls/README.md: ./xcaddy.sh                       # builds ./caddy",
}

// block is one fenced code block of a Markdown file.
type block struct {
	file       string // relative to the repository
	line       int    // of the opening fence
	lang, text string
	skip       string // the reason given by <!-- test: skip ... -->
}

func (b block) String() string { return fmt.Sprintf("%s:%d (%s)", b.file, b.line, b.lang) }

func (b block) firstLine() string {
	first, _, _ := strings.Cut(b.text, "\n")
	return b.file + ": " + first
}

var skipComment = regexp.MustCompile(`^<!--\s*test:\s*skip\s+(.+?)\s*-->$`)

// blocks reads the fenced code blocks of a Markdown file.
func blocks(t *testing.T, file string) []block {
	t.Helper()
	f, err := os.Open(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out      []block
		cur      *block
		lastText string // the last non-blank line outside blocks
		n        int
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{file: file, line: n, lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			if m := skipComment.FindStringSubmatch(strings.TrimSpace(lastText)); m != nil {
				cur.skip = m[1]
			}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.TrimSpace(line) != "":
			lastText = line
		}
	}
	if cur != nil {
		t.Fatalf("%s: the block at line %d is not closed", file, cur.line)
	}
	return out
}

func markdownFiles(t *testing.T) []string {
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "examples/*/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		files = append(files, rel)
	}
	return files
}

// TestEveryCodeBlockRuns adapts and validates every Caddyfile, JSON and
// YAML block (with certificates this test makes in place of the paths the
// README names), checks refusal bodies against the list of reasons and
// handler fragments against what `caddy adapt` gives for the Caddyfile
// before them, and runs the caddy command lines of shell blocks in
// process.
func TestEveryCodeBlockRuns(t *testing.T) {
	env := newEnv(t)
	var skips []string
	for _, file := range markdownFiles(t) {
		var lastCaddyfile *block
		for _, b := range blocks(t, file) {
			if b.skip != "" {
				skips = append(skips, b.firstLine())
				t.Logf("%s: skipped: %s", b, b.skip)
				continue
			}
			t.Run(fmt.Sprintf("%s:%d", b.file, b.line), func(t *testing.T) {
				switch b.lang {
				case "caddyfile":
					env.caddyfile(t, b)
				case "json":
					env.json(t, b, lastCaddyfile)
				case "yaml":
					env.yaml(t, b)
				case "sh":
					env.shell(t, b)
				default:
					t.Errorf("%s: no runner for %q blocks: give the block a language this test runs (caddyfile, json, yaml, sh), or mark it <!-- test: skip <reason> -->", b, b.lang)
				}
			})
			if b.lang == "caddyfile" {
				lastCaddyfile = &b
			}
		}
	}
	for _, s := range skips {
		if !slices.Contains(skipped, s) {
			t.Errorf("%s is marked skipped but not listed in this test's skipped: run it, or list it", s)
		}
	}
	for _, s := range skipped {
		if !slices.Contains(skips, s) {
			t.Errorf("%s is listed in skipped but no such block is skipped: remove it from the list", s)
		}
	}
}

// env is what the blocks run with: a directory of certificates and keys
// standing in for the paths they name, and Caddy's directories.
type env struct {
	dir            string
	ca             *testpki.CA
	client, server *testpki.Cert
	files          map[string]string // a path as the README writes it -> the file made for it
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	for _, v := range []string{"XDG_DATA_HOME", "XDG_CONFIG_HOME", "HOME"} {
		t.Setenv(v, filepath.Join(dir, strings.ToLower(v)))
	}
	// The secrets the examples read from the environment, in the Caddyfile
	// ({env.*}) and the Pomerium ways.
	secret := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64
	for _, v := range []string{"IAP_COOKIE_SECRET", "COOKIE_SECRET"} {
		t.Setenv(v, secret)
	}
	for _, v := range []string{"IAP_CLIENT_SECRET", "PARTNER_CLIENT_SECRET", "IDP_CLIENT_SECRET"} {
		t.Setenv(v, "client-secret")
	}
	t.Setenv("OTLP_AUTH", "dXNlcjpwYXNzd29yZA==") // the tracing example's collector credentials
	ca := testpki.NewCA(t, "README CA")
	return &env{dir: dir, ca: ca, files: map[string]string{},
		client: ca.Issue(t, testpki.Client("readme@example.com")),
		server: ca.Issue(t, testpki.Server("localhost", "app.localhost.example"))}
}

// pathToken is a file name or path of a certificate, key or CRL, as the
// README writes them: /path/rootCA.pem, cert.pem, ca/rootCA.pem.
var pathToken = regexp.MustCompile(`(?:[\w.@-]*/)*[\w.@-]+\.(?:pem|crt|key|crl)\b`)

// materialize writes a file for every certificate path src names, of the
// kind its name says (a CRL, a client or server key, a CA, a client or
// server certificate), and returns src with the paths replaced.
func (e *env) materialize(t *testing.T, src string) string {
	t.Helper()
	return pathToken.ReplaceAllStringFunc(src, func(p string) string {
		if f, ok := e.files[p]; ok {
			return f
		}
		name := strings.ToLower(filepath.Base(p))
		pair := e.server
		if strings.Contains(name, "client") {
			pair = e.client
		}
		var content []byte
		switch {
		case strings.Contains(name, "crl"):
			content = e.ca.CurrentCRL(t)
		case strings.Contains(name, "key"):
			content = pair.KeyPEM()
		case strings.Contains(name, "client"):
			content = pair.CertPEM()
		case strings.Contains(name, "ca") || strings.Contains(name, "root"):
			content = e.ca.CertPEM()
		default:
			content = pair.CertPEM()
		}
		f := filepath.Join(e.dir, fmt.Sprintf("%d-%s", len(e.files), filepath.Base(p)))
		if err := os.WriteFile(f, content, 0o600); err != nil {
			t.Fatal(err)
		}
		e.files[p] = f
		return f
	})
}

// unmaterialize puts the README's paths back into adapted JSON.
func (e *env) unmaterialize(s string) string {
	for p, f := range e.files {
		s = strings.ReplaceAll(s, f, p)
	}
	return s
}

// adapt runs an adapter in process, as `caddy adapt` does, and validates
// the result as `caddy validate` does (every module provisioned). The
// warnings are the adapter's and those logged while adapting (the plugin
// logs some, such as tls_skip_verify or an expired client certificate).
func (e *env) adapt(t *testing.T, adapter, filename, src string) (json.RawMessage, []string) {
	t.Helper()
	// Caddy's default logger, buffered while adapting; caddy.Validate
	// sets up a logger of its own, so the buffer is read before.
	_, orig, buffered := caddy.BufferedLog()
	out, adapterWarnings, err := caddyconfig.GetAdapter(adapter).Adapt([]byte(src), map[string]any{"filename": filename})
	logged, entries := observer.New(zap.WarnLevel)
	buffered.FlushTo(zap.New(logged))
	caddy.UnbufferDefaultLogger(orig)
	if err != nil {
		t.Fatalf("caddy adapt --adapter %s: %v", adapter, err)
	}
	var warnings []string
	for _, w := range adapterWarnings {
		warnings = append(warnings, w.String())
	}
	for _, entry := range entries.TakeAll() {
		warnings = append(warnings, fmt.Sprintf("logged: %s %v", entry.Message, entry.ContextMap()))
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("caddy validate: %v", err)
	}
	return out, warnings
}

func (e *env) caddyfile(t *testing.T, b block) {
	if formatted := string(caddyfile.Format([]byte(b.text))); formatted != b.text {
		t.Errorf("%s is not as `caddy fmt` writes it:\n%s", b, formatted)
	}
	_, warnings := e.adapt(t, "caddyfile", "Caddyfile", e.materialize(t, b.text))
	for _, w := range warnings {
		t.Errorf("%s: warning: %s", b, w)
	}
}

func (e *env) yaml(t *testing.T, b block) {
	var top map[string]any
	if err := yaml.Unmarshal([]byte(b.text), &top); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if _, ok := top["allow"]; ok || top["deny"] != nil {
		// A PPL policy, as policy_file reads it.
		p, err := authz.Parse([]byte(b.text), b.String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := authz.Compile(p); err != nil {
			t.Fatal(err)
		}
		return
	}
	e.adapt(t, "pomerium", "config.yaml", e.materialize(t, b.text))
}

// reasons are the reasons of authz/reasons.go, the one list.
func reasons(t *testing.T) map[string]bool {
	src, err := os.ReadFile(filepath.Join(root, "authz/reasons.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`Reason = "([a-z-]+)"`).FindAllStringSubmatch(string(src), -1) {
		out[m[1]] = true
	}
	return out
}

func (e *env) json(t *testing.T, b block, caddyfileBlock *block) {
	switch {
	case strings.Contains(b.text, `"handler"`):
		// Handlers, as `caddy adapt` shows them for the Caddyfile above.
		var want []any
		if err := json.Unmarshal([]byte("["+b.text+"]"), &want); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if caddyfileBlock == nil {
			t.Fatalf("%s: handlers with no Caddyfile block before them", b)
		}
		out, _ := e.adapt(t, "caddyfile", "Caddyfile", e.materialize(t, caddyfileBlock.text))
		var adapted any
		if err := json.Unmarshal([]byte(e.unmaterialize(string(out))), &adapted); err != nil {
			t.Fatal(err)
		}
		var handlers []any
		walk(adapted, func(m map[string]any) {
			if m["handler"] != nil {
				handlers = append(handlers, m)
			}
		})
	next:
		for _, w := range want {
			for _, h := range handlers {
				if subset(w, h) {
					continue next
				}
			}
			got, _ := json.MarshalIndent(handlers, "", "  ")
			t.Errorf("%s: `caddy adapt` of %s gives no handler like\n%v\nit gives:\n%s", b, caddyfileBlock, w, got)
		}
	case strings.Contains(b.text, `"reason"`):
		// A refusal's JSON body: its reason is one of the list.
		var body struct {
			Error  string `json:"error"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(b.text), &body); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reasons(t)[body.Reason] || body.Error == "" {
			t.Errorf("%s: reason %q is not in authz/reasons.go, or the error is empty", b, body.Reason)
		}
	default:
		e.adapt(t, "json", "caddy.json", e.materialize(t, b.text))
	}
}

// walk calls f on every object in v.
func walk(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		for _, x := range v {
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

// subset reports whether every key of want is in got with a value that is
// a subset too; lists match element by element.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

// shell runs the caddy command lines of a shell block in process: adapt,
// validate, and run (validated, not started). Any other command needs the
// block to be marked as skipped.
func (e *env) shell(t *testing.T, b block) {
	for i, line := range strings.Split(strings.TrimSpace(b.text), "\n") {
		if c, _, _ := strings.Cut(line, "#"); strings.TrimSpace(c) == "" {
			continue
		} else {
			line = c
		}
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "caddy" && f[0] != "./caddy") {
			t.Errorf("%s line %d: %q is not a caddy command this test runs: mark the block <!-- test: skip <reason> --> and list it in this test", b, i+1, strings.TrimSpace(line))
			continue
		}
		switch f[1] {
		case "adapt", "validate", "run":
			adapter, config := "caddyfile", "Caddyfile"
			for j := 2; j+1 < len(f); j++ {
				switch f[j] {
				case "--adapter":
					adapter = f[j+1]
				case "--config":
					config = f[j+1]
				}
			}
			src, err := os.ReadFile(e.configFile(config))
			if err != nil {
				t.Fatalf("%s line %d: %v", b, i+1, err)
			}
			_, warnings := e.adapt(t, adapter, filepath.Base(config), e.materialize(t, string(src)))
			for _, w := range warnings {
				t.Errorf("%s line %d: %s: warning: %s", b, i+1, config, w)
			}
		default:
			t.Errorf("%s line %d: caddy %s is not a command this test runs", b, i+1, f[1])
		}
	}
}

// configFile is the file a command line's --config names: a file of the
// repository, or the quickstart's Pomerium config for a bare config.yaml.
func (e *env) configFile(name string) string {
	if name == "config.yaml" {
		return filepath.Join(root, "examples/pomerium/config.yaml")
	}
	return filepath.Join(root, name)
}

// TestModuleTableListsEveryModule compares the README's table of module IDs
// with the modules this plugin's packages register.
func TestModuleTableListsEveryModule(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Module IDs\n")
	if !ok {
		t.Fatal("README.md has no section ## Module IDs")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\|").FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	var registered []string
	for _, id := range caddy.Modules() {
		info, err := caddy.GetModule(id)
		if err != nil {
			t.Fatal(err)
		}
		if ours(info.New()) {
			registered = append(registered, id)
		}
	}
	sort.Strings(listed)
	sort.Strings(registered)
	if !slices.Equal(listed, registered) {
		t.Errorf("README's module table lists\n  %s\nthe plugin registers\n  %s", strings.Join(listed, "\n  "), strings.Join(registered, "\n  "))
	}
}

// ours reports whether a module's type (or, for a config adapter, the
// adapter's) comes from this repository.
func ours(m caddy.Module) bool {
	const module = "github.com/caddy-iap/caddy-iap"
	v := reflect.ValueOf(m)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if strings.HasPrefix(v.Type().PkgPath(), module) {
		return true
	}
	if v.Kind() == reflect.Struct {
		if a := v.FieldByName("Adapter"); a.IsValid() && a.Kind() == reflect.Interface && !a.IsNil() {
			t := a.Elem().Type()
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			return strings.HasPrefix(t.PkgPath(), module)
		}
	}
	return false
}
