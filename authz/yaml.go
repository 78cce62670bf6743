package authz

import (
	"encoding/json"
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Parse reads a policy written as YAML or JSON (JSON is YAML), as in
// Pomerium's config.yaml or a policy_file. name (a file name) prefixes the
// line numbers in errors, and each criterion remembers its line.
func Parse(data []byte, name string) (Policy, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: the policy is empty", name)
	}
	return FromYAML(doc.Content[0], name)
}

// FromYAML reads a policy from a YAML node, such as the value of a route's
// `policy` key in a Pomerium config.
func FromYAML(n *yaml.Node, name string) (Policy, error) {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", name, n.Line) }
	var rules []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		rules = []*yaml.Node{n}
	case yaml.SequenceNode:
		rules = n.Content
	default:
		return nil, fmt.Errorf("%s: a policy is a rule or a list of rules", at(n))
	}
	var p Policy
	for _, rn := range rules {
		if rn.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: a rule is a mapping with allow and/or deny", at(rn))
		}
		var r Rule
		for i := 0; i+1 < len(rn.Content); i += 2 {
			key, val := rn.Content[i], rn.Content[i+1]
			action, err := actionFromYAML(val, at)
			if err != nil {
				return nil, err
			}
			switch key.Value {
			case "allow":
				r.Allow = action
			case "deny":
				r.Deny = action
			default:
				return nil, fmt.Errorf("%s: unknown action %q (want allow or deny)", at(key), key.Value)
			}
		}
		p = append(p, r)
	}
	return p, nil
}

func actionFromYAML(n *yaml.Node, at func(*yaml.Node) string) (*Action, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: an action holds and, or, not and nor lists", at(n))
	}
	a := new(Action)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Value == "action" {
			continue // ignored, as in Pomerium
		}
		list := a.Operator(key.Value)
		if list == nil {
			return nil, fmt.Errorf("%s: unknown operator %q (want and, or, not or nor)", at(key), key.Value)
		}
		if val.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s: %s takes a list of criteria", at(val), key.Value)
		}
		for _, cn := range val.Content {
			c, err := criterionFromYAML(cn, at)
			if err != nil {
				return nil, err
			}
			*list = append(*list, c)
		}
	}
	return a, nil
}

func criterionFromYAML(n *yaml.Node, at func(*yaml.Node) string) (Criterion, error) {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return Criterion{}, fmt.Errorf("%s: a criterion is a mapping with one key, such as `email: {is: alice@example.com}`", at(n))
	}
	var v any
	if err := n.Content[1].Decode(&v); err != nil {
		return Criterion{}, fmt.Errorf("%s: %v", at(n), err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Criterion{}, fmt.Errorf("%s: %v", at(n), errors.Unwrap(err))
	}
	return Criterion{Name: n.Content[0].Value, Data: data, Pos: at(n)}, nil
}
