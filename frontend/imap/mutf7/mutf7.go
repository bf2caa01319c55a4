// Package mutf7 is modified UTF-7 (RFC 3501 5.1.3), the form of mailbox names in
// IMAP4rev1 sessions and in Maildir++ folder names on disk (Dovecot's default): the IMAP
// engine and the mail-file import and export share it. Decode is strict: a name it
// accepts is one Encode gives back byte for byte.
package mutf7

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalid is a name that is not valid modified UTF-7.
var ErrInvalid = errors.New("mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)")

// mutf7Encoding is base64 with "," in place of "/" and no padding (RFC 3501 5.1.3).
var mutf7Encoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// Encode renders a UTF-8 name in modified UTF-7 (RFC 3501 5.1.3): printable
// US-ASCII stands for itself, "&" is "&-", every other run of characters is "&", the
// modified base64 of its UTF-16BE form, "-".
func Encode(name string) string {
	var sb strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		b := make([]byte, 0, 2*len(run))
		for _, u := range run {
			b = append(b, byte(u>>8), byte(u))
		}
		sb.WriteByte('&')
		sb.WriteString(mutf7Encoding.EncodeToString(b))
		sb.WriteByte('-')
		run = run[:0]
	}
	for _, r := range name {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				sb.WriteString("&-")
			} else {
				sb.WriteRune(r)
			}
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			run = append(run, uint16(r1), uint16(r2))
		} else {
			run = append(run, uint16(r))
		}
	}
	flush()
	return sb.String()
}

// Decode turns a modified UTF-7 name into UTF-8, strictly: only printable
// US-ASCII, "&-" for "&", base64 runs that end with "-", hold whole UTF-16 characters with
// zero padding bits, encode no printable US-ASCII and do not follow one another directly
// (RFC 3501 5.1.3: "&...-&...-" must be one run).
func Decode(s string) (string, error) {
	var sb strings.Builder
	afterRun := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", ErrInvalid
		}
		if c != '&' {
			sb.WriteByte(c)
			i++
			afterRun = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", ErrInvalid
		}
		encoded := s[i+1 : i+1+end]
		i += end + 2
		if encoded == "" {
			sb.WriteByte('&')
			afterRun = false
			continue
		}
		if afterRun {
			return "", ErrInvalid
		}
		afterRun = true
		// Strict decoding also refuses non-zero padding bits.
		raw, err := mutf7Encoding.Strict().DecodeString(encoded)
		if err != nil || len(raw)%2 != 0 || len(raw) == 0 {
			return "", ErrInvalid
		}
		units := make([]uint16, len(raw)/2)
		for j := range units {
			units[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for j := 0; j < len(units); j++ {
			r := rune(units[j])
			switch {
			case utf16.IsSurrogate(r):
				if j+1 >= len(units) {
					return "", ErrInvalid
				}
				r = utf16.DecodeRune(r, rune(units[j+1]))
				if r == utf8.RuneError {
					return "", ErrInvalid
				}
				j++
			case r >= 0x20 && r <= 0x7e:
				return "", ErrInvalid // printable US-ASCII must stand for itself
			}
			sb.WriteRune(r)
		}
	}
	return sb.String(), nil
}
