package message

import (
	"strings"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Placeholders for the parts of an address a header leaves out, as Dovecot
// sends them: an empty host would read as group syntax (RFC 9051 7.5.2).
const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

type tokenKind uint8

const (
	tokAtom tokenKind = iota
	tokQuoted
	tokComment
	tokDomainLiteral
	tokSpecial
)

// addrToken is one lexical element of an address header (RFC 5322 3.2).
type addrToken struct {
	kind  tokenKind
	text  string // without quoting for quoted strings and comments
	space bool   // white space or a comment comes before it
}

func (t addrToken) is(c byte) bool { return t.kind == tokSpecial && t.text[0] == c }

// tokenize splits an unfolded address header value. It accepts anything:
// unterminated quoted strings, comments and domain literals run to the end.
func tokenize(s string) []addrToken {
	toks := make([]addrToken, 0, 8) // a name-addr without growing
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			space = true
			i++
			continue
		case c == '"':
			var text string
			text, i = readQuoted(s, i)
			toks = append(toks, addrToken{kind: tokQuoted, text: text, space: space})
		case c == '(':
			end := skipComment(s, i)
			inner := s[i+1 : end]
			inner = strings.TrimSuffix(inner, ")")
			toks = append(toks, addrToken{kind: tokComment, text: unescapeComment(inner), space: space})
			i = end
			space = true
			continue
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				end = len(s)
			} else {
				end += i + 1
			}
			toks = append(toks, addrToken{kind: tokDomainLiteral, text: s[i:end], space: space})
			i = end
		case strings.IndexByte("<>@,;:", c) >= 0:
			toks = append(toks, addrToken{kind: tokSpecial, text: s[i : i+1], space: space})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n\"(<>@,;:[", s[j]) < 0 {
				j++
			}
			toks = append(toks, addrToken{kind: tokAtom, text: s[i:j], space: space})
			i = j
		}
		space = false
	}
	return toks
}

func unescapeComment(s string) string {
	s = strings.TrimSpace(s)
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

// parseAddressList parses an RFC 5322 3.4 address-list into RFC 9051 7.5.2
// envelope addresses: a group is a start marker (mailbox = group name, host
// empty), its members, and an end marker (all empty). Names and local parts
// are unquoted; RFC 2047 encoded-words are left for the client to decode.
// Text that is not an address degrades to one instead of being dropped;
// empty list elements and comments are not addresses and are dropped
// (RFC 5322 4.4 obs-addr-list, 3.2.2).
func parseAddressList(s string) []*metadatapb.Address {
	toks := tokenize(s)
	var out []*metadatapb.Address
	inGroup := false
	for i := 0; i < len(toks); {
		j, angle, sawAt, groupStart := i, false, false, false
	scan:
		for ; j < len(toks); j++ {
			t := toks[j]
			if t.kind != tokSpecial {
				continue
			}
			switch t.text[0] {
			case '<':
				angle = true
			case '>':
				angle = false
			case '@':
				sawAt = true
			case ',', ';':
				if !angle {
					break scan
				}
			case ':':
				if !angle && !inGroup && !sawAt {
					groupStart = true
					break scan
				}
			}
		}
		seg := toks[i:j]
		switch {
		case groupStart:
			name := phrase(seg)
			if name == "" {
				name = missingMailbox
			}
			out = append(out, &metadatapb.Address{Mailbox: name})
			inGroup = true
		default:
			if a := parseMailbox(seg); a != nil {
				out = append(out, a)
			}
			if j < len(toks) && toks[j].is(';') && inGroup {
				out = append(out, &metadatapb.Address{})
				inGroup = false
			}
		}
		i = j + 1
	}
	if inGroup {
		out = append(out, &metadatapb.Address{}) // group without its ";"
	}
	return out
}

// AddressListText returns an address-list field value (RFC 5322 3.4) as
// parsed, in the form Dovecot matches SEARCH FROM, TO, CC and BCC against
// (RFC 9051 6.4.4): "mailbox@host", or "name <route:mailbox@host>" with a
// display name or a route, and a group as "name: members;", comments and
// folding white space removed. Parts the field leaves out are left out, not
// written as the envelope's MISSING_MAILBOX and MISSING_DOMAIN. RFC 2047
// encoded-words are left as they are.
func AddressListText(value string) string {
	var sb strings.Builder
	sb.Grow(len(value))
	sep := ""
	for _, a := range parseAddressList(value) {
		switch {
		case a.Host == "" && a.Mailbox != "": // group start (RFC 9051 7.5.2)
			sb.WriteString(sep)
			sb.WriteString(present(a.Mailbox, missingMailbox))
			sb.WriteByte(':')
			sep = " "
		case a.Host == "": // group end
			sb.WriteByte(';')
			sep = ", "
		default:
			sb.WriteString(sep)
			writeAddress(&sb, a)
			sep = ", "
		}
	}
	return sb.String()
}

// writeAddress writes one mailbox of AddressListText.
func writeAddress(sb *strings.Builder, a *metadatapb.Address) {
	local, host := present(a.Mailbox, missingMailbox), present(a.Host, missingDomain)
	switch {
	case local == "" && host == "":
		sb.WriteString(a.Name) // "Mail Delivery System", or nothing for "<>"
	case a.Name == "" && a.Adl == "":
		writeAddrSpec(sb, local, host)
	default:
		if a.Name != "" {
			sb.WriteString(a.Name)
			sb.WriteByte(' ')
		}
		sb.WriteByte('<')
		if a.Adl != "" {
			sb.WriteString(a.Adl)
			sb.WriteByte(':')
		}
		writeAddrSpec(sb, local, host)
		sb.WriteByte('>')
	}
}

// writeAddrSpec writes local "@" host, leaving out what is missing.
func writeAddrSpec(sb *strings.Builder, local, host string) {
	sb.WriteString(local)
	if host != "" {
		sb.WriteByte('@')
		sb.WriteString(host)
	}
}

// present returns s, or "" when s is the placeholder of a missing part.
func present(s, placeholder string) string {
	if s == placeholder {
		return ""
	}
	return s
}

// parseMailbox parses one RFC 5322 3.4 mailbox: name-addr or addr-spec, or
// nil when seg holds no address. Comments are CFWS, not part of an address
// (RFC 5322 3.2.2): a segment of comments alone is no mailbox, as in the
// empty group "group: (comment) ;" (RFC 5322 3.4 group-list = CFWS), and a
// comment is never a mailbox, host or route. The only comment that counts is
// the display name an addr-spec without one takes from a comment within or
// after it, "user@host (Full Name)", the last one as Dovecot takes it; comments
// before the addr-spec or around a name-addr are no name.
func parseMailbox(seg []addrToken) *metadatapb.Address {
	for len(seg) > 0 && seg[0].kind == tokComment {
		seg = seg[1:]
	}
	if len(seg) == 0 {
		return nil
	}
	for lt, t := range seg {
		if !t.is('<') {
			continue
		}
		inner := seg[lt+1:]
		for gt, t := range inner {
			if t.is('>') {
				inner = inner[:gt]
				break
			}
		}
		adl, local, domain := addrSpec(inner)
		return newAddress(phrase(seg[:lt]), adl, local, domain)
	}
	hasAt, words := false, 0
	for _, t := range seg {
		if t.is('@') {
			hasAt = true
		}
		if t.kind == tokAtom || t.kind == tokQuoted {
			words++
		}
	}
	if !hasAt && words > 1 {
		// Not an address at all ("From: Mail Delivery System"): keep the
		// text as the name.
		return newAddress(phrase(seg), "", "", "")
	}
	adl, local, domain := addrSpec(seg)
	if local == "" && domain == "" && adl == "" {
		return nil
	}
	return newAddress(lastComment(seg), adl, local, domain)
}

// lastComment returns the text of the last non-empty comment of toks.
func lastComment(toks []addrToken) string {
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].kind == tokComment && toks[i].text != "" {
			return toks[i].text
		}
	}
	return ""
}

func newAddress(name, adl, local, domain string) *metadatapb.Address {
	if local == "" {
		local = missingMailbox
	}
	if domain == "" {
		domain = missingDomain
	}
	return &metadatapb.Address{Name: name, Adl: adl, Mailbox: local, Host: domain}
}

// addrSpec reads [obs-route] local-part "@" domain (RFC 5322 3.4.1, 4.4).
// Comments are skipped; the local part is the text before the last "@".
func addrSpec(toks []addrToken) (adl, local, domain string) {
	start := 0
	for start < len(toks) && toks[start].kind == tokComment {
		start++
	}
	if start < len(toks) && toks[start].is('@') {
		for i := start; i < len(toks); i++ {
			if toks[i].is(':') {
				adl = concat(toks[start:i])
				start = i + 1
				break
			}
		}
	}
	toks = toks[start:]
	at := -1
	for i, t := range toks {
		if t.is('@') {
			at = i
		}
	}
	if at < 0 {
		return adl, concat(toks), ""
	}
	return adl, concat(toks[:at]), concat(toks[at+1:])
}

// concat joins tokens without white space, skipping comments.
func concat(toks []addrToken) string {
	var sb strings.Builder
	for _, t := range toks {
		if t.kind != tokComment {
			sb.WriteString(t.text)
		}
	}
	return sb.String()
}

// phrase joins the words of a display name with single spaces where the header
// had white space, skipping comments (RFC 5322 3.2.5).
func phrase(toks []addrToken) string {
	var sb strings.Builder
	for _, t := range toks {
		if t.kind == tokComment {
			continue
		}
		if t.space && sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(t.text)
	}
	return sb.String()
}
