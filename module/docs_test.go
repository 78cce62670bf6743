package module

// Tests that keep the shipping documents true: the threat model names only
// tests that exist and every attack row of the end-to-end table, the
// license is Apache-2.0, and the README's install line pins the newest
// version of the changelog.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoFile reads a file from the repository root.
func repoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testSources maps each package directory, from the repository root, to
// the text of its _test.go files.
func testSources(t *testing.T) map[string]string {
	t.Helper()
	src := map[string]string{}
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "out", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", filepath.Dir(p))
		src[filepath.ToSlash(rel)] += string(b) + "\n"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// testRef matches a backquoted test reference, `dir.TestName/sub/...`, as
// go test -run names it (spaces become underscores).
var testRef = regexp.MustCompile("`([a-z0-9_]+(?:/[a-z0-9_]+)*)\\.((?:Test|Fuzz)[A-Za-z0-9_]*)((?:/[^`]+)?)`")

// checkTestRef says what is wrong with a reference, or "".
func checkTestRef(src map[string]string, dir, fn, subs string) string {
	text, ok := src[dir]
	if !ok {
		return "no tests in " + dir
	}
	if !regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(fn) + `\(`).MatchString(text) {
		return "no func " + fn + "( in " + dir
	}
	for _, sub := range strings.Split(strings.TrimPrefix(subs, "/"), "/") {
		if sub == "" {
			continue
		}
		// Each underscore stands for itself or for a space of t.Run's name.
		parts := strings.Split(sub, "_")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		if !regexp.MustCompile(strings.Join(parts, "[_ ]")).MatchString(text) {
			return "func " + fn + " is in " + dir + ", but no subtest " + sub + " is written there"
		}
	}
	return ""
}

// The threat model names only tests that exist, every row of its attacks
// table names at least one, and every attack of the end-to-end table is
// there.
func TestThreatModelNamesOnlyTestsThatExist(t *testing.T) {
	doc := repoFile(t, "docs/threat-model.md")
	src := testSources(t)
	refs := testRef.FindAllStringSubmatch(doc, -1)
	if len(refs) < 20 {
		t.Fatalf("docs/threat-model.md names %d tests; its attacks table should name far more", len(refs))
	}
	for _, m := range refs {
		if problem := checkTestRef(src, m[1], m[2], m[3]); problem != "" {
			t.Errorf("docs/threat-model.md: %s: %s", m[0], problem)
		}
	}

	_, attacks, ok := strings.Cut(doc, "\n## Attacks it is built to stop\n")
	if !ok {
		t.Fatal(`docs/threat-model.md has no section "## Attacks it is built to stop"`)
	}
	attacks, _, _ = strings.Cut(attacks, "\n## ")
	rows := 0
	for _, line := range strings.Split(attacks, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| attack ") || strings.HasPrefix(line, "| ---") {
			continue
		}
		rows++
		cells := strings.Split(line, " | ")
		if !testRef.MatchString(cells[len(cells)-1]) {
			t.Errorf("docs/threat-model.md: the attack %q names no test", strings.TrimPrefix(cells[0], "| "))
		}
	}
	if rows < 10 {
		t.Errorf("docs/threat-model.md: %d attack rows", rows)
	}

	// Every numbered row of TestAttacks is in the table.
	e2e := repoFile(t, "internal/e2e/attacks_test.go")
	rowNames := regexp.MustCompile(`(?m)^\tt\.Run\("([0-9]+ [^"]+)"`).FindAllStringSubmatch(e2e, -1)
	if len(rowNames) == 0 {
		t.Fatal("no numbered t.Run rows found in internal/e2e/attacks_test.go")
	}
	for _, m := range rowNames {
		ref := "`internal/e2e.TestAttacks/" + strings.ReplaceAll(m[1], " ", "_") + "`"
		if !strings.Contains(attacks, ref) {
			t.Errorf("docs/threat-model.md's attacks table lacks %s", ref)
		}
	}
}

// The check above refuses what does not exist.
func TestThreatModelCheckRefusesMissingTests(t *testing.T) {
	src := map[string]string{"internal/e2e": "func TestAttacks(t *testing.T) {\n\tt.Run(\"1 path tricks\", nil)\n}\n"}
	for ref, want := range map[[3]string]bool{
		{"internal/e2e", "TestAttacks", "/1_path_tricks"}: true,
		{"internal/e2e", "TestAttacks", ""}:               true,
		{"internal/e2e", "TestAttacks", "/2_open"}:        false,
		{"internal/e2e", "TestAttack", ""}:                false,
		{"module", "TestAttacks", ""}:                     false,
	} {
		if got := checkTestRef(src, ref[0], ref[1], ref[2]) == ""; got != want {
			t.Errorf("%v: exists %v, want %v", ref, got, want)
		}
	}
}

// LICENSE, SECURITY.md and CHANGELOG.md say what issue 17 asks, and the
// README points to them and installs the newest version.
func TestShippingDocuments(t *testing.T) {
	license := repoFile(t, "LICENSE")
	for _, s := range []string{
		"Apache License\n                           Version 2.0, January 2004\n",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"END OF TERMS AND CONDITIONS",
		"   Copyright 2026 The caddy-iap Authors\n",
		`Licensed under the Apache License, Version 2.0 (the "License");`,
	} {
		if !strings.Contains(license, s) {
			t.Errorf("LICENSE lacks %q", s)
		}
	}
	if strings.Contains(license, "[yyyy]") {
		t.Error("LICENSE still has the appendix's placeholder copyright line")
	}

	security := repoFile(t, "SECURITY.md")
	for _, s := range []string{"https://github.com/caddyserver/caddy/security/policy", "Report a vulnerability", "latest minor"} {
		if !strings.Contains(security, s) {
			t.Errorf("SECURITY.md lacks %q", s)
		}
	}

	changelog := repoFile(t, "CHANGELOG.md")
	versions := regexp.MustCompile(`(?m)^## \[([^\]]+)\]`).FindAllStringSubmatch(changelog, -1)
	if len(versions) < 2 || versions[0][1] != "Unreleased" {
		t.Fatalf("CHANGELOG.md must start with ## [Unreleased], then the released versions: %v", versions)
	}
	latest := "v" + versions[1][1]
	for _, v := range versions {
		if !strings.Contains(changelog, "\n["+v[1]+"]: https://") {
			t.Errorf("CHANGELOG.md has no link for [%s]", v[1])
		}
	}

	readme := repoFile(t, "README.md")
	if install := "xcaddy build --with github.com/caddy-iap/caddy-iap@" + latest + "\n"; !strings.Contains(readme, install) {
		t.Errorf("README.md does not install the newest version: want %q", strings.TrimSpace(install))
	}
	for _, link := range []string{"(docs/threat-model.md)", "(SECURITY.md)", "(CHANGELOG.md)", "(LICENSE)"} {
		if !strings.Contains(readme, link) {
			t.Errorf("README.md does not link %s", link)
		}
	}
}
