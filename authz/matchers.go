package authz

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// stringMatcher tests one string. Its JSON is a bare string (meaning is),
// or an object of operators that must all hold:
//
//	is, not, contains, starts_with, ends_with: a string;
//	in, not_in: a list of strings.
type stringMatcher func(string) bool

func compileStringMatcher(data json.RawMessage) (stringMatcher, error) {
	var bare string
	if json.Unmarshal(data, &bare) == nil {
		return func(s string) bool { return s == bare }, nil
	}
	ops, err := operators(data, "a string, or an object of is, not, contains, starts_with, ends_with, in, not_in")
	if err != nil {
		return nil, err
	}
	var parts []stringMatcher
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		raw := ops[op]
		switch op {
		case "in", "not_in":
			list, err := stringList(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			negate := op == "not_in"
			parts = append(parts, func(s string) bool { return slices.Contains(list, s) != negate })
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s: expected a string, got %s", op, raw)
		}
		switch op {
		case "is":
			parts = append(parts, func(s string) bool { return s == v })
		case "not":
			parts = append(parts, func(s string) bool { return s != v })
		case "contains":
			parts = append(parts, func(s string) bool { return strings.Contains(s, v) })
		case "starts_with":
			parts = append(parts, func(s string) bool { return strings.HasPrefix(s, v) })
		case "ends_with":
			parts = append(parts, func(s string) bool { return strings.HasSuffix(s, v) })
		default:
			return nil, fmt.Errorf("unknown string operator %q (known: is, not, contains, starts_with, ends_with, in, not_in)", op)
		}
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return func(s string) bool {
		for _, p := range parts {
			if !p(s) {
				return false
			}
		}
		return true
	}, nil
}

// listMatcher tests a list of strings (groups, claim values). Its JSON is a
// bare string (meaning has), or an object of operators that must all hold:
//
//	has: the list contains the value;
//	is: the list is exactly that one value;
//	exclude: the list does not contain the value;
//	in: the list contains one of the values (an extension of Pomerium's);
//	not_in: the list contains none of the values (likewise).
type listMatcher func(strList) bool

// strList is a list of strings, or one string without a slice around it,
// so that a one-valued claim costs no allocation.
type strList struct {
	one   string
	isOne bool
	many  []string
}

func listOf(many []string) strList { return strList{many: many} }

func (l strList) len() int {
	if l.isOne {
		return 1
	}
	return len(l.many)
}

func (l strList) at(i int) string {
	if l.isOne {
		return l.one
	}
	return l.many[i]
}

func (l strList) contains(s string) bool {
	for i, n := 0, l.len(); i < n; i++ {
		if l.at(i) == s {
			return true
		}
	}
	return false
}

func compileListMatcher(data json.RawMessage) (listMatcher, error) {
	var bare string
	if json.Unmarshal(data, &bare) == nil {
		return func(l strList) bool { return l.contains(bare) }, nil
	}
	ops, err := operators(data, "a string, or an object of has, is, exclude, in, not_in")
	if err != nil {
		return nil, err
	}
	var parts []listMatcher
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		if op == "in" || op == "not_in" {
			set, err := stringList(ops[op])
			if err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			negate := op == "not_in"
			parts = append(parts, func(l strList) bool {
				found := false
				for i, n := 0, l.len(); i < n && !found; i++ {
					found = slices.Contains(set, l.at(i))
				}
				return found != negate
			})
			continue
		}
		var v string
		if err := json.Unmarshal(ops[op], &v); err != nil {
			return nil, fmt.Errorf("%s: expected a string, got %s", op, ops[op])
		}
		switch op {
		case "has":
			parts = append(parts, func(l strList) bool { return l.contains(v) })
		case "is":
			parts = append(parts, func(l strList) bool { return l.len() == 1 && l.at(0) == v })
		case "exclude":
			parts = append(parts, func(l strList) bool { return !l.contains(v) })
		default:
			return nil, fmt.Errorf("unknown list operator %q (known: has, is, exclude, in, not_in)", op)
		}
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return func(l strList) bool {
		for _, p := range parts {
			if !p(l) {
				return false
			}
		}
		return true
	}, nil
}

// operators decodes an object of operators, refusing an empty one.
func operators(data json.RawMessage, want string) (map[string]json.RawMessage, error) {
	var ops map[string]json.RawMessage
	if err := json.Unmarshal(data, &ops); err != nil || len(ops) == 0 {
		return nil, fmt.Errorf("expected %s, got %s", want, data)
	}
	return ops, nil
}

// stringList accepts a string or a list of strings.
func stringList(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("expected a string or a list of strings, got %s", raw)
	}
	return list, nil
}
