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
	head, body := raw, []byte(nil)
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\n' {
			continue
		}
		rest := raw[i+1:]
		if bytes.HasPrefix(rest, []byte("\r\n")) {
			head, body = raw[:i+1], rest[2:]
			break
		}
		if bytes.HasPrefix(rest, []byte("\n")) {
			head, body = raw[:i+1], rest[1:]
			break
		}
	}
	if bytes.HasPrefix(raw, []byte("\r\n")) || bytes.HasPrefix(raw, []byte("\n")) {
		head, body = nil, raw[bytes.IndexByte(raw, '\n')+1:]
	}
	return &rawMessage{header: parseHeader(head), body: body, size: int64(len(raw))}, nil
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

// addressesOf parses an address header into addr-specs (RFC 5228 5.1). An
// unparsable value is taken whole, so :all :is still sees it.
func addressesOf(raw string) []string {
	v := unfold(raw)
	if v == "" {
		return nil
	}
	list, err := mail.ParseAddressList(v)
	if err != nil {
		var out []string
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if i := strings.LastIndexByte(part, '<'); i >= 0 {
				part = strings.TrimSuffix(part[i+1:], ">")
			}
			if part != "" {
				out = append(out, part)
			}
		}
		return out
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, a.Address)
	}
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
