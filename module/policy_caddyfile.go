package module

import (
	"encoding/json"
	"fmt"
	"strings"

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
// block of such lines. Which words are operators, and how many values each
// takes, is authz's to say (authz.Criteria); a quoted word is a value, never
// an operator. In a claim's values, an unquoted true, false or number is a
// boolean or a number, as in YAML; quote it for the string. Each allow or deny block is a rule of its own, and
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

// token is a Caddyfile argument: its text, and whether it was quoted (a
// quoted word is never an operator, and never a number or boolean).
type token struct {
	text   string
	quoted bool
}

func remainingTokens(d *caddyfile.Dispenser) []token {
	var out []token
	for d.NextArg() {
		out = append(out, token{d.Val(), d.Token().Quoted()})
	}
	return out
}

// parseCriterionLine reads one criterion. What its words mean comes from
// authz's description of the criterion (authz.LookupCriterion): which words
// are its operators or keys, and how many values each takes.
func parseCriterionLine(d *caddyfile.Dispenser) (authz.Criterion, error) {
	c := authz.Criterion{Name: d.Val(), Pos: fmt.Sprintf("%s:%d", d.File(), d.Line())}
	info, known := authz.LookupCriterion(c.Name)
	if !known {
		var names []string
		for _, info := range authz.Criteria() {
			names = append(names, info.Name)
		}
		return c, d.Errf("unknown criterion %q (known: %s)", c.Name, strings.Join(names, ", "))
	}
	args := remainingTokens(d)
	var v any
	if nesting := d.Nesting(); len(args) == 0 && d.NextBlock(nesting) {
		obj := map[string]any{}
		for {
			if err := setKey(d, info.Syntax, obj, c.Name, d.Val(), remainingTokens(d)); err != nil {
				return c, err
			}
			if !d.NextBlock(nesting) {
				break
			}
		}
		v = obj
	} else {
		var err error
		if v, err = dataOf(d, info.Syntax, c.Name, args); err != nil {
			return c, err
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return c, d.Err(err.Error())
	}
	c.Data = data
	return c, nil
}

// dataOf is the data of a criterion (or of a nested matcher) written on
// one line: nothing, a bare value or values, or keys each followed by its
// values.
func dataOf(d *caddyfile.Dispenser, s authz.Syntax, name string, args []token) (any, error) {
	if len(args) == 0 {
		switch {
		case s.Bare == authz.NoValue && len(s.Keys) == 0:
			return true, nil
		case s.Bare == authz.NoValue:
			return map[string]any{}, nil // client_certificate alone: any valid certificate
		}
		return nil, d.Errf("%s needs a value", name)
	}
	if isKey(s, args[0]) {
		obj := map[string]any{}
		for i := 0; i < len(args); {
			j := i + 1
			for j < len(args) && !isKey(s, args[j]) {
				j++
			}
			if err := setKey(d, s, obj, name, args[i].text, args[i+1:j]); err != nil {
				return nil, err
			}
			i = j
		}
		return obj, nil
	}
	switch {
	case s.Bare == authz.NoValue && len(s.Keys) == 0:
		return nil, d.Errf("%s takes no value", name)
	case s.Bare == authz.NoValue:
		return nil, d.Errf("%s: unknown key %q (known: %s)", name, args[0].text, keyList(s))
	case s.Bare == authz.OneValue && len(args) > 1:
		if len(s.Keys) > 0 {
			return nil, d.Errf("%s takes one value, or operators (%s) and their values; got %q", name, keyList(s), texts(args))
		}
		return nil, d.Errf("%s takes one value, got %q", name, texts(args))
	case len(args) == 1 && s.Bare != authz.ListValue:
		return scalarOf(s, args[0]), nil
	}
	return listOf(s, args), nil
}

// setKey sets one key of an object from its values.
func setKey(d *caddyfile.Dispenser, s authz.Syntax, obj map[string]any, name, key string, vals []token) error {
	if _, dup := obj[key]; dup {
		return d.Errf("%s: %s is given twice", name, key)
	}
	k, ok := s.Key(key)
	if !ok {
		return d.Errf("%s: unknown key %q (known: %s)", name, key, keyList(s))
	}
	if len(vals) == 0 {
		return d.Errf("%s: %s needs a value", name, key)
	}
	switch k.Value {
	case authz.OneValue:
		if len(vals) != 1 {
			return d.Errf("%s: %s takes one value, got %d (%q)", name, key, len(vals), texts(vals))
		}
		obj[key] = scalarOf(s, vals[0])
	case authz.ListValue:
		obj[key] = listOf(s, vals)
	case authz.OneOrList:
		if len(vals) == 1 {
			obj[key] = scalarOf(s, vals[0])
		} else {
			obj[key] = listOf(s, vals)
		}
	case authz.MatcherValue:
		v, err := dataOf(d, *k.Sub, name+" "+key, vals)
		if err != nil {
			return err
		}
		obj[key] = v
	default:
		return d.Errf("%s: %s takes no value", name, key)
	}
	return nil
}

func isKey(s authz.Syntax, t token) bool {
	_, ok := s.Key(t.text)
	return ok && !t.quoted
}

// scalarOf is a value as the syntax reads it: in typed syntaxes (claims),
// an unquoted true, false or number is a boolean or a number, as in YAML.
func scalarOf(s authz.Syntax, t token) any {
	if !s.Typed || t.quoted {
		return t.text
	}
	switch t.text {
	case "true":
		return true
	case "false":
		return false
	}
	if c := t.text[0]; (c == '-' || c >= '0' && c <= '9') && json.Valid([]byte(t.text)) {
		return json.Number(t.text)
	}
	return t.text
}

func listOf(s authz.Syntax, ts []token) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = scalarOf(s, t)
	}
	return out
}

func texts(ts []token) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.text
	}
	return out
}

func keyList(s authz.Syntax) string {
	names := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

// ParseAllowedIDPClaims reads the shortcut `allowed_idp_claims <claim>
// <value...>` (the dispenser is on its name), whose values are read as the
// values of claim/<claim> in a policy: an unquoted true, false or number is
// a boolean or a number.
func ParseAllowedIDPClaims(d *caddyfile.Dispenser, s *authz.Shortcuts) error {
	args := remainingTokens(d)
	if len(args) < 2 {
		return d.Err("allowed_idp_claims takes a claim name and one or more values")
	}
	info, _ := authz.LookupCriterion("claim")
	if s.AllowedIDPClaims == nil {
		s.AllowedIDPClaims = map[string][]any{}
	}
	claim := args[0].text
	s.AllowedIDPClaims[claim] = append(s.AllowedIDPClaims[claim], listOf(info.Syntax, args[1:])...)
	return nil
}
