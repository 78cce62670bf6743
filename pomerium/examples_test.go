package pomerium

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// expectedWarning is a line "# warning: <text>" in an example: a warning
// the example means to show, which the adapter must give.
var expectedWarning = regexp.MustCompile(`(?m)^# warning: (.+)$`)

// Every examples/pomerium/*.yaml adapts without an error, and with no
// warning but those it names.
func TestExamplesAdapt(t *testing.T) {
	files, _ := filepath.Glob("../examples/pomerium/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples in ../examples/pomerium")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if filepath.Base(f) == "config.yaml" {
				t.Skip("the quickstart's config names its certificates: internal/docs adapts it with them")
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, m := range expectedWarning.FindAllStringSubmatch(string(src), -1) {
				want = append(want, strings.TrimSpace(m[1]))
			}
			_, warnings, err := adaptWithEnv(src, map[string]any{"filename": filepath.Base(f)}, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
		next:
			for _, w := range warnings {
				for _, s := range want {
					if strings.Contains(w.String(), s) {
						continue next
					}
				}
				t.Errorf("unexpected warning: %s", w)
			}
			for _, s := range want {
				found := false
				for _, w := range warnings {
					found = found || strings.Contains(w.String(), s)
				}
				if !found {
					t.Errorf("no warning %q", s)
				}
			}
		})
	}
}
