// Package inflate is a DEFLATE (RFC 1951) decoder for a stream that a peer flushes at
// arbitrary points, as IMAP COMPRESS=DEFLATE (RFC 4978) clients do: it hands over every
// decoded byte as soon as its symbol is decoded and never reads an input bit before it
// needs it. Go's decoders (compress/flate and klauspost/compress/flate) decode whole
// blocks, or read ahead to decode a symbol, so a command that a client ends with zlib's
// Z_PARTIAL_FLUSH (a block whose last bits stay in the client until it sends more, which
// mbsync does) is never handed over, and the client waits for an answer forever.
//
// The decoder reads one bit at a time through canonical Huffman codes, as zlib's reference
// decoder puff.c does: slower than a table decoder, and plenty for what IMAP clients send.
package inflate

import (
	"errors"
	"io"
)

// Source is what the decoder reads: bytes, and how many can be read without waiting (a
// *bufio.Reader is one).
type Source interface {
	io.ByteReader
	Buffered() int
}

// ErrCorrupt is returned for input that is not DEFLATE.
var ErrCorrupt = errors.New("inflate: corrupt input")

const (
	maxBits   = 15
	windowLen = 1 << 15
)

// huffman is a canonical Huffman code: count[n] codes of length n, and the symbols in
// code order (RFC 1951 3.2.2).
type huffman struct {
	count  [maxBits + 1]int16
	symbol []int16
}

func (h *huffman) build(lengths []uint8) error {
	h.count = [maxBits + 1]int16{}
	for _, l := range lengths {
		h.count[l]++
	}
	if int(h.count[0]) == len(lengths) {
		h.symbol = h.symbol[:0]
		return nil // no codes: valid, but any use is an error
	}
	left := 1
	for l := 1; l <= maxBits; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return ErrCorrupt // over-subscribed
		}
	}
	var offs [maxBits + 1]int16
	for l := 1; l < maxBits; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	if cap(h.symbol) < len(lengths) {
		h.symbol = make([]int16, len(lengths))
	}
	h.symbol = h.symbol[:len(lengths)]
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = int16(sym)
			offs[l]++
		}
	}
	return nil
}

// Length and distance bases and extra bits (RFC 1951 3.2.5).
var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtr = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// The code length code order (RFC 1951 3.2.7).
	clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

var fixedLen, fixedDist huffman

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	if err := fixedLen.build(l[:]); err != nil {
		panic(err)
	}
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	if err := fixedDist.build(d[:]); err != nil {
		panic(err)
	}
}

type blockKind int

const (
	noBlock blockKind = iota
	storedBlock
	codesBlock
)

// Reader decodes a raw DEFLATE stream (no zlib or gzip header).
type Reader struct {
	src    Source
	bitbuf uint32
	bitcnt uint
	err    error

	window [windowLen]byte
	wpos   int // next write position in window
	filled bool

	block    blockKind
	final    bool
	stored   int // bytes left in a stored block
	lens     *huffman
	dists    *huffman
	dyn      [2]huffman
	copyLen  int // bytes left of a back reference
	copyDist int
	done     bool // the final block ended
	// flushed is set by an empty stored block, which a sync or full flush writes: the
	// peer stopped there, and what follows may not be DEFLATE any more (RFC 8437 4.1 ends
	// compression at such a point), so Read returns what it has before looking further.
	flushed bool
}

// NewReader returns a decoder reading src.
func NewReader(src Source) *Reader { return &Reader{src: src} }

// bit returns the next input bit, reading a byte when none is buffered.
func (z *Reader) bits(n uint) (uint32, error) {
	for z.bitcnt < n {
		b, err := z.src.ReadByte()
		if err != nil {
			return 0, err
		}
		z.bitbuf |= uint32(b) << z.bitcnt
		z.bitcnt += 8
	}
	v := z.bitbuf & (1<<n - 1)
	z.bitbuf >>= n
	z.bitcnt -= n
	return v, nil
}

// decode reads one symbol of h, one bit at a time (puff.c decode).
func (z *Reader) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l <= maxBits; l++ {
		b, err := z.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		count := int(h.count[l])
		if code-count < first {
			return int(h.symbol[index+code-first]), nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, ErrCorrupt
}

func (z *Reader) put(b byte) {
	z.window[z.wpos] = b
	z.wpos++
	if z.wpos == windowLen {
		z.wpos, z.filled = 0, true
	}
}

// Read decodes into p. It returns as soon as it has decoded something and the next symbol
// might need input that has not arrived; it waits for input only when it has nothing yet.
func (z *Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if z.err != nil {
			return n, z.err
		}
		// A back reference in progress.
		if z.copyLen > 0 {
			src := z.wpos - z.copyDist
			if src < 0 {
				src += windowLen
			}
			b := z.window[src]
			z.put(b)
			p[n] = b
			n++
			z.copyLen--
			continue
		}
		if z.stored > 0 {
			if n > 0 && z.src.Buffered() == 0 {
				return n, nil
			}
			b, err := z.src.ReadByte()
			if err != nil {
				z.err = err
				continue
			}
			z.put(b)
			p[n] = b
			n++
			z.stored--
			if z.stored == 0 {
				z.endBlock()
			}
			continue
		}
		if n > 0 && z.src.Buffered() == 0 {
			// The next symbol or block header may need input that is not here yet.
			return n, nil
		}
		if z.done {
			z.err = io.EOF
			continue
		}
		if z.block == noBlock {
			z.err = z.header()
			if z.flushed {
				z.flushed = false
				if n > 0 {
					return n, z.err
				}
			}
			continue
		}
		sym, err := z.decode(z.lens)
		if err != nil {
			z.err = err
			continue
		}
		switch {
		case sym < 256:
			z.put(byte(sym))
			p[n] = byte(sym)
			n++
		case sym == 256:
			z.endBlock()
		default:
			z.err = z.backReference(sym - 257)
		}
	}
	return n, nil
}

func (z *Reader) endBlock() {
	z.block = noBlock
	if z.final {
		z.done = true
	}
}

func (z *Reader) backReference(sym int) error {
	if sym >= 29 {
		return ErrCorrupt
	}
	extra, err := z.bits(uint(lenExtra[sym]))
	if err != nil {
		return err
	}
	length := int(lenBase[sym]) + int(extra)
	dsym, err := z.decode(z.dists)
	if err != nil {
		return err
	}
	if dsym >= 30 {
		return ErrCorrupt
	}
	extra, err = z.bits(uint(distExtr[dsym]))
	if err != nil {
		return err
	}
	dist := int(distBase[dsym]) + int(extra)
	if dist > windowLen || (!z.filled && dist > z.wpos) {
		return ErrCorrupt // before the start of the stream
	}
	z.copyLen, z.copyDist = length, dist
	return nil
}

// header reads a block header (RFC 1951 3.2.3) and what a block needs before its data.
func (z *Reader) header() error {
	h, err := z.bits(3)
	if err != nil {
		return err
	}
	z.final = h&1 == 1
	switch h >> 1 {
	case 0: // stored (3.2.4): to the byte boundary, LEN, NLEN
		z.bitbuf, z.bitcnt = 0, 0
		var b [4]byte
		for i := range b {
			if b[i], err = z.src.ReadByte(); err != nil {
				return err
			}
		}
		length := int(b[0]) | int(b[1])<<8
		if length != ^(int(b[2])|int(b[3])<<8)&0xffff {
			return ErrCorrupt
		}
		z.stored = length
		if length == 0 {
			z.flushed = true
			z.endBlock()
			return nil
		}
		z.block = storedBlock
	case 1: // fixed codes (3.2.6)
		z.lens, z.dists = &fixedLen, &fixedDist
		z.block = codesBlock
	case 2: // dynamic codes (3.2.7)
		if err := z.dynamic(); err != nil {
			return err
		}
		z.lens, z.dists = &z.dyn[0], &z.dyn[1]
		z.block = codesBlock
	default:
		return ErrCorrupt
	}
	return nil
}

func (z *Reader) dynamic() error {
	v, err := z.bits(14)
	if err != nil {
		return err
	}
	nlen, ndist, ncode := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlen > 286 || ndist > 30 {
		return ErrCorrupt
	}
	var cl [19]uint8
	for i := 0; i < ncode; i++ {
		b, err := z.bits(3)
		if err != nil {
			return err
		}
		cl[clOrder[i]] = uint8(b)
	}
	var clh huffman
	if err := clh.build(cl[:]); err != nil {
		return err
	}
	var lengths [286 + 30]uint8
	for i := 0; i < nlen+ndist; {
		sym, err := z.decode(&clh)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return ErrCorrupt
			}
			val = lengths[i-1]
			b, err := z.bits(2)
			if err != nil {
				return err
			}
			rep = 3 + int(b)
		case 17:
			b, err := z.bits(3)
			if err != nil {
				return err
			}
			rep = 3 + int(b)
		default:
			b, err := z.bits(7)
			if err != nil {
				return err
			}
			rep = 11 + int(b)
		}
		if i+rep > nlen+ndist {
			return ErrCorrupt
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return ErrCorrupt // no end of block code
	}
	if err := z.dyn[0].build(lengths[:nlen]); err != nil {
		return err
	}
	return z.dyn[1].build(lengths[nlen : nlen+ndist])
}
