package authz

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// source_ip matches a client address in any of the given IPs or CIDRs (one,
// or a list). The address is Caddy's client IP: the connection's peer, or
// the forwarded client when the peer is a trusted proxy of the server. An
// IPv4 client and its IPv4-mapped IPv6 form (::ffff:10.1.2.3) are the same
// client, whichever form the policy or the request uses; other IPv6
// ranges (::/0) hold no IPv4 client, as in Pomerium.
func init() {
	register(CriterionInfo{Name: "source_ip", Syntax: Syntax{Bare: OneOrList, BareExample: "10.0.0.0/8"}},
		func(_ string, data json.RawMessage) (matcher, error) {
			list, err := stringList(data)
			if err != nil {
				return nil, err
			}
			prefixes := make([]netip.Prefix, 0, len(list))
			for _, s := range list {
				var p netip.Prefix
				if strings.Contains(s, "/") {
					p, err = netip.ParsePrefix(s)
				} else {
					var a netip.Addr
					a, err = netip.ParseAddr(s)
					p = netip.PrefixFrom(a, a.BitLen())
				}
				if err != nil {
					return nil, fmt.Errorf("%q is not an IP or CIDR", s)
				}
				prefixes = append(prefixes, unmapPrefix(p.Masked()))
			}
			return func(in *Input) bool {
				ip := in.Request.ClientIP.Unmap()
				for _, p := range prefixes {
					if p.Contains(ip) {
						return true
					}
				}
				return false
			}, nil
		})
}

// unmapPrefix writes an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) as
// the IPv4 prefix it stands for (10.0.0.0/8).
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}
