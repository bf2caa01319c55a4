package imap

import (
	"bufio"
	"io"
	"sync"
	"sync/atomic"
	"time"

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
// no write buffer. The connection's own goroutine writes; the hold timer (hold) may flush
// from its own goroutine, so every method takes mu.
//
// After COMPRESS (compress.go) a response goes from the buffer through a compressor from
// deflaters into a second buffer, whose writes to the connection are large rather than the
// compressor's 246 bytes at a time; Flush flushes all three and gives all back.
type connWriter struct {
	mu sync.Mutex
	w  io.Writer
	bw *bufio.Writer // nil while nothing is buffered

	deflate bool          // responses are compressed (RFC 4978)
	zw      *flate.Writer // the compressor of the buffered response, when deflate
	zout    *bufio.Writer // zw's output

	// held is set while what is buffered waits for the response of the next command of a
	// pipeline (hold), until holdTimer or flushHeld sends it, or a Flush.
	held      bool
	holdTimer *time.Timer
}

// defaultPipelineHold bounds how long a response waits for the responses of the commands
// pipelined after it (hold): long enough for commands the session answers from its view
// (tens of microseconds, docs/benchmarks.md), short beside any wait a client would notice.
const defaultPipelineHold = 2 * time.Millisecond

// pipelineHold is defaultPipelineHold, or a test's value (SetPipelineHold).
var pipelineHold atomic.Int64

func init() { pipelineHold.Store(int64(defaultPipelineHold)) }

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

func (cw *connWriter) Write(p []byte) (int, error) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.buf().Write(p)
}

func (cw *connWriter) WriteString(s string) (int, error) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.buf().WriteString(s)
}

// ReadFrom lets io.Copy fill the buffer directly instead of through a buffer of its own.
// r may block (a blob streamed from the store), so a held response goes out first.
func (cw *connWriter) ReadFrom(r io.Reader) (int64, error) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.held {
		if err := cw.flush(); err != nil {
			return 0, err
		}
	}
	return cw.buf().ReadFrom(r)
}

// Flush sends what is buffered and returns the buffers to their pools. A compressed
// response ends with a sync flush (Z_SYNC_FLUSH), so that the client can decompress all of
// it at once (RFC 4978 4). A writer whose flush failed keeps its buffers, so that its error
// stays sticky as bufio.Writer's does.
func (cw *connWriter) Flush() error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.flush()
}

// hold keeps what is buffered, the response of a command whose pipelined successor has
// arrived, to go out in one write with the responses after it (conn.commandDone). It goes
// out at the next Flush, at flushHeld (the next command is about to wait: for the client,
// a metadata call, the change feed), or when pipelineHold has passed, whichever is first:
// a response never waits for a slow command after it.
func (cw *connWriter) hold() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.bw == nil {
		return
	}
	cw.held = true
	d := time.Duration(pipelineHold.Load())
	if cw.holdTimer == nil {
		cw.holdTimer = time.AfterFunc(d, cw.flushHeld)
	} else {
		cw.holdTimer.Reset(d)
	}
}

// flushHeld sends a held response (hold). A failed write stays sticky (Flush): the
// connection's goroutine sees it at its next flush.
func (cw *connWriter) flushHeld() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.held {
		cw.flush()
	}
}

// flush is Flush with mu held.
func (cw *connWriter) flush() error {
	if cw.held {
		cw.held = false
		cw.holdTimer.Stop()
	}
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
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.deflate = true
}

// stopDeflate sends what is buffered and ends the compressed stream with a final block:
// later responses are not compressed (RFC 8437 4.1).
func (cw *connWriter) stopDeflate() error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
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
	return cw.flush()
}

// flushingReader is the connection as the framer reads it: a read that goes to the
// connection, because the framer has nothing more of what the client sent buffered, sends
// the responses held for a pipeline first (connWriter.hold), so that the server never
// waits for its client while the client waits for a response (a literal that is slow to
// arrive, the rest of a line).
type flushingReader struct {
	r  io.Reader
	cw *connWriter
}

func (r flushingReader) Read(p []byte) (int, error) {
	r.cw.flushHeld()
	return r.r.Read(p)
}
