package authz

import (
	"net/netip"
	"testing"
)

// Pomerium's TestSourceIPs.
func TestPomeriumSourceIP(t *testing.T) {
	from := func(ip string) Input { return Input{Request: Request{ClientIP: netip.MustParseAddr(ip)}} }
	policy := func(data string) string { return "allow:\n  and:\n    - source_ip: " + data + "\n" }
	list := "\n        - \"10.0.0.1\"\n        - \"10.0.0.2\"\n        - \"10.0.0.3\""
	runPomeriumCases(t, []pomeriumCase{
		{name: "single IPv4 match", policy: policy(`"1.2.3.4"`), in: from("1.2.3.4"), want: ReasonAllowed},
		{name: "single IPv4 no match", policy: policy(`"1.2.3.4"`), in: from("1.2.3.5"), want: ReasonNotAllowed},
		{name: "IPv4 range match", policy: policy(`"192.168.1.1/24"`), in: from("192.168.1.200"), want: ReasonAllowed},
		{name: "IPv4 range no match", policy: policy(`"192.168.1.1/24"`), in: from("192.168.2.1"), want: ReasonNotAllowed},
		{name: "single IPv6 match", policy: policy(`"2001:db8::1"`), in: from("2001:db8::1"), want: ReasonAllowed},
		{name: "single IPv6 no match", policy: policy(`"2001:db8::1"`), in: from("2001:db8::2"), want: ReasonNotAllowed},
		{name: "IPv6 range match", policy: policy(`"2001:db8::/32"`), in: from("2001:db8:1:2:3:4:5:6"), want: ReasonAllowed},
		{name: "IPv6 range no match", policy: policy(`"2001:db8::/32"`), in: from("2001:ffff:1:2:3:4:5:6"), want: ReasonNotAllowed},
		{name: "list of IPs match", policy: policy(list), in: from("10.0.0.2"), want: ReasonAllowed},
		{name: "list of IPs no match", policy: policy(list), in: from("10.0.0.4"), want: ReasonNotAllowed},
		{name: "IPv4-mapped IPv6 range", policy: policy(`"::ffff:10.0.0.0/104"`), in: from("10.1.2.3"), want: ReasonAllowed},
		{name: "IPv4-mapped IPv6", policy: policy(`"::ffff:1.2.3.4"`), in: from("1.2.3.4"), want: ReasonAllowed},
		{name: "invalid IP address", policy: policy("not-an-ip-address"), wantErr: `"not-an-ip-address" is not an IP or CIDR`},
		{name: "invalid input type", policy: policy("\n        key: value"), wantErr: "expected a string or a list of strings"},
		{name: "invalid list element type", policy: policy("\n        - key: value"), wantErr: "expected a string or a list of strings"},
		// The other way round, and what net.IPNet.Contains (OPA's
		// net.cidr_contains_matches) says of IPv6 ranges.
		{name: "an IPv4-mapped client in an IPv4 range", policy: policy(`"10.0.0.0/8"`), in: from("::ffff:10.1.2.3"), want: ReasonAllowed},
		{name: "an IPv4 client is in no other IPv6 range", policy: policy(`"::/0"`), in: from("10.1.2.3"), want: ReasonNotAllowed},
	})
}
