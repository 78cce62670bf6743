package authz

import (
	"fmt"
)

// Input is what a policy decides on: who the user is (nil when not signed
// in), and, in later criteria, the client certificate and the request.
type Input struct {
	User *User
}

// User is a signed-in user.
type User struct {
	ID     string
	Email  string
	Groups []string
}

// Decision is the outcome of one evaluation.
type Decision struct {
	Allow  bool
	Reason Reason
}

// Evaluator is a compiled policy.
type Evaluator struct {
	allow []matcher
	deny  []matcher
}

type matcher func(*Input) bool

// Compile checks every criterion and builds the evaluator. It fails on an
// unknown criterion or on data a criterion does not accept, naming the rule,
// the action and the criterion.
func Compile(p Policy) (*Evaluator, error) {
	e := new(Evaluator)
	for i, r := range p {
		if r.Allow == nil && r.Deny == nil {
			return nil, fmt.Errorf("rule %d: has neither allow nor deny", i+1)
		}
		if r.Allow != nil {
			m, err := compileAction(*r.Allow)
			if err != nil {
				return nil, fmt.Errorf("rule %d: allow: %v", i+1, err)
			}
			e.allow = append(e.allow, m)
		}
		if r.Deny != nil {
			m, err := compileAction(*r.Deny)
			if err != nil {
				return nil, fmt.Errorf("rule %d: deny: %v", i+1, err)
			}
			e.deny = append(e.deny, m)
		}
	}
	return e, nil
}

// Evaluate decides a request: any matching deny refuses, then any matching
// allow admits, and otherwise the request is refused.
func (e *Evaluator) Evaluate(in *Input) Decision {
	for _, m := range e.deny {
		if m(in) {
			return Decision{Reason: ReasonDenied}
		}
	}
	for _, m := range e.allow {
		if m(in) {
			return Decision{Allow: true, Reason: ReasonAllowed}
		}
	}
	if len(e.allow) == 0 {
		return Decision{Reason: ReasonNoPolicy}
	}
	return Decision{Reason: ReasonNotAllowed}
}

func compileAction(a Action) (matcher, error) {
	var parts []matcher
	for _, op := range []struct {
		name     string
		criteria []Criterion
		combine  func([]matcher) matcher
	}{
		{"and", a.And, allOf},
		{"or", a.Or, anyOf},
		{"not", a.Not, negate(allOf)},
		{"nor", a.Nor, negate(anyOf)},
	} {
		if op.criteria == nil {
			continue
		}
		ms := make([]matcher, 0, len(op.criteria))
		for j, c := range op.criteria {
			m, err := compileCriterion(c)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %v", op.name, j, err)
			}
			ms = append(ms, m)
		}
		parts = append(parts, op.combine(ms))
	}
	if len(parts) == 0 {
		return func(*Input) bool { return false }, nil
	}
	return allOf(parts), nil
}

func compileCriterion(c Criterion) (matcher, error) {
	ctor, ok := registry[c.Name]
	if !ok {
		return nil, fmt.Errorf("unknown criterion %q (known: %s)", c.Name, knownCriteria())
	}
	m, err := ctor(c.Data)
	if err != nil {
		return nil, fmt.Errorf("criterion %q: %v", c.Name, err)
	}
	return m, nil
}

func allOf(ms []matcher) matcher {
	return func(in *Input) bool {
		for _, m := range ms {
			if !m(in) {
				return false
			}
		}
		return true
	}
}

func anyOf(ms []matcher) matcher {
	return func(in *Input) bool {
		for _, m := range ms {
			if m(in) {
				return true
			}
		}
		return false
	}
}

func negate(combine func([]matcher) matcher) func([]matcher) matcher {
	return func(ms []matcher) matcher {
		m := combine(ms)
		return func(in *Input) bool { return !m(in) }
	}
}
