package authn

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// browserTarget is where a browser goes when it follows a Location header:
// the scheme and the host:port, with the scheme's default port filled in.
type browserTarget struct {
	scheme, hostport string
}

// browserNavigate follows the WHATWG URL Standard's basic URL parser
// (https://url.spec.whatwg.org/#concept-basic-url-parser) as far as the
// target's scheme and host go, for a Location resolved against base (an
// https URL). It is written from the standard, not from net/url, so that it
// disagrees with net/url where browsers do: leading and trailing C0
// controls and spaces are stripped, tabs and newlines vanish anywhere, \
// counts as / in special schemes, any number of slashes introduce the
// authority of a special scheme other than the base's, the userinfo ends at
// the last @, the host is percent-decoded, and a host that ends in a number
// is an IPv4 address in any of its legacy spellings.
//
// Simplifications, each conservative for the tests (an error, never a
// wrong host): a non-ASCII host is an error rather than mapped through
// IDNA, and an IPv6 literal is compared as lowercased text.
func browserNavigate(loc, base string) (browserTarget, error) {
	baseT, err := browserNavigate1(base, browserTarget{})
	if err != nil {
		return browserTarget{}, err
	}
	return browserNavigate1(loc, baseT)
}

var errNotNetwork = errors.New("not a network URL (non-special scheme)")

func browserNavigate1(in string, base browserTarget) (browserTarget, error) {
	// Strip leading and trailing C0 control or space; remove all ASCII tab
	// or newline.
	in = strings.TrimFunc(in, func(r rune) bool { return r <= 0x20 })
	in = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, in)

	scheme, rest := "", in
	if len(in) > 0 && isASCIIAlpha(in[0]) {
		i := 1
		for i < len(in) && (isASCIIAlpha(in[i]) || (in[i] >= '0' && in[i] <= '9') || in[i] == '+' || in[i] == '-' || in[i] == '.') {
			i++
		}
		if i < len(in) && in[i] == ':' {
			scheme, rest = strings.ToLower(in[:i]), in[i+1:]
		}
	}
	slash := func(c byte) bool { return c == '/' || c == '\\' }
	switch {
	case scheme == "" && base.scheme == "":
		return browserTarget{}, errors.New("relative URL without a base")
	case scheme == "":
		// Relative state: a path, query or fragment stays on the base's
		// host; two slashes (either kind, special base) start an authority.
		if len(rest) >= 2 && slash(rest[0]) && slash(rest[1]) {
			return authorityTarget(base.scheme, strings.TrimLeft(rest, "/\\"))
		}
		return base, nil
	case !isSpecial(scheme) || scheme == "file":
		return browserTarget{scheme: scheme}, errNotNetwork
	case scheme == base.scheme:
		// Special relative or authority state: "//" (or, through the
		// relative slash state, any two of / and \) starts an authority;
		// anything else is relative to the base.
		if len(rest) >= 2 && slash(rest[0]) && slash(rest[1]) {
			return authorityTarget(scheme, strings.TrimLeft(rest, "/\\"))
		}
		return base, nil
	default:
		// Special authority slashes, then ignore slashes: however many.
		return authorityTarget(scheme, strings.TrimLeft(rest, "/\\"))
	}
}

func isASCIIAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isSpecial(scheme string) bool {
	switch scheme {
	case "http", "https", "ws", "wss", "ftp", "file":
		return true
	}
	return false
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	case "ftp":
		return "21"
	}
	return ""
}

// authorityTarget parses the authority state onwards: the authority ends
// at /, \, ? or #; the host starts after its last @.
func authorityTarget(scheme, s string) (browserTarget, error) {
	if i := strings.IndexAny(s, "/\\?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	hostPart, port := s, ""
	inBrackets := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			inBrackets = true
		case ']':
			inBrackets = false
		case ':':
			if !inBrackets {
				hostPart, port = s[:i], s[i+1:]
				i = len(s)
			}
		}
	}
	if hostPart == "" {
		return browserTarget{}, errors.New("empty host")
	}
	host, err := whatwgHost(hostPart)
	if err != nil {
		return browserTarget{}, err
	}
	if port == "" {
		port = defaultPort(scheme)
	} else {
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return browserTarget{}, errors.New("invalid port")
			}
		}
		digits := strings.TrimLeft(port, "0")
		if digits == "" {
			digits = "0"
		}
		n, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || n > 65535 {
			return browserTarget{}, errors.New("port out of range")
		}
		port = strconv.FormatUint(n, 10)
	}
	return browserTarget{scheme: scheme, hostport: host + ":" + port}, nil
}

// whatwgHost is the host parser for a special URL.
func whatwgHost(in string) (string, error) {
	if strings.HasPrefix(in, "[") {
		if !strings.HasSuffix(in, "]") {
			return "", errors.New("unclosed IPv6 literal")
		}
		return strings.ToLower(in), nil
	}
	domain, err := percentDecode(in)
	if err != nil {
		return "", err
	}
	for i := 0; i < len(domain); i++ {
		if domain[i] >= 0x80 {
			return "", errors.New("non-ASCII host (IDNA not modelled)")
		}
	}
	domain = strings.ToLower(domain)
	if domain == "" {
		return "", errors.New("empty host")
	}
	if strings.ContainsAny(domain, "\x00\t\n\r #/:<>?@[\\]^|%\x7f") || strings.ContainsFunc(domain, func(r rune) bool { return r < 0x20 }) {
		return "", errors.New("forbidden domain code point")
	}
	if endsInANumber(domain) {
		return ipv4(domain)
	}
	return domain, nil
}

// percentDecode decodes %XX; a % not followed by two hex digits stays.
func percentDecode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}

func endsInANumber(s string) bool {
	parts := strings.Split(s, ".")
	if parts[len(parts)-1] == "" {
		if len(parts) == 1 {
			return false
		}
		parts = parts[:len(parts)-1]
	}
	last := parts[len(parts)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, err := ipv4Number(last)
	return err == nil
}

func ipv4Number(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty IPv4 part")
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, base, 64)
}

// ipv4 is the IPv4 parser: 1 to 4 parts, the last filling the rest.
func ipv4(s string) (string, error) {
	parts := strings.Split(s, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return "", errors.New("IPv4 with more than four parts")
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		n, err := ipv4Number(p)
		if err != nil {
			return "", errors.New("invalid IPv4 part")
		}
		nums[i] = n
	}
	for _, n := range nums[:len(nums)-1] {
		if n > 255 {
			return "", errors.New("IPv4 part over 255")
		}
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return "", errors.New("IPv4 last part too large")
	}
	ip := last
	for i, n := range nums[:len(nums)-1] {
		ip += n << (8 * (3 - i))
	}
	return strconv.Itoa(int(ip>>24)) + "." + strconv.Itoa(int(ip>>16&255)) + "." + strconv.Itoa(int(ip>>8&255)) + "." + strconv.Itoa(int(ip&255)), nil
}

// The extractor itself agrees with what browsers are documented to do on
// the tricks the fuzz target relies on it to see through.
func TestBrowserNavigate(t *testing.T) {
	const base = "https://app.example.com/.iap/sign_out"
	for _, c := range []struct {
		name, loc, want string
	}{
		{"a path stays on the base host", "/x", "https app.example.com:443"},
		{"an escaped slash and at sign in the host put the real host after them", "https://app.example.com%2F@evil.example", "https evil.example:443"},
		{"the userinfo ends at the last at sign", "https://a@b@evil.example/", "https evil.example:443"},
		{"backslashes are slashes for https", "\\\\evil.example", "https evil.example:443"},
		{"a tab inside the slashes vanishes", "/\t/evil.example", "https evil.example:443"},
		{"leading spaces and controls are stripped", " \x01//evil.example", "https evil.example:443"},
		{"https with one slash is relative to an https base", "https:/evil.example", "https app.example.com:443"},
		{"http with no slash at all has an authority", "http:evil.example", "http evil.example:80"},
		{"the default port is the same origin", "https://APP.example.com:443/", "https app.example.com:443"},
		{"leading zeros in a port are dropped", "https://app.example.com:08443/", "https app.example.com:8443"},
		{"a percent-encoded host is decoded", "https://ev%69l.example/", "https evil.example:443"},
		{"a hexadecimal IPv4 address is an address", "https://0x7f.1/", "https 127.0.0.1:443"},
		{"a question mark ends the authority", "https://app.example.com?@evil.example", "https app.example.com:443"},
	} {
		got, err := browserNavigate(c.loc, base)
		if err != nil || got.scheme+" "+got.hostport != c.want {
			t.Errorf("%s: %q -> %+v, %v; want %s", c.name, c.loc, got, err, c.want)
		}
	}
	for _, loc := range []string{"javascript:alert(1)", "https://exa%00mple.com/", "https://app.example.com:99999/"} {
		if got, err := browserNavigate(loc, base); err == nil {
			t.Errorf("%q -> %+v, want an error", loc, got)
		}
	}
}
