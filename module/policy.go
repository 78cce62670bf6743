package module

import "github.com/caddy-iap/caddy-iap/authz"

// Shortcuts are Pomerium's route shortcuts for common policies; they are
// authz's, named here so that route configs keep their shape.
type Shortcuts = authz.Shortcuts

// LoadPolicyFile reads a YAML or JSON policy file (authz.LoadFile).
func LoadPolicyFile(path string) (authz.Policy, error) { return authz.LoadFile(path) }
