package imapresp

import "github.com/strata-mail/strata/frontend/message"

// AppendCapability appends "* CAPABILITY caps" (RFC 9051 7.2.2); caps is the space-separated
// capability list.
func AppendCapability(b []byte, caps string) []byte {
	b = append(b, "* CAPABILITY "...)
	b = append(b, caps...)
	return append(b, '\r', '\n')
}

// AppendEnabled appends "* ENABLED cap ..." (RFC 5161 3.2), with the capabilities the
// command newly enabled, maybe none.
func AppendEnabled(b []byte, caps []string) []byte {
	b = append(b, "* ENABLED"...)
	for _, c := range caps {
		b = append(append(b, ' '), c...)
	}
	return append(b, '\r', '\n')
}

// IDField is a field and its value in an ID response (RFC 2971 3.2).
type IDField struct {
	Name, Value string
}

// AppendID appends "* ID (name value ...)", or "* ID NIL" without fields (RFC 2971 3.2).
func AppendID(b []byte, enc message.Encoder, fields []IDField) []byte {
	b = append(b, "* ID "...)
	if len(fields) == 0 {
		return append(b, "NIL\r\n"...)
	}
	b = appendParenList(b, len(fields), func(b []byte, i int) []byte {
		return enc.AppendString(append(enc.AppendString(b, fields[i].Name), ' '), fields[i].Value)
	})
	return append(b, '\r', '\n')
}

// AppendContinuation appends a command continuation request, "+ text" (RFC 9051 7.5): text
// is a resp-text, or for AUTHENTICATE the base64 challenge, empty for PLAIN (RFC 4616 2).
func AppendContinuation(b []byte, text string) []byte {
	b = append(b, "+ "...)
	b = append(b, text...)
	return append(b, '\r', '\n')
}
