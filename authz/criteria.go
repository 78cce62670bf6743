package authz

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// criterionConstructor compiles a criterion's data into a matcher. sub is
// what follows a slash in the name (claim/<name>), else "".
type criterionConstructor func(sub string, data json.RawMessage) (matcher, error)

// registry maps a criterion's name to its constructor. Each criterion lives
// in its own file and registers itself in init.
var registry = map[string]criterionConstructor{}

func register(name string, ctor criterionConstructor) {
	if _, dup := registry[name]; dup {
		panic("authz: criterion registered twice: " + name)
	}
	registry[name] = ctor
}

func knownCriteria() string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// boolData reads the data of a criterion that takes true (or nothing).
// PPL writes these as "accept: true"; false is refused rather than guessed at.
func boolData(data json.RawMessage) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	var b bool
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("expected true, got %s", data)
	}
	if !b {
		return fmt.Errorf("expected true, got false (remove the criterion instead)")
	}
	return nil
}

// boolCriterion registers a criterion that takes true and tests the input.
func boolCriterion(name string, test func(*Input) bool) {
	register(name, func(_ string, data json.RawMessage) (matcher, error) {
		if err := boolData(data); err != nil {
			return nil, err
		}
		return test, nil
	})
}
