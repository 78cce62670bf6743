package pomerium

import (
	"encoding/json"
	"strings"
	"testing"
)

// authorizePolicy returns the policy of the adapted config's one
// iap_authorize, as JSON.
func authorizePolicy(t *testing.T, out []byte) string {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var policy any
	walk(cfg, func(o map[string]any) {
		if o["handler"] == "iap_authorize" {
			policy = o["policy"]
		}
	})
	b, _ := json.Marshal(policy)
	return string(b)
}

const subPolicyRoute = "idp_provider_url: https://idp.example\nidp_client_id: x\nroutes:\n  - from: https://a.example\n    to: http://b\n"

// Pomerium's sub_policies (config.Policy.SubPolicies): their
// allowed_users, allowed_domains and allowed_idp_claims join the route's
// own in its one allow rule (Policy.AllAllowedUsers and the others, read
// by ToPPL), so any of them lets a user in.
func TestSubPoliciesJoinTheRoutesAllowRule(t *testing.T) {
	src := subPolicyRoute + `    allowed_users: [alice@example.com]
    allowed_idp_claims:
      groups: [admins]
    sub_policies:
      - id: ops
        name: Operations
        allowed_users: [bob@example.org]
        allowed_domains: [corp.example]
        allowed_idp_claims:
          groups: [ops]
          email_verified: [true]
      - allowed_users: [carol@example.net]
`
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	want := `[{"allow":{"or":[` +
		`{"user":"alice@example.com"},{"email":"alice@example.com"},` +
		`{"user":"bob@example.org"},{"email":"bob@example.org"},` +
		`{"user":"carol@example.net"},{"email":"carol@example.net"},` +
		`{"domain":"corp.example"},` +
		`{"claim/email_verified":true},{"claim/groups":"admins"},{"claim/groups":"ops"}]}}]`
	if got := authorizePolicy(t, out); got != want {
		t.Errorf("policy\n got %s\nwant %s", got, want)
	}

	// Sub-policies alone open the route to their users.
	out, _, err = adapt(t, subPolicyRoute+"    sub_policies:\n      - allowed_users: [bob@example.org]\n", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := authorizePolicy(t, out), `[{"allow":{"or":[{"user":"bob@example.org"},{"email":"bob@example.org"}]}}]`; got != want {
		t.Errorf("policy\n got %s\nwant %s", got, want)
	}
}

// A sub-policy's rego is evaluated by OPA in Pomerium, and could let users
// in that nothing else here would: ignoring it would change who gets in,
// so it is an error naming its line, which points at source_ppl when the
// sub-policy has one. explanation, remediation and source_ppl do nothing
// here (Pomerium shows the first two for a rego that denied, and keeps
// source_ppl for its console): each is a warning. An unknown key is an
// error, as a typo in a route setting is.
func TestSubPoliciesRefuseRegoAndWarnWhatDoesNothing(t *testing.T) {
	for _, c := range []struct {
		what, yaml string
		err        string
		warnings   []string
	}{
		{"rego is an error naming its line",
			"    sub_policies:\n      - id: x\n        rego:\n          - package pomerium.policy\n",
			"config.yaml:8: sub_policies[0].rego: Rego is not supported (Pomerium evaluates it with OPA; caddy-iap has no Rego): write the rules as PPL in the route's policy", nil},
		{"rego with source_ppl points at it",
			"    sub_policies:\n      - allowed_users: [a@b.c]\n      - source_ppl: '{\"allow\":{\"or\":[{\"email\":{\"is\":\"a@b.c\"}}]}}'\n        rego: [\"package pomerium.policy\\nallow := true\"]\n",
			"config.yaml:9: sub_policies[1].rego: Rego is not supported (Pomerium evaluates it with OPA; caddy-iap has no Rego): move the sub-policy's source_ppl (the PPL this Rego was made from) into the route's policy", nil},
		{"an empty rego list is nothing to evaluate",
			"    sub_policies:\n      - allowed_users: [a@b.c]\n        rego: []\n", "", nil},
		{"rego of empty strings is nothing to evaluate (Pomerium skips them)",
			"    sub_policies:\n      - allowed_users: [a@b.c]\n        rego: [\"\"]\n", "", nil},
		{"an unknown key is an error",
			"    sub_policies:\n      - allowed_user: [a@b.c]\n", `config.yaml:7: sub_policies[0]: unknown key "allowed_user" (did you mean "allowed_users"?)`, nil},
		{"not a list",
			"    sub_policies: {allowed_users: [a@b.c]}\n", "config.yaml:6: sub_policies: a list of sub-policies", nil},
		{"explanation, remediation and source_ppl warn",
			"    sub_policies:\n      - allowed_users: [a@b.c]\n        explanation: no\n        remediation: ask\n        source_ppl: allow\n", "",
			[]string{
				"config.yaml:8: sub_policies[0].explanation is ignored: Pomerium shows it when the sub-policy's Rego denies, and Rego is not supported",
				"config.yaml:9: sub_policies[0].remediation is ignored: Pomerium shows it when the sub-policy's Rego denies, and Rego is not supported",
				"config.yaml:10: sub_policies[0].source_ppl is ignored: Pomerium keeps it for its console and does not evaluate it; put the rules in the route's policy",
			}},
		{"public access makes a sub-policy's users pointless, as in Pomerium",
			"    allow_public_unauthenticated_access: true\n    sub_policies:\n      - allowed_users: [a@b.c]\n", "",
			[]string{"config.yaml:8: sub_policies[0].allowed_users is ignored: the route is open to everyone (allow_public_unauthenticated_access)"}},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, warnings, err := adapt(t, subPolicyRoute+c.yaml, "config.yaml")
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error\n got %v\nwant %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.warnings, "\n") {
				t.Errorf("warnings\n got %q\nwant %q", got, c.warnings)
			}
		})
	}
}
