package imap_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/frontend/imap"
)

// sequenceSeeds are command sequences as clients send them, one command per line; a literal
// inside a command is written inline after its {n} or {n+}.
var sequenceSeeds = []struct {
	state    uint8 // 0 not authenticated, 1 authenticated, 2 INBOX selected
	commands string
}{
	{0, "CAPABILITY\nLOGIN demo@example.com demo\nSELECT INBOX\nFETCH 1:* (FLAGS UID)\nLOGOUT"},
	{0, "AUTHENTICATE PLAIN\nNOOP\nAUTHENTICATE PLAIN AGRlbW9AZXhhbXBsZS5jb20AZGVtbw==\nLIST \"\" *"},
	{0, "LOGIN {16}\r\ndemo@example.com {4}\r\ndemo\nENABLE IMAP4rev2\nNAMESPACE"},
	{1, "CREATE Seq\nAPPEND Seq (\\Seen) {22+}\r\nSubject: s\r\n\r\nbody\r\n\r\nSELECT Seq\nSTORE 1 +FLAGS (\\Deleted)\nEXPUNGE\nUNSELECT\nDELETE Seq"},
	{1, "SELECT INBOX\nIDLE\nNOOP\nEXAMINE INBOX\nSTORE 1 +FLAGS (\\Seen)\nCLOSE"},
	{1, "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)\nLIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN SPECIAL-USE)\nSUBSCRIBE INBOX\nLSUB \"\" *"},
	{2, "UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)] BODYSTRUCTURE ENVELOPE)\nFETCH 1 BODY[]<0.10>\nFETCH * (RFC822.SIZE INTERNALDATE)"},
	{2, "UID SEARCH OR UNSEEN FROM alice\nSEARCH RETURN (MIN MAX COUNT) ALL\nSEARCH CHARSET UTF-8 SUBJECT {3+}\r\nfoo"},
	{2, "COPY 1 INBOX\nUID MOVE 1:* Trash\nUID EXPUNGE 1:*\nSELECT Trash\nMOVE 1:* INBOX\nCHECK"},
	{2, "APPEND INBOX {20+}\r\nSubject: x\r\n\r\nhello\r\nNOOP\nIDLE\nFETCH 1:* FLAGS\nRENAME INBOX Old\nSELECT Old\nDELETE Old"},
}

// FuzzSequences runs a sequence of commands in one live session starting in each connection
// state and checks that the server answers every command within commandBound, keeps the
// session alive to the end (unless it logs out), and that the connection's goroutines are
// gone once it closes.
func FuzzSequences(f *testing.F) {
	for _, s := range sequenceSeeds {
		f.Add(s.state, s.commands)
	}
	// The goroutines checked are the connection's: the shared view of a mailbox (its change
	// feed) outlives its last session by design (mailview.go), so here by nothing.
	imap.SetMailViewLinger(f, 0)
	srv := startServer(f)
	appendMessage(f, login(f, srv), "INBOX", testMessage("fuzz sequences", "first body"))
	f.Fuzz(func(t *testing.T, state uint8, commands string) {
		// Measured here, in the goroutine that runs this input; a goroutine of the metadata
		// service that happens to run now only makes the check below more lenient.
		baseline := runtime.NumGoroutine()
		lines := splitSequence(commands)
		if len(lines) > 40 {
			lines = lines[:40]
		}
		setup := [][]string{nil, {"LOGIN demo@example.com demo"}, {"LOGIN demo@example.com demo", "SELECT INBOX"}}[state%3]
		conn, err := net.Dial("tcp", srv.IMAPAddr())
		if err != nil {
			t.Fatal(err)
		}
		s := &sequenceSession{t: t, conn: conn, r: bufio.NewReader(conn)}
		if _, err := s.readResponseLine(); err != nil {
			t.Fatalf("greeting: %v", err)
		}
		for i, line := range setup {
			if closed := s.run(fmt.Sprintf("s%d", i), line); closed {
				t.Fatalf("setup %q closed the connection", line)
			}
		}
		closed := false
		for i, line := range lines {
			if closed = s.run(fmt.Sprintf("q%d", i), line); closed {
				break
			}
		}
		if !closed {
			s.run("zend", "NOOP")
		}
		conn.Close()
		if n := goroutinesSettle(baseline); n > baseline {
			var dump bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Fatalf("%d goroutines after the connection closed, %d before it opened:\n%s", n, baseline, dump.String())
		}
	})
}

// commandBound is how long any one command may take to be answered.
const commandBound = 10 * time.Second

// goroutinesSettle waits up to five seconds for the number of goroutines to fall to at most
// target and returns the last count.
func goroutinesSettle(target int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); n > target && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// splitSequence splits the fuzz input into commands at each LF not preceded by CR (a CRLF
// belongs to an inline literal).
func splitSequence(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	return append(lines, s[start:])
}

// wireCommand turns one fuzzed command into the bytes a client sends: each {n}, {n+} or
// ~{n} that ends a line gets exactly n bytes of literal (what follows it in the command,
// padded with 'x'; n capped so that a sequence stays small), other CRLFs become spaces, and
// the command ends with CRLF.
func wireCommand(tag, command string) []byte {
	const maxLiteral = 4096
	var out bytes.Buffer
	out.WriteString(tag + " ")
	rest := command
	for rest != "" {
		line, after, found := strings.Cut(rest, "\r\n")
		rest = after
		n, prefix, ok := literalAtEnd(line)
		if !ok {
			out.WriteString(line)
			if found {
				out.WriteString(" ")
			}
			continue
		}
		if n > maxLiteral {
			suffix := "}"
			if strings.HasSuffix(line, "+}") {
				suffix = "+}"
			}
			n, line = maxLiteral, prefix+strconv.Itoa(maxLiteral)+suffix
		}
		out.WriteString(line + "\r\n")
		take := min(n, len(rest))
		out.WriteString(rest[:take])
		out.WriteString(strings.Repeat("x", n-take))
		rest = rest[take:]
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// literalAtEnd parses a {n}, {n+} or ~{n} at the end of line and returns n and the line up
// to the digits.
func literalAtEnd(line string) (n int, prefix string, ok bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, "", false
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return 0, "", false
	}
	digits := strings.TrimSuffix(line[open+1:len(line)-1], "+")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return 0, "", false
	}
	return n, line[:open+1], true
}

// sequenceSession is one fuzzed connection.
type sequenceSession struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// run sends one command and reads until its tagged response, answering continuation
// requests the way a client gives up: DONE for IDLE, "*" for AUTHENTICATE (RFC 9051
// 6.2.2). It reports whether the server closed the connection.
func (s *sequenceSession) run(tag, command string) (closed bool) {
	s.t.Helper()
	verb := strings.ToUpper(strings.SplitN(strings.TrimSpace(command), " ", 2)[0])
	s.conn.SetWriteDeadline(time.Now().Add(commandBound))
	if _, err := s.conn.Write(wireCommand(tag, command)); err != nil {
		return true // the server may close after a BYE for an earlier command
	}
	deadline := time.Now().Add(commandBound)
	for {
		s.conn.SetReadDeadline(deadline)
		line, err := s.readResponseLine()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.t.Fatalf("%q was not answered within %v", command, commandBound)
			}
			return true
		}
		switch {
		case strings.HasPrefix(line, tag+" "):
			return false
		case strings.HasPrefix(line, "+"):
			if verb == "IDLE" {
				s.conn.Write([]byte("DONE\r\n"))
			} else if verb == "AUTHENTICATE" {
				s.conn.Write([]byte("*\r\n"))
			}
		}
	}
}

// readResponseLine reads one response line with its literals inline.
func (s *sequenceSession) readResponseLine() (string, error) {
	var full strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		full.WriteString(line)
		if err != nil {
			return full.String(), err
		}
		n, _, ok := literalAtEnd(strings.TrimSuffix(line, "\r\n"))
		if !ok || !carriesLiterals(full.String()) {
			return full.String(), nil
		}
		if _, err := io.CopyN(&full, s.r, int64(n)); err != nil {
			return full.String(), err
		}
	}
}

// carriesLiterals reports whether a response line can end in a literal: untagged data
// responses can (RFC 9051 7.4, 7.5), while tagged, continuation and status responses end in
// human-readable text, which may echo a client's "{n}".
func carriesLiterals(line string) bool {
	if !strings.HasPrefix(line, "* ") {
		return false
	}
	for _, status := range []string{"* OK", "* NO", "* BAD", "* BYE", "* PREAUTH"} {
		if strings.HasPrefix(line, status) {
			return false
		}
	}
	return true
}
