package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// scalar is a value written in a policy: a string, number, boolean or
// null. Scalars compare as Pomerium's Rego compares them, by type and
// value: true is not "true", and 3 is 3.0 but not "3".
type scalar struct {
	kind scalarKind
	s    string
	n    float64
	b    bool
}

type scalarKind uint8

const (
	kindString scalarKind = iota
	kindNumber
	kindBool
	kindNull
)

func parseScalar(raw json.RawMessage) (scalar, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return scalar{}, fmt.Errorf("expected a value")
	case raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return scalar{s: s}, err
	case string(raw) == "true", string(raw) == "false":
		return scalar{kind: kindBool, b: raw[0] == 't'}, nil
	case string(raw) == "null":
		return scalar{kind: kindNull}, nil
	case raw[0] == '{', raw[0] == '[':
		return scalar{}, fmt.Errorf("expected a string, number or boolean, got %s", raw)
	}
	n, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return scalar{}, fmt.Errorf("expected a string, number or boolean, got %s", raw)
	}
	return scalar{kind: kindNumber, n: n}, nil
}

// equal compares the scalar with a value of a claim (as decoded from JSON).
func (w scalar) equal(v any) bool {
	switch v := v.(type) {
	case string:
		return w.kind == kindString && w.s == v
	case float64:
		return w.kind == kindNumber && w.n == v
	case bool:
		return w.kind == kindBool && w.b == v
	case nil:
		return w.kind == kindNull
	case json.Number:
		f, err := v.Float64()
		return err == nil && w.kind == kindNumber && w.n == f
	case int:
		return w.kind == kindNumber && w.n == float64(v)
	case int64:
		return w.kind == kindNumber && w.n == float64(v)
	}
	return false
}

// The operators of a string matcher, with what each takes. The syntax
// grammars see (stringSyntax) and the compiler below come from this list.
var stringOperators = []Key{
	{Name: "is", Value: OneValue, Example: "alice@example.com"},
	{Name: "not", Value: OneValue, Example: "bob@example.com"},
	{Name: "contains", Value: OneValue, Example: "@example"},
	{Name: "starts_with", Value: OneValue, Example: "alice"},
	{Name: "ends_with", Value: OneValue, Example: "@example.com"},
	{Name: "in", Value: ListValue, Example: "alice@example.com"},
	{Name: "not_in", Value: ListValue, Example: "bob@example.com"},
}

// stringSyntax is a string matcher: a bare string (meaning is), or an
// object of operators that must all hold.
var stringSyntax = Syntax{Bare: OneValue, BareExample: "alice@example.com", Keys: stringOperators}

// stringMatcher tests one string.
type stringMatcher func(string) bool

// compileStringMatcher compiles a string matcher. norm, if not nil, is
// applied to the values of the policy (http_method makes them upper case).
//
// The values must be strings: the things tested (an email, a path) are, so
// a number could never match, and a policy that says `user: 1234` is
// refused rather than left never to match as in Pomerium.
func compileStringMatcher(data json.RawMessage, norm func(string) string) (stringMatcher, error) {
	if norm == nil {
		norm = func(s string) string { return s }
	}
	if bare, ok := jsonString(data); ok {
		bare = norm(bare)
		return func(s string) bool { return s == bare }, nil
	}
	ops, err := operators(data, "a string, or an object of "+keyNames(stringOperators))
	if err != nil {
		return nil, err
	}
	parts := make([]stringMatcher, 0, len(ops))
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		raw := ops[op]
		key, ok := stringSyntax.Key(op)
		if !ok {
			return nil, fmt.Errorf("unknown string operator %q (known: %s)", op, keyNames(stringOperators))
		}
		if key.Value == ListValue {
			list, err := stringList(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			for i := range list {
				list[i] = norm(list[i])
			}
			negate := op == "not_in"
			parts = append(parts, func(s string) bool { return slices.Contains(list, s) != negate })
			continue
		}
		v, ok := jsonString(raw)
		if !ok {
			return nil, fmt.Errorf("%s: expected a string, got %s (quote it)", op, raw)
		}
		v = norm(v)
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
			panic("authz: string operator without a test: " + op)
		}
	}
	return allStrings(parts), nil
}

func allStrings(parts []stringMatcher) stringMatcher {
	switch len(parts) {
	case 0: // {}: no condition, as in Pomerium
		return func(string) bool { return true }
	case 1:
		return parts[0]
	}
	return func(s string) bool {
		for _, p := range parts {
			if !p(s) {
				return false
			}
		}
		return true
	}
}

// The operators of a list matcher. in and not_in are extensions of
// Pomerium's.
var listOperators = []Key{
	{Name: "has", Value: OneValue, Example: "admins"},
	{Name: "is", Value: OneValue, Example: "admins"},
	{Name: "exclude", Value: OneValue, Example: "contractors"},
	{Name: "in", Value: ListValue, Example: "admins"},
	{Name: "not_in", Value: ListValue, Example: "contractors"},
}

// groupsSyntax is a list matcher of strings: a bare value (meaning has),
// or an object of operators that must all hold.
var groupsSyntax = Syntax{Bare: OneValue, BareExample: "admins", Keys: listOperators}

// claimSyntax is a list matcher whose values may be numbers and booleans.
var claimSyntax = Syntax{Bare: OneValue, BareExample: "eng", Keys: listOperators, Typed: true}

// values is the list a list matcher tests: a claim (one value, or a list),
// or the user's groups, held without copying so that testing allocates
// nothing. A claim that is one value is a list of one, as Pomerium
// flattens claims into lists.
type values struct {
	one   any
	isOne bool
	strs  []string
	anys  []any
}

func (l values) len() int {
	if l.isOne {
		return 1
	}
	return len(l.strs) + len(l.anys)
}

func (l values) has(w scalar) bool {
	if l.isOne {
		return w.equal(l.one)
	}
	if w.kind == kindString {
		if slices.Contains(l.strs, w.s) {
			return true
		}
	}
	for _, v := range l.anys {
		if w.equal(v) {
			return true
		}
	}
	return false
}

func (l values) hasAny(set []scalar) bool {
	for _, w := range set {
		if l.has(w) {
			return true
		}
	}
	return false
}

type listMatcher func(values) bool

// compileListMatcher compiles a list matcher. Unless typed, its values must
// be strings (groups are).
func compileListMatcher(data json.RawMessage, typed bool) (listMatcher, error) {
	one := func(raw json.RawMessage) (scalar, error) {
		v, err := parseScalar(raw)
		if err == nil && !typed && v.kind != kindString {
			err = fmt.Errorf("expected a string, got %s (quote it)", raw)
		}
		return v, err
	}
	if bare, err := one(data); err == nil {
		return func(l values) bool { return l.has(bare) }, nil
	} else if len(data) > 0 && data[0] != '{' {
		return nil, err
	}
	ops, err := operators(data, "a value, or an object of "+keyNames(listOperators))
	if err != nil {
		return nil, err
	}
	parts := make([]listMatcher, 0, len(ops))
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		raw := ops[op]
		key, ok := groupsSyntax.Key(op)
		if !ok {
			return nil, fmt.Errorf("unknown list operator %q (known: %s)", op, keyNames(listOperators))
		}
		if key.Value == ListValue {
			var raws []json.RawMessage
			if json.Unmarshal(raw, &raws) != nil {
				raws = []json.RawMessage{raw}
			}
			set := make([]scalar, 0, len(raws))
			for _, r := range raws {
				v, err := one(r)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", op, err)
				}
				set = append(set, v)
			}
			negate := op == "not_in"
			parts = append(parts, func(l values) bool { return l.hasAny(set) != negate })
			continue
		}
		v, err := one(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", op, err)
		}
		switch op {
		case "has":
			parts = append(parts, func(l values) bool { return l.has(v) })
		case "is":
			parts = append(parts, func(l values) bool { return l.len() == 1 && l.has(v) })
		case "exclude":
			parts = append(parts, func(l values) bool { return !l.has(v) })
		default:
			panic("authz: list operator without a test: " + op)
		}
	}
	switch len(parts) {
	case 0:
		return func(values) bool { return true }, nil
	case 1:
		return parts[0], nil
	}
	return func(l values) bool {
		for _, p := range parts {
			if !p(l) {
				return false
			}
		}
		return true
	}, nil
}

// operators decodes an object of operators. An empty object is no
// condition at all, as in Pomerium.
func operators(data json.RawMessage, want string) (map[string]json.RawMessage, error) {
	var ops map[string]json.RawMessage
	if err := json.Unmarshal(data, &ops); err != nil || ops == nil {
		return nil, fmt.Errorf("expected %s, got %s", want, data)
	}
	return ops, nil
}

// jsonString decodes a JSON string (and not null, which Unmarshal would
// take for "").
func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// stringList accepts a string or a list of strings.
func stringList(raw json.RawMessage) ([]string, error) {
	if one, ok := jsonString(raw); ok {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(bytes.TrimSpace(raw), &list); err != nil || list == nil {
		return nil, fmt.Errorf("expected a string or a list of strings, got %s", raw)
	}
	return list, nil
}

func keyNames(keys []Key) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}
