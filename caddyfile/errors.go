package caddyfile

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// optionLines remembers where each option of a directive's block was
// written, so that an error found once the whole block is read (a file
// that does not load, a value the module refuses) points at the option's
// own line, as Caddy's own parse errors do, rather than at the block's
// closing brace.
type optionLines struct {
	directive caddyfile.Token
	options   map[string]caddyfile.Token
}

// newOptionLines starts at the directive's own token, the place of errors
// that name no option.
func newOptionLines(d *caddyfile.Dispenser) *optionLines {
	return &optionLines{directive: d.Token(), options: map[string]caddyfile.Token{}}
}

// note records the option the dispenser is on; the first line of an option
// given twice is kept.
func (o *optionLines) note(d *caddyfile.Dispenser) {
	if _, ok := o.options[d.Val()]; !ok {
		o.options[d.Val()] = d.Token()
	}
}

// wrap adds to err the file and line of the option its message names
// first (as a whole word), or else of the directive, in the form of
// caddyfile.Dispenser.WrapErr: "<message>, at <file>:<line>". A message
// that already names a line of the file (a policy criterion's) is left
// as it is.
func (o *optionLines) wrap(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, o.directive.File+":"); i >= 0 && o.directive.File != "" {
		if rest := msg[i+len(o.directive.File)+1:]; rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			return err
		}
	}
	d := caddyfile.NewDispenser([]caddyfile.Token{o.at(msg)})
	d.Next()
	return d.WrapErr(err)
}

// at is the token of the option msg names first (as a whole word), or the
// directive's: where a message about the block belongs.
func (o *optionLines) at(msg string) caddyfile.Token {
	at, first := o.directive, -1
	for name, tok := range o.options {
		i := wordIndex(msg, name)
		if i >= 0 && (first < 0 || i < first || i == first && len(name) > len(at.Text)) {
			at, first = tok, i
		}
	}
	return at
}

// wordIndex is the index of the first occurrence of word in s that is not
// part of a longer name (tls_client_cert in tls_client_cert_file), or -1.
func wordIndex(s, word string) int {
	isName := func(b byte) bool {
		return b == '_' || b == '-' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
	}
	for off := 0; ; {
		i := strings.Index(s[off:], word)
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(word)
		if (i == 0 || !isName(s[i-1])) && (end == len(s) || !isName(s[end])) {
			return i
		}
		off = i + 1
	}
}
