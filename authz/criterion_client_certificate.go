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
//	san_email, san_dns, san_uri: string matchers over the SANs of that
//	  type, each operator matched by any one SAN (not_in: by none).
//
// `client_certificate: {}` matches any valid certificate. Pomerium does not
// ask for a valid one: under `enforcement: policy` an untrusted certificate
// with the right SAN passes there.
//
// invalid_client_certificate matches a request whose certificate is absent
// or fails verification, on a site that asks for one.
func init() {
	sanSyntax := &stringSyntax
	register(CriterionInfo{Name: "client_certificate", Syntax: Syntax{Keys: []Key{
		{Name: "fingerprint", Value: ListValue, Example: "17859273e8a980631d367b2d5a6a6635412b0f22835f69e47b3f65624546a704"},
		{Name: "spki_hash", Value: ListValue, Example: "FsDbM0rUYIiL3V339eIKqiz6HPSB+Pz2WeAWhqlqh8U="},
		{Name: "san_email", Value: MatcherValue, Sub: sanSyntax, Example: "alice@example.com"},
		{Name: "san_dns", Value: MatcherValue, Sub: sanSyntax, Example: "laptop.corp.example"},
		{Name: "san_uri", Value: MatcherValue, Sub: sanSyntax, Example: "spiffe://example.com/alice"},
	}}}, compileClientCertificate)
	flagCriterion("invalid_client_certificate", false, func(in *Input) bool {
		return in.Cert != nil && !in.Cert.Valid
	}).certReason = true
}

func compileClientCertificate(_ string, data json.RawMessage) (matcher, error) {
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
			m, err := compileSANMatcher(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", op, err)
			}
			field := op
			parts = append(parts, func(c *ClientCert) bool {
				switch field {
				case "san_dns":
					return m(c.DNSNames)
				case "san_uri":
					return m(c.URIs)
				}
				return m(c.Emails)
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
}

// compileSANMatcher compiles a string matcher over a list of SANs, as
// Pomerium's Rego reads it: each operator holds when some SAN satisfies it
// (not when some SAN differs), except not_in, which holds when no SAN is
// in the list. Two operators may be satisfied by two different SANs.
func compileSANMatcher(data json.RawMessage) (func([]string) bool, error) {
	if len(data) > 0 && data[0] == '"' {
		data = json.RawMessage(`{"is":` + string(data) + `}`)
	}
	ops, err := operators(data, "a string, or an object of "+keyNames(stringOperators))
	if err != nil {
		return nil, err
	}
	var parts []func([]string) bool
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		if _, ok := stringSyntax.Key(op); !ok {
			return nil, fmt.Errorf("unknown string operator %q (known: %s)", op, keyNames(stringOperators))
		}
		raw, negate := ops[op], op == "not_in"
		if negate {
			op = "in"
		}
		m, err := compileStringMatcher(json.RawMessage(`{"`+op+`":`+string(raw)+`}`), nil)
		if err != nil {
			return nil, err
		}
		parts = append(parts, func(sans []string) bool { return slices.ContainsFunc(sans, m) != negate })
	}
	return func(sans []string) bool {
		for _, p := range parts {
			if !p(sans) {
				return false
			}
		}
		return true
	}, nil
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
