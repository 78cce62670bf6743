package pomerium

import (
	"fmt"
	"strings"
)

// issuerFormat reads a jwt_issuer_format as Pomerium does: hostOnly or uri
// (also the enum's names, IssuerHostOnly and IssuerURI), case aside.
func issuerFormat(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "hostonly", "issuerhostonly":
		return "", nil
	case "uri", "issueruri":
		return "uri", nil
	}
	return "", fmt.Errorf("jwt_issuer_format %q: want hostOnly or uri", v)
}
