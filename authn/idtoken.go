package authn

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// notAnIDToken refuses a verified bearer JWT (right issuer, audience this
// client, signature, expiry) that says it is not an ID token.
//
// What can be told from the token alone, for any IdP:
//
//   - An explicit JWT type (the header's typ, RFC 8725 section 3.11)
//     other than plain JWT or JOSE names another profile: at+jwt for
//     RFC 9068 access tokens, logout+jwt for back-channel logout tokens,
//     secevent+jwt for security event tokens. OpenID Connect gives ID
//     tokens no explicit type, so a token that declares one is not one.
//   - An events claim makes a security event token (RFC 8417), such as a
//     back-channel logout token, whatever its typ.
//
// What cannot: an IdP's untyped JWT access token whose audience is this
// client. Dex mints its access tokens with the very function that mints ID
// tokens (server/oauth2.go: newAccessToken calls newIDToken), with the same
// claims, audience, nonce and lifetime, no typ, and an at_hash over a
// random value where the ID token has one over the access token; Dex's own
// introspection calls both "access_token". No rule on the token alone
// separates them, and guessing from claims one IdP happens to use would
// refuse real ID tokens of another, so such access tokens are still
// accepted, carrying the same identity as the ID token issued with them.
func notAnIDToken(raw string, tok *oidc.IDToken) error {
	typ, declared, err := jwtType(raw)
	if err != nil {
		return fmt.Errorf("the token's header: %w", err)
	}
	if declared != nil && typ != "jwt" && typ != "jose" {
		return fmt.Errorf("the token is typed %q, not a plain JWT as ID tokens are", *declared)
	}
	var c struct {
		Events json.RawMessage `json:"events"`
	}
	if err := tok.Claims(&c); err != nil {
		return err
	}
	if c.Events != nil {
		return errors.New("the token has an events claim: it is a security event token (such as a logout token), not an ID token")
	}
	return nil
}

// jwtType reads the typ a JWT's header declares: as written (nil when it
// declares none), and lowercased without an "application/" prefix, for
// comparing. ID tokens and logout tokens are both checked with it.
func jwtType(raw string) (typ string, declared *string, err error) {
	header, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return "", nil, err
	}
	var h struct {
		Typ *string `json:"typ"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", nil, err
	}
	if h.Typ == nil {
		return "", nil, nil
	}
	return strings.TrimPrefix(strings.ToLower(*h.Typ), "application/"), h.Typ, nil
}
