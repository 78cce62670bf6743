package authz

import (
	"bytes"
	"encoding/json"
)

// Trace is how a policy decided one request, rule by rule and criterion by
// criterion: what a refusal page shows under a route's show_error_details
// (Pomerium's policy evaluation traces). It holds the policy as written and
// what each criterion made of the request, never the request's own values
// (cookies, tokens, headers).
type Trace struct {
	// Decision is the policy's decision, as Evaluate makes it.
	Decision Decision `json:"-"`
	// Rules are the policy's actions in order: a rule with both allow and
	// deny gives two.
	Rules []RuleTrace `json:"rules"`
}

// RuleTrace is one allow or deny action of a rule.
type RuleTrace struct {
	// Rule is the rule's 1-based place in the policy.
	Rule int `json:"rule"`
	// Action is "allow" or "deny".
	Action string `json:"action"`
	// Matched: one of the action's operators held, so the action applies
	// (a deny refuses, an allow admits unless a deny matched).
	Matched bool `json:"matched"`
	// Criteria are the action's criteria, by operator, in order.
	Criteria []CriterionTrace `json:"criteria"`
}

// CriterionTrace is one criterion and what it made of the request.
type CriterionTrace struct {
	// Operator is the operator it is listed under: and, or, not or nor.
	Operator string `json:"operator"`
	// Criterion is its name as written, such as email or claim/groups.
	Criterion string `json:"criterion"`
	// Data is its data as written, in JSON.
	Data json.RawMessage `json:"data"`
	// Matched: the criterion holds for the request (under not and nor, a
	// criterion that holds counts against its operator).
	Matched bool `json:"matched"`
}

// ruleExplain is one action of the policy, kept for Explain: each
// operator's criteria, each compiled on its own.
type ruleExplain struct {
	rule   int
	action string
	ops    []opExplain
}

type opExplain struct {
	op       string
	criteria []Criterion
	data     []json.RawMessage // each criterion's data, compacted once
	eval     []matcher
}

// Explain decides the request as Evaluate does and says how, evaluating
// every criterion of every rule. It is for refusal pages: it allocates and
// tries everything, so call it only when a trace is to be shown, never on
// a request's normal path.
func (e *Evaluator) Explain(in *Input) Trace {
	t := Trace{Decision: e.Evaluate(in), Rules: make([]RuleTrace, 0, len(e.explain))}
	for _, r := range e.explain {
		rt := RuleTrace{Rule: r.rule, Action: r.action, Criteria: []CriterionTrace{}}
		for _, op := range r.ops {
			matched, failed := 0, 0
			for i, m := range op.eval {
				v := m(in)
				if v {
					matched++
				} else {
					failed++
				}
				rt.Criteria = append(rt.Criteria, CriterionTrace{Operator: op.op, Criterion: op.criteria[i].Name,
					Data: op.data[i], Matched: v})
			}
			var holds bool
			switch op.op {
			case "and":
				holds = failed == 0
			case "or":
				holds = matched > 0
			case "not":
				holds = matched == 0
			case "nor":
				holds = failed > 0
			}
			rt.Matched = rt.Matched || holds
		}
		t.Rules = append(t.Rules, rt)
	}
	return t
}

// compactData is a criterion's data on one line; absent data is true, as
// PPL reads it.
func compactData(data json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(data)) == 0 {
		return json.RawMessage("true")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return json.RawMessage("true")
	}
	return b.Bytes()
}
