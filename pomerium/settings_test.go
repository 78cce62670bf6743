package pomerium

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// pomeriumSettings reads the oracle: Pomerium's own list of settings
// (testdata/pomerium-settings.txt, from its config structs) and the commit
// it came from.
func pomeriumSettings(t *testing.T) (global, route []string, commit string) {
	t.Helper()
	f, err := os.Open("testdata/pomerium-settings.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`\b([0-9a-f]{40})\b`).FindStringSubmatch(line); m != nil && commit == "" {
			commit = m[1]
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		kind, name, _ := strings.Cut(line, " ")
		switch kind {
		case "global":
			global = append(global, name)
		case "route":
			route = append(route, name)
		default:
			t.Fatalf("testdata/pomerium-settings.txt: %q", line)
		}
	}
	if commit == "" {
		t.Fatal("testdata/pomerium-settings.txt names no commit")
	}
	return global, route, commit
}

// Issue 13: every setting of Pomerium's config structs has its line in the
// adapter's table (works, warned or error), and the table names nothing
// Pomerium does not have (old names go in the legacy tables).
func TestEverySettingIsKnown(t *testing.T) {
	global, route, _ := pomeriumSettings(t)
	for _, c := range []struct {
		kind          string
		oracle        []string
		table, legacy []knownSetting
	}{{"global", global, globalSettings, legacyGlobal}, {"route", route, routeSettings, legacyRoute}} {
		var names []string
		for _, s := range c.table {
			names = append(names, s.name)
			if !slices.Contains(c.oracle, s.name) {
				t.Errorf("%s setting %s is in the table but not in Pomerium's structs: move it to the legacy table", c.kind, s.name)
			}
			if s.why == "" {
				t.Errorf("%s setting %s says nothing of what it becomes", c.kind, s.name)
			}
		}
		for _, name := range c.oracle {
			if !slices.Contains(names, name) {
				t.Errorf("Pomerium's %s setting %s is missing from the table", c.kind, name)
			}
		}
		sorted := slices.Clone(names)
		slices.Sort(sorted)
		if !slices.Equal(slices.Compact(sorted), sorted) {
			t.Errorf("the %s table names a setting twice", c.kind)
		}
		for _, s := range c.legacy {
			if slices.Contains(c.oracle, s.name) {
				t.Errorf("legacy %s setting %s is one of Pomerium's: move it to the table", c.kind, s.name)
			}
		}
	}
}

// A global setting marked works is read by the converter (as a single
// value or as a structure), never accepted and dropped.
func TestEveryWorkingGlobalSettingIsRead(t *testing.T) {
	for _, s := range globalSettings {
		if s.support == works && !slices.Contains(scalarKeys, s.name) && !slices.Contains(listKeys, s.name) {
			t.Errorf("%s works, but the converter reads it nowhere (scalarKeys, listKeys)", s.name)
		}
	}
	for _, k := range append(slices.Clone(scalarKeys), listKeys...) {
		if s, ok := lookupSetting(globalSettings, k); !ok || s.support != works {
			t.Errorf("the converter reads %s, which the table does not mark works", k)
		}
	}
}

// Each setting does what the table says: a warned one gives a warning
// that names its line and it, an error one an error that names both, and
// one that works neither.
func TestEachSettingDoesWhatTheTableSays(t *testing.T) {
	const route = "routes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n"
	check := func(t *testing.T, s knownSetting, src string, line int) {
		t.Helper()
		_, warnings, err := adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, func(string) (string, bool) { return "", false })
		at := fmt.Sprintf("config.yaml:%d: ", line)
		switch s.support {
		case refused:
			if err == nil || !strings.Contains(err.Error(), at) || !strings.Contains(err.Error(), s.name) {
				t.Errorf("%s: error %v, want one at %s naming it", s.name, err, at)
			}
		case warned:
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if !slices.ContainsFunc(warnings, func(w caddyconfig.Warning) bool {
				return strings.HasPrefix(w.String(), at) && strings.Contains(w.String(), s.name+" is ignored: "+s.why)
			}) {
				t.Errorf("%s: warnings %v, want one at %s", s.name, warnings, at)
			}
		case works:
			if err != nil && (strings.Contains(err.Error(), "unknown") || strings.Contains(err.Error(), "not supported")) {
				t.Errorf("%s: %v", s.name, err)
			}
		}
	}
	// A value that is not Pomerium's default, of no particular type: a
	// warned or error setting must not need to read it.
	value := func(s knownSetting) string {
		if s.dflt != "" {
			return "\"not-the-default\""
		}
		return "\"x\""
	}
	for _, s := range globalSettings {
		if s.support == works {
			continue // read by the tests of each
		}
		check(t, s, route+s.name+": "+value(s)+"\n", 5)
	}
	for _, s := range routeSettings {
		if s.support == works {
			continue
		}
		check(t, s, route+"    "+s.name+": "+value(s)+"\n", 5)
	}
	// A list setting's default, as a list.
	if _, w, err := adaptWithEnv([]byte(route+"programmatic_redirect_domain_whitelist: [localhost]\n"), map[string]any{"filename": "config.yaml"}, func(string) (string, bool) { return "", false }); err != nil || len(w) > 0 {
		t.Errorf("programmatic_redirect_domain_whitelist: [localhost]: %v %v", err, w)
	}
	// Pomerium's default value, spelled out, is no warning and no error.
	for _, s := range append(slices.Clone(globalSettings), routeSettings...) {
		if s.dflt == "" {
			continue
		}
		src := route + s.name + ": " + s.dflt + "\n"
		if slices.Contains(routeSettings, s) {
			src = route + "    " + s.name + ": " + s.dflt + "\n"
		}
		_, warnings, err := adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, func(string) (string, bool) { return "", false })
		if err != nil || len(warnings) > 0 {
			t.Errorf("%s: %s (the default): %v %v", s.name, s.dflt, err, warnings)
		}
	}
}

// A setting that is not Pomerium's is an error with its line and, for a
// typo, the setting meant.
func TestTyposAreErrorsWithDidYouMean(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"cookie_secert: x\n", `config.yaml:1: unknown setting "cookie_secert" (did you mean "cookie_secret"?)`},
		{"idp_provder_url: https://x\n", `config.yaml:1: unknown setting "idp_provder_url" (did you mean "idp_provider_url"?)`},
		{"routes:\n  - from: https://a.example\n    to: http://b\n    alowed_users: [a]\n", `config.yaml:4: unknown route setting "alowed_users" (did you mean "allowed_users"?)`},
		{"routes:\n  - from: https://a.example\n    to: http://b\n    prefix_rewite: /x\n", `did you mean "prefix_rewrite"?`},
		{"zzzz: 1\n", `config.yaml:1: unknown setting "zzzz"`},
	} {
		_, _, err := adapt(t, c.yaml, "config.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
	_, _, err := adapt(t, "zzzz: 1\n", "config.yaml")
	if err != nil && strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a far-off name gets a suggestion: %v", err)
	}
}

// coverageMarkers enclose README's generated coverage section.
const (
	coverageBegin = "<!-- pomerium-coverage:begin: generated by `go test ./pomerium -run TestREADMECoverage -update` -->"
	coverageEnd   = "<!-- pomerium-coverage:end -->"
)

// coverageText is README's coverage section, from the table.
func coverageText(commit string) string {
	var b strings.Builder
	count := func(table []knownSetting, s support) int {
		n := 0
		for _, x := range table {
			if x.support == s {
				n++
			}
		}
		return n
	}
	pct := func(n, all int) string { return fmt.Sprintf("%d (%d%%)", n, n*100/all) }
	fmt.Fprintf(&b, "Every setting of Pomerium's config structs (pomerium/pomerium %s), and what the adapter does with it:\n\n", commit[:10])
	b.WriteString("| settings | works | warned (ignored) | error | all |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range []struct {
		name  string
		table []knownSetting
	}{{"global", globalSettings}, {"route", routeSettings}} {
		n := len(r.table)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d |\n", r.name, pct(count(r.table, works), n), pct(count(r.table, warned), n), pct(count(r.table, refused), n), n)
	}
	b.WriteString("\nAny other name is an error with its line and, for a typo, the setting meant (`did you mean`).\n")
	b.WriteString("A warned or error setting written with Pomerium's default value is accepted silently.\n\n")
	for _, r := range []struct {
		name  string
		table []knownSetting
	}{{"Global settings", globalSettings}, {"Route settings", routeSettings}} {
		fmt.Fprintf(&b, "<details><summary>%s, one by one</summary>\n\n| setting | | becomes, or why not |\n| --- | --- | --- |\n", r.name)
		for _, s := range r.table {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.name, s.support, strings.ReplaceAll(s.why, "|", `\|`))
		}
		b.WriteString("\n</details>\n")
	}
	return b.String()
}

// README's coverage section is the one the table gives; -update rewrites it.
func TestREADMECoverage(t *testing.T) {
	_, _, commit := pomeriumSettings(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i, j := strings.Index(text, coverageBegin), strings.Index(text, coverageEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %s ... %s", coverageBegin, coverageEnd)
	}
	got := text[i+len(coverageBegin) : j]
	want := "\n" + coverageText(commit)
	if got == want {
		return
	}
	if *update {
		// Rewrite only between the markers, reading the file again just
		// before, so that other sections edited meanwhile are kept.
		readme, err := os.ReadFile("../README.md")
		if err != nil {
			t.Fatal(err)
		}
		text := string(readme)
		i, j := strings.Index(text, coverageBegin), strings.Index(text, coverageEnd)
		text = text[:i+len(coverageBegin)] + want + text[j:]
		if err := os.WriteFile("../README.md", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's Pomerium coverage section is not the table's: run go test ./pomerium -run TestREADMECoverage -update")
}
