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
	// CommonName is the leaf's subject common name.
	CommonName string
}

// Decision is the outcome of one evaluation.
type Decision struct {
	Allow bool
	// Reason says why: allowed; denied (a deny rule matched); not-allowed
	// (or client-certificate-user-mismatch) or no-policy; or
	// user-unauthenticated: the request is anonymous and criteria that
	// need a signed-in user decided it, so it is to sign in and be decided
	// again (Pomerium's reason of the same name). Only an anonymous
	// request gets it, and only from a policy that NeedsUser.
	Reason Reason
	// Rule is the 1-based index of the rule that decided (0: none did).
	Rule int
}

// NeedsSignIn reports whether the request is to sign in and be decided
// again: it is anonymous and the outcome turned on who the user is.
func (d Decision) NeedsSignIn() bool { return d.Reason == ReasonUnauthenticated }

// Evaluator is a compiled policy.
type Evaluator struct {
	allow []ruleMatcher
	deny  []ruleMatcher
	// needsUser: some criterion tests the user, so anonymous requests are
	// evaluated with reasons (is it to sign in?).
	needsUser bool
	// certUser are the policy's client_certificate_user criteria, which
	// say whether a refusal is client-certificate-user-mismatch.
	certUser []matcher
	// explain is the policy criterion by criterion, for Explain; Evaluate
	// never reads it.
	explain []ruleExplain
	// portal are the criteria the routes portal tests a user with, and
	// portalAll says one of them is accept (see Lists).
	portal    []matcher
	portalAll bool
}

type ruleMatcher struct {
	rule int
	n    node
}

// matcher is a compiled criterion: does the request match?
type matcher func(*Input) bool

// reasons are the reasons of a criterion's result that change what a
// request gets, kept as Pomerium keeps its reasons: a merge keeps those of
// the results that decided it, and not and nor invert a result but keep
// its reasons.
type reasons uint8

const (
	// reasonUnauthenticated: a criterion that needs a user failed for an
	// anonymous request.
	reasonUnauthenticated reasons = 1 << iota
	// reasonCert: invalid_client_certificate matched (the certificate is
	// missing or invalid).
	reasonCert
)

// node is a compiled part of a policy. eval decides, stopping at the first
// result that settles it. trace also gives the reasons, evaluating every
// part; it is nil where no reason can arise, and is used for anonymous
// requests only (a signed-in user has no user-unauthenticated reasons).
type node struct {
	eval  func(*Input) bool
	trace func(*Input) (bool, reasons)
}

func (n node) traced(in *Input) (bool, reasons) {
	if n.trace == nil {
		return n.eval(in), 0
	}
	return n.trace(in)
}

// Compile checks every criterion and builds the evaluator. It fails on an
// unknown criterion or on data a criterion does not accept, naming the rule,
// the action and the criterion. A rule with neither allow nor deny ({})
// adds nothing, as in Pomerium.
func Compile(p Policy) (*Evaluator, error) {
	e := new(Evaluator)
	for i, r := range p {
		for _, a := range []struct {
			name   string
			action *Action
			to     *[]ruleMatcher
		}{{"allow", r.Allow, &e.allow}, {"deny", r.Deny, &e.deny}} {
			if a.action == nil {
				continue
			}
			n, ops, err := compileAction(*a.action)
			if err != nil {
				return nil, fmt.Errorf("rule %d: %s: %v", i+1, a.name, err)
			}
			*a.to = append(*a.to, ruleMatcher{i + 1, n})
			e.explain = append(e.explain, ruleExplain{rule: i + 1, action: a.name, ops: ops})
			if a.name == "allow" {
				e.addPortal(*a.action, ops)
			}
		}
	}
	e.needsUser = p.NeedsIdentity()
	var err error
	p.each(func(c Criterion) {
		if c.Name == "client_certificate_user" && err == nil {
			var m matcher
			m, err = compileClientCertificateUser("", c.Data)
			e.certUser = append(e.certUser, m)
		}
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// NeedsUser reports whether the policy has criteria that test the
// signed-in user (user, email, domain, groups, claim/*,
// authenticated_user): whether who the user is can change a decision.
func (e *Evaluator) NeedsUser() bool { return e.needsUser }

// Evaluate decides a request, in Pomerium's order:
//  1. a deny rule that matched because of a client certificate refuses;
//  2. an anonymous request whose decision turned on criteria that need a
//     user is to sign in (user-unauthenticated);
//  3. any matching deny refuses (denied);
//  4. any matching allow admits (allowed);
//  5. otherwise the request is refused (not-allowed, or no-policy when the
//     policy has no allow rule); not-allowed is
//     client-certificate-user-mismatch when a signed-in user sent a valid
//     certificate that a client_certificate_user criterion of the policy
//     does not bind to them.
//
// Evaluating a signed-in user's request, steps 1 and 2 change nothing,
// and the rules are tried only until one settles it.
func (e *Evaluator) Evaluate(in *Input) Decision {
	if in.User == nil && e.needsUser {
		return e.evaluateTraced(in)
	}
	for _, r := range e.deny {
		if r.n.eval(in) {
			return Decision{Reason: ReasonDenied, Rule: r.rule}
		}
	}
	for _, r := range e.allow {
		if r.n.eval(in) {
			return Decision{Allow: true, Reason: ReasonAllowed, Rule: r.rule}
		}
	}
	if len(e.certUser) > 0 && len(e.allow) > 0 && e.certUserMismatch(in) {
		return Decision{Reason: ReasonCertUserMismatch}
	}
	return e.refused()
}

func (e *Evaluator) refused() Decision {
	if len(e.allow) == 0 {
		return Decision{Reason: ReasonNoPolicy}
	}
	return Decision{Reason: ReasonNotAllowed}
}

func (e *Evaluator) evaluateTraced(in *Input) Decision {
	denied, denyRule, denyReasons := anyRule(e.deny, in)
	allowed, allowRule, allowReasons := anyRule(e.allow, in)
	switch {
	case denied && denyReasons&reasonCert != 0:
		return Decision{Reason: ReasonDenied, Rule: denyRule}
	case (denyReasons|allowReasons)&reasonUnauthenticated != 0:
		return Decision{Reason: ReasonUnauthenticated}
	case denied:
		return Decision{Reason: ReasonDenied, Rule: denyRule}
	case allowed:
		return Decision{Allow: true, Reason: ReasonAllowed, Rule: allowRule}
	}
	return e.refused()
}

// anyRule is Pomerium's merge of the rules of one action: it matches when
// one does, with the reasons of those that match, else with all reasons.
func anyRule(rules []ruleMatcher, in *Input) (matched bool, first int, rs reasons) {
	var all reasons
	for _, r := range rules {
		v, why := r.n.traced(in)
		all |= why
		if v {
			if !matched {
				matched, first = true, r.rule
			}
			rs |= why
		}
	}
	if !matched {
		rs = all
	}
	return matched, first, rs
}

// compileAction compiles the operators of an action, which matches when
// any one of them holds. It also returns each operator's criteria, each
// compiled on its own, for Explain.
func compileAction(a Action) (node, []opExplain, error) {
	var parts []node
	var ops []opExplain
	for _, op := range []struct {
		name     string
		criteria []Criterion
		combine  func([]node) node
	}{
		{"and", a.And, allOf},
		{"or", a.Or, anyOf},
		{"not", a.Not, noneOf},
		{"nor", a.Nor, notAllOf},
	} {
		if len(op.criteria) == 0 {
			continue
		}
		ns := make([]node, 0, len(op.criteria))
		ex := opExplain{op: op.name, criteria: op.criteria}
		for j, c := range op.criteria {
			n, err := compileCriterion(c)
			if err != nil {
				return node{}, nil, fmt.Errorf("%s[%d]: %v", op.name, j, err)
			}
			ns = append(ns, n)
			ex.eval = append(ex.eval, n.eval)
			ex.data = append(ex.data, compactData(c.Data))
		}
		parts = append(parts, op.combine(ns))
		ops = append(ops, ex)
	}
	if len(parts) == 0 {
		return node{eval: func(*Input) bool { return false }}, ops, nil
	}
	return anyOf(parts), ops, nil
}

func compileCriterion(c Criterion) (node, error) {
	name, sub, hasSub := strings.Cut(c.Name, "/")
	def, ok := registry[name]
	if !ok {
		return node{}, c.errorf("unknown criterion %q (known: %s)", c.Name, knownCriteria())
	}
	if hasSub && !def.info.SubPath {
		return node{}, c.errorf("criterion %q takes no /sub-path", name)
	}
	if def.info.SubPath && sub == "" {
		return node{}, c.errorf("criterion %s needs a name: %s/<name>", name, name)
	}
	m, err := def.compile(sub, c.Data)
	if err != nil {
		return node{}, c.errorf("criterion %q: %v", c.Name, err)
	}
	n := node{eval: m}
	switch {
	case def.info.NeedsUser:
		// Traced only for anonymous requests: failing, it gives
		// user-unauthenticated.
		n.trace = func(in *Input) (bool, reasons) {
			if m(in) {
				return true, 0
			}
			return false, reasonUnauthenticated
		}
	case def.certReason:
		n.trace = func(in *Input) (bool, reasons) {
			if m(in) {
				return true, reasonCert
			}
			return false, 0
		}
	}
	return n, nil
}

// The operators, as Pomerium's generator merges results: and and or keep
// the reasons of the results that decided them; not is the and of the
// inverted results ((not A) and (not B)), nor their or ((not A) or
// (not B)).

func allOf(ns []node) node { return combine(ns, true, false) }

func anyOf(ns []node) node { return combine(ns, false, false) }

func noneOf(ns []node) node { return combine(ns, true, true) }

func notAllOf(ns []node) node { return combine(ns, false, true) }

// combine merges the results of ns, each inverted if invert, with and
// (all) or or.
func combine(ns []node, all, invert bool) node {
	if len(ns) == 1 && !invert {
		return ns[0]
	}
	evals := make([]func(*Input) bool, len(ns))
	traced := false
	for i, n := range ns {
		evals[i] = n.eval
		traced = traced || n.trace != nil
	}
	// The first result that is not what all (or none) of them must be
	// settles it.
	settle := !all
	out := node{eval: func(in *Input) bool {
		for _, eval := range evals {
			if eval(in) != invert == settle {
				return settle
			}
		}
		return !settle
	}}
	if !traced {
		return out
	}
	out.trace = func(in *Input) (bool, reasons) {
		var settled, rest reasons
		found := false
		for _, n := range ns {
			v, why := n.traced(in)
			if v != invert == settle {
				found = true
				settled |= why
			} else {
				rest |= why
			}
		}
		if found {
			return settle, settled
		}
		return !settle, rest
	}
	return out
}
