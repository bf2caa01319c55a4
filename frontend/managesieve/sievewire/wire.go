// Package sievewire reads ManageSieve commands (RFC 5804 4) from a client: a name, then
// strings (quoted, or literals "{n+}" and "{n}") and numbers, to CRLF. It has no I/O but
// the reader it is given and keeps to Limits, so it is fuzzed alone (FuzzReadCommand).
//
// Invariants: ReadCommand never panics; it keeps at most Limits.MaxLine octets of a line
// and Limits.MaxLiteral octets of literals per command, reads and drops a literal up to
// Limits.MaxDiscard octets past that, and ends the stream (ErrLineTooLong,
// ErrLiteralTooLarge) rather than keep more; after a *SyntaxError the reader is at the
// next command, the bad one skipped whole with any literal its line announced.
package sievewire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// The wire grammar of RFC 5804 4, client to server:
//
//	command  = name *(SP argument) CRLF
//	argument = string / number
//	string   = quoted / literal-c2s
//	quoted   = DQUOTE *1024QUOTED-CHAR DQUOTE      ; "\" escapes only DQUOTE and "\"
//	literal  = "{" number [ "+" ] "}" CRLF *OCTET  ; "{n+}" or, as Dovecot accepts, "{n}"
//	number   = 1*DIGIT                             ; a 32-bit unsigned number
//
// A server never answers a literal with a continuation (ManageSieve has none outside SASL), so
// "{n}" and "{n+}" read alike.

// ArgKind tells the kinds of arguments apart.
type ArgKind int

// The kinds of arguments.
const (
	ArgString ArgKind = iota
	ArgNumber
)

// Arg is one argument of a command.
type Arg struct {
	Kind ArgKind
	// Str is the value of a string. A literal over the limits is read and thrown away:
	// Str is then empty and Dropped its size.
	Str     []byte
	Dropped int64
	Num     uint32
}

// Command is one command line with its literals.
type Command struct {
	Name string // upper case
	Args []Arg
	// Dropped is the size of the largest literal thrown away for being over the limits;
	// the command must be refused (QUOTA/MAXSIZE).
	Dropped int64
}

// Limits bound what one command may hold in memory.
type Limits struct {
	// MaxLine is the octets of one command outside its literals; longer ends the
	// connection (ErrLineTooLong).
	MaxLine int
	// MaxLiteral is the octets of all literals of one command kept in memory together;
	// a literal that does not fit is read and dropped (Arg.Dropped).
	MaxLiteral int64
	// MaxDiscard is the largest literal read and dropped; a larger one ends the connection
	// (ErrLiteralTooLarge).
	MaxDiscard int64
}

// MaxQuoted is the longest quoted string: RFC 5804 4, "*1024QUOTED-CHAR".
const MaxQuoted = 1024

// ErrLineTooLong and ErrLiteralTooLarge end a connection: the server cannot find the next
// command without reading more than it bounds.
var (
	ErrLineTooLong     = errors.New("command line too long")
	ErrLiteralTooLarge = errors.New("literal too large")
)

// SyntaxError is a command the server cannot read; the rest of its line (and literals it
// announces) has been skipped, so the next command can be read.
type SyntaxError struct {
	Msg string
}

func (e *SyntaxError) Error() string { return e.Msg }

// Reader reads commands from a client. It has no other I/O than its reader, so the parser
// can be fuzzed alone (FuzzReadCommand).
type Reader struct {
	br     *bufio.Reader
	limits Limits
	line   int   // octets of the current command outside literals
	kept   int64 // octets of literals kept for the current command
}

// NewReader returns a reader of commands from br.
func NewReader(br *bufio.Reader, limits Limits) *Reader {
	return &Reader{br: br, limits: limits}
}

// Buffered is the number of octets read from the connection and not yet used.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadCommand reads one command. A *SyntaxError leaves the reader at the next command;
// ErrLineTooLong, ErrLiteralTooLarge and I/O errors leave it unusable.
func (r *Reader) ReadCommand() (*Command, error) {
	r.line, r.kept = 0, 0
	name, err := r.atom()
	if err != nil {
		return nil, r.recover(err)
	}
	if name == "" {
		return nil, r.recover(&SyntaxError{Msg: "expected a command name"})
	}
	cmd := &Command{Name: name}
	if cmd.Args, err = r.args(); err != nil {
		return nil, r.recover(err)
	}
	for _, a := range cmd.Args {
		cmd.Dropped = max(cmd.Dropped, a.Dropped)
	}
	return cmd, nil
}

// ReadResponse reads the client's line in a SASL exchange: one string, then CRLF (RFC 5804
// 2.1).
func (r *Reader) ReadResponse() (Arg, error) {
	r.line, r.kept = 0, 0
	arg, err := r.arg()
	if err == nil {
		err = r.crlf()
	}
	if err != nil {
		return Arg{}, r.recover(err)
	}
	return arg, nil
}

// recover skips the rest of a line after a syntax error; other errors pass.
func (r *Reader) recover(err error) error {
	var syn *SyntaxError
	if !errors.As(err, &syn) {
		return err
	}
	if skipErr := r.skipLine(); skipErr != nil {
		return skipErr
	}
	return err
}

// readByte reads one octet of the line, counting it against MaxLine.
func (r *Reader) readByte() (byte, error) {
	if r.line >= r.limits.MaxLine {
		return 0, ErrLineTooLong
	}
	b, err := r.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	r.line++
	return b, nil
}

// peek returns the next octet of the line without reading it; consume reads it.
func (r *Reader) peek() (byte, error) {
	if r.line >= r.limits.MaxLine {
		return 0, ErrLineTooLong
	}
	b, err := r.br.Peek(1)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return b[0], nil
}

func (r *Reader) consume() {
	_, _ = r.br.Discard(1) // cannot fail after a successful peek
	r.line++
}

// atom reads a command name: letters (RFC 5804 4 lists them), upper-cased.
func (r *Reader) atom() (string, error) {
	var name []byte
	for {
		b, err := r.peek()
		if err != nil {
			if len(name) == 0 && r.line == 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				return "", io.EOF // the client closed between commands
			}
			return "", err
		}
		if !isAtomChar(b) {
			return string(name), nil
		}
		r.consume()
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		name = append(name, b)
	}
}

func isAtomChar(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

// args reads " arg" until CRLF.
func (r *Reader) args() ([]Arg, error) {
	var args []Arg
	for {
		b, err := r.readByte()
		if err != nil {
			return nil, err
		}
		switch b {
		case '\r':
			if err := r.lf(); err != nil {
				return nil, err
			}
			return args, nil
		case '\n':
			return args, nil // a bare LF ends a line too, as most servers accept
		case ' ':
			arg, err := r.arg()
			if err != nil {
				return nil, err
			}
			args = append(args, arg)
		default:
			return nil, &SyntaxError{Msg: fmt.Sprintf("unexpected %q after the command name or an argument", b)}
		}
	}
}

func (r *Reader) crlf() error {
	b, err := r.readByte()
	if err != nil {
		return err
	}
	switch b {
	case '\r':
		return r.lf()
	case '\n':
		return nil
	}
	return &SyntaxError{Msg: fmt.Sprintf("expected the end of the line, found %q", b)}
}

func (r *Reader) lf() error {
	b, err := r.readByte()
	if err != nil {
		return err
	}
	if b != '\n' {
		return &SyntaxError{Msg: "CR without LF"}
	}
	return nil
}

// arg reads a string or a number.
func (r *Reader) arg() (Arg, error) {
	b, err := r.peek()
	if err != nil {
		return Arg{}, err
	}
	switch {
	case b == '"':
		r.consume()
		s, err := r.quoted()
		return Arg{Kind: ArgString, Str: s}, err
	case b == '{':
		r.consume()
		return r.literal()
	case '0' <= b && b <= '9':
		n, err := r.number()
		return Arg{Kind: ArgNumber, Num: n}, err
	}
	return Arg{}, &SyntaxError{Msg: "expected a string (quoted or literal) or a number"}
}

// quoted reads the rest of a quoted string. RFC 5804 4: QUOTED-CHAR = SAFE-UTF8-CHAR /
// "\" QUOTED-SPECIALS; SAFE-UTF8-CHAR excludes NUL, CR, LF, DQUOTE and "\"; at most 1024
// octets.
func (r *Reader) quoted() ([]byte, error) {
	var s []byte
	for {
		b, err := r.readByte()
		if err != nil {
			return nil, err
		}
		switch b {
		case '"':
			if !utf8.Valid(s) {
				return nil, &SyntaxError{Msg: "quoted string is not UTF-8"}
			}
			return s, nil
		case '\\':
			if b, err = r.readByte(); err != nil {
				return nil, err
			}
			if b != '"' && b != '\\' {
				return nil, &SyntaxError{Msg: fmt.Sprintf("invalid escape \\%c in a quoted string", b)}
			}
		case 0, '\r', '\n':
			return nil, &SyntaxError{Msg: "NUL, CR or LF in a quoted string; send a literal"}
		}
		if len(s) == MaxQuoted {
			return nil, &SyntaxError{Msg: "quoted string longer than 1024 octets; send a literal"}
		}
		s = append(s, b)
	}
}

// number reads a 32-bit unsigned number.
func (r *Reader) number() (uint32, error) {
	var digits []byte
	for {
		b, err := r.peek()
		if err != nil {
			return 0, err
		}
		if b < '0' || b > '9' {
			break
		}
		r.consume()
		digits = append(digits, b)
		if len(digits) > 10 {
			return 0, &SyntaxError{Msg: "number larger than 4294967295"}
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 32)
	if err != nil {
		return 0, &SyntaxError{Msg: "number larger than 4294967295"}
	}
	return uint32(n), nil
}

// literal reads the rest of "{n+}" CRLF and the n octets after it.
func (r *Reader) literal() (Arg, error) {
	var digits []byte
	for {
		b, err := r.readByte()
		if err != nil {
			return Arg{}, err
		}
		if '0' <= b && b <= '9' {
			if digits = append(digits, b); len(digits) > 19 {
				return Arg{}, &SyntaxError{Msg: "literal length too long"}
			}
			continue
		}
		if b == '+' {
			if b, err = r.readByte(); err != nil {
				return Arg{}, err
			}
		}
		if b != '}' || len(digits) == 0 {
			return Arg{}, &SyntaxError{Msg: "malformed literal: expected {number+} or {number}"}
		}
		break
	}
	size, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return Arg{}, &SyntaxError{Msg: "literal length too long"}
	}
	if err := r.crlf(); err != nil {
		return Arg{}, err
	}
	if r.kept+size > r.limits.MaxLiteral {
		if size > r.limits.MaxDiscard {
			return Arg{}, ErrLiteralTooLarge
		}
		if err := r.discard(size); err != nil {
			return Arg{}, err
		}
		return Arg{Kind: ArgString, Dropped: size}, nil
	}
	s := make([]byte, size)
	if _, err := io.ReadFull(r.br, s); err != nil {
		return Arg{}, noEOF(err)
	}
	r.kept += size
	return Arg{Kind: ArgString, Str: s}, nil
}

func (r *Reader) discard(n int64) error {
	_, err := io.CopyN(io.Discard, r.br, n)
	return noEOF(err)
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// skipLine reads to the end of the line and, when the line ends with a literal header,
// past that literal and the rest of the line after it: the whole command.
func (r *Reader) skipLine() error {
	for {
		var tail []byte // the last octets before LF, to find "{n+}" CR LF
		for {
			b, err := r.readByte()
			if err != nil {
				return err
			}
			if b == '\n' {
				break
			}
			if tail = append(tail, b); len(tail) > 32 {
				tail = tail[1:]
			}
		}
		size, ok := literalAtEnd(tail)
		if !ok {
			return nil
		}
		if size > r.limits.MaxDiscard {
			return ErrLiteralTooLarge
		}
		if err := r.discard(size); err != nil {
			return err
		}
	}
}

// literalAtEnd reports whether a line (without its LF) ends in "{n}" or "{n+}", with an
// optional CR.
func literalAtEnd(tail []byte) (int64, bool) {
	if n := len(tail); n > 0 && tail[n-1] == '\r' {
		tail = tail[:n-1]
	}
	n := len(tail)
	if n < 3 || tail[n-1] != '}' {
		return 0, false
	}
	end := n - 1
	if tail[end-1] == '+' {
		end--
	}
	start := end
	for start > 0 && '0' <= tail[start-1] && tail[start-1] <= '9' {
		start--
	}
	if start == end || start == 0 || tail[start-1] != '{' {
		return 0, false
	}
	size, err := strconv.ParseInt(string(tail[start:end]), 10, 64)
	return size, err == nil
}
