package sieve

import (
	"fmt"
	"strings"
)

// tokenKind is the lexical class of a token (RFC 5228 8.1).
type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokIdentifier
	tokTag
	tokNumber
	tokString // quoted-string or multi-line, already unescaped
	tokSemicolon
	tokComma
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
	tokLBrace
	tokRBrace
)

var tokenNames = [...]string{
	tokEOF: "end of script", tokIdentifier: "identifier", tokTag: "tag", tokNumber: "number",
	tokString: "string", tokSemicolon: "';'", tokComma: "','", tokLParen: "'('", tokRParen: "')'",
	tokLBracket: "'['", tokRBracket: "']'", tokLBrace: "'{'", tokRBrace: "'}'",
}

func (k tokenKind) String() string { return tokenNames[k] }

type token struct {
	kind tokenKind
	pos  Pos
	text string // identifier or tag name (lower-cased, tags without ':'), string value
	num  int64
}

// lexer turns a script into positioned tokens. It never panics and reports
// the first malformed token as an *Error.
type lexer struct {
	name string
	src  []byte
	off  int
	line int
	col  int
}

func newLexer(name string, src []byte) *lexer {
	return &lexer{name: name, src: src, line: 1, col: 1}
}

func (l *lexer) errorf(p Pos, format string, args ...any) *Error {
	return &Error{Script: l.name, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

func (l *lexer) peekByte(n int) byte {
	if l.off+n < len(l.src) {
		return l.src[l.off+n]
	}
	return 0
}

func (l *lexer) advance() byte {
	c := l.src[l.off]
	l.off++
	if c == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return c
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipSpace skips white space and comments (RFC 5228 8.1: hash-comment and
// bracket-comment).
func (l *lexer) skipSpace() *Error {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.advance()
		case c == '#':
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.advance()
			}
		case c == '/' && l.peekByte(1) == '*':
			start := l.pos()
			l.advance()
			l.advance()
			for {
				if l.off >= len(l.src) {
					return l.errorf(start, "unterminated comment")
				}
				if l.src[l.off] == '*' && l.peekByte(1) == '/' {
					l.advance()
					l.advance()
					break
				}
				l.advance()
			}
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) next() (token, *Error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	p := l.pos()
	if l.off >= len(l.src) {
		return token{kind: tokEOF, pos: p}, nil
	}
	c := l.src[l.off]
	switch c {
	case ';':
		l.advance()
		return token{kind: tokSemicolon, pos: p}, nil
	case ',':
		l.advance()
		return token{kind: tokComma, pos: p}, nil
	case '(':
		l.advance()
		return token{kind: tokLParen, pos: p}, nil
	case ')':
		l.advance()
		return token{kind: tokRParen, pos: p}, nil
	case '[':
		l.advance()
		return token{kind: tokLBracket, pos: p}, nil
	case ']':
		l.advance()
		return token{kind: tokRBracket, pos: p}, nil
	case '{':
		l.advance()
		return token{kind: tokLBrace, pos: p}, nil
	case '}':
		l.advance()
		return token{kind: tokRBrace, pos: p}, nil
	case '"':
		return l.quoted(p)
	case ':':
		l.advance()
		if l.off >= len(l.src) || !(isAlpha(l.src[l.off]) || l.src[l.off] == '_') {
			return token{}, l.errorf(p, "expected a tag name after ':'")
		}
		return token{kind: tokTag, pos: p, text: ":" + l.identifier()}, nil
	}
	if isDigit(c) {
		return l.number(p)
	}
	if isAlpha(c) || c == '_' {
		id := l.identifier()
		// RFC 5228 8.1: multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF)
		if id == "text" && l.off < len(l.src) && l.src[l.off] == ':' {
			l.advance()
			return l.multiline(p)
		}
		return token{kind: tokIdentifier, pos: p, text: id}, nil
	}
	return token{}, l.errorf(p, "unexpected character %q", rune(c))
}

func (l *lexer) identifier() string {
	start := l.off
	for l.off < len(l.src) && (isAlpha(l.src[l.off]) || isDigit(l.src[l.off]) || l.src[l.off] == '_') {
		l.advance()
	}
	return strings.ToLower(string(l.src[start:l.off]))
}

// number parses RFC 5228 2.4.1: digits with an optional K, M or G quantifier.
func (l *lexer) number(p Pos) (token, *Error) {
	const max = 1<<63 - 1
	var n int64
	for l.off < len(l.src) && isDigit(l.src[l.off]) {
		d := int64(l.advance() - '0')
		if n > (max-d)/10 {
			return token{}, l.errorf(p, "number too large")
		}
		n = n*10 + d
	}
	if l.off < len(l.src) {
		var mul int64
		switch l.src[l.off] {
		case 'k', 'K':
			mul = 1 << 10
		case 'm', 'M':
			mul = 1 << 20
		case 'g', 'G':
			mul = 1 << 30
		}
		if mul != 0 {
			l.advance()
			if n > max/mul {
				return token{}, l.errorf(p, "number too large")
			}
			n *= mul
		}
		if l.off < len(l.src) && (isAlpha(l.src[l.off]) || l.src[l.off] == '_') {
			return token{}, l.errorf(l.pos(), "unexpected character %q after number", rune(l.src[l.off]))
		}
	}
	return token{kind: tokNumber, pos: p, num: n}, nil
}

// quoted parses a quoted-string (RFC 5228 2.4.2): "\\" and "\"" are
// escapes; a backslash before any other character is dropped.
func (l *lexer) quoted(p Pos) (token, *Error) {
	l.advance()
	var b strings.Builder
	for {
		if l.off >= len(l.src) {
			return token{}, l.errorf(p, "unterminated string")
		}
		c := l.advance()
		switch c {
		case '"':
			return token{kind: tokString, pos: p, text: b.String()}, nil
		case '\\':
			if l.off >= len(l.src) {
				return token{}, l.errorf(p, "unterminated string")
			}
			b.WriteByte(l.advance())
		default:
			b.WriteByte(c)
		}
	}
}

// multiline parses the rest of a "text:" string (RFC 5228 2.4.2, 8.1): the
// lines up to a line holding a single ".", with dot-stuffing undone. Lines
// end in CRLF in the value; a bare LF in the script counts as a line end.
func (l *lexer) multiline(p Pos) (token, *Error) {
	for l.off < len(l.src) && (l.src[l.off] == ' ' || l.src[l.off] == '\t') {
		l.advance()
	}
	switch {
	case l.off < len(l.src) && l.src[l.off] == '#':
		for l.off < len(l.src) && l.src[l.off] != '\n' {
			l.advance()
		}
	case l.off < len(l.src) && l.src[l.off] == '\r' && l.peekByte(1) == '\n':
		l.advance()
	case l.off < len(l.src) && l.src[l.off] == '\n':
	default:
		return token{}, l.errorf(l.pos(), "expected end of line after text:")
	}
	if l.off >= len(l.src) {
		return token{}, l.errorf(p, "unterminated multi-line string")
	}
	l.advance() // the '\n'
	var b strings.Builder
	for {
		if l.off >= len(l.src) {
			return token{}, l.errorf(p, "unterminated multi-line string")
		}
		start := l.off
		for l.off < len(l.src) && l.src[l.off] != '\n' {
			l.advance()
		}
		line := string(l.src[start:l.off])
		if l.off >= len(l.src) {
			return token{}, l.errorf(p, "unterminated multi-line string")
		}
		l.advance()
		line = strings.TrimSuffix(line, "\r")
		if line == "." {
			return token{kind: tokString, pos: p, text: b.String()}, nil
		}
		if strings.HasPrefix(line, "..") {
			line = line[1:] // RFC 5228 2.4.2: dot-stuffing
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
}
