package module

import (
	"runtime/debug"
	"sync"
)

// modulePath is this plugin's Go module.
const modulePath = "github.com/caddy-iap/caddy-iap"

// Version is the plugin's version as the Go toolchain recorded it in the
// binary: the module's version (v0.1.0, or a pseudo-version) when Caddy was
// built with it as a dependency, as xcaddy does; "(devel)" when it is the
// main module or was replaced by a local directory without a version, or
// when the binary has no build info. It is never written by hand.
var Version = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return versionFrom(info)
})

// versionFrom finds the plugin's module in info.
func versionFrom(info *debug.BuildInfo) string {
	if info.Main.Path == modulePath {
		return orDevel(info.Main.Version)
	}
	for _, d := range info.Deps {
		if d.Path != modulePath {
			continue
		}
		if d.Replace != nil {
			// A local directory (xcaddy's --with module@v0.0.0=./dir) has
			// no version of its own, whatever version it stands in for.
			return orDevel(d.Replace.Version)
		}
		return orDevel(d.Version)
	}
	return "(devel)"
}

func orDevel(v string) string {
	if v == "" {
		return "(devel)"
	}
	return v
}
