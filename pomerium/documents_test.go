package pomerium

import (
	"encoding/base64"
	"strings"
	"testing"
)

// yaml.v3 reads the first YAML document and drops the rest without an
// error, so a file starting "{}" lost its routes in silence (an outside
// check found it). Every such file is now an error that names the line.
func TestTextAfterTheFirstDocumentIsAnError(t *testing.T) {
	routes := "routes:\n  - from: https://a.example.com\n    to: http://127.0.0.1:1\n    allow_public_unauthenticated_access: true\n"
	for _, c := range []struct{ name, src, want string }{
		{"an empty mapping first", "{}\n" + routes, "line 1: did not find expected <document start>"},
		{"an empty list first", "[]\n" + routes, "line 1: did not find expected <document start>"},
		{"a second document", "address: :8443\n---\n" + routes, "line 2: a second YAML document would be ignored"},
	} {
		_, _, err := adaptWithEnv([]byte(c.src), map[string]any{"filename": "c.yaml"}, noEnv)
		if err == nil || !strings.HasPrefix(err.Error(), "c.yaml: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
	// As POLICY (base64 YAML in the environment), the same.
	env := func(k string) (string, bool) {
		if k == "POLICY" {
			return base64.StdEncoding.EncodeToString([]byte("[]\n- from: https://b.example.com\n")), true
		}
		return "", false
	}
	_, _, err := adaptWithEnv([]byte("address: :8443\n"), nil, env)
	if err == nil || !strings.Contains(err.Error(), "POLICY (base64-decoded)") {
		t.Errorf("POLICY: got %v", err)
	}
	// One document, with or without "---" and comments after it, is fine.
	for _, src := range []string{routes, "---\n" + routes, routes + "# the end\n", routes + "...\n"} {
		if _, _, err := adaptWithEnv([]byte(src), nil, noEnv); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func noEnv(string) (string, bool) { return "", false }
