package authz

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Input is what a policy decides on.
type Input struct {
	// User is the signed-in user, or nil.
	User *User
	// Request is the HTTP request.
	Request Request
	// Cert is the client certificate's verification result, or nil when
	// the site does not ask for client certificates.
	Cert *ClientCert
	// Now is the time of the request, for date, day_of_week and
	// time_of_day.
	Now time.Time
}

// User is a signed-in user.
type User struct {
	ID     string
	Email  string
	Groups []string
	// Claim returns an ID token claim by name; nil means none are known.
	Claim func(name string) (any, bool)
}

// Request is what policies may test of the HTTP request.
type Request struct {
	Method string
	Path   string
	// ClientIP is the client's address, after the server's trusted
	// proxies (Caddy's client_ip).
	ClientIP netip.Addr
	// Header gives request headers (for cors_preflight).
	Header http.Header
}

// ClientCert is the result of verifying a client certificate.
type ClientCert struct {
	Presented bool
	Valid     bool
	// Fingerprint is the SHA-256 of the leaf's DER.
	Fingerprint [32]byte
	// SPKIHash is the SHA-256 of the leaf's SubjectPublicKeyInfo.
	SPKIHash               [32]byte
	Emails, DNSNames, URIs []string
}

// Decision is the outcome of one evaluation.
type Decision struct {
	Allow  bool
	Reason Reason
	// Rule is the 1-based index of the rule that decided (0: none did).
	Rule int
}

// Evaluator is a compiled policy.
type Evaluator struct {
	allow []ruleMatcher
	deny  []ruleMatcher
}

type ruleMatcher struct {
	rule int
	m    matcher
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
			e.allow = append(e.allow, ruleMatcher{i + 1, m})
		}
		if r.Deny != nil {
			m, err := compileAction(*r.Deny)
			if err != nil {
				return nil, fmt.Errorf("rule %d: deny: %v", i+1, err)
			}
			e.deny = append(e.deny, ruleMatcher{i + 1, m})
		}
	}
	return e, nil
}

// Evaluate decides a request: any matching deny refuses, then any matching
// allow admits, and otherwise the request is refused.
func (e *Evaluator) Evaluate(in *Input) Decision {
	for _, r := range e.deny {
		if r.m(in) {
			return Decision{Reason: ReasonDenied, Rule: r.rule}
		}
	}
	for _, r := range e.allow {
		if r.m(in) {
			return Decision{Allow: true, Reason: ReasonAllowed, Rule: r.rule}
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
		{"not", a.Not, negate(anyOf)},
		{"nor", a.Nor, negate(allOf)},
	} {
		if len(op.criteria) == 0 {
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
	return anyOf(parts), nil
}

func compileCriterion(c Criterion) (matcher, error) {
	name, sub, _ := strings.Cut(c.Name, "/")
	ctor, ok := registry[name]
	if !ok {
		return nil, c.errorf("unknown criterion %q (known: %s)", c.Name, knownCriteria())
	}
	if sub != "" && name != "claim" {
		return nil, c.errorf("criterion %q takes no /sub-path", name)
	}
	if name == "claim" && sub == "" {
		return nil, c.errorf("criterion claim needs a claim name: claim/<name>")
	}
	m, err := ctor(sub, c.Data)
	if err != nil {
		return nil, c.errorf("criterion %q: %v", c.Name, err)
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
