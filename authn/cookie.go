package authn

import (
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cookie values are sealed with AES-256-GCM under a key derived from
// cookie_secret with HKDF-SHA256; the cookie's name is the associated data,
// so a value cannot move from one cookie to another. The payload is JSON,
// deflated when over compressAbove bytes (a one-byte tag says which), and
// the result base64url-encoded with a version prefix.
//
// A value over chunkSize is split over <name>_0 .. <name>_N and rejoined.
// chunkSize keeps each cookie, with its name and attributes, under the
// 4096 bytes browsers store per cookie; the jar's budget (Config.
// CookieBudget) bounds all of them together.

const (
	cookieVersion = "v1."
	chunkSize     = 3500
	maxChunks     = 16
	compressAbove = 1024
	tagJSON       = 'j'
	tagDeflate    = 'z'
)

var flateReaders = sync.Pool{New: func() any { return flate.NewReader(nil) }}

// ErrSessionTooLarge is returned for a session whose cookies would take
// more than the cookie budget: it is not set, since a browser that sends
// more than the server's header limit gets 431 on every request until the
// cookie expires.
var ErrSessionTooLarge = errors.New("session too large for the cookie budget")

// ErrCookie is returned for a cookie that is absent, tampered with,
// truncated, too large, or sealed under another secret.
var ErrCookie = errors.New("invalid cookie")

// errNotAuthentic is a well-formed value that does not open under a key:
// sealed under another secret, or altered.
var errNotAuthentic = fmt.Errorf("%w: does not authenticate (sealed under another cookie_secret, or tampered with)", ErrCookie)

type codec struct {
	aead cipher.AEAD
}

func newCodec(secret []byte, purpose string) (*codec, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, "caddy-iap "+purpose, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &codec{aead: aead}, nil
}

func (c *codec) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	payload := append([]byte{tagJSON}, plain...)
	if len(plain) > compressAbove {
		var buf bytes.Buffer
		buf.WriteByte(tagDeflate)
		zw, _ := flate.NewWriter(&buf, flate.BestCompression)
		zw.Write(plain)
		zw.Close()
		payload = buf.Bytes()
	}
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := c.aead.Seal(nonce, nonce, payload, []byte(name))
	return cookieVersion + base64.RawURLEncoding.EncodeToString(sealed), nil
}

func (c *codec) open(name, value string, v any) error {
	rest, ok := strings.CutPrefix(value, cookieVersion)
	if !ok {
		return fmt.Errorf("%w: unknown format", ErrCookie)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(sealed) < c.aead.NonceSize() {
		return fmt.Errorf("%w: malformed", ErrCookie)
	}
	ns := c.aead.NonceSize()
	payload, err := c.aead.Open(sealed[ns:ns], sealed[:ns], sealed[ns:], []byte(name))
	if err != nil || len(payload) == 0 {
		return errNotAuthentic
	}
	plain := payload[1:]
	switch payload[0] {
	case tagJSON:
	case tagDeflate:
		zr := flateReaders.Get().(io.ReadCloser)
		defer flateReaders.Put(zr)
		_ = zr.(flate.Resetter).Reset(bytes.NewReader(plain), nil)
		if plain, err = io.ReadAll(io.LimitReader(zr, 1<<20)); err != nil {
			return fmt.Errorf("%w: %v", ErrCookie, err)
		}
	default:
		return fmt.Errorf("%w: unknown payload", ErrCookie)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%w: %v", ErrCookie, err)
	}
	return nil
}

// codecs seal under the current cookie_secret's key (the first) and open
// under any of them: the current one, then the previous ones, so that a
// rotation of cookie_secret signs nobody out.
type codecs []*codec

func newCodecs(current []byte, previous [][]byte, purpose string) (codecs, error) {
	var cs codecs
	for _, secret := range append([][]byte{current}, previous...) {
		c, err := newCodec(secret, purpose)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func (cs codecs) seal(name string, v any) (string, error) { return cs[0].seal(name, v) }

// open opens a value sealed under any of the secrets; stale reports that
// it was a previous one, so the value should be sealed again.
func (cs codecs) open(name, value string, v any) (stale bool, err error) {
	for i, c := range cs {
		err = c.open(name, value, v)
		if err == nil {
			return i > 0, nil
		}
		if !errors.Is(err, errNotAuthentic) {
			return false, err // malformed: the same under every key
		}
	}
	if len(cs) > 1 {
		return false, fmt.Errorf("%w: does not authenticate under cookie_secret or any previous cookie secret "+
			"(sealed under a secret since removed from the list, or tampered with)", ErrCookie)
	}
	return false, err
}

// jar reads and writes one logical cookie, chunked when large.
type jar struct {
	name     string
	domain   string
	sameSite http.SameSite
	// budget bounds what write adds to a request's Cookie header (names,
	// values and separators); 0 means no bound.
	budget int
}

func (j jar) cookie(name, value string, maxAge int, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", Domain: j.domain,
		MaxAge: maxAge, Expires: expires,
		Secure: true, HttpOnly: true, SameSite: j.sameSite,
	}
}

// read returns the cookie's value, rejoining chunks.
func (j jar) read(r *http.Request) (string, error) {
	if c, err := r.Cookie(j.name); err == nil && c.Value != "" {
		if n, ok := strings.CutPrefix(c.Value, "chunks."); ok {
			count, err := strconv.Atoi(n)
			if err != nil || count < 1 || count > maxChunks {
				return "", fmt.Errorf("%w: bad chunk count", ErrCookie)
			}
			var b strings.Builder
			for i := 0; i < count; i++ {
				part, err := r.Cookie(j.name + "_" + strconv.Itoa(i))
				if err != nil {
					return "", fmt.Errorf("%w: chunk %d of %d is missing", ErrCookie, i, count)
				}
				if len(part.Value) > chunkSize {
					return "", fmt.Errorf("%w: chunk %d is oversized", ErrCookie, i)
				}
				b.WriteString(part.Value)
			}
			return b.String(), nil
		}
		return c.Value, nil
	}
	return "", http.ErrNoCookie
}

// write sets the cookie, split into chunks when large, and clears chunks
// left over from a larger earlier value. A value whose cookies would take
// more than the budget is ErrSessionTooLarge, and nothing is set.
func (j jar) write(w http.ResponseWriter, r *http.Request, value string, expires time.Time) error {
	maxAge := int(time.Until(expires).Seconds())
	if maxAge < 1 {
		maxAge = 1
	}
	old := 0
	if c, err := r.Cookie(j.name); err == nil {
		if n, ok := strings.CutPrefix(c.Value, "chunks."); ok {
			old, _ = strconv.Atoi(n)
		}
	}
	count := 0
	if len(value) > chunkSize {
		count = (len(value) + chunkSize - 1) / chunkSize
	}
	if size := j.size(len(value), count); count > maxChunks || j.budget > 0 && size > j.budget {
		return fmt.Errorf("%w: its cookies would take %d bytes of the Cookie header, over the budget of %d", ErrSessionTooLarge, size, j.budget)
	}
	if count == 0 {
		http.SetCookie(w, j.cookie(j.name, value, maxAge, expires))
	} else {
		http.SetCookie(w, j.cookie(j.name, "chunks."+strconv.Itoa(count), maxAge, expires))
		for i := 0; i < count; i++ {
			end := min((i+1)*chunkSize, len(value))
			http.SetCookie(w, j.cookie(j.name+"_"+strconv.Itoa(i), value[i*chunkSize:end], maxAge, expires))
		}
	}
	for i := count; i < min(old, maxChunks); i++ {
		http.SetCookie(w, j.cookie(j.name+"_"+strconv.Itoa(i), "", -1, time.Unix(0, 0)))
	}
	return nil
}

// size is what a value of n bytes in count chunks (0: unchunked) adds to
// a request's Cookie header: name=value and "; " per cookie.
func (j jar) size(n, count int) int {
	if count == 0 {
		return len(j.name) + 1 + n + 2
	}
	size := len(j.name) + 1 + len("chunks.") + len(strconv.Itoa(count)) + 2 + n
	for i := 0; i < count; i++ {
		size += len(j.name) + 1 + len(strconv.Itoa(i)) + 1 + 2
	}
	return size
}

// chunkLimit is the most chunks a value within the budget can take:
// 3 under the default 8 KB, maxChunks without a budget.
func (j jar) chunkLimit() int {
	if j.budget <= 0 {
		return maxChunks
	}
	return min(maxChunks, j.budget/chunkSize+1)
}

// clear removes the cookie and its chunks: those of <name>_0 ..
// <name>_<chunkLimit-1> that the request sent, each once. Only names the
// jar can have written are cleared, and not what a marker claims, so a
// request with thousands of cookie names gets at most 1+chunkLimit
// Set-Cookie headers back (issue 11: 2,250 _iap_N cookies got 2,251).
// Chunks beyond the limit, left by a larger budget or an older version,
// are never read without their marker and expire with their Max-Age.
func (j jar) clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, j.cookie(j.name, "", -1, time.Unix(0, 0)))
	sent := make([]bool, j.chunkLimit())
	for _, c := range r.Cookies() {
		digits, ok := strings.CutPrefix(c.Name, j.name+"_")
		if !ok || digits == "" || len(digits) > 1 && digits[0] == '0' {
			continue
		}
		if i, err := strconv.Atoi(digits); err == nil && i >= 0 && i < len(sent) && j.owns(c.Name) {
			sent[i] = true
		}
	}
	for i, ok := range sent {
		if ok {
			http.SetCookie(w, j.cookie(j.name+"_"+strconv.Itoa(i), "", -1, time.Unix(0, 0)))
		}
	}
}

// sessionJar is the session's jar with the configured cookie budget.
func (a *Authenticator) sessionJar() jar {
	j := a.jar
	j.budget = a.cfg.CookieBudget
	return j
}

// owns reports whether a cookie name is the jar's: the cookie or a chunk.
func (j jar) owns(name string) bool {
	rest, ok := strings.CutPrefix(name, j.name)
	if !ok || rest == "" {
		return ok
	}
	digits, ok := strings.CutPrefix(rest, "_")
	if !ok || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ownsCookie reports whether a cookie name is authn's: the session cookie,
// its chunks, or a login cookie (<prefix>_<id>, and the bare <prefix> that
// was the one login cookie before each sign-in had its own), or the same
// under the names from before the __Host- prefix (_iap, _iap_<n>,
// _iap_login) when the name is defaulted.
func (a *Authenticator) ownsCookie(name string) bool {
	for _, login := range []string{a.loginJ.name, unprefixed(a.loginJ.name)} {
		if rest, ok := strings.CutPrefix(name, login); ok && (rest == "" || rest[0] == '_') {
			return true
		}
	}
	return a.jar.owns(name) || a.legacy.name != "" && a.legacy.owns(name)
}

// mayOwnCookies reports whether a Cookie line may hold a cookie of
// ownsCookie's: every such name contains the session cookie's name without
// its prefix, or the legacy name.
func (a *Authenticator) mayOwnCookies(line string) bool {
	return strings.Contains(line, unprefixed(a.jar.name)) || a.legacy.name != "" && strings.Contains(line, a.legacy.name)
}

// StripCookies removes the session cookie, its chunks and the login cookies
// (ownsCookie) from a request's Cookie headers, and drops a header left empty, so the
// upstream never sees (and cannot replay or leak) the session. Other
// cookies are kept as they were. Pomerium removes its cookie likewise.
func (a *Authenticator) StripCookies(h http.Header) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := lines[:0:0]
	for _, line := range lines {
		if !a.mayOwnCookies(line) {
			kept = append(kept, line)
			continue
		}
		var b strings.Builder
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			name, _, _ := strings.Cut(part, "=")
			name = strings.TrimSpace(name) // as Go's and most servers' cookie parsers do
			if part == "" || a.ownsCookie(name) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = kept
}

// CookieName is the session cookie's name, with its default.
func (a *Authenticator) CookieName() string { return a.cfg.CookieName }
