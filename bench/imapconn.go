package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// maxLineLength and maxLiteral bound what the client accepts from a server.
const (
	maxLineLength = 64 << 20 // a SEARCH of a million-message mailbox answers in one line of up to ~8 MB
	maxLiteral    = 256 << 20
)

// ServerError is a tagged NO or BAD, or a BYE, from the server.
type ServerError struct {
	Status string // NO, BAD or BYE
	Text   string
}

func (e *ServerError) Error() string { return e.Status + " " + e.Text }

// ProtocolError is a response the client could not parse or that breaks the protocol.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol: " + e.Msg }

// VerifyError is a well-formed answer that does not hold what was asked for.
type VerifyError struct {
	Msg string
	Seq int // the message it is about, when it is about one (0: none in particular)
}

func (e *VerifyError) Error() string { return "verify: " + e.Msg }

// Response is one server response: its text with each literal's bytes kept aside. A literal's
// "{n}" stays in Text and the n bytes are the next entry of Literals.
type Response struct {
	Text     string
	Literals [][]byte
}

// Fields parses the response after the leading "*" into values.
func (r *Response) Fields() ([]Value, error) {
	t := &tokenizer{text: r.Text, literals: r.Literals}
	return t.list(0)
}

// Conn is one IMAP client connection.
type Conn struct {
	nc      net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	tagSeq  int
	Caps    map[string]bool
	// read counts the bytes received from the server (BytesRead).
	read *countingReader
}

// DialOptions select TLS, the per-command deadline, the size of the connection's buffers
// and the local address.
type DialOptions struct {
	TLS                bool
	InsecureSkipVerify bool
	Timeout            time.Duration // per command; default 2 minutes
	BufferSize         int           // of the read and of the write buffer; default 64 KiB
	// LocalIP is the address to connect from; the system's choice when nil. A client
	// holding more connections to one server address than the ephemeral ports of one
	// source address (~28,000 on Linux) spreads them over several (127.0.0.x on loopback).
	LocalIP net.IP
}

// Dial connects and reads the greeting; its CAPABILITY response code, if any, fills Caps.
func Dial(addr string, opts DialOptions) (*Conn, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.BufferSize == 0 {
		opts.BufferSize = 64 << 10
	}
	d := &net.Dialer{Timeout: opts.Timeout}
	if opts.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: opts.LocalIP}
	}
	var nc net.Conn
	var err error
	if opts.TLS {
		host, _, _ := net.SplitHostPort(addr)
		nc, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: opts.InsecureSkipVerify})
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	counter := &countingReader{r: nc}
	c := &Conn{nc: nc, r: bufio.NewReaderSize(counter, opts.BufferSize), w: bufio.NewWriterSize(nc, opts.BufferSize), timeout: opts.Timeout, Caps: map[string]bool{}, read: counter}
	c.deadline()
	greeting, err := c.ReadResponse()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	// RFC 9051 7.1: the greeting is OK, PREAUTH or BYE.
	switch {
	case strings.HasPrefix(greeting.Text, "* OK"), strings.HasPrefix(greeting.Text, "* PREAUTH"):
	default:
		nc.Close()
		return nil, &ServerError{Status: "BYE", Text: greeting.Text}
	}
	c.noteCapabilities(greeting.Text)
	return c, nil
}

// countingReader counts what passes through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// BytesRead returns how many bytes the server has sent on the connection, greeting
// included. Between two commands nothing is buffered ahead, so the difference of two
// readings is what the commands between them received.
func (c *Conn) BytesRead() int64 { return c.read.n }

// Close closes the connection without LOGOUT.
func (c *Conn) Close() error { return c.nc.Close() }

func (c *Conn) deadline() { c.nc.SetDeadline(time.Now().Add(c.timeout)) }

// noteCapabilities records the capabilities of a "[CAPABILITY ...]" response code or an
// untagged CAPABILITY response (RFC 9051 7.2.2).
func (c *Conn) noteCapabilities(text string) {
	i := strings.Index(strings.ToUpper(text), "CAPABILITY ")
	if i < 0 {
		return
	}
	rest := text[i+len("CAPABILITY "):]
	if j := strings.IndexByte(rest, ']'); j >= 0 {
		rest = rest[:j]
	}
	for _, capability := range strings.Fields(rest) {
		c.Caps[strings.ToUpper(capability)] = true
	}
}

// NextTag returns a fresh command tag.
func (c *Conn) NextTag() string {
	c.tagSeq++
	return "b" + strconv.Itoa(c.tagSeq)
}

// ReadResponse reads one response line and the literals it announces (RFC 9051 4.3).
func (c *Conn) ReadResponse() (*Response, error) {
	return c.responseFrom(c.r.ReadSlice('\n'))
}

// responseFrom is ReadResponse for a response whose first ReadSlice returned chunk and err.
func (c *Conn) responseFrom(chunk []byte, err error) (*Response, error) {
	var text strings.Builder
	resp := &Response{}
	for {
		var line []byte
		if line, err = c.lineFrom(chunk, err); err != nil {
			return nil, err
		}
		text.Write(line)
		n, ok := literalSize(line)
		if !ok {
			break
		}
		if n > maxLiteral {
			return nil, &ProtocolError{Msg: fmt.Sprintf("literal of %d bytes", n)}
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.r, lit); err != nil {
			return nil, fmt.Errorf("read literal: %w", err)
		}
		resp.Literals = append(resp.Literals, lit)
		chunk, err = c.r.ReadSlice('\n')
	}
	resp.Text = text.String()
	return resp, nil
}

// lineFrom reads the rest of a line whose first ReadSlice returned chunk and err, and
// returns it without its CRLF, in memory of its own.
func (c *Conn) lineFrom(chunk []byte, err error) ([]byte, error) {
	line := append([]byte(nil), chunk...)
	for err != nil {
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if len(line) > maxLineLength {
			return nil, &ProtocolError{Msg: "response line too long"}
		}
		chunk, err = c.r.ReadSlice('\n')
		line = append(line, chunk...)
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return nil, &ProtocolError{Msg: "response line without CRLF"}
	}
	return line[:len(line)-2], nil
}

// literalSize reports whether line ends in a literal announcement "{n}".
func literalSize(line []byte) (int, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(line[i+1 : len(line)-1]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// Send writes a command line (without CRLF) and flushes it.
func (c *Conn) Send(line string) error {
	c.deadline()
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// Result is what a command got back: its untagged responses and the tagged status line.
type Result struct {
	Untagged []*Response
	Status   string // OK
	Text     string // the rest of the tagged line, response code included
}

// Exec sends one command and reads responses up to its tagged completion. A NO or BAD is a
// *ServerError, as is a BYE that ends the connection.
func (c *Conn) Exec(command string) (*Result, error) {
	tag := c.NextTag()
	if err := c.Send(tag + " " + command); err != nil {
		return nil, err
	}
	return c.ReadUntilTagged(tag)
}

// ReadUntilTagged reads responses until the tagged completion of tag.
func (c *Conn) ReadUntilTagged(tag string) (*Result, error) {
	res := &Result{}
	for {
		c.deadline()
		resp, err := c.ReadResponse()
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(resp.Text, "* ") {
			c.noteCapabilitiesIn(resp.Text)
			res.Untagged = append(res.Untagged, resp)
			continue
		}
		return c.completion(res, tag, resp)
	}
}

// ExecStream sends one command and hands each untagged response to each as it is read,
// without keeping it: a response of a million lines (FETCH 1:* (FLAGS)) kept as a Response
// per line costs the client more than the server spends answering it. line is the response
// without its CRLF, valid only during the call (a response announcing a literal is read
// whole, as ReadResponse does, and handed as its text). The tagged completion is handled as
// Exec does; Result.Untagged stays empty.
func (c *Conn) ExecStream(command string, each func(line []byte) error) (*Result, error) {
	tag := c.NextTag()
	if err := c.Send(tag + " " + command); err != nil {
		return nil, err
	}
	for {
		if c.r.Buffered() == 0 {
			c.deadline() // a read from the socket follows: a timer reset per line was half the time
		}
		chunk, err := c.r.ReadSlice('\n')
		if err == nil && bytes.HasPrefix(chunk, []byte("* ")) && bytes.HasSuffix(chunk, []byte("\r\n")) {
			line := chunk[:len(chunk)-2]
			if _, literal := literalSize(line); !literal {
				if bytes.IndexByte(line, '[') >= 0 || len(line) > 2 && (line[2] == 'C' || line[2] == 'c') {
					c.noteCapabilitiesIn(string(line))
				}
				if err := each(line); err != nil {
					return nil, err
				}
				continue
			}
		}
		resp, err := c.responseFrom(chunk, err)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(resp.Text, "* ") {
			return c.completion(&Result{}, tag, resp)
		}
		c.noteCapabilitiesIn(resp.Text)
		if err := each([]byte(resp.Text)); err != nil {
			return nil, err
		}
	}
}

// completion ends a command at a response that is not untagged: its tagged status, or an
// error for a continuation request or another tag. A NO or BAD is a *ServerError.
func (c *Conn) completion(res *Result, tag string, resp *Response) (*Result, error) {
	switch {
	case strings.HasPrefix(resp.Text, "+"):
		return nil, &ProtocolError{Msg: "unexpected continuation request: " + resp.Text}
	case strings.HasPrefix(resp.Text, tag+" "):
		status, text, _ := strings.Cut(resp.Text[len(tag)+1:], " ")
		status = strings.ToUpper(status)
		res.Status, res.Text = status, text
		c.noteCapabilitiesIn(text)
		switch status {
		case "OK":
			return res, nil
		case "NO", "BAD":
			return res, &ServerError{Status: status, Text: text}
		default:
			return res, &ProtocolError{Msg: "tagged status " + status}
		}
	default:
		return nil, &ProtocolError{Msg: "response with an unknown tag: " + truncate(resp.Text)}
	}
}

func (c *Conn) noteCapabilitiesIn(text string) {
	up := strings.ToUpper(text)
	if strings.HasPrefix(up, "* CAPABILITY ") || strings.Contains(up, "[CAPABILITY ") {
		c.noteCapabilities(text)
	}
}

// Login authenticates with LOGIN (RFC 9051 6.2.3); the password is sent as a quoted string.
func (c *Conn) Login(user, password string) error {
	_, err := c.Exec("LOGIN " + Quote(user) + " " + Quote(password))
	if err != nil {
		return fmt.Errorf("login %s: %w", user, err)
	}
	return nil
}

// Quote renders s as an IMAP quoted string (RFC 9051 4.3).
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// Value is one parsed item of a response: an atom (NIL included), a string (quoted or
// literal) or a parenthesised list.
type Value struct {
	Atom   string
	Str    []byte
	IsStr  bool
	List   []Value
	IsList bool
}

// String returns the atom or string text.
func (v Value) String() string {
	if v.IsStr {
		return string(v.Str)
	}
	return v.Atom
}

type tokenizer struct {
	text     string
	pos      int
	literals [][]byte
}

// list parses values up to the end of the text (depth 0) or a closing parenthesis.
func (t *tokenizer) list(depth int) ([]Value, error) {
	if depth > 64 {
		return nil, &ProtocolError{Msg: "lists nested too deep"}
	}
	var out []Value
	for {
		for t.pos < len(t.text) && t.text[t.pos] == ' ' {
			t.pos++
		}
		if t.pos >= len(t.text) {
			if depth > 0 {
				return nil, &ProtocolError{Msg: "unterminated list"}
			}
			return out, nil
		}
		switch ch := t.text[t.pos]; ch {
		case ')':
			if depth == 0 {
				return nil, &ProtocolError{Msg: "unbalanced ')'"}
			}
			t.pos++
			return out, nil
		case '(':
			t.pos++
			inner, err := t.list(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, Value{List: inner, IsList: true})
		case '"':
			s, err := t.quoted()
			if err != nil {
				return nil, err
			}
			out = append(out, Value{Str: s, IsStr: true})
		case '{':
			end := strings.IndexByte(t.text[t.pos:], '}')
			if end < 0 || len(t.literals) == 0 {
				return nil, &ProtocolError{Msg: "bad literal"}
			}
			t.pos += end + 1
			out = append(out, Value{Str: t.literals[0], IsStr: true})
			t.literals = t.literals[1:]
		default:
			out = append(out, Value{Atom: t.atom()})
		}
	}
}

func (t *tokenizer) quoted() ([]byte, error) {
	var b []byte
	for i := t.pos + 1; i < len(t.text); i++ {
		switch t.text[i] {
		case '\\':
			i++
			if i < len(t.text) {
				b = append(b, t.text[i])
			}
		case '"':
			t.pos = i + 1
			return b, nil
		default:
			b = append(b, t.text[i])
		}
	}
	return nil, &ProtocolError{Msg: "unterminated quoted string"}
}

// atom reads an atom; a "[...]" inside it (BODY[HEADER.FIELDS (A B)], response codes) is
// taken whole, spaces and parentheses included.
func (t *tokenizer) atom() string {
	start := t.pos
	brackets := 0
	for t.pos < len(t.text) {
		ch := t.text[t.pos]
		switch {
		case ch == '[':
			brackets++
		case ch == ']' && brackets > 0:
			brackets--
		case brackets == 0 && (ch == ' ' || ch == '(' || ch == ')' || ch == '"' || ch == '{'):
			return t.text[start:t.pos]
		}
		t.pos++
	}
	return t.text[start:t.pos]
}
