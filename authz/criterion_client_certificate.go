package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// client_certificate matches a valid client certificate with every given
// condition:
//
//	fingerprint: SHA-256 of the certificate, 64 lower-case hex digits or 32
//	  colon-separated upper-case pairs; one or a list, any may match;
//	spki_hash: base64 SHA-256 of the SubjectPublicKeyInfo; one or a list;
//	san_email, san_dns, san_uri: string matchers, any SAN of that type.
//
// invalid_client_certificate matches a request whose certificate is absent
// or fails verification, on a site that asks for one.
func init() {
	register("client_certificate", func(_ string, data json.RawMessage) (matcher, error) {
		ops, err := operators(data, "an object of fingerprint, spki_hash, san_email, san_dns, san_uri")
		if err != nil {
			return nil, err
		}
		var parts []func(*ClientCert) bool
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			raw := ops[op]
			switch op {
			case "fingerprint", "spki_hash":
				list, err := stringList(raw)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", op, err)
				}
				want, err := decodeHashes(op, list)
				if err != nil {
					return nil, err
				}
				spki := op == "spki_hash"
				parts = append(parts, func(c *ClientCert) bool {
					got := &c.Fingerprint
					if spki {
						got = &c.SPKIHash
					}
					for i := range want {
						if want[i] == *got {
							return true
						}
					}
					return false
				})
			case "san_email", "san_dns", "san_uri":
				m, err := compileStringMatcher(raw)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", op, err)
				}
				field := op
				parts = append(parts, func(c *ClientCert) bool {
					list := c.Emails
					switch field {
					case "san_dns":
						list = c.DNSNames
					case "san_uri":
						list = c.URIs
					}
					for _, s := range list {
						if m(s) {
							return true
						}
					}
					return false
				})
			default:
				return nil, fmt.Errorf("unknown condition %q (known: fingerprint, spki_hash, san_email, san_dns, san_uri)", op)
			}
		}
		return func(in *Input) bool {
			c := in.Cert
			if c == nil || !c.Valid {
				return false
			}
			for _, p := range parts {
				if !p(c) {
					return false
				}
			}
			return true
		}, nil
	})
	boolCriterion("invalid_client_certificate", func(in *Input) bool { return in.Cert != nil && !in.Cert.Valid })
}

var (
	longFingerprint  = regexp.MustCompile(`^[0-9A-F]{2}(:[0-9A-F]{2}){31}$`)
	shortFingerprint = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func decodeHashes(op string, list []string) ([][32]byte, error) {
	out := make([][32]byte, 0, len(list))
	for _, s := range list {
		var b []byte
		var err error
		switch {
		case s == "":
			err = errors.New("must not be empty")
		case op == "spki_hash":
			b, err = base64.StdEncoding.DecodeString(s)
			if err == nil && len(b) != 32 {
				err = errors.New("not a SHA-256 hash")
			}
		case shortFingerprint.MatchString(s):
			b, err = hex.DecodeString(s)
		case longFingerprint.MatchString(s):
			b, err = hex.DecodeString(strings.ReplaceAll(s, ":", ""))
		default:
			err = errors.New("want 64 lower-case hex digits or 32 colon-separated upper-case pairs")
		}
		if err != nil {
			if op == "spki_hash" {
				return nil, fmt.Errorf("spki_hash %q must be a base64-encoded SHA-256 hash: %v", s, err)
			}
			return nil, fmt.Errorf("fingerprint %q: %v", s, err)
		}
		var h [32]byte
		copy(h[:], b)
		if bytes.Equal(h[:], make([]byte, 32)) {
			return nil, fmt.Errorf("%s %q is all zeros", op, s)
		}
		out = append(out, h)
	}
	return out, nil
}
