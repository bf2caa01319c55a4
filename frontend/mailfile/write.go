package mailfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/strata-mail/strata/frontend/imap/mutf7"
)

// writeLF copies r to w line by line with LF line endings; each whole line passes through
// edit first (nil: none).
func writeLF(w *bufio.Writer, r io.Reader, edit func(line []byte) []byte) error {
	atLineStart := true
	return eachLine(r, func(line []byte, more bool) error {
		if !more {
			if bytes.HasSuffix(line, []byte("\r\n")) {
				line = append(line[:len(line)-2:len(line)-2], '\n')
			}
			if atLineStart && edit != nil {
				line = edit(line)
			}
		}
		atLineStart = !more
		_, err := w.Write(line)
		return err
	})
}

// MboxWriter writes messages as an mboxrd file (RFC 4155).
type MboxWriter struct {
	w    *bufio.Writer
	last *lastByte
}

// NewMboxWriter writes an mbox to w; Flush when done.
func NewMboxWriter(w io.Writer) *MboxWriter {
	last := &lastByte{w: w}
	return &MboxWriter{w: bufio.NewWriterSize(last, 64<<10), last: last}
}

// endsLF reports whether what was written so far ends with a line ending.
func (m *MboxWriter) endsLF() bool {
	if n := m.w.Buffered(); n > 0 {
		m.w.Flush()
	}
	return m.last.b == '\n'
}

// lastByte remembers the last byte written through it.
type lastByte struct {
	w io.Writer
	b byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.b = p[len(p)-1]
	}
	return l.w.Write(p)
}

// Flush writes out what is buffered.
func (m *MboxWriter) Flush() error { return m.w.Flush() }

// Write appends one message: a From_ line with date (asctime, UTC), the header with the
// flags as Status, X-Status and X-Keywords, the body with "From " lines escaped (mboxrd:
// one more '>' before any line of '>'s then "From "), and the blank separator line.
func (m *MboxWriter) Write(date time.Time, flags []string, body io.Reader) error {
	fmt.Fprintf(m.w, "From MAILER-DAEMON %s\n", date.UTC().Format("Mon Jan _2 15:04:05 2006"))
	status, xstatus, keywords := flagHeaders(flags)
	inHeader := true
	err := writeLF(m.w, body, func(line []byte) []byte {
		if inHeader {
			if len(bytes.TrimRight(line, "\n")) == 0 {
				inHeader = false
				return append([]byte(status+xstatus+keywords), line...)
			}
			if colon := bytes.IndexByte(line, ':'); colon > 0 && internalHeaders[strings.ToLower(string(line[:colon]))] {
				return nil // the flags written here replace the message's own
			}
			return line
		}
		if isFromLine(line) || isEscapedFrom(line) {
			return append([]byte{'>'}, line...)
		}
		return line
	})
	if err != nil {
		return err
	}
	if inHeader {
		// No body: the whole message is header (RFC 5322 2.1); the fields go at its end.
		if !m.endsLF() {
			m.w.WriteString("\n")
		}
		m.w.WriteString(status + xstatus + keywords)
	} else if !m.endsLF() {
		m.w.WriteString("\n")
	}
	_, err = m.w.WriteString("\n")
	return err
}

// flagHeaders renders flags as the Status, X-Status and X-Keywords fields mboxFlags reads.
func flagHeaders(flags []string) (status, xstatus, keywords string) {
	st, xs := "O", ""
	var kw []string
	for _, f := range flags {
		switch strings.ToLower(f) {
		case `\seen`:
			st = "RO"
		case `\answered`:
			xs += "A"
		case `\flagged`:
			xs += "F"
		case `\draft`:
			xs += "T"
		case `\deleted`:
			xs += "D"
		default:
			if !strings.HasPrefix(f, `\`) {
				kw = append(kw, f)
			}
		}
	}
	status = "Status: " + st + "\n"
	if xs != "" {
		xstatus = "X-Status: " + xs + "\n"
	}
	if len(kw) > 0 {
		keywords = "X-Keywords: " + strings.Join(kw, " ") + "\n"
	}
	return status, xstatus, keywords
}

// MaildirWriter writes messages into one Maildir folder, with Dovecot's keywords.
type MaildirWriter struct {
	dir      string
	keywords []string // index i is letter 'a'+i
	host     string
	// Dropped counts keywords beyond the 26 a Maildir can hold, per message left out.
	Dropped int
}

// NewMaildirWriter creates the folder dir (cur, new, tmp).
func NewMaildirWriter(dir string) (*MaildirWriter, error) {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", "\\057", ":", "\\072").Replace(host)
	return &MaildirWriter{dir: dir, host: host}, nil
}

// Write stores one message as cur/<date>.S<uid>.<host>:2,<flags> with LF line endings and
// date as its modification time.
func (m *MaildirWriter) Write(uid uint32, date time.Time, flags []string, body io.Reader) error {
	var letters []byte
	for _, f := range flags {
		switch strings.ToLower(f) {
		case `\draft`:
			letters = append(letters, 'D')
		case `\flagged`:
			letters = append(letters, 'F')
		case "$forwarded":
			letters = append(letters, 'P')
		case `\answered`:
			letters = append(letters, 'R')
		case `\seen`:
			letters = append(letters, 'S')
		case `\deleted`:
			letters = append(letters, 'T')
		default:
			if strings.HasPrefix(f, `\`) {
				continue
			}
			i := slices.Index(m.keywords, f)
			if i < 0 {
				if len(m.keywords) == 26 {
					m.Dropped++
					continue
				}
				m.keywords = append(m.keywords, f)
				i = len(m.keywords) - 1
			}
			letters = append(letters, byte('a'+i))
		}
	}
	slices.Sort(letters) // flags in ASCII order (Maildir)
	letters = slices.Compact(letters)
	base := fmt.Sprintf("%d.S%d.%s", date.Unix(), uid, m.host)
	tmp := filepath.Join(m.dir, "tmp", base)
	file, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(file, 64<<10)
	err = writeLF(w, body, nil)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, date, date)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(m.dir, "cur", base+":2,"+string(letters)))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return nil
}

// Close writes the folder's dovecot-keywords.
func (m *MaildirWriter) Close() error {
	if len(m.keywords) == 0 {
		return nil
	}
	var b strings.Builder
	for i, k := range m.keywords {
		fmt.Fprintf(&b, "%d %s\n", i, k)
	}
	return os.WriteFile(filepath.Join(m.dir, "dovecot-keywords"), []byte(b.String()), 0o600)
}

// MaildirFolderDir is the directory of folder name in a Maildir++ tree at root: root for
// INBOX, root/.A.B for A/B (levels in modified UTF-7).
func MaildirFolderDir(root, name string) (string, error) {
	if name == "INBOX" {
		return root, nil
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, ".\x00") {
			return "", fmt.Errorf("folder %q cannot be a Maildir++ folder (a '.' or an empty level)", name)
		}
	}
	// Each level in modified UTF-7 (RFC 3501 5.1.3), as Dovecot writes Maildir++ names.
	encoded := make([]string, len(parts))
	for i, p := range parts {
		encoded[i] = mutf7.Encode(p)
	}
	return filepath.Join(root, "."+strings.Join(encoded, ".")), nil
}
