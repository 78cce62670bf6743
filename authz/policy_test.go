package authz

import (
	"encoding/json"
	"strings"
	"testing"
)

func decide(t *testing.T, src string) Decision {
	t.Helper()
	var p Policy
	if err := json.Unmarshal([]byte(src), &p); err != nil {
		t.Fatal(err)
	}
	e, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return e.Evaluate(&Input{})
}

func TestEvaluation(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy string
		want   Decision
	}{
		{"no rules deny everyone", `[]`, Decision{Reason: ReasonNoPolicy}},
		{"a single rule object is a policy", `{"allow":{"or":[{"accept":true}]}}`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"accept allows", `[{"allow":{"or":[{"accept":true}]}}]`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"deny wins over allow", `[{"allow":{"or":[{"accept":true}]},"deny":{"or":[{"accept":true}]}}]`, Decision{Reason: ReasonDenied}},
		{"a deny in another rule wins too", `[{"allow":{"or":[{"accept":true}]}},{"deny":{"and":[{"accept":true}]}}]`, Decision{Reason: ReasonDenied}},
		{"and needs every criterion", `[{"allow":{"and":[{"accept":true},{"reject":true}]}}]`, Decision{Reason: ReasonNotAllowed}},
		{"or needs one criterion", `[{"allow":{"or":[{"reject":true},{"accept":true}]}}]`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"not holds when no criterion matches", `[{"allow":{"not":[{"reject":true},{"reject":true}]}}]`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"not fails when any criterion matches", `[{"allow":{"not":[{"reject":true},{"accept":true}]}}]`, Decision{Reason: ReasonNotAllowed}},
		{"nor holds when one criterion does not match", `[{"allow":{"nor":[{"accept":true},{"reject":true}]}}]`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"nor fails when every criterion matches", `[{"allow":{"nor":[{"accept":true},{"accept":true}]}}]`, Decision{Reason: ReasonNotAllowed}},
		{"any one operator of an action is enough, as in Pomerium", `[{"allow":{"or":[{"accept":true}],"and":[{"reject":true}]}}]`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"an empty operator is no condition", `[{"allow":{"or":[],"and":[{"accept":true}]}}]`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"an action with no operator never matches", `[{"allow":{}}]`, Decision{Reason: ReasonNotAllowed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decide(t, c.policy); got.Allow != c.want.Allow || got.Reason != c.want.Reason {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestBadPoliciesAreErrors(t *testing.T) {
	for _, c := range []struct{ name, policy, want string }{
		{"an unknown criterion", `[{"allow":{"or":[{"emial":"a@b"}]}}]`, `rule 1: allow: or[0]: unknown criterion "emial"`},
		{"an unknown operator", `[{"allow":{"xor":[{"accept":true}]}}]`, `unknown field "xor"`},
		{"an unknown action", `[{"permit":{"or":[{"accept":true}]}}]`, `unknown field "permit"`},
		{"a criterion with two keys", `[{"allow":{"or":[{"accept":true,"reject":true}]}}]`, `exactly one key, got 2 (accept, reject)`},
		{"accept: false", `[{"allow":{"or":[{"accept":false}]}}]`, `criterion "accept": expected true, got false`},
		{"a rule with no action", `[{}]`, `rule 1: has neither allow nor deny`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p Policy
			err := json.Unmarshal([]byte(c.policy), &p)
			if err == nil {
				_, err = Compile(p)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestPublicAccessRoundTrips(t *testing.T) {
	b, err := json.Marshal(PublicAccess())
	if err != nil || string(b) != `[{"allow":{"or":[{"accept":true}]}}]` {
		t.Fatalf("PublicAccess() = %s, %v", b, err)
	}
}
