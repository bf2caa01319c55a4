package message

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// maxQuoted is the longest string rendered as a quoted string; longer ones
// are literals, which keeps response lines short.
const maxQuoted = 1024

// Encoder renders IMAP strings and the ENVELOPE and BODYSTRUCTURE data items.
// The zero Encoder suits every IMAP4rev1 session: strings with 8-bit
// characters are literals. Set UTF8 for IMAP4rev2 sessions and sessions that
// enabled UTF8=ACCEPT, where quoted strings may hold UTF-8 (RFC 9051 4.3,
// RFC 6855 3).
type Encoder struct {
	UTF8 bool
}

// AppendString renders s as an IMAP string with the zero Encoder.
func AppendString(b []byte, s string) []byte { return Encoder{}.AppendString(b, s) }

// AppendNString renders s as an IMAP nstring with the zero Encoder.
func AppendNString(b []byte, s string) []byte { return Encoder{}.AppendNString(b, s) }

// AppendAString renders s as an IMAP astring with the zero Encoder.
func AppendAString(b []byte, s string) []byte { return Encoder{}.AppendAString(b, s) }

// AppendEnvelope renders env as the RFC 9051 7.5.2 ENVELOPE data item value
// with the zero Encoder.
func AppendEnvelope(b []byte, env *metadatapb.Envelope) []byte {
	return Encoder{}.AppendEnvelope(b, env)
}

// AppendBodyStructure renders part as the BODY (extended false) or
// BODYSTRUCTURE (extended true) data item value with the zero Encoder.
func AppendBodyStructure(b []byte, part *metadatapb.BodyPart, extended bool) []byte {
	return Encoder{}.AppendBodyStructure(b, part, extended)
}

// AppendString renders s as an RFC 9051 4.3 string: quoted when it is short
// and holds only TEXT-CHARs (or UTF-8 when allowed), a literal otherwise. NUL,
// which no IMAP string can carry, is dropped.
func (e Encoder) AppendString(b []byte, s string) []byte {
	if e.quotable(s) {
		b = append(b, '"')
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[i])
		}
		return append(b, '"')
	}
	s = strings.ReplaceAll(s, "\x00", "")
	b = append(b, '{')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "}\r\n"...)
	return append(b, s...)
}

func (e Encoder) quotable(s string) bool {
	if len(s) > maxQuoted {
		return false
	}
	eightBit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0 || c == '\r' || c == '\n':
			return false
		case c >= 0x80:
			eightBit = true
		}
	}
	return !eightBit || e.UTF8 && utf8.ValidString(s)
}

// AppendNString renders s as an RFC 9051 4.5 nstring: NIL when empty.
func (e Encoder) AppendNString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "NIL"...)
	}
	return e.AppendString(b, s)
}

// AppendAString renders s as an RFC 9051 9 astring: an atom when every
// character is an ASTRING-CHAR (and it does not read as NIL), a string
// otherwise.
func (e Encoder) AppendAString(b []byte, s string) []byte {
	if s == "" || strings.EqualFold(s, "NIL") {
		return e.AppendString(b, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\`, c) >= 0 {
			return e.AppendString(b, s)
		}
	}
	return append(b, s...)
}

// AppendEnvelope renders env as the RFC 9051 7.5.2 ENVELOPE value: date,
// subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id, with
// NIL for empty strings and empty address lists. A nil env renders all NIL.
func (e Encoder) AppendEnvelope(b []byte, env *metadatapb.Envelope) []byte {
	b = append(b, '(')
	b = e.AppendNString(b, env.GetDate())
	b = append(b, ' ')
	b = e.AppendNString(b, env.GetSubject())
	for _, list := range [][]*metadatapb.Address{env.GetFrom(), env.GetSender(), env.GetReplyTo(), env.GetTo(), env.GetCc(), env.GetBcc()} {
		b = append(b, ' ')
		b = e.appendAddressList(b, list)
	}
	b = append(b, ' ')
	b = e.AppendNString(b, env.GetInReplyTo())
	b = append(b, ' ')
	b = e.AppendNString(b, env.GetMessageId())
	return append(b, ')')
}

// appendAddressList renders "(" 1*address ")" / nil; a group start is
// (NIL NIL "name" NIL) and a group end (NIL NIL NIL NIL), RFC 9051 7.5.2.
func (e Encoder) appendAddressList(b []byte, list []*metadatapb.Address) []byte {
	if len(list) == 0 {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	for _, a := range list {
		b = append(b, '(')
		b = e.AppendNString(b, a.GetName())
		b = append(b, ' ')
		b = e.AppendNString(b, a.GetAdl())
		b = append(b, ' ')
		b = e.AppendNString(b, a.GetMailbox())
		b = append(b, ' ')
		b = e.AppendNString(b, a.GetHost())
		b = append(b, ')')
	}
	return append(b, ')')
}

// emptyText stands in where the syntax needs a body and the message has none:
// a multipart without parts, or an encapsulated message that was not parsed.
// Dovecot sends the same zero-length text/plain.
var emptyText = &metadatapb.BodyPart{
	Type: "text", Subtype: "plain", Encoding: "7BIT",
	Params: []*metadatapb.Param{{Key: "charset", Value: "US-ASCII"}},
}

// AppendBodyStructure renders part as the RFC 9051 7.5.2 (RFC 3501 7.4.2)
// BODY value, or the BODYSTRUCTURE value with extension data when extended is
// true. Media types, subtypes, parameter names, encodings and disposition
// types are upper-cased, as servers conventionally send them.
func (e Encoder) AppendBodyStructure(b []byte, part *metadatapb.BodyPart, extended bool) []byte {
	if part == nil {
		part = emptyText
	}
	b = append(b, '(')
	if strings.EqualFold(part.GetType(), "multipart") {
		// body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
		if len(part.GetParts()) == 0 {
			b = e.AppendBodyStructure(b, emptyText, extended)
		}
		for _, child := range part.GetParts() {
			b = e.AppendBodyStructure(b, child, extended)
		}
		b = append(b, ' ')
		b = e.AppendString(b, strings.ToUpper(part.GetSubtype()))
		if extended {
			b = append(b, ' ')
			b = e.appendParams(b, part.GetParams())
			b = e.appendExtension(b, part)
		}
		return append(b, ')')
	}

	typ, subtype := strings.ToUpper(part.GetType()), strings.ToUpper(part.GetSubtype())
	if typ == "" || subtype == "" {
		typ, subtype = "TEXT", "PLAIN"
	}
	encoding := strings.ToUpper(part.GetEncoding())
	if encoding == "" {
		encoding = "7BIT"
	}
	// body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP
	// body-fld-enc SP body-fld-octets
	b = e.AppendString(b, typ)
	b = append(b, ' ')
	b = e.AppendString(b, subtype)
	b = append(b, ' ')
	b = e.appendParams(b, part.GetParams())
	b = append(b, ' ')
	b = e.AppendNString(b, part.GetId())
	b = append(b, ' ')
	b = e.AppendNString(b, part.GetDescription())
	b = append(b, ' ')
	b = e.AppendString(b, encoding)
	b = append(b, ' ')
	b = strconv.AppendUint(b, part.GetSize(), 10)
	switch {
	case typ == "MESSAGE" && (subtype == "RFC822" || subtype == "GLOBAL"):
		// body-type-msg: clients expect an envelope and a body after
		// MESSAGE/RFC822 whatever its encoding, so an encapsulated message
		// that was not parsed gets an empty envelope and body.
		b = append(b, ' ')
		b = e.AppendEnvelope(b, part.GetEnvelope())
		b = append(b, ' ')
		b = e.AppendBodyStructure(b, part.GetMessage(), extended)
		b = append(b, ' ')
		b = strconv.AppendUint(b, part.GetLines(), 10)
	case typ == "TEXT":
		b = append(b, ' ')
		b = strconv.AppendUint(b, part.GetLines(), 10)
	}
	if extended {
		// body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang
		// [SP body-fld-loc]]]
		b = append(b, ' ')
		b = e.AppendNString(b, part.GetMd5())
		b = e.appendExtension(b, part)
	}
	return append(b, ')')
}

// appendExtension renders SP body-fld-dsp SP body-fld-lang SP body-fld-loc.
func (e Encoder) appendExtension(b []byte, part *metadatapb.BodyPart) []byte {
	b = append(b, ' ')
	if part.GetDisposition() == "" {
		b = append(b, "NIL"...)
	} else {
		b = append(b, '(')
		b = e.AppendString(b, strings.ToUpper(part.GetDisposition()))
		b = append(b, ' ')
		b = e.appendParams(b, part.GetDispositionParams())
		b = append(b, ')')
	}
	b = append(b, ' ')
	if len(part.GetLanguage()) == 0 {
		b = append(b, "NIL"...)
	} else {
		b = append(b, '(')
		for i, lang := range part.GetLanguage() {
			if i > 0 {
				b = append(b, ' ')
			}
			b = e.AppendString(b, lang)
		}
		b = append(b, ')')
	}
	b = append(b, ' ')
	return e.AppendNString(b, part.GetLocation())
}

// appendParams renders body-fld-param: "(" string SP string *(SP string SP
// string) ")" / nil, with upper-cased attribute names. Values are stored
// decoded to UTF-8 (RFC 2231 charsets included); a session without UTF-8
// strings gets a non-ASCII value back in the RFC 2231 4 extended form, as
// Dovecot sends it, which Thunderbird and Apple Mail decode, rather than 8-bit
// literals that they would read in some local charset:
//
//	("FILENAME*" "UTF-8''r%C3%A9sum%C3%A9.pdf")
func (e Encoder) appendParams(b []byte, params []*metadatapb.Param) []byte {
	if len(params) == 0 {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	for i, p := range params {
		if i > 0 {
			b = append(b, ' ')
		}
		key, value := strings.ToUpper(p.GetKey()), p.GetValue()
		if !e.UTF8 && !isASCII(value) && isASCII(key) && utf8.ValidString(value) {
			b = e.AppendString(b, key+"*")
			b = append(b, ' ')
			b = append(b, `"UTF-8''`...)
			b = appendPercentEncoded(b, value)
			b = append(b, '"')
			continue
		}
		b = e.AppendString(b, key)
		b = append(b, ' ')
		b = e.AppendString(b, value)
	}
	return append(b, ')')
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// appendPercentEncoded appends s as an RFC 2231 4 extended value: every byte
// that is not an attribute-char (a CHAR other than SPACE, CTLs, "*", "'",
// "%" and the RFC 2045 tspecials) as "%" and two upper-case hex digits. The
// result is all quotable TEXT-CHARs.
func appendPercentEncoded(b []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && strings.IndexByte(`*'%()<>@,;:\"/[]?=`, c) < 0 {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}
