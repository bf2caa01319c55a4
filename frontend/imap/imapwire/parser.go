package imapwire

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// MaxDepth bounds the nesting of parenthesised lists and search keys (NOT, OR, "(...)").
const MaxDepth = 32

// ParseError is a syntax error in a command; the engine answers it with BAD.
type ParseError struct {
	Pos int
	Msg string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("syntax error at byte %d: %s", e.Pos, e.Msg)
}

// parser reads one command from a byte slice. Errors are sticky: after the first one every
// method returns zero values, so grammar code reads straight through and checks p.err at
// the end. No method indexes b without a bounds check, so no input makes it panic.
type parser struct {
	b     []byte
	pos   int
	depth int
	err   *ParseError
	// sawModSeq records a MODSEQ search key (RFC 7162 3.1.5) anywhere in the command.
	sawModSeq bool
}

func (p *parser) errorf(format string, args ...any) {
	if p.err == nil {
		p.err = &ParseError{Pos: p.pos, Msg: fmt.Sprintf(format, args...)}
	}
}

func (p *parser) ok() bool { return p.err == nil }

func (p *parser) atEnd() bool { return p.pos >= len(p.b) }

// peek returns the next byte, or 0 at the end.
func (p *parser) peek() byte {
	if p.err != nil || p.pos >= len(p.b) {
		return 0
	}
	return p.b[p.pos]
}

// take consumes c if it is next.
func (p *parser) take(c byte) bool {
	if p.err == nil && p.pos < len(p.b) && p.b[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// takeFold consumes s (ASCII, compared case-insensitively) if it is next.
func (p *parser) takeFold(s string) bool {
	if p.err != nil || len(p.b)-p.pos < len(s) || !strings.EqualFold(string(p.b[p.pos:p.pos+len(s)]), s) {
		return false
	}
	p.pos += len(s)
	return true
}

func (p *parser) expect(c byte) {
	if !p.take(c) {
		p.errorf("expected %q", c)
	}
}

func (p *parser) sp() { p.expect(' ') }

func (p *parser) end() {
	if p.err == nil && !p.atEnd() {
		p.errorf("unexpected data after the command")
	}
}

func (p *parser) enter() bool {
	p.depth++
	if p.depth > MaxDepth {
		p.errorf("nested more than %d levels", MaxDepth)
		return false
	}
	return p.ok()
}

func (p *parser) leave() { p.depth-- }

// isAtomChar reports ATOM-CHAR: any CHAR except atom-specials ("(" ")" "{" SP CTL "%" "*"
// DQUOTE "\" "]").
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return c > 0x1f && c < 0x7f
}

func isAstringChar(c byte) bool { return isAtomChar(c) || c == ']' }

func isListChar(c byte) bool { return isAstringChar(c) || c == '%' || c == '*' }

func (p *parser) takeWhile(ok func(byte) bool) string {
	if p.err != nil {
		return ""
	}
	start := p.pos
	for p.pos < len(p.b) && ok(p.b[p.pos]) {
		p.pos++
	}
	return string(p.b[start:p.pos])
}

// atom reads 1*ATOM-CHAR.
func (p *parser) atom() string {
	s := p.takeWhile(isAtomChar)
	if s == "" {
		p.errorf("expected an atom")
	}
	return s
}

// tag reads 1*<any ASTRING-CHAR except "+">.
func (p *parser) tag() string {
	s := p.takeWhile(func(c byte) bool { return isAstringChar(c) && c != '+' })
	if s == "" {
		p.errorf("expected a tag")
	}
	return s
}

// astring reads 1*ASTRING-CHAR / string.
func (p *parser) astring() string {
	switch p.peek() {
	case '"', '{':
		return p.str()
	}
	s := p.takeWhile(isAstringChar)
	if s == "" {
		p.errorf("expected an atom or string")
	}
	return s
}

// str reads string = quoted / literal.
func (p *parser) str() string {
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{':
		return string(p.literal())
	}
	p.errorf("expected a string")
	return ""
}

// quoted reads DQUOTE *QUOTED-CHAR DQUOTE; 8-bit characters must be UTF-8 (RFC 9051 4.3).
func (p *parser) quoted() string {
	p.expect('"')
	var sb strings.Builder
	eightBit := false
	for p.ok() {
		if p.atEnd() {
			p.errorf("unterminated quoted string")
			break
		}
		c := p.b[p.pos]
		p.pos++
		switch {
		case c == '"':
			s := sb.String()
			if eightBit && !utf8.ValidString(s) {
				p.errorf("quoted string is not UTF-8")
			}
			return s
		case c == '\\':
			if n := p.peek(); n == '"' || n == '\\' {
				sb.WriteByte(n)
				p.pos++
			} else {
				p.errorf("bad escape in quoted string")
			}
		case c == '\r' || c == '\n' || c == 0:
			p.errorf("control character in quoted string")
		default:
			if c >= 0x80 {
				eightBit = true
			}
			sb.WriteByte(c)
		}
	}
	return ""
}

// literalMarker reads "{" number64 ["+"] "}" (with "~" before it when binary is allowed,
// RFC 3516) without the CRLF and data that follow.
func (p *parser) literalMarker(binaryOK bool) Literal {
	var lit Literal
	if binaryOK && p.take('~') {
		lit.Binary = true
	}
	p.expect('{')
	lit.Size = int64(p.number64())
	lit.NonSync = p.take('+')
	p.expect('}')
	return lit
}

// literal reads a literal with its data inline: "{n}" CRLF n bytes. The data must not hold
// NUL (RFC 9051 4.3: CHAR8).
func (p *parser) literal() []byte { return p.literalData(false) }

// literalData reads a literal, or with binaryOK also a literal8 ("~{n}" CRLF n bytes, RFC
// 3516 4.3), whose data may hold NUL.
func (p *parser) literalData(binaryOK bool) []byte {
	lit := p.literalMarker(binaryOK)
	if !p.take('\r') || !p.take('\n') {
		p.errorf("expected CRLF after literal")
	}
	if !p.ok() {
		return nil
	}
	if int64(len(p.b)-p.pos) < lit.Size {
		p.errorf("literal data shorter than announced")
		return nil
	}
	data := p.b[p.pos : p.pos+int(lit.Size)]
	p.pos += int(lit.Size)
	if lit.Binary {
		return data
	}
	for _, c := range data {
		if c == 0 {
			p.errorf("NUL in literal")
			return nil
		}
	}
	return data
}

// number64 reads 1*DIGIT up to 2^63-1.
func (p *parser) number64() uint64 {
	if p.err != nil {
		return 0
	}
	start := p.pos
	var n uint64
	for p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
		d := uint64(p.b[p.pos] - '0')
		if n > (1<<63-1-d)/10 {
			p.errorf("number too large")
			return 0
		}
		n = n*10 + d
		p.pos++
	}
	if p.pos == start {
		p.errorf("expected a number")
	}
	return n
}

// number reads a 32-bit number (RFC 9051 9: number = 1*DIGIT, unsigned 32-bit).
func (p *parser) number() uint32 {
	n := p.number64()
	if n > 1<<32-1 {
		p.errorf("number too large")
		return 0
	}
	return uint32(n)
}

func (p *parser) nzNumber() uint32 {
	n := p.number()
	if n == 0 && p.ok() {
		p.errorf("expected a non-zero number")
	}
	return n
}

// mailbox reads a mailbox name: "INBOX" in any case means INBOX (RFC 9051 5.1).
func (p *parser) mailbox() string {
	name := p.astring()
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// listMailbox reads 1*list-char / string.
func (p *parser) listMailbox() string {
	switch p.peek() {
	case '"', '{':
		return p.str()
	}
	s := p.takeWhile(isListChar)
	if s == "" {
		p.errorf("expected a mailbox pattern")
	}
	return s
}

// flag reads one flag: "\" atom (system flag or \*) or a keyword atom (RFC 9051 2.3.2).
func (p *parser) flag(permOK bool) imap.Flag {
	if p.take('\\') {
		if permOK && p.take('*') {
			return imap.FlagWildcard
		}
		return imap.Flag(canonicalSystemFlag("\\" + p.atom()))
	}
	return imap.Flag(p.atom())
}

// canonicalSystemFlag spells the system flags as RFC 9051 2.3.2 does, whatever the case the
// client used; other flags are kept as sent.
func canonicalSystemFlag(f string) string {
	for _, sys := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, "\\Recent"} {
		if strings.EqualFold(f, string(sys)) {
			return string(sys)
		}
	}
	return f
}

// flagList reads "(" [flag *(SP flag)] ")".
func (p *parser) flagList() []imap.Flag {
	p.expect('(')
	var flags []imap.Flag
	for p.ok() && !p.take(')') {
		if len(flags) > 0 {
			p.sp()
		}
		flags = append(flags, p.flag(false))
	}
	return flags
}

// seqNumber reads nz-number / "*" (0 stands for "*").
func (p *parser) seqNumber() uint32 {
	if p.take('*') {
		return 0
	}
	return p.nzNumber()
}

// sequenceSet reads sequence-set / "$" (RFC 5182) as an imap.UIDSet when uid is true, else
// an imap.SeqSet. Ranges may be given in either order ("5:3" is "3:5").
func (p *parser) sequenceSet(uid bool) imap.NumSet {
	if p.take('$') {
		return imap.SearchRes()
	}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for p.ok() {
		start := p.seqNumber()
		stop := start
		if p.take(':') {
			stop = p.seqNumber()
		}
		if !p.ok() {
			break
		}
		if uid {
			uids.AddRange(imap.UID(start), imap.UID(stop))
		} else {
			seqs.AddRange(start, stop)
		}
		if !p.take(',') {
			break
		}
	}
	if uid {
		return uids
	}
	return seqs
}

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// dateText reads date-day "-" date-month "-" date-year.
func (p *parser) dateText() (day, month, year int) {
	day = int(p.number())
	p.expect('-')
	if p.ok() && len(p.b)-p.pos >= 3 {
		m := strings.ToLower(string(p.b[p.pos : p.pos+3]))
		for i, name := range monthNames {
			if m == name {
				month = i + 1
			}
		}
		p.pos += 3
	}
	if month == 0 {
		p.errorf("expected a month name")
	}
	p.expect('-')
	year = int(p.number())
	if p.ok() && (day < 1 || day > 31 || year < 1000 || year > 9999) {
		p.errorf("date out of range")
	}
	return day, month, year
}

// date reads date = date-text / DQUOTE date-text DQUOTE, in UTC.
func (p *parser) date() time.Time {
	quoted := p.take('"')
	day, month, year := p.dateText()
	if quoted {
		p.expect('"')
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}

// dateTime reads date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP
// zone DQUOTE.
func (p *parser) dateTime() time.Time {
	p.expect('"')
	p.take(' ') // date-day-fixed = (SP DIGIT) / 2DIGIT
	day, month, year := p.dateText()
	p.sp()
	hour := p.fixedDigits(2)
	p.expect(':')
	minute := p.fixedDigits(2)
	p.expect(':')
	second := p.fixedDigits(2)
	p.sp()
	sign := 1
	if p.take('-') {
		sign = -1
	} else {
		p.expect('+')
	}
	zone := p.fixedDigits(4)
	p.expect('"')
	if !p.ok() {
		return time.Time{}
	}
	if hour > 23 || minute > 59 || second > 60 || zone%100 > 59 {
		p.errorf("time out of range")
		return time.Time{}
	}
	offset := sign * ((zone/100)*3600 + (zone%100)*60)
	return time.Date(year, time.Month(month), day, hour, minute, second, 0, time.FixedZone("", offset))
}

func (p *parser) fixedDigits(n int) int {
	v := 0
	for i := 0; i < n; i++ {
		c := p.peek()
		if c < '0' || c > '9' {
			p.errorf("expected %d digits", n)
			return 0
		}
		v = v*10 + int(c-'0')
		p.pos++
	}
	return v
}

// upperAtomList reads "(" [atom *(SP atom)] ")" in upper case.
func (p *parser) upperAtomList() []string {
	p.expect('(')
	var atoms []string
	for p.ok() && !p.take(')') {
		if len(atoms) > 0 {
			p.sp()
		}
		atoms = append(atoms, strings.ToUpper(p.atom()))
	}
	return atoms
}
