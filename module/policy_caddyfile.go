package module

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-iap/caddy-iap/authz"
)

// ParsePolicyBlock reads the Caddyfile form of a policy, the block after
// `policy` (the dispenser is on that token): nested blocks that read like
// Pomerium's YAML.
//
//	policy {
//		allow {
//			or {
//				email is alice@example.com
//				domain example.com
//				groups has admins
//				claim/department in eng ops
//				client_certificate fingerprint 3f7a...
//				time_of_day timezone Europe/Paris after 09:00 before 17:00
//			}
//		}
//		deny {
//			or {
//				http_method is DELETE
//			}
//		}
//	}
//
// A criterion line is its name, then either nothing (true), one value, an
// operator and its values (several such pairs may follow each other), or a
// block of such lines. Each allow or deny block is a rule of its own, and
// so is each repetition of an operator inside one (two `and` blocks are two
// alternatives, as two rules would be).
func ParsePolicyBlock(d *caddyfile.Dispenser) (authz.Policy, error) {
	if d.NextArg() {
		return nil, d.Err("policy takes a block, not arguments (or use policy_file <file>)")
	}
	var p authz.Policy
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		action := d.Val()
		if action != "allow" && action != "deny" {
			return nil, d.Errf("unknown action %q in policy (want allow or deny)", action)
		}
		if d.NextArg() {
			return nil, d.Errf("%s takes a block of and, or, not and nor", action)
		}
		// An operator given twice starts a rule of its own: rules of one
		// action are alternatives, as its operators are.
		a, seen := new(authz.Action), map[string]bool{}
		flush := func() {
			if action == "allow" {
				p = append(p, authz.Rule{Allow: a})
			} else {
				p = append(p, authz.Rule{Deny: a})
			}
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			op := d.Val()
			if a.Operator(op) == nil {
				return nil, d.Errf("unknown operator %q in %s (want and, or, not or nor)", op, action)
			}
			if seen[op] {
				flush()
				a, seen = new(authz.Action), map[string]bool{}
			}
			seen[op] = true
			list := a.Operator(op)
			if d.NextArg() {
				return nil, d.Errf("%s takes a block of criteria, one per line", op)
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				c, err := parseCriterionLine(d)
				if err != nil {
					return nil, err
				}
				*list = append(*list, c)
			}
		}
		flush()
	}
	return p, nil
}

// operatorWords are the words that start a key of a criterion's object.
var operatorWords = []string{"is", "not", "contains", "starts_with", "ends_with", "in", "not_in",
	"has", "exclude", "fingerprint", "spki_hash", "san_email", "san_dns", "san_uri",
	"after", "before", "timezone", "days"}

// listOperators always take a list.
var listOperators = []string{"in", "not_in", "fingerprint", "spki_hash"}

func parseCriterionLine(d *caddyfile.Dispenser) (authz.Criterion, error) {
	c := authz.Criterion{Name: d.Val(), Pos: fmt.Sprintf("%s:%d", d.File(), d.Line())}
	args := d.RemainingArgs()
	var v any
	switch {
	case len(args) == 0:
		v = true
		if nesting := d.Nesting(); d.NextBlock(nesting) {
			obj := map[string]any{}
			for {
				key := d.Val()
				val, err := argsValue(d, key, d.RemainingArgs())
				if err != nil {
					return c, err
				}
				obj[key] = val
				if !d.NextBlock(nesting) {
					break
				}
			}
			v = obj
		}
	case len(args) == 1:
		v = args[0]
	case slices.Contains(operatorWords, args[0]):
		obj := map[string]any{}
		for i := 0; i < len(args); {
			key := args[i]
			j := i + 1
			// san_* take a string matcher: one operator and its value(s).
			if key == "san_email" || key == "san_dns" || key == "san_uri" {
				if j < len(args) && slices.Contains(operatorWords, args[j]) {
					j++
				}
			}
			for j < len(args) && !slices.Contains(operatorWords, args[j]) {
				j++
			}
			val, err := argsValue(d, key, args[i+1:j])
			if err != nil {
				return c, err
			}
			if _, dup := obj[key]; dup {
				return c, d.Errf("%s: %s is given twice", c.Name, key)
			}
			obj[key] = val
			i = j
		}
		v = obj
	default:
		v = args
	}
	data, err := json.Marshal(v)
	if err != nil {
		return c, d.Err(err.Error())
	}
	c.Data = data
	return c, nil
}

// argsValue is the value of one key: a string, a list, or (for san_*) a
// nested string matcher.
func argsValue(d *caddyfile.Dispenser, key string, vals []string) (any, error) {
	switch {
	case len(vals) == 0:
		return nil, d.Errf("%s needs a value", key)
	case (key == "san_email" || key == "san_dns" || key == "san_uri") && len(vals) > 1 && slices.Contains(operatorWords, vals[0]):
		inner, err := argsValue(d, vals[0], vals[1:])
		return map[string]any{vals[0]: inner}, err
	case slices.Contains(listOperators, key):
		return vals, nil
	case len(vals) == 1:
		return vals[0], nil
	}
	return nil, d.Errf("%s takes one value, got %d (%q)", key, len(vals), vals)
}
