package imapwire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrLineTooLong is returned by Framer.ReadLine for a line longer than the framer's limit. The
// rest of the line has been discarded, so the connection can go on with the next line.
var ErrLineTooLong = errors.New("imapwire: line too long")

// Literal describes the literal announced at the end of a line: {n} (synchronising), {n+}
// (non-synchronising, RFC 7888) or ~{n} (literal8, RFC 3516). RFC 9051 4.3.
type Literal struct {
	Size    int64
	NonSync bool
	Binary  bool
}

// Framer reads the lines and literals of IMAP commands from a client with bounded memory:
// a line longer than the limit is discarded, literals are read only as the caller asks. It
// knows nothing of command grammar; Parse* turn the assembled bytes into commands.
//
// The read buffer is taken from a pool when the framer reads and can be given back while
// nothing is buffered (Release), so that a connection waiting for its client (Wait) holds
// none: most of a server's connections wait most of the time.
type Framer struct {
	src source
	br  *bufio.Reader // nil while released
	// maxLine bounds a line.
	maxLine int
	// below is the reader of the connection's own bytes while a layer (Push) is between
	// them and br; nil otherwise.
	below *bufio.Reader
	// tail keeps the last bytes of a discarded over-long line, so that a literal announced
	// at its end is still seen and can be skipped.
	tail []byte
}

// source is the connection under the framer's buffer, with what Wait read ahead.
type source struct {
	r      io.Reader
	ahead  [aheadSize]byte
	lo, hi uint8 // ahead[lo:hi] is unread
}

// aheadSize is how much Wait reads: most command lines (and DONE) fit, so the framer's
// buffer then finds the whole line there without another read.
const aheadSize = 128

func (s *source) Read(p []byte) (int, error) {
	if s.lo < s.hi {
		n := copy(p, s.ahead[s.lo:s.hi])
		s.lo += uint8(n)
		return n, nil
	}
	return s.r.Read(p)
}

// readBufferSize is the size of a framer's read buffer.
const readBufferSize = 16 << 10

// readBuffers holds the read buffers of framers that have nothing buffered.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// NewFramer returns a framer over r that accepts lines of at most maxLine bytes. It takes
// no buffer until it reads.
func NewFramer(r io.Reader, maxLine int) *Framer {
	return &Framer{src: source{r: r}, maxLine: maxLine}
}

// reader returns the buffered reader of the commands, taking a read buffer if the framer
// has none.
func (f *Framer) reader() *bufio.Reader {
	if f.br == nil {
		f.br = readBuffers.Get().(*bufio.Reader)
		f.br.Reset(&f.src)
	}
	return f.br
}

// Release gives the read buffer back when it holds nothing, and reports whether the framer
// now holds none. A framer with a layer (Push) keeps its buffers: the layer reads from
// the one below.
func (f *Framer) Release() bool {
	switch {
	case f.br == nil:
		return true
	case f.below != nil || f.br.Buffered() > 0:
		return false
	}
	f.br.Reset(nil)
	readBuffers.Put(f.br)
	f.br = nil
	return true
}

// Wait blocks until the client has sent something that the framer has not returned yet, or
// the read fails (a deadline, a closed connection; the framer goes on reading after a
// deadline). It reads at most aheadSize bytes, which the framer keeps without a read
// buffer, so that a framer that Released its buffer waits without one. A read through a
// layer (Push) that has output buffered returns at once; one with only its input
// buffered returns at once too, though that input may turn out to hold no command.
func (f *Framer) Wait() error {
	if f.Pending() {
		return nil
	}
	n, err := f.src.r.Read(f.src.ahead[:])
	if n > 0 {
		f.src.lo, f.src.hi = 0, uint8(n)
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// Pending reports whether the client sent something that the framer has not returned yet:
// bytes in its buffer, those Wait read, or input that a layer (Push) has not read yet.
func (f *Framer) Pending() bool {
	return f.Buffered() > 0 || f.src.lo < f.src.hi || f.below != nil && f.below.Buffered() > 0
}

// layerBufferSize is the buffer of what a layer (Push) delivers: small, since the
// connection's bytes are buffered below it already.
const layerBufferSize = 4 << 10

// Push makes the framer read through a layer over the connection, such as the decompressor
// of COMPRESS (RFC 4978): layer gets the reader of the connection's bytes, which still
// holds whatever the framer had read ahead of the commands it returned, and returns the
// reader of the layer's output. A layer that reads below one byte at a time (below is an
// io.ByteReader) leaves there exactly what it did not use, for Pop.
func (f *Framer) Push(layer func(below *bufio.Reader) io.Reader) {
	f.below = f.reader()
	f.br = bufio.NewReaderSize(layer(f.below), layerBufferSize)
}

// Pop removes the layer that Push added: the framer reads the connection's bytes again,
// from where the layer stopped reading them. What the framer had read from the layer and
// not yet returned is dropped; Pop returns how many bytes that was. Without a layer Pop
// does nothing.
func (f *Framer) Pop() int {
	if f.below == nil {
		return 0
	}
	dropped := f.br.Buffered()
	f.br, f.below = f.below, nil
	return dropped
}

// ReadLine reads one line and returns it without its CRLF (a bare LF is tolerated). The
// returned slice is valid until the next call. A line over the limit is read to its end and
// dropped, and ReadLine returns ErrLineTooLong with the last bytes of the line (enough to see
// a literal announced at its end, see LiteralAtEnd).
func (f *Framer) ReadLine() ([]byte, error) {
	var line []byte
	br := f.reader()
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > f.maxLine+2 {
			return f.discardLine(chunk, err)
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("read line: %w", err)
		}
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

// discardLine reads and drops the rest of a line that went over the limit; chunk is its
// latest piece and err the error that came with it.
func (f *Framer) discardLine(chunk []byte, err error) ([]byte, error) {
	const tailSize = 32
	keep := func(b []byte) {
		f.tail = append(f.tail, b...)
		if len(f.tail) > tailSize {
			f.tail = append(f.tail[:0], f.tail[len(f.tail)-tailSize:]...)
		}
	}
	f.tail = f.tail[:0]
	keep(chunk)
	for err != nil {
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("read line: %w", err)
		}
		chunk, err = f.reader().ReadSlice('\n')
		keep(chunk)
	}
	tail := bytes.TrimSuffix(bytes.TrimSuffix(f.tail, []byte{'\n'}), []byte{'\r'})
	return tail, ErrLineTooLong
}

// ReadLiteral appends the n bytes of a literal to dst. The caller bounds n.
func (f *Framer) ReadLiteral(dst []byte, n int64) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := io.ReadFull(f.reader(), dst[start:]); err != nil {
		return dst[:start], fmt.Errorf("read literal of %d bytes: %w", n, err)
	}
	return dst, nil
}

// LiteralReader returns a reader over the next n bytes, the data of a literal that the
// caller streams somewhere (an APPEND body into the blob spool) instead of holding it.
func (f *Framer) LiteralReader(n int64) io.Reader {
	return io.LimitReader(f.reader(), n)
}

// Discard reads and drops n bytes: a literal the client sent although it is refused.
func (f *Framer) Discard(n int64) error {
	if _, err := io.CopyN(io.Discard, f.reader(), n); err != nil {
		return fmt.Errorf("discard literal of %d bytes: %w", n, err)
	}
	return nil
}

// LiteralAtEnd reports the literal announced at the end of line: "{n}", "{n+}" or "~{n}".
// RFC 9051 9: literal = "{" number64 ["+"] "}" CRLF *CHAR8; literal8 (RFC 3516) = "~{" ...
func LiteralAtEnd(line []byte) (Literal, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return Literal{}, false
	}
	end := len(line) - 1
	var lit Literal
	if line[end-1] == '+' {
		lit.NonSync = true
		end--
	}
	start := bytes.LastIndexByte(line[:end], '{')
	// 18 digits keep the value inside int64; larger literals are refused anyway.
	if start < 0 || start+1 == end || end-start-1 > 18 {
		return Literal{}, false
	}
	var n int64
	for _, c := range line[start+1 : end] {
		if c < '0' || c > '9' {
			return Literal{}, false
		}
		n = n*10 + int64(c-'0')
	}
	lit.Size = n
	lit.Binary = start > 0 && line[start-1] == '~'
	return lit, true
}

// LineBuffered reports whether the framer holds a whole line it has not returned yet, so
// that the next ReadLine returns it without reading from the connection. Through a layer
// (Push) it reports false.
func (f *Framer) LineBuffered() bool {
	if f.below != nil {
		return false
	}
	n := f.Buffered()
	if n == 0 {
		return false
	}
	buffered, _ := f.br.Peek(n)
	return bytes.IndexByte(buffered, '\n') >= 0
}

// Buffered returns how many bytes have been read from the connection and not yet returned:
// what a client sent ahead (pipelined) of the command being served. What Wait read ahead is
// not counted.
func (f *Framer) Buffered() int {
	if f.br == nil {
		return 0
	}
	return f.br.Buffered()
}
