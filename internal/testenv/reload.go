package testenv

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Reload replaces the Caddyfile of a Caddy started with StartCaddy or
// StartCaddyOn (same ports, new global options and sites) and makes the
// running process load it, as `caddy reload` does: `caddy run` reloads its
// --config file on SIGUSR1, which works with the test globals' `admin off`.
// It fails the test when Caddy refuses the new config.
func (c *Caddy) Reload(t testing.TB, extraGlobals, sites string) {
	t.Helper()
	if c.cmd == nil || c.caddyfile == "" {
		t.Fatal("Reload needs a Caddy started with StartCaddy or StartCaddyOn")
	}
	if err := os.WriteFile(c.caddyfile, []byte(globals(c.HTTPPort, c.HTTPSPort, extraGlobals)+sites), 0o644); err != nil {
		t.Fatal(err)
	}
	const ok, failed = "successfully reloaded config from file", "failed to reload config from file"
	before := strings.Count(c.Log(), ok)
	failedBefore := strings.Count(c.Log(), failed)
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("signalling caddy: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		log := c.Log()
		if strings.Count(log, ok) > before {
			return
		}
		if strings.Count(log, failed) > failedBefore {
			t.Fatalf("caddy refused the new config:\n%s", logLinesContaining(log, failed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("caddy did not reload in 30s:\n%s", c.Log())
}

func logLinesContaining(log, s string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
