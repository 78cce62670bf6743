package authz

import (
	"encoding/json"
	"net/http"
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
		{"a rule with no action adds nothing, as in Pomerium", `[{}, {"allow":{"or":[{"accept":true}]}}]`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"a policy of one empty rule has no allow rule", `{}`, Decision{Reason: ReasonNoPolicy}},
		{"an action key is ignored, as in Pomerium", `{"allow":{"action":"allow","or":[{"accept":true}]}}`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"the data of accept is ignored, as in Pomerium: accept: false accepts", `{"allow":{"or":[{"accept":false}]}}`, Decision{Allow: true, Reason: ReasonAllowed}},
		{"the data of reject is ignored too", `{"allow":{"or":[{"reject":false}]}}`, Decision{Reason: ReasonNotAllowed}},
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
		{"an unknown operator", `[{"allow":{"xor":[{"accept":true}]}}]`, `unknown operator "xor"`},
		{"an unknown action", `[{"permit":{"or":[{"accept":true}]}}]`, `unknown field "permit"`},
		{"a criterion with two keys", `[{"allow":{"or":[{"accept":true,"reject":true}]}}]`, `exactly one key, got 2 (accept, reject)`},
		{"an operator that is not a list", `[{"allow":{"or":{"accept":true}}}]`, `or takes a list of criteria`},
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

// What the request path asks of a policy: does it test the user at all
// (NeedsIdentity, NeedsUser), and is this anonymous request to sign in.
func TestNeedsUser(t *testing.T) {
	for _, c := range []struct {
		policy string
		want   bool
	}{
		{"allow: {or: [accept: true]}", false},
		{"allow: {or: [http_path: /x, source_ip: 10.0.0.0/8, client_certificate: {}]}", false},
		{"allow: {or: [authenticated_user: true]}", true},
		{"allow: {or: [user: a]}", true},
		{"allow: {or: [email: a]}", true},
		{"allow: {or: [domain: a]}", true},
		{"allow: {or: [groups: a]}", true},
		{"allow: {or: [claim/x: a]}", true},
		{"- allow: {or: [accept: true]}\n- deny: {not: [email: a]}", true},
	} {
		p, err := Parse([]byte(c.policy), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		e, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.NeedsIdentity() != c.want || e.NeedsUser() != c.want {
			t.Errorf("%s: NeedsIdentity %v, NeedsUser %v, want %v", c.policy, p.NeedsIdentity(), e.NeedsUser(), c.want)
		}
		if d := e.Evaluate(&Input{}); d.NeedsSignIn() && !c.want {
			t.Errorf("%s: %+v asks to sign in", c.policy, d)
		}
	}
}

// Pomerium's parser tests (pkg/policy/parser TestParseJSON, TestParseYAML):
// which documents are policies, and how many rules they hold. Criteria
// names are authz's here, as authz checks them when compiling.
func TestPomeriumParser(t *testing.T) {
	for _, c := range []struct {
		name, src string
		rules     int // Pomerium's rules: one per allow or deny; -1: an error
	}{
		{"empty", `{}`, 0},
		{"allow", `{ "allow": {} }`, 1},
		{"deny", `{ "deny": {} }`, 1},
		{"invalid rule type", `1`, -1},
		{"invalid rule action", `{ "some-other-action": {} }`, -1},
		{"rule array", `[{ "deny": {} }]`, 1},
		{"invalid rule array", `[{ "some-other-action": {} }]`, -1},
		{"invalid rule array type", `[1]`, -1},
		{"logical operators", `{"allow": {"and": [], "or": [], "not": []}}`, 1},
		{"invalid logical operator", `{"allow": {"iff": []}}`, -1},
		{"criteria", `{"allow": {"and": [{"accept": 1}, {"reject": 2}, {"claim/sub": 3}]}}`, 1},
		{"empty criteria", `{"allow": {"and": [{}]}}`, -1},
		{"invalid multiple criteria", `{"allow": {"and": [{"accept": 1, "reject": 1}]}}`, -1},
		{"invalid criteria type", `{"allow": {"and": {"accept": 1}}}`, -1},
		{"invalid criteria array type", `{"allow": {"and": [1]}}`, -1},
		{"valid YAML", "allow:\n  and:\n    - accept: 1\n    - reject: 2\n    - claim/sub: 3\n  or:\n    - accept: 4\ndeny:\n  not:\n    - accept: 5\n", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.src), "p.yaml")
			if err == nil {
				_, err = Compile(p)
			}
			var viaJSON Policy
			jsonErr := json.Unmarshal([]byte(c.src), &viaJSON)
			if c.rules < 0 {
				if err == nil {
					t.Errorf("Parse: no error")
				}
				if jsonErr == nil && strings.HasPrefix(c.src, "{") || strings.HasPrefix(c.src, "[") && jsonErr == nil {
					if _, err := Compile(viaJSON); err == nil {
						t.Errorf("JSON: no error")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			actions := 0
			for _, r := range p {
				if r.Allow != nil {
					actions++
				}
				if r.Deny != nil {
					actions++
				}
			}
			if actions != c.rules {
				t.Errorf("%d rules, want %d", actions, c.rules)
			}
		})
	}
}

// Pomerium's handleResult (authorize/check_response.go) on the results of
// its generated Rego: an anonymous request whose allow or deny result has
// the reason user-unauthenticated is sent to sign in, unless a deny
// matched on a client certificate; reasons are those of the results that
// decided a merge, and not and nor keep them when they invert a result.
func TestSignInAsPomerium(t *testing.T) {
	alice := Input{User: session("u-alice", "alice@example.com", nil)}
	anonBadCert := Input{Cert: &ClientCert{Presented: true}}
	runPomeriumCases(t, []pomeriumCase{
		{name: "anonymous, allowed by accept despite an email criterion", policy: "allow: {or: [email: a@example.com, accept: true]}", want: ReasonAllowed},
		{name: "anonymous, not allowed: sign in", policy: "allow: {or: [email: a@example.com, reject: true]}", want: ReasonUnauthenticated},
		{name: "anonymous, not allowed by a policy without user criteria: refused", policy: "allow: {or: [http_path: /x]}", want: ReasonNotAllowed},
		{name: "signed in, not allowed: refused", policy: "allow: {or: [email: a@example.com]}", in: alice, want: ReasonNotAllowed},
		{name: "a public route with a deny on the user asks the anonymous to sign in", policy: "- allow: {or: [accept: true]}\n- deny: {or: [email: bad@example.com]}", want: ReasonUnauthenticated},
		{name: "the same route lets a signed-in user in", policy: "- allow: {or: [accept: true]}\n- deny: {or: [email: bad@example.com]}", in: alice, want: ReasonAllowed},
		{name: "a deny that matched the anonymous on a non-user criterion, with a user criterion failing in allow: sign in first", policy: "- allow: {or: [authenticated_user: true]}\n- deny: {or: [http_path: /x]}", in: Input{Request: Request{Path: "/x"}}, want: ReasonUnauthenticated},
		{name: "a deny on an invalid certificate comes before signing in", policy: "- allow: {or: [authenticated_user: true]}\n- deny: {or: [invalid_client_certificate: true]}", in: anonBadCert, want: ReasonDenied},
		{name: "a deny whose matching criteria are not the certificate's does not", policy: "- allow: {or: [authenticated_user: true]}\n- deny: {or: [invalid_client_certificate: true, email: bad@example.com]}", in: Input{Cert: &ClientCert{Presented: true, Valid: true}}, want: ReasonUnauthenticated},
		{name: "and: the failing user criterion decides", policy: "allow: {and: [accept: true, domain: example.com]}", want: ReasonUnauthenticated},
		{name: "and: a failing criterion of another kind decides too, and its reason is not the user's", policy: "allow: {and: [reject: true, domain: example.com]}", want: ReasonUnauthenticated},
		{name: "or: a matching criterion hides the failing user criterion", policy: "allow: {or: [cors_preflight: true, domain: example.com]}", in: Input{Request: Request{Method: "OPTIONS", Header: http.Header{"Origin": {"x"}, "Access-Control-Request-Method": {"GET"}}}}, want: ReasonAllowed},
		{name: "not: a user criterion that failed, inverted, still asks to sign in", policy: "allow: {not: [domain: evil.example]}", want: ReasonUnauthenticated},
		{name: "nor: likewise", policy: "allow: {nor: [domain: evil.example, accept: true]}", want: ReasonUnauthenticated},
		{name: "a deny not around a user criterion asks to sign in", policy: "- allow: {or: [accept: true]}\n- deny: {not: [domain: example.com]}", want: ReasonUnauthenticated},
		{name: "a signed-in user outside the domain is denied by it", policy: "- allow: {or: [accept: true]}\n- deny: {not: [domain: example.com]}", in: Input{User: session("u", "u@evil.example", nil)}, want: ReasonDenied},
		{name: "the reasons of one rule's operators merge with those of the other rules", policy: "- allow: {and: [reject: true]}\n- allow: {or: [groups: admins]}", want: ReasonUnauthenticated},
		{name: "an empty policy refuses the anonymous", policy: "[]", want: ReasonNoPolicy},
	})
}
