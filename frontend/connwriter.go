package frontend

import (
	"bufio"
	"io"
	"sync"
)

// writeBufferSize is the size of a connection's write buffer while it has a response to
// send.
const writeBufferSize = 32 << 10

// writeBuffers holds the write buffers of connections that have nothing to send.
var writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

// connWriter buffers a connection's responses. It takes a buffer from writeBuffers when a
// response is written and gives it back when the response is flushed, so that connections
// waiting for their next command or idling in IDLE (most of a server's connections) hold
// no write buffer. Only the connection's own goroutine uses it.
type connWriter struct {
	w  io.Writer
	bw *bufio.Writer // nil while nothing is buffered
}

func newConnWriter(w io.Writer) *connWriter { return &connWriter{w: w} }

func (cw *connWriter) buf() *bufio.Writer {
	if cw.bw == nil {
		cw.bw = writeBuffers.Get().(*bufio.Writer)
		cw.bw.Reset(cw.w)
	}
	return cw.bw
}

func (cw *connWriter) Write(p []byte) (int, error) { return cw.buf().Write(p) }

func (cw *connWriter) WriteString(s string) (int, error) { return cw.buf().WriteString(s) }

// ReadFrom lets io.Copy fill the buffer directly instead of through a buffer of its own.
func (cw *connWriter) ReadFrom(r io.Reader) (int64, error) { return cw.buf().ReadFrom(r) }

// Flush sends what is buffered and returns the buffer to the pool. A writer whose flush
// failed keeps its buffer, so that its error stays sticky as bufio.Writer's does.
func (cw *connWriter) Flush() error {
	if cw.bw == nil {
		return nil
	}
	if err := cw.bw.Flush(); err != nil {
		return err
	}
	cw.bw.Reset(nil)
	writeBuffers.Put(cw.bw)
	cw.bw = nil
	return nil
}
