package imap

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/imap/inflate"
)

// COMPRESS=DEFLATE (RFC 4978): after the tagged OK of COMPRESS DEFLATE both directions of
// the connection are raw DEFLATE (RFC 1951, no zlib header), above TLS when TLS is active.
//
// The decompressor is frontend/inflate, which hands over every byte as soon as its symbol is
// decoded and reads no input bit before it needs it: mutt, neomutt and mbsync end each
// command with zlib's Z_PARTIAL_FLUSH, whose last bits stay in the client until it sends
// more, and Go's decoders (compress/flate, and klauspost's even with WithPartialBlock) wait
// for input past them, so such a command was never read (mbsync hung at its first
// synchronising APPEND). The compressor is github.com/klauspost/compress/flate, which is
// faster than compress/flate:
// on the FETCH responses of BenchmarkDeflateLevels, level 5 ran at 2 to 5 times the speed
// of compress/flate at zlib's default level 6 (Dovecot's level) on this loaded 2-core
// machine, for output 13% larger (0.065 of the input against 0.058); its level 6 is 6%
// smaller again and slower.
//
// A compressor with its window and tables takes about 1 MiB, at every level of either
// package, so a connection holds one only while it has a response to send, as it holds its
// write buffer (connwriter.go): the response is compressed and flushed (Z_SYNC_FLUSH), and
// the compressor goes back to deflaters. The next response is compressed by another one,
// reset, which does not refer to earlier responses; the client's decompressor is not told
// and need not be. The decompressor cannot be given back between commands, since the
// client's compressor refers to everything it sent before; it takes about 40 KiB for the
// life of the compression (BenchmarkCompressedConnMemory measures both).

// deflateLevel is the level of klauspost/compress/flate the responses are compressed at.
const deflateLevel = 5

// deflaters holds the compressors of the connections that have nothing to send.
var deflaters = sync.Pool{New: func() any {
	w, err := flate.NewWriter(nil, deflateLevel)
	if err != nil {
		panic(err) // only for a level out of range
	}
	return w
}}

// cmdCompress: RFC 4978 3. The OK goes out uncompressed; both directions are compressed
// from the octet after its CRLF, which serve's afterResponse arranges.
func (c *conn) cmdCompress(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.CompressArgs)
	if c.srv.cfg.DisableCompress {
		return bad("", "COMPRESS is not offered") // not announced (Config.DisableCompress)
	}
	if args.Mechanism != "DEFLATE" {
		return bad("", "Unknown compression mechanism "+args.Mechanism)
	}
	if c.inflater != nil {
		// RFC 4978 3: "BAD ... COMPRESS already active"; NO is for compression by another
		// layer, which TLS 1.2 and 1.3 as Go speaks them never do.
		return bad(imapresp.CodeCompressionActive, "DEFLATE is already active")
	}
	c.afterResponse = c.startCompression
	return ok("", "DEFLATE active")
}

// startCompression compresses the connection in both directions from here on.
func (c *conn) startCompression() {
	c.bw.startDeflate()
	c.framer.Push(func(below *bufio.Reader) io.Reader {
		c.inflater = newInflater(below)
		return c.inflater
	})
	c.log.Debug("COMPRESS DEFLATE active")
}

// inflateEndWait bounds how long stopCompression waits for the end of the client's
// compressed data.
const inflateEndWait = time.Second

// stopCompression ends the compression of both directions after UNAUTHENTICATE (RFC 8437
// 4.1): the server's after the CRLF of its OK, with a final block, the client's after the
// CRLF of UNAUTHENTICATE. RFC 8437 does not say how the client ends its DEFLATE data; the
// decompressor reads on until the empty stored block of a sync or full flush (which zlib
// writes for Z_SYNC_FLUSH and Z_FULL_FLUSH, Go's compress/flate for Flush) or the end of a
// final block, waiting up to inflateEndWait for them. What follows them is read as plain
// text. A client that only partially flushed (and so has bits it never sent) costs that
// wait once.
func (c *conn) stopCompression() {
	err := c.bw.stopDeflate()
	if err != nil {
		c.log.Debug("end compression", "err", err)
		c.state = stateLogout
		return
	}
	in := c.inflater
	c.inflater = nil
	in.source.ending = true
	defer c.disarm()
	if err := c.raw.SetReadDeadline(time.Now().Add(inflateEndWait)); err != nil {
		c.state = stateLogout
		return
	}
	var rest int
	buf := make([]byte, 512)
	for err == nil {
		var n int
		n, err = in.Read(buf)
		rest += n
	}
	if rest += c.framer.Pop(); rest > 0 {
		c.log.Info("discarding compressed input sent after UNAUTHENTICATE", "bytes", rest)
	}
	c.log.Debug("COMPRESS DEFLATE ended", "end", err)
}

// inflater decompresses what the client sends after COMPRESS DEFLATE.
type inflater struct {
	io.Reader
	source *deflateSource
}

func newInflater(below *bufio.Reader) *inflater {
	src := &deflateSource{below: below}
	return &inflater{Reader: inflate.NewReader(src), source: src}
}

// errDeflateEnded is what deflateSource returns once the client's compressed data has ended.
var errDeflateEnded = errors.New("compressed input ended")

// syncFlushMarker is the end of the empty stored block that a sync or full flush writes:
// LEN 0 and NLEN 0xffff (RFC 1951 3.2.4).
const syncFlushMarker = 0x0000ffff

// deflateSource is the decompressor's reader of the connection's bytes. It is a
// ByteReader, so the decompressor reads no further than it decodes, and it remembers the
// last four bytes read: once ending is set, it ends after an empty stored block.
type deflateSource struct {
	below  *bufio.Reader
	last   uint32
	ending bool
}

func (s *deflateSource) ReadByte() (byte, error) {
	if s.ending && s.last == syncFlushMarker {
		return 0, errDeflateEnded
	}
	b, err := s.below.ReadByte()
	if err == nil {
		s.last = s.last<<8 | uint32(b)
	}
	return b, err
}

// Buffered is how many bytes can be read without waiting (inflate.Source).
func (s *deflateSource) Buffered() int {
	if s.ending {
		return 0
	}
	return s.below.Buffered()
}

func (s *deflateSource) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.ending {
		b, err := s.ReadByte()
		if err != nil {
			return 0, err
		}
		p[0] = b
		return 1, nil
	}
	n, err := s.below.Read(p)
	for _, b := range p[:n] {
		s.last = s.last<<8 | uint32(b)
	}
	return n, err
}
