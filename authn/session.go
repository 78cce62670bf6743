package authn

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Session is a signed-in user, as kept in the session cookie.
type Session struct {
	// ID identifies the session (the assertion's sid).
	ID string `json:"sid"`
	// IdPSessionID is the IdP's session, the ID token's sid claim (OpenID
	// Connect Front- and Back-Channel Logout), when it has one: a
	// back-channel logout token names it (logout.go).
	IdPSessionID string `json:"isid,omitempty"`
	// Subject is the IdP's user id (the ID token's sub).
	Subject string   `json:"sub"`
	Email   string   `json:"email,omitempty"`
	Name    string   `json:"name,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	// Claims are the ID token claims named by ClaimHeaders and KeepClaims.
	Claims map[string]any `json:"claims,omitempty"`
	// Kept names the claims that were to be kept when the session was
	// made (whether the ID token had them or not), so that a claim needed
	// later is never read as absent from a session that did not keep it.
	Kept []string `json:"kept,omitempty"`
	// IDTokenExpiry is when the ID token expires; the session refreshes
	// shortly before.
	IDTokenExpiry time.Time `json:"exp"`
	// IssuedAt is when the user signed in; CookieExpire counts from it.
	IssuedAt     time.Time `json:"iat"`
	RefreshToken string    `json:"rt,omitempty"`
	// RawIDToken is kept for the id_token_hint of sign-out, when the IdP
	// has an end_session_endpoint.
	RawIDToken string `json:"idt,omitempty"`

	// Bearer is true for an identity from an Authorization header rather
	// than a cookie.
	Bearer bool `json:"-"`
	// viaToken: the identity came from a programmatic login token
	// (Bearer is true too).
	viaToken bool
	// Workload names the identity provider (identity_providers) of a
	// workload JWT the identity came from (Bearer is true too); Subject
	// is then "<name>/<sub>", and Claims holds every claim of the token.
	Workload string `json:"-"`
}

// Claim returns one of the user's claims by name: the standard ones and
// those kept for claim headers.
func (s *Session) Claim(name string) (any, bool) {
	if s.Workload != "" && name == "sub" {
		// The token's own sub, as Pomerium's claim/sub; the user ID
		// (user) is "<name>/<sub>".
		v, ok := s.Claims["sub"]
		return v, ok
	}
	switch name {
	case "sub", "user":
		return s.Subject, true
	case "email":
		return s.Email, s.Email != ""
	case "name":
		return s.Name, s.Name != ""
	case "groups":
		return s.Groups, len(s.Groups) > 0
	}
	v, ok := s.Claims[name]
	return v, ok
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sessionEnds is when a session issued at issued reaches cookie_expire:
// its cookie's expiry, and the last moment it is accepted.
func (a *Authenticator) sessionEnds(issued time.Time) time.Time {
	return issued.Add(a.cfg.CookieExpire)
}
