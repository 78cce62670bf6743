package module

import (
	"runtime/debug"
	"testing"
)

// The version comes from the build info: the module's version when Caddy
// was built with it as a dependency (xcaddy), "(devel)" otherwise.
func TestVersionFromBuildInfo(t *testing.T) {
	dep := func(version string, replace *debug.Module) *debug.BuildInfo {
		return &debug.BuildInfo{
			Main: debug.Module{Path: "caddy", Version: "(devel)"},
			Deps: []*debug.Module{{Path: "github.com/caddyserver/caddy/v2", Version: "v2.11.9"}, {Path: modulePath, Version: version, Replace: replace}},
		}
	}
	for name, c := range map[string]struct {
		info *debug.BuildInfo
		want string
	}{
		"xcaddy --with module@v0.1.0": {dep("v0.1.0", nil), "v0.1.0"},
		"a pseudo-version":            {dep("v0.1.1-0.20261201000000-71cbf6500000", nil), "v0.1.1-0.20261201000000-71cbf6500000"},
		"xcaddy --with module@v0.0.0=./dir, as go version -m shows it": {dep("v0.0.0", &debug.Module{Path: "/src/caddy-iap", Version: "(devel)"}), "(devel)"},
		"xcaddy --with module@v0.0.0=./dir":                            {dep("v0.0.0", &debug.Module{Path: "/src/caddy-iap"}), "(devel)"},
		"replaced by another module version":                           {dep("v0.1.0", &debug.Module{Path: "example.com/fork", Version: "v0.1.2"}), "v0.1.2"},
		"the main module (go test, go run)":                            {&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "(devel)"},
		"the main module without a version":                            {&debug.BuildInfo{Main: debug.Module{Path: modulePath}}, "(devel)"},
		"not in the binary's modules (vendored)":                       {&debug.BuildInfo{Main: debug.Module{Path: "caddy"}}, "(devel)"},
	} {
		if got := versionFrom(c.info); got != c.want {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
	if v := Version(); v == "" {
		t.Error("Version() is empty")
	}
}
