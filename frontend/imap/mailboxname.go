package imap

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
)

// Mailbox names are stored as UTF-8. An IMAP4rev1 session (one that has enabled neither
// IMAP4rev2 nor UTF8=ACCEPT) sends and receives them in modified UTF-7 (RFC 3501 5.1.3);
// a session that has switched to UTF-8 strings uses them as stored (RFC 9051 5.1, RFC 6855
// 3). The session's choice is the UTF8 flag of its string encoder.

// errModifiedUTF7 is a rev1 mailbox name that is not valid modified UTF-7.
var errModifiedUTF7 = errors.New("mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)")

// mutf7Encoding is base64 with "," in place of "/" and no padding (RFC 3501 5.1.3).
var mutf7Encoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// encodeModifiedUTF7 renders a UTF-8 name in modified UTF-7 (RFC 3501 5.1.3): printable
// US-ASCII stands for itself, "&" is "&-", every other run of characters is "&", the
// modified base64 of its UTF-16BE form, "-".
func encodeModifiedUTF7(name string) string {
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

// decodeModifiedUTF7 turns a modified UTF-7 name into UTF-8, strictly: only printable
// US-ASCII, "&-" for "&", base64 runs that end with "-", hold whole UTF-16 characters with
// zero padding bits, encode no printable US-ASCII and do not follow one another directly
// (RFC 3501 5.1.3: "&...-&...-" must be one run).
func decodeModifiedUTF7(s string) (string, error) {
	var sb strings.Builder
	afterRun := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errModifiedUTF7
		}
		if c != '&' {
			sb.WriteByte(c)
			i++
			afterRun = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errModifiedUTF7
		}
		encoded := s[i+1 : i+1+end]
		i += end + 2
		if encoded == "" {
			sb.WriteByte('&')
			afterRun = false
			continue
		}
		if afterRun {
			return "", errModifiedUTF7
		}
		afterRun = true
		// Strict decoding also refuses non-zero padding bits.
		raw, err := mutf7Encoding.Strict().DecodeString(encoded)
		if err != nil || len(raw)%2 != 0 || len(raw) == 0 {
			return "", errModifiedUTF7
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
					return "", errModifiedUTF7
				}
				r = utf16.DecodeRune(r, rune(units[j+1]))
				if r == utf8.RuneError {
					return "", errModifiedUTF7
				}
				j++
			case r >= 0x20 && r <= 0x7e:
				return "", errModifiedUTF7 // printable US-ASCII must stand for itself
			}
			sb.WriteRune(r)
		}
	}
	return sb.String(), nil
}

// utf8Names reports whether the session uses UTF-8 mailbox names rather than modified
// UTF-7: once it has enabled IMAP4rev2 or UTF8=ACCEPT, the same switch as its strings.
func (c *conn) utf8Names() bool {
	return c.encoder().UTF8
}

// decodeClientName turns a name or LIST pattern from the client into UTF-8. In a rev1
// session names are modified UTF-7 (RFC 3501 5.1.3) and decoded strictly; 8-bit
// characters are refused, as Dovecot does: a name taken as UTF-8 would come back from LIST
// in modified UTF-7, and a client such as mbsync 1.4 would then see two different
// mailboxes. Sessions that enabled IMAP4rev2 or UTF8=ACCEPT (RFC 6855 3) use UTF-8.
func (c *conn) decodeClientName(raw string) (string, error) {
	if c.utf8Names() {
		return raw, nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			return "", errModifiedUTF7
		}
	}
	return decodeModifiedUTF7(raw)
}

// mailboxIn turns a mailbox name as the client sent it into the stored UTF-8 form (see
// decodeClientName); invalid modified UTF-7 is refused with NO [CANNOT]. INBOX in any case
// is INBOX (RFC 9051 5.1), also as the first level of its inferiors, as the metadata
// service stores them.
func (c *conn) mailboxIn(raw string) (string, error) {
	name, err := c.decodeClientName(raw)
	if err != nil {
		return "", no(imapresp.CodeCannot, "Mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3); ENABLE UTF8=ACCEPT to use UTF-8 names")
	}
	first, rest, nested := strings.Cut(name, string(delimiter))
	if strings.EqualFold(first, "INBOX") {
		name = "INBOX"
		if nested {
			name += string(delimiter) + rest
		}
	}
	return name, nil
}

// mailboxOut renders a stored name for the session, without quoting.
func (c *conn) mailboxOut(name string) string {
	if c.utf8Names() {
		return name
	}
	return encodeModifiedUTF7(name)
}
