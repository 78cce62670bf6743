// Package authz is the policy language of caddy-iap: Pomerium's Policy
// Language (PPL), parsed once into a tree of Go closures and evaluated per
// request. It has no Caddy import.
//
// A policy is one rule or a list of rules. A rule has an "allow" and/or a
// "deny" action; each action holds the logical operators "and", "or", "not"
// and "nor", each a list of criteria. Access needs at least one matching
// allow and no matching deny: deny always wins, and a policy with no rules
// denies everyone.
//
// An action matches when any one of its operators holds, as in Pomerium,
// where each operator of each rule is a separate condition of its action:
//   - and: every criterion matches;
//   - or:  at least one criterion matches;
//   - not: no criterion matches ((not A) and (not B));
//   - nor: at least one criterion does not match ((not A) or (not B)).
//
// These are the meanings Pomerium's generator gives not and nor. An action
// with no operators (or only empty ones) never matches, and a rule with
// neither action ({}) adds nothing.
//
// An anonymous request is decided as Pomerium decides it: its email is ""
// and its claims are empty, and when the outcome turns on criteria that
// need a user, the Decision's Reason is user-unauthenticated: sign in and
// ask again (see Evaluator.Evaluate).
//
// Criteria lists the criteria with the shape of their data, which the
// Caddyfile grammar reads; Shortcuts are Pomerium's route shortcuts.
package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Policy is a PPL document in its JSON form: one rule or a list of rules.
type Policy []Rule

// Rule is one PPL rule.
type Rule struct {
	Allow *Action `json:"allow,omitempty"`
	Deny  *Action `json:"deny,omitempty"`
}

// Action holds the logical operators of an allow or deny action.
type Action struct {
	And []Criterion `json:"and,omitempty"`
	Or  []Criterion `json:"or,omitempty"`
	Not []Criterion `json:"not,omitempty"`
	Nor []Criterion `json:"nor,omitempty"`
}

// Operator returns the list of criteria of the operator named (and, or,
// not, nor), or nil for any other name.
func (a *Action) Operator(name string) *[]Criterion {
	switch name {
	case "and":
		return &a.And
	case "or":
		return &a.Or
	case "not":
		return &a.Not
	case "nor":
		return &a.Nor
	}
	return nil
}

// Criterion is one PPL criterion: a name (such as "accept", or
// "claim/groups") and the data it takes.
type Criterion struct {
	Name string
	Data json.RawMessage
	// Pos says where the criterion was written ("policy.yaml:12",
	// "Caddyfile:30"), for errors; it is not part of the JSON.
	Pos string
}

func (c Criterion) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if c.Pos != "" {
		return fmt.Errorf("%s: %w", c.Pos, err)
	}
	return err
}

// MarshalJSON writes the criterion as a one-key object, as PPL does.
func (c Criterion) MarshalJSON() ([]byte, error) {
	data := c.Data
	if len(data) == 0 {
		data = json.RawMessage("true")
	}
	return json.Marshal(map[string]json.RawMessage{c.Name: data})
}

// UnmarshalJSON reads a one-key object.
func (c *Criterion) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("a criterion must be an object with one key: %v", err)
	}
	if len(m) != 1 {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Errorf("a criterion must have exactly one key, got %d (%s)", len(m), strings.Join(keys, ", "))
	}
	for k, v := range m {
		c.Name, c.Data = k, v
	}
	return nil
}

// UnmarshalJSON accepts one rule or a list of rules.
func (p *Policy) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var r Rule
		if err := strictUnmarshal(b, &r); err != nil {
			return err
		}
		*p = Policy{r}
		return nil
	}
	var rules []json.RawMessage
	if err := json.Unmarshal(b, &rules); err != nil {
		return fmt.Errorf("a policy must be a rule or a list of rules: %v", err)
	}
	out := make(Policy, 0, len(rules))
	for i, raw := range rules {
		var r Rule
		if err := strictUnmarshal(raw, &r); err != nil {
			return fmt.Errorf("rule %d: %v", i+1, err)
		}
		out = append(out, r)
	}
	*p = out
	return nil
}

// strictUnmarshal rejects unknown keys, so a misspelled action or operator
// is an error rather than a silently weaker policy.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// UnmarshalJSON rejects unknown operators. An "action" key is ignored, as
// Pomerium ignores it.
func (a *Action) UnmarshalJSON(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil || keys == nil {
		return fmt.Errorf("an action is an object of and, or, not and nor, got %s", b)
	}
	var out Action
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if k == "action" {
			continue
		}
		list := out.Operator(k)
		if list == nil {
			return fmt.Errorf("an action holds only and, or, not and nor: unknown operator %q", k)
		}
		if err := json.Unmarshal(keys[k], list); err != nil {
			return fmt.Errorf("%s takes a list of criteria: %v", k, err)
		}
	}
	*a = out
	return nil
}

// NeedsIdentity reports whether the policy has criteria that test the
// signed-in user: user, email, domain, groups, claim/<name> or
// authenticated_user (those whose CriterionInfo says NeedsUser). Only then
// can signing in change what a request gets; the decision of an
// anonymous request says whether it does (Decision.NeedsSignIn).
func (p Policy) NeedsIdentity() bool {
	needs := false
	p.each(func(c Criterion) {
		if info, ok := LookupCriterion(c.Name); ok && info.NeedsUser {
			needs = true
		}
	})
	return needs
}

// each calls f with every criterion of the policy.
func (p Policy) each(f func(Criterion)) {
	for _, r := range p {
		for _, a := range []*Action{r.Allow, r.Deny} {
			if a == nil {
				continue
			}
			for _, list := range [][]Criterion{a.And, a.Or, a.Not, a.Nor} {
				for _, c := range list {
					f(c)
				}
			}
		}
	}
}
