package mailtext

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUnknownCTE is a Content-Transfer-Encoding the server cannot decode; BINARY answers it
// with NO [UNKNOWN-CTE] (RFC 3516 4.3, RFC 9051 7.1).
var ErrUnknownCTE = errors.New("unknown content transfer encoding")

// TransferDecoder returns a reader of the content of r, an entity body encoded with the
// Content-Transfer-Encoding encoding (RFC 2045 6). Identity encodings (7bit, 8bit, binary, or
// none given) pass through; base64 and quoted-printable are decoded as they stream.
//
// Mail in the wild is often slightly malformed, so decoding is lenient: base64 skips bytes
// outside its alphabet, and the content ends at the first sequence neither decoder can make
// sense of. Errors reading r itself are returned as they are, so a failing blob read is never
// mistaken for the end of the content.
func TransferDecoder(r io.Reader, encoding string) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "7bit", "8bit", "binary":
		return r, nil
	case "base64":
		src := &sourceReader{r: r}
		return &lenientReader{dec: base64.NewDecoder(base64.StdEncoding, &base64Filter{r: src}), src: src}, nil
	case "quoted-printable":
		src := &sourceReader{r: r}
		return &lenientReader{dec: &qpReader{br: bufio.NewReaderSize(src, qpBuffer)}, src: src}, nil
	}
	return nil, ErrUnknownCTE
}

// SegmentReader decodes the content of segment after segment (SegmentContent) with the
// same buffers: the search index reads thousands of parts a second, and a
// quoted-printable part allocated and cleared a 4 KiB line buffer.
type SegmentReader struct {
	src     sourceReader
	qp      qpReader
	lenient lenientReader
}

// Content is SegmentContent(r, seg); the reader it returns is valid until the next call.
func (s *SegmentReader) Content(r io.Reader, seg Segment) io.Reader {
	if !strings.EqualFold(strings.TrimSpace(seg.Encoding), "quoted-printable") {
		return SegmentContent(r, seg)
	}
	s.src = sourceReader{r: r}
	if s.qp.br == nil {
		s.qp.br = bufio.NewReaderSize(&s.src, qpBuffer)
	}
	s.qp.br.Reset(&s.src)
	s.qp.line, s.qp.rerr = nil, nil
	s.lenient = lenientReader{dec: &s.qp, src: &s.src}
	return convertCharset(&s.lenient, seg.Charset)
}

// qpBuffer is the line buffer of a quoted-printable decoder, mime/quotedprintable's.
const qpBuffer = 4096

// qpReader is mime/quotedprintable's Reader (the same lines, bytes and errors: the
// lenient rules below are its deviations from RFC 2045 6.7, TestQPReaderMatchesStdlib)
// with runs of literal bytes copied at once and its line buffer given by the caller.
type qpReader struct {
	br   *bufio.Reader
	rerr error  // the last read error of br
	line []byte // what is left of the line being decoded
}

// qpLiteral marks the bytes a quoted-printable line passes through as they are: printable
// ASCII but "=", TAB, CR and LF (passed through when not after "="), and bytes of 0x80
// and above.
var qpLiteral = func() (t [256]bool) {
	for b := range 256 {
		t[b] = b != '=' && (b >= ' ' && b <= '~' || b == '\t' || b == '\r' || b == '\n' || b >= 0x80)
	}
	return t
}()

func (r *qpReader) Read(p []byte) (n int, err error) {
	// Deviations from RFC 2045 (mime/quotedprintable's):
	// 1. in addition to "=\r\n", "=\n" is also treated as soft line break.
	// 2. it passes through a '\r' or '\n' not preceded by '='.
	// 3. it accepts soft line-break (=) at end of message.
	// 4. it takes = as literal = if not followed by two hex digits but not at end of line.
	for len(p) > 0 {
		if len(r.line) == 0 {
			if r.rerr != nil {
				return n, r.rerr
			}
			r.line, r.rerr = r.br.ReadSlice('\n')
			hasLF := bytes.HasSuffix(r.line, []byte("\n"))
			hasCR := bytes.HasSuffix(r.line, []byte("\r\n"))
			wholeLine := r.line
			r.line = bytes.TrimRightFunc(wholeLine, isQPDiscardWhitespace)
			if bytes.HasSuffix(r.line, []byte("=")) {
				rightStripped := bytes.TrimLeft(wholeLine[len(r.line):], " \t")
				r.line = r.line[:len(r.line)-1]
				if !bytes.HasPrefix(rightStripped, []byte("\n")) && !bytes.HasPrefix(rightStripped, []byte("\r\n")) &&
					!(len(rightStripped) == 0 && len(r.line) > 0 && r.rerr == io.EOF) {
					r.rerr = fmt.Errorf("quotedprintable: invalid bytes after =: %q", rightStripped)
				}
			} else if hasLF {
				if hasCR {
					r.line = append(r.line, '\r', '\n')
				} else {
					r.line = append(r.line, '\n')
				}
			}
			continue
		}
		// A run of literal bytes at once.
		run := 0
		for run < len(r.line) && run < len(p) && qpLiteral[r.line[run]] {
			run++
		}
		if run > 0 {
			copy(p, r.line[:run])
			p, r.line, n = p[run:], r.line[run:], n+run
			continue
		}
		b := r.line[0]
		if b == '=' {
			b, err = readHexByte(r.line[1:])
			if err != nil {
				if len(r.line) >= 2 && r.line[1] != '\r' && r.line[1] != '\n' {
					b = '=' // a literal "="
				} else {
					return n, err
				}
			} else {
				r.line = r.line[2:] // 2 of the 3; the other 1 is done below
			}
		} else {
			return n, fmt.Errorf("quotedprintable: invalid unescaped byte 0x%02x in body", b)
		}
		p[0] = b
		p = p[1:]
		r.line = r.line[1:]
		n++
	}
	return n, nil
}

// isQPDiscardWhitespace reports whether r is white space a quoted-printable line ends
// with that is not part of its content (RFC 2045 6.7 rule 3).
func isQPDiscardWhitespace(r rune) bool {
	switch r {
	case '\n', '\r', ' ', '\t':
		return true
	}
	return false
}

func readHexByte(v []byte) (byte, error) {
	if len(v) < 2 {
		return 0, io.ErrUnexpectedEOF
	}
	hb, err := fromHex(v[0])
	if err != nil {
		return 0, err
	}
	lb, err := fromHex(v[1])
	if err != nil {
		return 0, err
	}
	return hb<<4 | lb, nil
}

func fromHex(b byte) (byte, error) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', nil
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, nil
	case b >= 'a' && b <= 'f': // lowercase accepted, as mime/quotedprintable does
		return b - 'a' + 10, nil
	}
	return 0, fmt.Errorf("quotedprintable: invalid hex byte 0x%02x", b)
}

// sourceReader remembers the first error of the underlying reader other than io.EOF.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// lenientReader turns a decoding error into the end of the content, and passes errors of the
// source through.
type lenientReader struct {
	dec  io.Reader
	src  *sourceReader
	done bool
}

func (l *lenientReader) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	n, err := l.dec.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if l.src.err != nil {
			return n, l.src.err
		}
		l.done = true
		return n, io.EOF
	}
	return n, err
}

// base64Filter passes only the bytes of the base64 alphabet and its padding (RFC 2045 6.8:
// "all line breaks or other characters not found in Table 1 must be ignored").
type base64Filter struct {
	r io.Reader
}

func (f *base64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		kept := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				p[kept] = c
				kept++
			}
		}
		if kept > 0 || err != nil {
			return kept, err
		}
	}
}
