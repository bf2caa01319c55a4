// Package mailfile reads and writes the mail file formats other servers and clients keep
// mail in: mbox (mboxrd, RFC 4155) and Maildir (with Maildir++ folders and Dovecot's
// keywords), for `strata import` and `strata export`.
//
// Invariants:
//
//   - Readers never panic and bound memory whatever the input: a header block holds at most
//     MaxHeader bytes, a message at most the caller's limit (its body streams to a writer);
//     what does not fit is an error naming the message, and the reader can go on.
//   - Messages come out with CRLF line endings (RFC 5322 2.1), as IMAP serves them; files
//     are written with LF, as mbox and Maildir keep them.
//   - Flags are IMAP flags and keywords (RFC 9051 2.3.2); what a format cannot hold is left
//     out, never invented.
//   - No I/O beyond the readers, writers and paths the caller gives.
package mailfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxHeader bounds a message's header block in an mbox.
const MaxHeader = 1 << 20

// ErrTooLarge is returned (wrapped) for a message over the caller's size limit.
var ErrTooLarge = errors.New("message too large")

// MboxMessage is one message of an mbox.
type MboxMessage struct {
	// Date is the From_ line's date (RFC 4155 2: asctime form), the zero time if it has
	// none that parses.
	Date  time.Time
	Flags []string
	// Line is the line number of the From_ line, for reports.
	Line int
}

// MboxReader splits an mbox into messages.
type MboxReader struct {
	r    *bufio.Reader
	line int
	// from is the next message's From_ line, already read.
	from    []byte
	started bool
}

// NewMboxReader reads an mbox from r.
func NewMboxReader(r io.Reader) *MboxReader {
	return &MboxReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// internalHeaders are the header fields mail stores put in mboxes for their own use
// (Status and X-Status of mutt, pine and Dovecot; X-Keywords, X-UID, X-IMAP, X-IMAPbase of
// Dovecot and UW-IMAP): read for the flags, and not part of the message.
var internalHeaders = map[string]bool{"status": true, "x-status": true, "x-keywords": true, "x-uid": true, "x-imap": true, "x-imapbase": true}

// readLine returns the next line with its LF (the last may lack it), at most limit bytes;
// longer lines come in pieces, more reports whether the piece is not a whole line.
func (m *MboxReader) readLine() (line []byte, more bool, err error) {
	line, err = m.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return line, true, nil
	}
	if err == nil {
		m.line++
	}
	if errors.Is(err, io.EOF) && len(line) > 0 {
		m.line++
		err = nil
	}
	return line, false, err
}

func isFromLine(line []byte) bool { return bytes.HasPrefix(line, []byte("From ")) }

// Next writes the next message to w, at most limit bytes after CRLF conversion, and
// returns its date and flags; io.EOF after the last. A message over limit returns an error
// wrapping ErrTooLarge, with what was written incomplete; the next call goes on with the
// message after it.
func (m *MboxReader) Next(w io.Writer, limit int64) (MboxMessage, error) {
	if !m.started {
		m.started = true
		// Text before the first From_ line is no message (RFC 4155 2).
		for {
			line, more, err := m.readLine()
			if err != nil {
				return MboxMessage{}, err
			}
			if !more && isFromLine(line) {
				m.from = append([]byte(nil), line...)
				break
			}
			for more {
				if _, more, err = m.readLine(); err != nil {
					return MboxMessage{}, err
				}
			}
		}
	}
	if m.from == nil {
		return MboxMessage{}, io.EOF
	}
	msg := MboxMessage{Date: fromLineDate(string(m.from)), Line: m.line}
	m.from = nil
	out := &limitedWriter{w: w, left: limit}
	var header bytes.Buffer
	inHeader := true
	pendingBlank := false // a blank line that is the separator if a From_ line follows
	atLineStart := true
	var status, xstatus, keywords string
	for {
		line, more, err := m.readLine()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return msg, err
		}
		if atLineStart && !more && isFromLine(line) {
			m.from = append([]byte(nil), line...)
			break
		}
		wasLineStart := atLineStart
		atLineStart = !more
		if inHeader {
			if wasLineStart && (len(bytes.TrimRight(line, "\r\n")) == 0) {
				inHeader = false
				status, xstatus, keywords = writeHeader(out, header.Bytes())
				header.Reset()
				out.Write([]byte("\r\n"))
				continue
			}
			if header.Len()+len(line) > MaxHeader {
				m.skip()
				return msg, fmt.Errorf("mbox line %d: header longer than %d bytes: %w", msg.Line, MaxHeader, ErrTooLarge)
			}
			header.Write(line)
			continue
		}
		if pendingBlank {
			out.Write([]byte("\r\n"))
			pendingBlank = false
		}
		if wasLineStart && !more && len(bytes.TrimRight(line, "\r\n")) == 0 {
			pendingBlank = true
			continue
		}
		if wasLineStart && isEscapedFrom(line) {
			line = line[1:] // mboxrd: one '>' less (RFC 4155 Appendix A)
		}
		writeCRLF(out, line, more)
		if out.over {
			m.skip()
			return msg, fmt.Errorf("mbox line %d: message longer than %d bytes: %w", msg.Line, limit, ErrTooLarge)
		}
	}
	if inHeader {
		// A message without a body: the header ends at the end of the input.
		status, xstatus, keywords = writeHeader(out, header.Bytes())
	}
	if out.over {
		return msg, fmt.Errorf("mbox line %d: message longer than %d bytes: %w", msg.Line, limit, ErrTooLarge)
	}
	msg.Flags = mboxFlags(status, xstatus, keywords)
	return msg, out.err
}

// skip reads up to the next From_ line.
func (m *MboxReader) skip() {
	atLineStart := true
	for {
		line, more, err := m.readLine()
		if err != nil {
			return
		}
		if atLineStart && !more && isFromLine(line) {
			m.from = append([]byte(nil), line...)
			return
		}
		atLineStart = !more
	}
}

// isEscapedFrom reports a line of one or more '>' then "From " (mboxrd).
func isEscapedFrom(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	return i > 0 && bytes.HasPrefix(line[i:], []byte("From "))
}

// writeHeader writes the header block without the internal fields, and returns those.
func writeHeader(out io.Writer, header []byte) (status, xstatus, keywords string) {
	var field bytes.Buffer
	var name string
	flush := func() {
		if field.Len() == 0 {
			return
		}
		value := strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(string(field.Bytes()[len(name)+1:]), "\r", ""), "\n", " "))
		switch strings.ToLower(name) {
		case "status":
			status = value
		case "x-status":
			xstatus = value
		case "x-keywords":
			keywords = value
		}
		if !internalHeaders[strings.ToLower(name)] {
			rest := field.Bytes()
			for len(rest) > 0 {
				line := rest
				if i := bytes.IndexByte(rest, '\n'); i >= 0 {
					line = rest[:i+1]
				}
				rest = rest[len(line):]
				writeCRLF(out, line, false)
			}
		}
		field.Reset()
	}
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line = header[:i+1]
		}
		header = header[len(line):]
		if (line[0] == ' ' || line[0] == '\t') && field.Len() > 0 {
			field.Write(line) // a continuation (RFC 5322 2.2.3)
			continue
		}
		flush()
		colon := bytes.IndexByte(line, ':')
		name = ""
		if colon > 0 {
			name = string(line[:colon])
		}
		if colon <= 0 {
			writeCRLF(out, line, false) // not a field: kept as it is
			continue
		}
		field.Write(line)
	}
	flush()
	return status, xstatus, keywords
}

// writeCRLF writes line with its line ending as CRLF; a piece of a longer line (more) is
// written as it is.
func writeCRLF(w io.Writer, line []byte, more bool) {
	if more {
		w.Write(line)
		return
	}
	body := bytes.TrimSuffix(line, []byte("\n"))
	hadLF := len(body) < len(line)
	body = bytes.TrimSuffix(body, []byte("\r"))
	w.Write(body)
	if hadLF {
		w.Write([]byte("\r\n"))
	}
}

// mboxFlags reads the flags of the Status, X-Status and X-Keywords fields: Status R is
// \Seen; X-Status A, F, T, D are \Answered, \Flagged, \Draft, \Deleted (as mutt and Dovecot
// write them); X-Keywords lists keywords.
func mboxFlags(status, xstatus, keywords string) []string {
	var flags []string
	if strings.ContainsRune(status, 'R') {
		flags = append(flags, `\Seen`)
	}
	for _, c := range xstatus {
		switch c {
		case 'A':
			flags = append(flags, `\Answered`)
		case 'F':
			flags = append(flags, `\Flagged`)
		case 'T':
			flags = append(flags, `\Draft`)
		case 'D':
			flags = append(flags, `\Deleted`)
		}
	}
	for _, k := range strings.FieldsFunc(keywords, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if validKeyword(k) {
			flags = append(flags, k)
		}
	}
	return flags
}

// validKeyword reports an IMAP keyword: an atom (RFC 9051 9: flag-keyword).
func validKeyword(k string) bool {
	if k == "" || len(k) > 200 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// fromLineDate parses the date of a From_ line, "From sender Tue Mar  5 10:00:00 2024"
// (asctime, RFC 4155 2), possibly with a zone after the time or the year.
func fromLineDate(line string) time.Time {
	fields := strings.Fields(line)
	if len(fields) < 7 {
		return time.Time{}
	}
	// The date is the last five fields (day, month, day of month, time, year), or six with a
	// zone; the sender may hold spaces.
	for _, n := range []int{5, 6} {
		if len(fields) < 2+n {
			continue
		}
		s := strings.Join(fields[len(fields)-n:], " ")
		for _, layout := range []string{"Mon Jan 2 15:04:05 2006", "Mon Jan 2 15:04:05 2006 -0700", "Mon Jan 2 15:04:05 MST 2006", "Mon Jan 2 15:04:05 -0700 2006"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// limitedWriter writes at most left bytes, then notes it is over.
type limitedWriter struct {
	w    io.Writer
	left int64
	over bool
	err  error
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.over || l.err != nil {
		return len(p), nil
	}
	if int64(len(p)) > l.left {
		l.over = true
		return len(p), nil
	}
	l.left -= int64(len(p))
	if _, err := l.w.Write(p); err != nil {
		l.err = err
	}
	return len(p), nil
}
