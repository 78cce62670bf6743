package authn

import "slices"

// standardClaim reports whether a claim is one every session has fields
// for (sub, email, name, the groups), rather than one kept on demand.
func (a *Authenticator) standardClaim(name string) bool {
	switch name {
	case "sub", "user", "email", "name", "groups", a.cfg.GroupsClaim:
		return true
	}
	return false
}

// unkeptClaim returns a claim that sessions are now to keep (ClaimHeaders,
// KeepClaims) and s did not when it was made, or "" when s kept them all.
// A claim the ID token did not have counts as kept: the session knows it
// is absent.
func (a *Authenticator) unkeptClaim(s *Session) string {
	a.keepMu.RLock()
	defer a.keepMu.RUnlock()
	for claim := range a.keep {
		if !a.standardClaim(claim) && !slices.Contains(s.Kept, claim) {
			return claim
		}
	}
	return ""
}
