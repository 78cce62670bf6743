package authn

import (
	"strconv"
	"strings"
)

// safeReturnURL checks a return URL (sign_in's and sign_out's
// redirect_uri, the return URL kept through a login) and returns the URL to
// redirect to, built from raw exactly as it was checked: never decoded and
// re-encoded, since a browser reads the result and not what net/url made of
// it (issue 11: /.iap/sign_out?redirect_uri=%252F%40evil.example was
// checked decoded, as a path, and sent escaped, as https://host%2F@evil).
//
// It accepts a path ("/...", not "//" or "/\") on the request's host, or an
// https URL whose authority is a plain host name or IP literal with an
// optional port, on the request's port (443 when absent): another port is
// another origin, whatever the host. The host is the request's own or one
// that AllowedRedirectHosts accepts. It refuses everything else:
// user info, percent-escapes and anything but [a-z0-9.-_] in the host,
// other schemes, C0 controls and spaces anywhere (browsers strip or skip
// them), a request Host that is not a host name.
func (a *Authenticator) safeReturnURL(raw, host string) (string, bool) {
	self, ok := canonicalAuthority(host)
	if !ok || raw == "" {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] == 0x7f {
			return "", false
		}
	}
	if raw[0] == '/' {
		if len(raw) > 1 && (raw[1] == '/' || raw[1] == '\\') {
			return "", false
		}
		return "https://" + host + raw, true
	}
	const scheme = "https://"
	if len(raw) < len(scheme) || !strings.EqualFold(raw[:len(scheme)], scheme) {
		return "", false
	}
	rest := raw[len(scheme):]
	// The authority ends where a browser ends it for a special scheme.
	end := strings.IndexAny(rest, "/\\?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if strings.HasPrefix(tail, "\\") {
		return "", false
	}
	target, ok := canonicalAuthority(authority)
	if !ok || portOf(target) != portOf(self) || target != self && !a.cfg.AllowedRedirectHosts(target) {
		return "", false
	}
	return scheme + authority + tail, true
}

// portOf is a canonical authority's port, "" for 443.
func portOf(authority string) string {
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		return authority[i+1:]
	}
	return ""
}

// returnURL is where a browser goes after sign-in or sign-out: raw when
// safeReturnURL accepts it, else the root of the request's host (or of the
// current origin, "/", when the Host header is not a host name).
func (a *Authenticator) returnURL(raw, host string) string {
	if u, ok := a.safeReturnURL(raw, host); ok {
		return u
	}
	if _, ok := canonicalAuthority(host); ok {
		return "https://" + host + "/"
	}
	return "/"
}

// canonicalAuthority checks an https URL's authority: a host name of
// [a-z0-9.-_] (any case) or a bracketed IPv6 literal, then optionally
// ":port" with 1 to 65535. It returns it lowercased, with the port only
// when it is not 443, the form AllowedRedirectHosts is asked about.
// Anything a browser would read differently than it is written (user
// info, escapes, non-ASCII, empty or odd ports) is refused.
func canonicalAuthority(s string) (string, bool) {
	s = strings.ToLower(s)
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 2 {
			return "", false
		}
		for _, c := range s[1:end] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':' || c == '.') {
				return "", false
			}
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" {
			var ok bool
			if port, ok = strings.CutPrefix(port, ":"); !ok {
				return "", false
			}
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
		if host == "" {
			return "", false
		}
		for _, c := range host {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	if port == "" && strings.HasSuffix(s, ":") {
		return "", false
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", false
		}
		if n != 443 {
			host += ":" + port
		}
	}
	return host, true
}
