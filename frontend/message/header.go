package message

import (
	"bytes"
	"io"
	"iter"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// HeaderField is one field of a header block.
type HeaderField struct {
	// Name is the field name as written, without the colon and any white space
	// before it (RFC 5322 4.5.1 obsolete syntax).
	Name string
	// Raw is the whole field as in the message: name, colon, value and every
	// line break, folded lines included.
	Raw []byte
	// value is the part of Raw after the colon.
	value []byte
}

// Value returns the field body unfolded (RFC 5322 2.2.3), without leading and
// trailing white space, as valid UTF-8. RFC 2047 encoded-words are left as
// they are.
func (f HeaderField) Value() string {
	return toUTF8(unfold(f.value))
}

// Fields splits a header block into its fields, in order. It stops at the
// blank line that ends the block. Lines that are neither a field nor a
// continuation are skipped, as are continuation lines before the first field.
func Fields(header []byte) []HeaderField {
	var fields []HeaderField
	if n := fieldStarts(header); n > 0 {
		fields = make([]HeaderField, 0, n) // allocated once: Fields runs 3 times per APPEND
	}
	valid := false // whether a continuation line belongs to the last field
	for line := range headerLines(header) {
		if line[0] == ' ' || line[0] == '\t' {
			if valid {
				f := &fields[len(fields)-1]
				f.Raw = f.Raw[:len(f.Raw)+len(line)]
				f.value = f.value[:len(f.value)+len(line)]
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		name := bytes.TrimRight(line[:max(colon, 0)], " \t")
		valid = colon > 0 && isFieldName(name)
		if valid {
			fields = append(fields, HeaderField{Name: string(name), Raw: line, value: line[colon+1:]})
		}
	}
	return fields
}

// fieldValue returns the Value of the first field of header named name (compared without
// case, as the callers of Fields compare), as the first such field of Fields(header) would:
// without splitting the other fields.
func fieldValue(header []byte, name string) (string, bool) {
	var value []byte
	found := false
	for line := range headerLines(header) {
		if line[0] == ' ' || line[0] == '\t' {
			if found {
				value = value[:len(value)+len(line)] // the lines follow each other in header
			}
			continue
		}
		if found {
			break
		}
		colon := bytes.IndexByte(line, ':')
		fieldName := bytes.TrimRight(line[:max(colon, 0)], " \t")
		if colon > 0 && bytes.EqualFold(fieldName, []byte(name)) && isFieldName(fieldName) {
			value, found = line[colon+1:], true
		}
	}
	if !found {
		return "", false
	}
	return HeaderField{value: value}.Value(), true
}

// headerLines yields the lines of header, each with its line break, up to the blank line
// that ends it.
func headerLines(header []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(header) > 0 {
			n := bytes.IndexByte(header, '\n') + 1
			if n == 0 {
				n = len(header)
			}
			line := header[:n]
			header = header[n:]
			if isBlankLine(line) || !yield(line) {
				return
			}
		}
	}
}

// fieldStarts counts the lines of header that do not begin with white space: at least as
// many as the fields Fields finds there.
func fieldStarts(header []byte) int {
	starts := 0
	for line := range headerLines(header) {
		if line[0] != ' ' && line[0] != '\t' {
			starts++
		}
	}
	return starts
}

// isFieldName checks RFC 5322 2.2: printable US-ASCII except colon.
func isFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// FilterHeader returns the fields of header whose names are in fields
// (case-insensitive), or when not is true all the others, followed by the
// blank line that ends a header: RFC 9051 6.4.5 HEADER.FIELDS and
// HEADER.FIELDS.NOT. Fields keep their original bytes and order. The blank
// line is omitted only when header has none, which RFC 9051 6.4.5 allows for a
// message without body.
func FilterHeader(header []byte, fields []string, not bool) []byte {
	out := make([]byte, 0, 256)
	eol := []byte("\r\n")
	if i := bytes.IndexByte(header, '\n'); i == 0 || i > 0 && header[i-1] != '\r' {
		eol = eol[1:] // keep the line break style of the stored message
	}
	for _, f := range Fields(header) {
		named := false
		for _, want := range fields {
			if strings.EqualFold(f.Name, want) {
				named = true
				break
			}
		}
		if named == not {
			continue
		}
		out = append(out, f.Raw...)
		if f.Raw[len(f.Raw)-1] != '\n' {
			out = append(out, eol...)
		}
	}
	if hasBlankLine(header) {
		out = append(out, eol...)
	}
	return out
}

func hasBlankLine(header []byte) bool {
	return isBlankLine(header) || bytes.HasSuffix(header, []byte("\n\n")) || bytes.HasSuffix(header, []byte("\n\r\n"))
}

// unfold removes the line breaks of a folded field body (RFC 5322 2.2.3) and
// trims white space around it.
func unfold(b []byte) []byte {
	b = bytes.Trim(b, " \t\r\n")
	if !bytes.ContainsAny(b, "\r\n") {
		return b
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	return out
}

// toUTF8 returns b as a string, reading bytes that are not part of a valid
// UTF-8 sequence as ISO-8859-1 (the usual charset of raw 8-bit headers), so
// that the result can go into a protobuf string.
func toUTF8(b []byte) string {
	return string(validUTF8(b))
}

// validUTF8 is toUTF8 into bytes: b itself when it is valid UTF-8.
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/4)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			r, n = rune(b[0]), 1
		}
		out = utf8.AppendRune(out, r)
		b = b[n:]
	}
	return out
}

// describe builds a part from its MIME header fields (RFC 2045, RFC 2183,
// RFC 3282, RFC 2557). It returns the boundary when the part is a multipart
// whose body should be parsed as one.
func (p *parser) describe(fields []HeaderField, def mediaDefault, depth int) (*metadatapb.BodyPart, []byte) {
	part := &metadatapb.BodyPart{Encoding: "7BIT"}
	var contentType string
	var seenType, seenEncoding, seenID, seenDesc, seenMD5, seenDisp, seenLang, seenLoc bool
	for _, f := range fields {
		switch strings.ToLower(f.Name) {
		case "content-type":
			if !seenType {
				seenType = true
				contentType = f.Value()
			}
		case "content-transfer-encoding":
			if !seenEncoding {
				seenEncoding = true
				if enc := strings.ToUpper(strings.TrimSpace(stripComments(f.Value()))); enc != "" {
					part.Encoding = enc
				}
			}
		case "content-id":
			if !seenID {
				seenID = true
				part.Id = f.Value()
			}
		case "content-description":
			if !seenDesc {
				seenDesc = true
				part.Description = f.Value()
			}
		case "content-md5":
			if !seenMD5 {
				seenMD5 = true
				part.Md5 = f.Value()
			}
		case "content-disposition":
			if !seenDisp {
				seenDisp = true
				v := f.Value()
				head, rest, _ := strings.Cut(v, ";")
				part.Disposition = strings.ToLower(strings.TrimSpace(stripComments(head)))
				if part.Disposition != "" {
					part.DispositionParams = parseParams(rest)
				}
			}
		case "content-language":
			if !seenLang {
				seenLang = true
				for _, tag := range strings.Split(stripComments(f.Value()), ",") {
					if tag = strings.TrimSpace(tag); tag != "" {
						part.Language = append(part.Language, tag)
					}
				}
			}
		case "content-location":
			if !seenLoc {
				seenLoc = true
				part.Location = f.Value()
			}
		}
	}

	ok := false
	if seenType {
		part.Type, part.Subtype, part.Params, ok = parseMediaType(contentType)
	}
	if !ok {
		// RFC 2045 5.2: no or unparseable Content-Type means text/plain;
		// charset=us-ascii, except in a digest (RFC 2046 5.1.5).
		part.Params = nil
		part.Type, part.Subtype = "text", "plain"
		if def == defaultMessage && !seenType {
			part.Type, part.Subtype = "message", "rfc822"
		}
	}

	var boundary []byte
	if part.Type == "multipart" {
		b := paramValue(part.Params, "boundary")
		if b == "" || len(b) > maxBoundaryLen || depth >= MaxDepth {
			// A multipart without a usable boundary, or nested too deep, is one
			// text leaf holding the raw body.
			part.Type, part.Subtype, part.Params = "text", "plain", nil
		} else {
			boundary = []byte(b)
		}
	}

	if cost := partCost(part); cost <= p.budget {
		p.budget -= cost
	} else {
		part.Params, part.Id, part.Description, part.Md5 = nil, "", "", ""
		part.Disposition, part.DispositionParams, part.Language, part.Location = "", nil, nil, ""
	}
	if part.Type == "text" && paramValue(part.Params, "charset") == "" {
		part.Params = append(part.Params, &metadatapb.Param{Key: "charset", Value: "US-ASCII"}) // RFC 2045 5.2
	}
	return part, boundary
}

func paramValue(params []*metadatapb.Param, key string) string {
	for _, p := range params {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

func partCost(part *metadatapb.BodyPart) int {
	n := len(part.Id) + len(part.Description) + len(part.Md5) + len(part.Disposition) + len(part.Location)
	for _, p := range part.Params {
		n += len(p.Key) + len(p.Value)
	}
	for _, p := range part.DispositionParams {
		n += len(p.Key) + len(p.Value)
	}
	for _, l := range part.Language {
		n += len(l)
	}
	return n
}

// parseMediaType parses a Content-Type value (RFC 2045 5.1). ok is false when
// there is no type/subtype pair of tokens.
func parseMediaType(v string) (typ, subtype string, params []*metadatapb.Param, ok bool) {
	head, rest, _ := strings.Cut(v, ";")
	typ, subtype, found := strings.Cut(stripComments(head), "/")
	typ = strings.ToLower(strings.TrimSpace(typ))
	subtype = strings.ToLower(strings.TrimSpace(subtype))
	if !found || !isToken(typ) || !isToken(subtype) {
		return "", "", nil, false
	}
	return typ, subtype, parseParams(rest), true
}

// isToken checks RFC 2045 5.1 token syntax.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// stripComments removes RFC 5322 3.2.2 comments outside quoted strings.
func stripComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var sb strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (quoted || depth > 0):
			if depth == 0 {
				sb.WriteByte(c)
				if i+1 < len(s) {
					sb.WriteByte(s[i+1])
				}
			}
			i++
		case c == '"' && depth == 0:
			quoted = !quoted
			sb.WriteByte(c)
		case c == '(' && !quoted:
			depth++
		case c == ')' && !quoted && depth > 0:
			depth--
		case depth == 0:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

type rawParam struct {
	name     string
	section  int // RFC 2231 3 continuation number, -1 for none
	extended bool
	value    string
}

// parseParams parses the parameters after a media type or disposition type:
// ";" attribute "=" value, where value is a token or a quoted string
// (RFC 2045 5.1), with RFC 2231 continuations and charsets decoded. Keys are
// lower-cased, the order of first appearance is kept, the first of duplicate
// parameters wins. Unquoted values run to the next ";" or comment, which also
// accepts the common unquoted file names with spaces.
func parseParams(s string) []*metadatapb.Param {
	var raw []rawParam
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
			continue
		case c == '(':
			i = skipComment(s, i)
			continue
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ';' {
			j++
		}
		attr := strings.ToLower(strings.TrimSpace(s[i:j]))
		if j >= len(s) || s[j] == ';' {
			i = j
			continue
		}
		j++
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		var value string
		if j < len(s) && s[j] == '"' {
			value, j = readQuoted(s, j)
		} else {
			k := j
			for k < len(s) && s[k] != ';' && s[k] != '(' {
				k++
			}
			value = strings.TrimSpace(s[j:k])
			j = k
		}
		i = j
		if attr != "" {
			raw = append(raw, splitAttribute(attr, value))
		}
	}
	return assembleParams(raw)
}

// splitAttribute reads the RFC 2231 3 and 4 attribute forms name*, name*N and
// name*N*.
func splitAttribute(attr, value string) rawParam {
	rp := rawParam{name: attr, section: -1, value: value}
	if strings.HasSuffix(rp.name, "*") {
		rp.extended = true
		rp.name = rp.name[:len(rp.name)-1]
	}
	if star := strings.LastIndexByte(rp.name, '*'); star > 0 {
		if n, err := strconv.Atoi(rp.name[star+1:]); err == nil && n >= 0 && n < 1000 {
			rp.name, rp.section = rp.name[:star], n
		}
	}
	if rp.name == "" {
		rp.name, rp.extended, rp.section = attr, false, -1
	}
	return rp
}

func assembleParams(raw []rawParam) []*metadatapb.Param {
	var names []string
	byName := map[string][]rawParam{}
	for _, rp := range raw {
		if _, seen := byName[rp.name]; !seen {
			names = append(names, rp.name)
		}
		byName[rp.name] = append(byName[rp.name], rp)
	}
	params := make([]*metadatapb.Param, 0, len(names))
	for _, name := range names {
		params = append(params, &metadatapb.Param{Key: toUTF8([]byte(name)), Value: paramFromParts(byName[name])})
	}
	return params
}

// paramFromParts builds one parameter value from its forms: RFC 2231
// continuations (name*0, name*1*, ...) first, then an extended value (name*),
// then the first plain value.
func paramFromParts(parts []rawParam) string {
	var sections []rawParam
	for _, rp := range parts {
		if rp.section >= 0 {
			sections = append(sections, rp)
		}
	}
	if len(sections) > 0 {
		sort.SliceStable(sections, func(i, j int) bool { return sections[i].section < sections[j].section })
		var value []byte
		cs := ""
		next := 0
		for _, rp := range sections {
			if rp.section != next {
				if rp.section < next {
					continue // duplicate section
				}
				break // RFC 2231 3: a gap ends the value
			}
			next++
			v := rp.value
			if rp.extended {
				if rp.section == 0 {
					cs, v = splitExtended(v)
				}
				value = append(value, percentDecode(v)...)
			} else {
				value = append(value, v...)
			}
		}
		if next > 0 {
			return decodeCharset(cs, value)
		}
	}
	for _, rp := range parts {
		if rp.extended && rp.section < 0 {
			cs, v := splitExtended(rp.value)
			return decodeCharset(cs, percentDecode(v))
		}
	}
	for _, rp := range parts {
		if !rp.extended && rp.section < 0 {
			return toUTF8([]byte(rp.value))
		}
	}
	return toUTF8([]byte(parts[0].value))
}

// splitExtended splits an RFC 2231 4 extended value charset'language'value.
func splitExtended(v string) (cs, rest string) {
	first := strings.IndexByte(v, '\'')
	if first < 0 {
		return "", v
	}
	second := strings.IndexByte(v[first+1:], '\'')
	if second < 0 {
		return "", v
	}
	return v[:first], v[first+1+second+1:]
}

func percentDecode(v string) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			out = append(out, unhex(v[i+1])<<4|unhex(v[i+2]))
			i += 2
			continue
		}
		out = append(out, v[i])
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// decodeCharset converts b from the named charset to UTF-8; an unknown charset
// falls back to toUTF8.
func decodeCharset(cs string, b []byte) string {
	return string(decodeCharsetBytes(cs, b))
}

// decodeCharsetBytes is decodeCharset into bytes: b itself when it is in UTF-8 (or
// ASCII) already.
func decodeCharsetBytes(cs string, b []byte) []byte {
	if readsAsUTF8(cs) {
		return validUTF8(b)
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return validUTF8(b)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return validUTF8(b)
	}
	return validUTF8(out)
}

// readsAsUTF8 says whether decodeCharsetBytes reads text of charset cs as UTF-8 (validUTF8)
// rather than converting it.
func readsAsUTF8(cs string) bool {
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}

// readQuoted reads the RFC 5322 3.2.4 quoted string starting at s[i] == '"'
// and returns its content without quoting and the index after it. An
// unterminated quoted string runs to the end.
func readQuoted(s string, i int) (string, int) {
	var sb strings.Builder
	for i++; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				sb.WriteByte(s[i])
			}
		case '"':
			return sb.String(), i + 1
		case '\r', '\n':
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String(), i
}

// skipComment returns the index after the (nested) comment at s[i] == '('.
func skipComment(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	// A backslash at the very end stepped past it: an unterminated comment runs to the end.
	return min(i, len(s))
}
