package pomerium

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/module"
)

// subPolicyKeys are the keys of Pomerium's config.SubPolicy.
var subPolicyKeys = []knownSetting{
	{name: "id"}, {name: "name"}, {name: "allowed_users"}, {name: "allowed_domains"}, {name: "allowed_idp_claims"},
	{name: "rego"}, {name: "source_ppl"}, {name: "explanation"}, {name: "remediation"},
}

// subPolicies reads a route's sub_policies into r's shortcuts, as Pomerium
// does (Policy.AllAllowedUsers, AllAllowedDomains and AllAllowedIDPClaims,
// which ToPPL puts in the route's one allow rule): each sub-policy's
// allowed_users, allowed_domains and allowed_idp_claims let users in, as
// the route's own do.
//
// A sub-policy's rego is evaluated by OPA in Pomerium, each script's allow
// and deny OR-ed into the route's decision (authorize/evaluator
// NewPolicyEvaluator): there is no Rego here, and ignoring it would change
// who gets in, so a non-empty rego is an error. id and name label the
// sub-policy (in Pomerium's traces and console): nothing to do.
// explanation and remediation are shown when its rego denies, and
// source_ppl is the console's source of that rego, never evaluated: each
// is a warning.
func (c *converter) subPolicies(n *yaml.Node, r *module.Route) error {
	if n.Kind != yaml.SequenceNode {
		return c.errf(n, "sub_policies: a list of sub-policies")
	}
	for i, sp := range n.Content {
		at := fmt.Sprintf("sub_policies[%d]", i)
		if sp.Kind != yaml.MappingNode {
			return c.errf(sp, "%s: a mapping with allowed_users, allowed_domains or allowed_idp_claims", at)
		}
		fields, keys := map[string]*yaml.Node{}, map[string]*yaml.Node{}
		for _, kv := range pairs(sp) {
			key := kv[0].Value
			if _, ok := lookupSetting(subPolicyKeys, key); !ok {
				return c.errf(kv[0], "%s: unknown key %q%s", at, key, didYouMean(key, subPolicyKeys))
			}
			fields[key], keys[key] = kv[1], kv[0]
		}
		if v := fields["rego"]; v != nil {
			scripts, err := c.strings(v)
			if err != nil {
				return err
			}
			if strings.Join(scripts, "") != "" {
				fix := "write the rules as PPL in the route's policy"
				if s := fields["source_ppl"]; s != nil && strings.TrimSpace(s.Value) != "" {
					fix = "move the sub-policy's source_ppl (the PPL this Rego was made from) into the route's policy"
				}
				return c.errf(keys["rego"], "%s.rego: Rego is not supported (Pomerium evaluates it with OPA; caddy-iap has no Rego): %s", at, fix)
			}
		}
		for _, key := range []string{"explanation", "remediation", "source_ppl"} {
			v := fields[key]
			if v == nil || v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) == "" {
				continue
			}
			why := "Pomerium shows it when the sub-policy's Rego denies, and Rego is not supported"
			if key == "source_ppl" {
				why = "Pomerium keeps it for its console and does not evaluate it; put the rules in the route's policy"
			}
			c.warn(keys[key], "%s.%s is ignored: %s", at, key, why)
		}
		for _, key := range []string{"id", "name"} {
			if v := fields[key]; v != nil {
				if _, err := c.str(v); err != nil {
					return err
				}
			}
		}

		var users, domains []string
		if v := fields["allowed_users"]; v != nil {
			var err error
			if users, err = c.strings(v); err != nil {
				return err
			}
		}
		if v := fields["allowed_domains"]; v != nil {
			var err error
			if domains, err = c.strings(v); err != nil {
				return err
			}
		}
		if r.AllowPublicUnauthenticatedAccess {
			// Pomerium lets these through (it checks only the route's own
			// lists) and they change nothing: the route admits everyone.
			for _, key := range []string{"allowed_users", "allowed_domains"} {
				if v := fields[key]; v != nil && len(v.Content)+len(v.Value) > 0 {
					c.warn(keys[key], "%s.%s is ignored: the route is open to everyone (allow_public_unauthenticated_access)", at, key)
				}
			}
			users, domains = nil, nil
		}
		r.AllowedUsers = append(r.AllowedUsers, users...)
		r.AllowedDomains = append(r.AllowedDomains, domains...)
		if v := fields["allowed_idp_claims"]; v != nil {
			var claims map[string][]any
			if err := v.Decode(&claims); err != nil {
				return c.errf(v, "%s.allowed_idp_claims: a mapping of claim names to lists of values", at)
			}
			if r.AllowedIDPClaims == nil {
				r.AllowedIDPClaims = map[string][]any{}
			}
			for k, vals := range claims {
				r.AllowedIDPClaims[k] = append(r.AllowedIDPClaims[k], vals...)
			}
		}
	}
	return nil
}
