package imap

import (
	"strings"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/mutf7"
)

// Mailbox names are stored as UTF-8. An IMAP4rev1 session (one that has enabled neither
// IMAP4rev2 nor UTF8=ACCEPT) sends and receives them in modified UTF-7 (RFC 3501 5.1.3);
// a session that has switched to UTF-8 strings uses them as stored (RFC 9051 5.1, RFC 6855
// 3). The session's choice is the UTF8 flag of its string encoder.

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
			return "", mutf7.ErrInvalid
		}
	}
	return mutf7.Decode(raw)
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
	return mutf7.Encode(name)
}
