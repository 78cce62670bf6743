package authz

import (
	"fmt"
	"os"
)

// LoadFile reads a policy file, YAML or JSON (policy_file). Errors name the
// file and the line.
func LoadFile(path string) (Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy_file: %v", err)
	}
	return Parse(b, path)
}
