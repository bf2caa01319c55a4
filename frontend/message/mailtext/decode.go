package mailtext

import (
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
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
		return &lenientReader{dec: quotedprintable.NewReader(src), src: src}, nil
	}
	return nil, ErrUnknownCTE
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
