package imap

import (
	"bufio"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
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
//
// After COMPRESS (compress.go) a response goes from the buffer through a compressor from
// deflaters into a second buffer, whose writes to the connection are large rather than the
// compressor's 246 bytes at a time; Flush flushes all three and gives all back.
type connWriter struct {
	w  io.Writer
	bw *bufio.Writer // nil while nothing is buffered

	deflate bool          // responses are compressed (RFC 4978)
	zw      *flate.Writer // the compressor of the buffered response, when deflate
	zout    *bufio.Writer // zw's output
}

func newConnWriter(w io.Writer) *connWriter { return &connWriter{w: w} }

func (cw *connWriter) buf() *bufio.Writer {
	if cw.bw == nil {
		cw.bw = writeBuffers.Get().(*bufio.Writer)
		if cw.deflate {
			cw.zout = writeBuffers.Get().(*bufio.Writer)
			cw.zout.Reset(cw.w)
			cw.zw = deflaters.Get().(*flate.Writer)
			cw.zw.Reset(cw.zout)
			cw.bw.Reset(cw.zw)
		} else {
			cw.bw.Reset(cw.w)
		}
	}
	return cw.bw
}

func (cw *connWriter) Write(p []byte) (int, error) { return cw.buf().Write(p) }

func (cw *connWriter) WriteString(s string) (int, error) { return cw.buf().WriteString(s) }

// ReadFrom lets io.Copy fill the buffer directly instead of through a buffer of its own.
func (cw *connWriter) ReadFrom(r io.Reader) (int64, error) { return cw.buf().ReadFrom(r) }

// Flush sends what is buffered and returns the buffers to their pools. A compressed
// response ends with a sync flush (Z_SYNC_FLUSH), so that the client can decompress all of
// it at once (RFC 4978 4). A writer whose flush failed keeps its buffers, so that its error
// stays sticky as bufio.Writer's does.
func (cw *connWriter) Flush() error {
	if cw.bw == nil {
		return nil
	}
	if err := cw.bw.Flush(); err != nil {
		return err
	}
	if cw.zw != nil {
		if err := cw.zw.Flush(); err != nil {
			return err
		}
		if err := cw.zout.Flush(); err != nil {
			return err
		}
		cw.release()
	}
	cw.bw.Reset(nil)
	writeBuffers.Put(cw.bw)
	cw.bw = nil
	return nil
}

// release gives the compressor and its output buffer back.
func (cw *connWriter) release() {
	cw.zw.Reset(nil)
	deflaters.Put(cw.zw)
	cw.zout.Reset(nil)
	writeBuffers.Put(cw.zout)
	cw.zw, cw.zout = nil, nil
}

// startDeflate compresses the responses written from here on. Nothing may be buffered.
func (cw *connWriter) startDeflate() {
	cw.deflate = true
}

// stopDeflate sends what is buffered and ends the compressed stream with a final block:
// later responses are not compressed (RFC 8437 4.1).
func (cw *connWriter) stopDeflate() error {
	cw.buf() // a compressor to write the final block with, even when nothing is buffered
	if err := cw.bw.Flush(); err != nil {
		return err
	}
	if err := cw.zw.Close(); err != nil {
		return err
	}
	if err := cw.zout.Flush(); err != nil {
		return err
	}
	cw.release()
	cw.deflate = false
	// Nothing is buffered any more: bw goes back as Flush gives it back.
	return cw.Flush()
}
