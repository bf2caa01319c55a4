package sieve

import (
	"bytes"
	"errors"
	"mime"
	"net/mail"
	"strings"
)

// HeaderField is one header field as it appears in the message: the name
// and the raw value (possibly folded, possibly RFC 2047 encoded).
type HeaderField struct {
	Name  string
	Value string
}

// Message is the message a script runs against. Implementations must be
// safe to call from several Execute calls at once if they are shared.
type Message interface {
	// Header lists the header fields in message order.
	Header() []HeaderField
	// Size is the message size in octets (RFC 5228 5.9).
	Size() int64
	// Body is the raw body after the blank line that ends the header.
	Body() []byte
}

// rawMessage is a Message parsed from RFC 5322 bytes.
type rawMessage struct {
	header []HeaderField
	body   []byte
	size   int64
}

func (m *rawMessage) Header() []HeaderField { return m.header }
func (m *rawMessage) Size() int64           { return m.size }
func (m *rawMessage) Body() []byte          { return m.body }

// NewRawMessage parses an RFC 5322 message. Lines may end in CRLF or LF. A
// message without a blank line is all header. Lines in the header that are
// neither fields nor continuations are skipped.
func NewRawMessage(raw []byte) (Message, error) {
	if len(raw) == 0 {
		return nil, errors.New("sieve: empty message")
	}
	head, body := splitMessage(raw)
	return &rawMessage{header: parseHeader(head), body: body, size: int64(len(raw))}, nil
}

// splitMessage splits a message at the blank line that ends its header
// (RFC 5322 2.1): head keeps the header's last line ending, body starts
// after the blank line. Without a blank line it is all header.
func splitMessage(raw []byte) (head, body []byte) {
	if bytes.HasPrefix(raw, []byte("\r\n")) || bytes.HasPrefix(raw, []byte("\n")) {
		return nil, raw[bytes.IndexByte(raw, '\n')+1:]
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\n' {
			continue
		}
		rest := raw[i+1:]
		if bytes.HasPrefix(rest, []byte("\r\n")) {
			return raw[:i+1], rest[2:]
		}
		if bytes.HasPrefix(rest, []byte("\n")) {
			return raw[:i+1], rest[1:]
		}
	}
	return raw, nil
}

// parseHeader splits a header block into fields (RFC 5322 2.2); a line
// starting with white space continues the previous field.
func parseHeader(head []byte) []HeaderField {
	var fields []HeaderField
	for _, line := range strings.SplitAfter(string(head), "\n") {
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) > 0 {
				fields[len(fields)-1].Value += line
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := strings.TrimRight(line[:colon], " \t")
		if !validFieldName(name) {
			continue
		}
		fields = append(fields, HeaderField{Name: name, Value: line[colon+1:]})
	}
	for i := range fields {
		fields[i].Value = strings.TrimRight(fields[i].Value, "\r\n")
	}
	return fields
}

// validFieldName: RFC 5322 2.2, printable US-ASCII except ":".
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 33 || name[i] > 126 || name[i] == ':' {
			return false
		}
	}
	return true
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// headerText is the value a test compares: unfolded, trimmed and with RFC
// 2047 encoded words decoded (RFC 5228 2.7.2).
func headerText(raw string) string {
	v := unfold(raw)
	if strings.Contains(v, "=?") {
		if d, err := wordDecoder.DecodeHeader(v); err == nil {
			v = d
		}
	}
	return v
}

func unfold(raw string) string {
	v := strings.ReplaceAll(raw, "\r\n", "")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.Trim(v, " \t")
}

// addressesOf parses an address header into addr-specs (RFC 5228 5.1).
// A member that is no mailbox (a group name, a word without "@") is
// skipped. When the value holds no usable address at all (an empty group
// such as "undisclosed-recipients:;", a bare word, an empty value), the
// unfolded value is returned whole as one item and unparsed is true: RFC
// 5228 5.1 leaves such values to the implementation, and Pigeonhole tests
// them whole, so address :all :is still sees them and :count counts them.
func addressesOf(raw string) (addrs []string, unparsed bool) {
	v := unfold(raw)
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			if usableAddress(a.Address) {
				addrs = append(addrs, a.Address)
			}
		}
	} else {
		for _, member := range splitAddressList(v) {
			if a, err := mail.ParseAddress(member); err == nil {
				member = a.Address
			} else if i := strings.LastIndexByte(member, '<'); i >= 0 {
				member = strings.TrimSuffix(member[i+1:], ">")
			}
			if usableAddress(member) {
				addrs = append(addrs, member)
			}
		}
	}
	if len(addrs) == 0 {
		return []string{v}, true
	}
	return addrs, false
}

// usableAddress: an addr-spec has a local part and a domain (RFC 5322 3.4.1).
func usableAddress(a string) bool {
	i := strings.LastIndexByte(a, '@')
	return i > 0 && i < len(a)-1
}

// splitAddressList splits a value that net/mail refused at the commas
// that separate addresses (RFC 5322 3.4), not those in quoted strings,
// comments or angle brackets, and drops group names ("name:") and group
// ends (";").
func splitAddressList(v string) []string {
	var out []string
	start, depth, quoted := 0, 0, false
	add := func(part string) {
		if i := strings.IndexByte(part, ':'); i >= 0 && !strings.ContainsAny(part[:i], "\"<@") {
			part = part[i+1:]
		}
		part = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), ";"))
		if part != "" {
			out = append(out, part)
		}
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '<':
			depth++
		case (c == ')' || c == '>') && depth > 0:
			depth--
		case (c == ',' || c == ';') && depth == 0:
			add(v[start:i])
			start = i + 1
		}
	}
	add(v[start:])
	return out
}

// addressPartOf extracts an address part (RFC 5228 2.7.4, RFC 5233 4); ok
// is false when the part does not exist (a :detail without delimiter).
func addressPartOf(addr string, part addressPart, delimiter string) (string, bool) {
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i+1:]
	}
	switch part {
	case partLocalpart:
		return local, true
	case partDomain:
		return domain, true
	case partUser, partDetail:
		// RFC 5233 4: the user is the local part up to the first delimiter,
		// the detail what follows; without a delimiter there is no detail.
		i := strings.Index(local, delimiter)
		if delimiter == "" || i < 0 {
			if part == partUser {
				return local, true
			}
			return "", false
		}
		if part == partUser {
			return local[:i], true
		}
		return local[i+len(delimiter):], true
	}
	return addr, true
}
