package module

import (
	"errors"
	"net/url"
	"strings"
)

// errAmbiguousPath is a path whose meaning depends on who decodes it.
var errAmbiguousPath = errors.New("ambiguous path")

// normalizePath makes the path that policies decide on the path that the
// upstream is sent, as Envoy's normalize_path and merge_slashes do for
// Pomerium: it removes dot segments (RFC 3986 5.2.4) and merges repeated
// slashes, in place, in both u.Path and the escaped form the proxy sends
// (u.RawPath). It refuses, with errAmbiguousPath, a path whose meaning
// depends on decoding or on the upstream's parser:
//   - an encoded slash or backslash (%2F, %5C), or an encoded NUL (%00);
//   - a dot segment written with an encoded dot (%2E, %2e.);
//   - a dot segment followed by a path parameter (..;x, as Tomcat reads
//     it).
//
// Other escapes are unambiguous once these are gone, so they are kept as
// the client wrote them. Paths that do not start with a slash (OPTIONS *)
// are left alone.
func normalizePath(u *url.URL) error {
	raw := u.EscapedPath()
	if !strings.HasPrefix(raw, "/") {
		return nil
	}
	if !strings.ContainsAny(raw, "%;") && !strings.Contains(raw, "//") && !strings.Contains(raw, "/.") {
		return nil // the common case: nothing to clean, nothing to decode
	}
	if strings.Contains(raw, "%") && hasAmbiguousEscape(raw) {
		return errAmbiguousPath
	}
	clean, changed, err := removeDotSegments(raw)
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	path, err := url.PathUnescape(clean)
	if err != nil {
		return errAmbiguousPath
	}
	u.Path, u.RawPath = path, clean
	if u.EscapedPath() != clean {
		u.RawPath = "" // clean is the default escaping of path
	}
	return nil
}

// hasAmbiguousEscape reports an escape that decodes to a separator or a NUL.
func hasAmbiguousEscape(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] != '%' {
			continue
		}
		switch strings.ToLower(raw[i+1 : i+3]) {
		case "2f", "5c", "00":
			return true
		}
	}
	return false
}

// removeDotSegments works on the escaped path, segment by segment: empty
// segments (from //) and "." are dropped, ".." drops the segment before
// it. A path that named a directory (a trailing slash, or a last segment
// "." or "..") keeps its trailing slash.
func removeDotSegments(raw string) (clean string, changed bool, err error) {
	segs := strings.Split(raw[1:], "/")
	out := make([]string, 0, len(segs))
	dir := false
	for i, seg := range segs {
		last := i == len(segs)-1
		dot := dotSegment(seg)
		switch {
		case dot == "ambiguous":
			return "", false, errAmbiguousPath
		case seg == "":
			changed = changed || !last
			dir = last
			continue
		case dot == ".":
			changed = true
		case dot == "..":
			changed = true
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
			dir = false
			continue
		}
		dir = last
	}
	if !changed {
		return raw, false, nil
	}
	clean = "/" + strings.Join(out, "/")
	if dir && len(out) > 0 {
		clean += "/"
	}
	return clean, clean != raw, nil
}

// dotSegment classifies a raw segment: "." or ".." when it is one, as
// written; "ambiguous" when it is one only once decoded (%2e) or once a
// path parameter is cut off (..;x); "" otherwise.
func dotSegment(seg string) string {
	if seg == "." || seg == ".." {
		return seg
	}
	name, _, param := strings.Cut(seg, ";")
	if len(name) > len("%2e%2e") || !param && !strings.Contains(name, "%") {
		return ""
	}
	if decoded := strings.ReplaceAll(strings.ReplaceAll(name, "%2e", "."), "%2E", "."); decoded == "." || decoded == ".." {
		if param || decoded != name {
			return "ambiguous"
		}
	}
	return ""
}
