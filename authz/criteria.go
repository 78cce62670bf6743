package authz

import (
	"encoding/json"
	"sort"
	"strings"
)

// CriterionInfo describes one criterion of the language: its name, what its
// data looks like, and whether it tests the signed-in user. Grammars other
// than PPL's JSON (the Caddyfile form) read it to know which words are
// operators, so that a new operator cannot be mis-parsed.
type CriterionInfo struct {
	// Name is the criterion's name, without a sub-path.
	Name string
	// SubPath: the criterion is written name/<sub-path>, as claim/<name>.
	SubPath bool
	// NeedsUser: the criterion tests the signed-in user (Pomerium's session
	// criteria). Decided for an anonymous request, it fails with the reason
	// user-unauthenticated: the request may pass once signed in.
	NeedsUser bool
	// Syntax is the shape of the criterion's data.
	Syntax Syntax
}

// ValueKind says what a criterion written without a key, or one key of its
// object form, takes.
type ValueKind uint8

// The value kinds.
const (
	// NoValue: nothing; the criterion is written alone and its data is
	// true (Pomerium ignores the data of these criteria).
	NoValue ValueKind = iota
	// OneValue: one scalar.
	OneValue
	// ListValue: a list of scalars (one or more).
	ListValue
	// OneOrList: one scalar, or a list of several.
	OneOrList
	// MatcherValue: a nested matcher, described by Key.Sub (san_email
	// takes a string matcher).
	MatcherValue
)

// Syntax is the shape of a criterion's data: a bare value, and/or an object
// of keys (the operators of a matcher, or the fields of an object).
type Syntax struct {
	// Bare is what the data written without a key takes: NoValue for
	// criteria whose data is true, OneValue when a bare value means an
	// operator (is for strings, has for lists), OneOrList for lists.
	// A criterion with Keys and Bare == NoValue must be written with keys.
	Bare ValueKind
	// BareExample is a valid bare value, for documentation and tests.
	BareExample string
	// Keys are the keys of the object form, in the order they are
	// documented. Several may be given; they must all hold.
	Keys []Key
	// Typed: values may be numbers and booleans as well as strings, and
	// compare by type, as in Pomerium (true is not "true"). Claims are
	// typed; in the Caddyfile an unquoted true, false or number is then
	// a boolean or number, as in YAML.
	Typed bool
}

// Key is one key of a criterion's object form.
type Key struct {
	Name  string
	Value ValueKind
	// Sub is the syntax of a MatcherValue.
	Sub *Syntax
	// Example is a valid value (for a MatcherValue, a bare value of Sub).
	Example string
}

// Key returns the key named, if the syntax has it.
func (s Syntax) Key(name string) (Key, bool) {
	for _, k := range s.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// criterionConstructor compiles a criterion's data into a matcher. sub is
// what follows the slash in the name (claim/<name>), else "".
type criterionConstructor func(sub string, data json.RawMessage) (matcher, error)

type criterionDef struct {
	info    CriterionInfo
	compile criterionConstructor
	// certReason: when the criterion matches, its reason is a client
	// certificate's (client-certificate-required or
	// invalid-client-certificate), which Pomerium answers before asking
	// anyone to sign in.
	certReason bool
}

// registry maps a criterion's name to its definition. Each criterion lives
// in its own file and registers itself in init.
var registry = map[string]*criterionDef{}

func register(info CriterionInfo, ctor criterionConstructor) *criterionDef {
	if _, dup := registry[info.Name]; dup {
		panic("authz: criterion registered twice: " + info.Name)
	}
	def := &criterionDef{info: info, compile: ctor}
	registry[info.Name] = def
	return def
}

// Criteria lists every criterion of the language, sorted by name.
func Criteria() []CriterionInfo {
	out := make([]CriterionInfo, 0, len(registry))
	for _, def := range registry {
		out = append(out, def.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupCriterion returns the criterion a name written in a policy stands
// for: "email", or "claim/department" (the part before the first slash).
func LookupCriterion(name string) (CriterionInfo, bool) {
	base, _, _ := strings.Cut(name, "/")
	def, ok := registry[base]
	if !ok {
		return CriterionInfo{}, false
	}
	return def.info, true
}

func knownCriteria() string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// flagCriterion registers a criterion written alone (accept: true). Like
// Pomerium, it ignores its data: accept: 1 and even accept: false are
// accept.
func flagCriterion(name string, needsUser bool, test func(*Input) bool) *criterionDef {
	return register(CriterionInfo{Name: name, NeedsUser: needsUser, Syntax: Syntax{Bare: NoValue}},
		func(_ string, _ json.RawMessage) (matcher, error) { return test, nil })
}
