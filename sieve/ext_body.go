package sieve

import (
	"bytes"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"
)

// body (RFC 5173): the body test with the :raw, :content and :text
// transforms, over the MIME structure of the message (RFC 2045, 2046).

func init() {
	registerCapability("body")
	registerTest(&commandDef{name: "body", ext: "body", tags: append(matchTags(),
		&tagDef{name: ":raw", group: "transform"},
		&tagDef{name: ":content", hasArg: true, arg: typeStringList, group: "transform"},
		&tagDef{name: ":text", group: "transform"},
	), args: []argType{typeStringList}, check: checkMatch, run: runBody})
}

// maxMIMEDepth bounds the recursion into nested multiparts.
const maxMIMEDepth = 16

type bodyPart struct {
	mediaType string // lower-case type/subtype
	content   string // decoded, UTF-8 for text parts
}

// runBody (RFC 5173 5): :raw matches the undecoded body; :content the
// decoded parts whose type matches; :text, the default, the text parts,
// with HTML turned into its text as Pigeonhole does.
// Each part is matched on its own. It sets no match variables.
func runBody(r *run, n *node) (bool, error) {
	if r.in.Message == nil {
		return false, nil
	}
	keys := r.expandAll(n.args[0])
	raw := r.in.Message.Body()
	if n.hasTag(":raw") {
		ok, _ := matchValues(n.match, []string{string(raw)}, keys)
		return ok, nil
	}
	types, text := []string{"text"}, true
	if v, ok := n.tags[":content"]; ok {
		types, text = r.expandAll(v), false
	}
	var values []string
	for _, p := range mimeParts(r.header, raw, 0) {
		for _, t := range types {
			if contentTypeMatches(p.mediaType, t) {
				if text && p.mediaType == "text/html" {
					p.content = htmlText(p.content)
				}
				values = append(values, p.content)
				break
			}
		}
	}
	ok, _ := matchValues(n.match, values, keys)
	return ok, nil
}

// contentTypeMatches: "" matches every part, "type" every subtype,
// "type/subtype" exactly (RFC 5173 5.2).
func contentTypeMatches(mediaType, want string) bool {
	want = strings.ToLower(strings.TrimSpace(want))
	if want == "" || want == mediaType {
		return true
	}
	return !strings.Contains(want, "/") && strings.HasPrefix(mediaType, want+"/")
}

func fieldValue(header []HeaderField, name string) string {
	for _, f := range header {
		if strings.EqualFold(f.Name, name) {
			return unfold(f.Value)
		}
	}
	return ""
}

// mimeParts lists the leaf parts of a MIME entity; a missing or broken
// Content-Type is text/plain (RFC 2045 5.2).
func mimeParts(header []HeaderField, body []byte, depth int) []bodyPart {
	mediaType, params, err := mime.ParseMediaType(fieldValue(header, "Content-Type"))
	if err != nil || mediaType == "" {
		mediaType, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "" && depth < maxMIMEDepth {
		var parts []bodyPart
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			content, err := io.ReadAll(p)
			if err != nil {
				break
			}
			var h []HeaderField
			for name, values := range p.Header {
				for _, v := range values {
					h = append(h, HeaderField{Name: name, Value: v})
				}
			}
			parts = append(parts, mimeParts(h, content, depth+1)...)
		}
		return parts
	}
	if mediaType == "message/rfc822" && depth < maxMIMEDepth {
		// RFC 5173 5.2: :content "message/rfc822" tests the header of the
		// embedded message; its body parts are tested as parts of their
		// own types. The header reads as Pigeonhole gives it: its lines
		// end in CRLF, without the blank line.
		head, rest := splitMessage(body)
		crlf := bytes.ReplaceAll(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		parts := []bodyPart{{mediaType: mediaType, content: string(crlf)}}
		return append(parts, mimeParts(parseHeader(head), rest, depth+1)...)
	}
	decoded := decodeTransfer(fieldValue(header, "Content-Transfer-Encoding"), body)
	if strings.HasPrefix(mediaType, "text/") {
		decoded = toUTF8(params["charset"], decoded)
	}
	return []bodyPart{{mediaType: mediaType, content: string(decoded)}}
}

// htmlText drops the markup of an HTML part: tags, comments, and the
// content of script and style elements; entities are decoded.
func htmlText(s string) string {
	var b strings.Builder
	lower := asciiLower(s) // byte for byte, so indexes agree with s
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "<!--"):
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				i = len(s)
				continue
			}
			i += 4 + end + 3
		case s[i] == '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				i = len(s)
				continue
			}
			for _, skip := range []string{"script", "style"} {
				if strings.HasPrefix(lower[i+1:], skip) {
					if close := strings.Index(lower[i:], "</"+skip); close >= 0 {
						end = close + strings.IndexByte(s[i+close:]+">", '>')
					}
				}
			}
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return html.UnescapeString(b.String())
}

// decodeTransfer undoes a Content-Transfer-Encoding (RFC 2045 6); a body
// that does not decode is used as it is.
func decodeTransfer(encoding string, body []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return body
		}
		return out[:n]
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return body
		}
		return out
	}
	return body
}

// toUTF8 converts the single-byte charsets mail still uses; others are
// passed through.
func toUTF8(charset string, b []byte) []byte {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "iso_8859-1", "windows-1252", "cp1252":
		if utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x80 }) {
			return b
		}
		var out bytes.Buffer
		for _, c := range b {
			out.WriteRune(rune(c))
		}
		return out.Bytes()
	}
	return b
}

// charsetReader lets RFC 2047 decoding handle the charsets toUTF8 knows.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "iso_8859-1", "windows-1252", "cp1252":
		b, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		return bytes.NewReader(toUTF8(charset, b)), nil
	}
	return nil, errors.New("sieve: unsupported charset " + charset)
}
