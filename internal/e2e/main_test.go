package e2e

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// TestMain removes what the tests leave, whatever they did: the Caddy
// binary they built, and one temporary directory holding every other temp
// file (TMPDIR points into it, so t.TempDir's directories, keys and
// certificates included). It does so on exit and on Ctrl-C or SIGTERM too,
// when the testing package's own cleanups do not run. The directory's name
// is short: Chromium's Unix sockets live below it, in 108 bytes.
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "iap-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	cleanup := func() {
		testenv.RemoveCaddyBinary()
		_ = os.RemoveAll(tmp)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-stop
		cleanup()
		fmt.Fprintf(os.Stderr, "e2e: %v: removed %s and the test Caddy binary\n", s, tmp)
		os.Exit(130)
	}()
	code := m.Run()
	cleanup()
	os.Exit(code)
}
