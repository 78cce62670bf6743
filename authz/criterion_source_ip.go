package authz

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// source_ip matches a client address in any of the given IPs or CIDRs. The
// address is Caddy's client IP: the connection's peer, or the forwarded
// client when the peer is a trusted proxy of the server.
func init() {
	register("source_ip", func(_ string, data json.RawMessage) (matcher, error) {
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
			prefixes = append(prefixes, p.Masked())
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
