package pomerium

import (
	"strings"
	"testing"
)

// Attack: a Pomerium route with show_error_details: true and allowed_users.
// In Pomerium the 403 page then lists the traces of Enterprise sub-policies
// (their id, explanation and outcome), never the route's own policy; here it
// lists every rule and criterion as written, so any refused user (anyone the
// IdP signs in) reads the route's allowed emails, groups and address ranges.
// A config that was safe under Pomerium must not start showing that in
// silence: the adapter warns at the setting's line, saying what is shown.
func TestShowErrorDetailsWarnsThatThePolicyIsShown(t *testing.T) {
	const config = `routes:
  - from: https://wiki.example.com
    to: http://b
    allowed_users: [alice@example.com]
    show_error_details: true
`
	_, warnings, err := adapt(t, config, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range warnings {
		if strings.Contains(w.Message, "show_error_details") {
			found = true
			if w.Line != 5 || !strings.Contains(w.Message, "allowed emails") || !strings.Contains(w.Message, "sub-policies") {
				t.Errorf("warning at line %d: %s", w.Line, w.Message)
			}
		}
	}
	if !found {
		t.Errorf("no warning that show_error_details shows the route's policy to refused users: %v", warnings)
	}

	_, warnings, err = adapt(t, strings.Replace(config, "show_error_details: true", "show_error_details: false", 1), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if strings.Contains(w.Message, "show_error_details") {
			t.Errorf("show_error_details: false warns: %s", w.Message)
		}
	}
}
