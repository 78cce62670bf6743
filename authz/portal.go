package authz

import "strings"

// portalCriteria are the criteria the routes portal tests, as Pomerium's
// portal.CheckRouteAccess does; it ignores every other criterion.
var portalCriteria = map[string]bool{"accept": true, "authenticated_user": true,
	"domain": true, "email": true, "groups": true, "user": true}

// addPortal keeps the criteria of an allow action that the routes portal
// tests. As in Pomerium, an action with a not or a nor, or an and of more
// than one criterion, is too complex to tell and is left out; of the
// rest, the criteria under or and and are kept.
func (e *Evaluator) addPortal(a Action, ops []opExplain) {
	if len(a.Not) > 0 || len(a.Nor) > 0 || len(a.And) > 1 {
		return
	}
	for _, op := range ops {
		if op.op != "or" && op.op != "and" {
			continue
		}
		for i, c := range op.criteria {
			name, _, _ := strings.Cut(c.Name, "/")
			if !portalCriteria[name] {
				continue
			}
			if name == "accept" {
				e.portalAll = true
			}
			e.portal = append(e.portal, op.eval[i])
		}
	}
}

// Lists reports whether the routes portal lists a route with this policy
// to the user (nil: anonymous), by Pomerium's rules
// (portal.CheckRouteAccess): an allow rule with accept lists it to
// everyone; one whose authenticated_user, domain, email, groups or user
// criterion holds for the signed-in user lists it to them. Deny rules,
// other criteria and rules with not, nor or an and of several criteria
// are not looked at, so a listed route may still refuse the user (a deny
// rule, a path), and a route that admits the user only through such a
// rule is not listed. Unlike Pomerium, a matcher is read as the policy
// reads it (in, not_in, several operators that must all hold).
func (e *Evaluator) Lists(u *User) bool {
	if e.portalAll {
		return true
	}
	if u == nil {
		return false
	}
	in := Input{User: u}
	for _, m := range e.portal {
		if m(&in) {
			return true
		}
	}
	return false
}
