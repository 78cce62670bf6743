package e2e

// docs/pomerium-acceptance.md maps every case of Pomerium's acceptance
// suites to the test of ours that covers it, or says why none does. This
// test keeps the map honest as tests are renamed: it reads the file only
// (no process is started) and checks that every test it names exists, that
// every row has an outcome, and that its summary counts the rows.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The suites the map must have, in its order.
var acceptanceSuites = []string{"downstream-mtls", "upstream-tls", "browser", "integration", "mcp"}

const (
	outcomeCovered    = "covered"
	outcomeOutOfScope = "out of scope"
	outcomeNotYet     = "not covered yet"
)

// acceptanceRow is one case of a suite's table.
type acceptanceRow struct {
	line                 int
	suite, name, checks  string
	outcome, outcomeCell string
	refs                 []testRef
}

// testRef is a test the map names: `dir.TestName/sub/test`.
type testRef struct {
	text string
	dir  string // package directory from the repository root; "" for any
	fn   string
	subs []string
}

// testRefRE matches a backquoted test reference.
var testRefRE = regexp.MustCompile("`(?:([a-z0-9_]+(?:/[a-z0-9_]+)*)\\.)?(Test[A-Za-z0-9_]*)((?:/[^`]+)?)`")

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// parseAcceptanceMap reads the suites' tables and the summary.
func parseAcceptanceMap(t *testing.T, text string) (rows []acceptanceRow, summary map[string][4]int, headings []string) {
	t.Helper()
	summary = map[string][4]int{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.TrimSpace(h)
			headings = append(headings, section)
			continue
		}
		if !strings.HasPrefix(line, "|") || section == "" {
			continue
		}
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) < 3 || cells[0] != "" || cells[len(cells)-1] != "" {
			t.Errorf("line %d: a table row must start and end with |: %q", n, line)
			continue
		}
		cells = cells[1 : len(cells)-1]
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if strings.HasPrefix(cells[0], "---") || cells[0] == "Case" || cells[0] == "Suite" {
			continue // separator or header
		}
		if section == "Summary" {
			if len(cells) != 5 {
				t.Errorf("line %d: a summary row has 5 cells (suite, covered, out of scope, not covered yet, rows), got %d", n, len(cells))
				continue
			}
			var counts [4]int
			for j := range counts {
				v, err := strconv.Atoi(cells[j+1])
				if err != nil {
					t.Errorf("line %d: %q is not a count", n, cells[j+1])
				}
				counts[j] = v
			}
			summary[cells[0]] = counts
			continue
		}
		if !slices.Contains(acceptanceSuites, section) {
			t.Errorf("line %d: a table under %q, which is not a suite (%v)", n, section, acceptanceSuites)
			continue
		}
		if len(cells) != 3 {
			t.Errorf("line %d: a case row has 3 cells (case, checks, outcome), got %d: %q", n, len(cells), line)
			continue
		}
		r := acceptanceRow{line: n, suite: section, name: cells[0], checks: cells[1], outcomeCell: cells[2]}
		for _, m := range testRefRE.FindAllStringSubmatch(r.outcomeCell, -1) {
			ref := testRef{text: strings.Trim(m[0], "`"), dir: m[1], fn: m[2]}
			if m[3] != "" {
				ref.subs = strings.Split(strings.TrimPrefix(m[3], "/"), "/")
			}
			r.refs = append(r.refs, ref)
		}
		switch {
		case strings.HasPrefix(r.outcomeCell, outcomeOutOfScope+":"):
			r.outcome = outcomeOutOfScope
		case strings.HasPrefix(r.outcomeCell, outcomeNotYet+":"):
			r.outcome = outcomeNotYet
		case len(r.refs) > 0 && strings.HasPrefix(r.outcomeCell, "`"+r.refs[0].text+"`"):
			r.outcome = outcomeCovered
		}
		rows = append(rows, r)
	}
	return rows, summary, headings
}

// testSources holds the text of every _test.go file, by package directory.
type testSources map[string]string

func loadTestSources(t *testing.T, root string) testSources {
	t.Helper()
	src := testSources{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
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
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		src[filepath.ToSlash(rel)] += string(b) + "\n"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// check reports what is wrong with a reference: its test function must
// exist in its package (or anywhere, without a package), and each subtest
// name must be written in that package's tests (as go test names it, or
// with its underscores as the spaces t.Run was given).
func (src testSources) check(ref testRef) string {
	var dirs []string
	if ref.dir != "" {
		if _, ok := src[ref.dir]; !ok {
			return fmt.Sprintf("no tests in package directory %s", ref.dir)
		}
		dirs = []string{ref.dir}
	} else {
		for d := range src {
			dirs = append(dirs, d)
		}
	}
	fnRE := regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(ref.fn) + `\(`)
	for _, d := range dirs {
		text := src[d]
		if !fnRE.MatchString(text) {
			continue
		}
		for _, sub := range ref.subs {
			if !subtestRE(sub).MatchString(text) {
				return fmt.Sprintf("func %s is in %s, but no subtest %q is written there", ref.fn, d, sub)
			}
		}
		return ""
	}
	if ref.dir != "" {
		return fmt.Sprintf("no func %s( in %s", ref.fn, ref.dir)
	}
	return fmt.Sprintf("no func %s( in the repository", ref.fn)
}

// subtestRE matches the text a subtest name came from: go test turns the
// spaces of t.Run's name into underscores, so each underscore stands for
// either.
func subtestRE(name string) *regexp.Regexp {
	parts := strings.Split(name, "_")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, "[_ ]"))
}

func TestPomeriumAcceptanceMap(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "docs", "pomerium-acceptance.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, summary, headings := parseAcceptanceMap(t, string(b))
	src := loadTestSources(t, root)

	var suites []string
	for _, h := range headings {
		if slices.Contains(acceptanceSuites, h) {
			suites = append(suites, h)
		}
	}
	if !slices.Equal(suites, acceptanceSuites) {
		t.Errorf("the suites' sections are %v, want %v", suites, acceptanceSuites)
	}

	counts := map[string][4]int{}
	seen := map[string]int{}
	for _, r := range rows {
		where := fmt.Sprintf("line %d (%s: %s)", r.line, r.suite, r.name)
		if r.name == "" || r.checks == "" {
			t.Errorf("%s: the case and what it checks must both be given", where)
		}
		if prev, dup := seen[r.suite+"\x00"+r.name]; dup {
			t.Errorf("%s: the same case as line %d", where, prev)
		}
		seen[r.suite+"\x00"+r.name] = r.line
		c := counts[r.suite]
		switch r.outcome {
		case outcomeCovered:
			c[0]++
		case outcomeOutOfScope, outcomeNotYet:
			reason := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(r.outcomeCell, r.outcome), ":"))
			if len(reason) < 10 {
				t.Errorf("%s: %q needs a reason", where, r.outcomeCell)
			}
			if r.outcome == outcomeOutOfScope {
				c[1]++
			} else {
				c[2]++
			}
		default:
			t.Errorf("%s: no outcome: the cell must start with a test (`dir.TestName/...`), %q or %q: %q",
				where, outcomeOutOfScope+":", outcomeNotYet+":", r.outcomeCell)
		}
		c[3]++
		counts[r.suite] = c
		for _, ref := range r.refs {
			if problem := src.check(ref); problem != "" {
				t.Errorf("%s: %s: %s", where, ref.text, problem)
			}
		}
	}

	// Every test-plan case of the downstream mTLS suite is there.
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("TC-CC-%02d", i)
		found := false
		for _, r := range rows {
			if r.suite == "downstream-mtls" && strings.HasPrefix(r.name, id) {
				found = true
			}
		}
		if !found {
			t.Errorf("downstream-mtls has no row for %s", id)
		}
	}

	for _, s := range acceptanceSuites {
		c := counts[s]
		if c[3] == 0 {
			t.Errorf("suite %s has no rows", s)
		}
		t.Logf("%-16s covered %3d, out of scope %3d, not covered yet %3d, rows %3d", s, c[0], c[1], c[2], c[3])
		if got, ok := summary[s]; !ok || got != c {
			t.Errorf("the summary says %s: %v (covered, out of scope, not covered yet, rows); the rows count %v", s, got, c)
		}
	}
	for s := range summary {
		if !slices.Contains(acceptanceSuites, s) {
			t.Errorf("the summary counts %q, which is not a suite", s)
		}
	}
}

// The parser itself: outcomes, references and their checks.
func TestPomeriumAcceptanceMapParser(t *testing.T) {
	doc := "## Summary\n\n| Suite | Covered | Out of scope | Not covered yet | Rows |\n| --- | --- | --- | --- | --- |\n| mcp | 1 | 1 | 1 | 4 |\n\n" +
		"## mcp\n\n| Case | Checks | Outcome |\n| --- | --- | --- |\n" +
		"| a | x | `internal/e2e.TestFoo/sub_name` (note `TestBar`) |\n" +
		"| b | x | out of scope: no such feature here |\n" +
		"| c | x | not covered yet: a test of it, near `authz.TestBaz` |\n" +
		"| d | x | see `internal/e2e.TestFoo` |\n"
	rows, summary, _ := parseAcceptanceMap(t, doc)
	if len(rows) != 4 || summary["mcp"] != [4]int{1, 1, 1, 4} {
		t.Fatalf("rows %+v, summary %v", rows, summary)
	}
	want := []string{outcomeCovered, outcomeOutOfScope, outcomeNotYet, ""}
	for i, r := range rows {
		if r.outcome != want[i] {
			t.Errorf("row %s: outcome %q, want %q", r.name, r.outcome, want[i])
		}
	}
	if r := rows[0].refs; len(r) != 2 || r[0].dir != "internal/e2e" || r[0].fn != "TestFoo" || !slices.Equal(r[0].subs, []string{"sub_name"}) || r[1].dir != "" || r[1].fn != "TestBar" {
		t.Errorf("references: %+v", r)
	}
	src := testSources{"internal/e2e": "func TestFoo(t *testing.T) {\n\tt.Run(\"sub name\", nil)\n\tt.Run(\"mixed under_score\", nil)\n}\n", "authz": "func TestBaz(t *testing.T) {}\n"}
	for _, c := range []struct {
		ref testRef
		ok  bool
	}{
		{testRef{dir: "internal/e2e", fn: "TestFoo"}, true},
		{testRef{dir: "internal/e2e", fn: "TestFoo", subs: []string{"sub_name"}}, true},
		{testRef{dir: "internal/e2e", fn: "TestFoo", subs: []string{"mixed_under_score"}}, true},
		{testRef{dir: "internal/e2e", fn: "TestFoo", subs: []string{"other"}}, false},
		{testRef{dir: "internal/e2e", fn: "TestFo"}, false},
		{testRef{dir: "authz", fn: "TestFoo"}, false},
		{testRef{dir: "nowhere", fn: "TestFoo"}, false},
		{testRef{fn: "TestBaz"}, true},
	} {
		if problem := src.check(c.ref); (problem == "") != c.ok {
			t.Errorf("%+v: %q, want ok=%v", c.ref, problem, c.ok)
		}
	}
}
