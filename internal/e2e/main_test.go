package e2e

import (
	"os"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// TestMain removes the Caddy binary the tests built, whatever they did.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveCaddyBinary()
	os.Exit(code)
}
