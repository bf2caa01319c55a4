package blobstore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// ErrTooLarge is returned (wrapped) by Spool.Write once a body grows past the spool's limit.
var ErrTooLarge = errors.New("blobstore: body too large")

// Spool takes in one incoming body (an IMAP APPEND literal, an LMTP DATA stream) before its
// key is known: it streams the bytes to a temporary file while it computes their SHA-256 and
// counts them, then serves them back for Store.Put and for MIME parsing. Memory use does not
// depend on the body's size.
//
// The temporary file is unlinked as soon as it is created, so its space is freed on Close or
// when the process dies, and a crash leaves nothing behind in dir.
//
// Write is not safe for concurrent use; ReadAt and the readers from Reader are, once writing
// is over.
//
// A spool from NewMemorySpool holds its bytes in memory instead, for bodies small enough that
// creating, writing and unlinking a file would cost more than the bytes themselves. A spool
// from NewSpillingSpool starts in memory and moves to a file once it outgrows its memory
// budget, for bodies whose size is not known in advance (LMTP DATA).
type Spool struct {
	file     *os.File
	mem      []byte // the bytes of a memory spool (file == nil)
	spillDir string // where a spilling spool's file goes once mem would exceed memMax
	memMax   int64
	closed   bool
	pooled   *[]byte // mem's buffer, from memPool, returned by Close
	digest   hash.Hash
	size     int64
	maxSize  int64
	err      error   // sticky: the first failed Write
	probe    [1]byte // readIntoMemory's read past a full spool
}

// NewSpool creates a spool with its temporary file in dir that accepts at most maxSize bytes.
func NewSpool(dir string, maxSize int64) (*Spool, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("new spool: max size %d is not positive", maxSize)
	}
	file, err := os.CreateTemp(dir, "spool-*")
	if err != nil {
		return nil, fmt.Errorf("new spool: %w", err)
	}
	if err := os.Remove(file.Name()); err != nil {
		file.Close()
		return nil, fmt.Errorf("new spool: unlink %s: %w", file.Name(), err)
	}
	return &Spool{file: file, digest: sha256.New(), maxSize: maxSize}, nil
}

// NewMemorySpool creates a spool that holds at most maxSize bytes in memory: for bodies of
// a known, small size, where the file of NewSpool costs more than it saves. A spool of up
// to memPoolSize bytes takes its buffer from a pool that Close returns it to.
func NewMemorySpool(maxSize int64) (*Spool, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("new memory spool: max size %d is not positive", maxSize)
	}
	s := &Spool{digest: sha256.New(), maxSize: maxSize}
	if maxSize <= memPoolSize {
		s.pooled = memPool.Get().(*[]byte)
		s.mem = (*s.pooled)[:0]
	} else {
		s.mem = make([]byte, 0, maxSize)
	}
	return s, nil
}

// memPoolSize is the capacity of the pooled buffers of memory spools: the largest body an
// IMAP APPEND spools in memory (frontend/imap maxMemorySpoolBytes). Issue 14: a new 64 KiB
// buffer per APPEND was a sixth of the bytes `strata serve` allocated under APPEND load.
const memPoolSize = 64 << 10

var memPool = sync.Pool{New: func() any {
	b := make([]byte, 0, memPoolSize)
	return &b
}}

// copyBuffers are the buffers of ReadFrom, which io.Copy into a spool would otherwise
// allocate per body.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// ReadFrom writes what r holds to the spool, as Write, through a pooled buffer (io.ReaderFrom);
// a memory spool has r read straight into its own memory.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	if s.file == nil && s.spillDir == "" && s.err == nil && int64(cap(s.mem)-len(s.mem)) >= s.maxSize-s.size {
		return s.readIntoMemory(r)
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(spoolWriter{s}, r, *buf)
}

// readIntoMemory is ReadFrom for a memory spool whose memory has room for all it may
// take (NewMemorySpool makes one so): r reads into that memory, where the bytes are
// hashed, with no copy through a buffer between them (an IMAP APPEND literal, read from
// the connection's buffer). Past the limit it fails with ErrTooLarge as Write does.
func (s *Spool) readIntoMemory(r io.Reader) (int64, error) {
	var total int64
	for {
		var p []byte
		if room := s.maxSize - s.size; room > 0 {
			p = s.mem[len(s.mem) : len(s.mem)+int(room)]
		} else {
			p = s.probe[:] // a byte more than the limit fails, the end of r does not
		}
		n, err := r.Read(p)
		if n > 0 && s.size == s.maxSize {
			s.err = fmt.Errorf("spool: %w: more than %d bytes", ErrTooLarge, s.maxSize)
			return total, s.err
		}
		if n > 0 {
			s.digest.Write(p[:n])
			s.mem = s.mem[:len(s.mem)+n]
			s.size += int64(n)
			total += int64(n)
		}
		if err == io.EOF { // as io.Copy: r's end, not an error
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// spoolWriter hides Spool.ReadFrom from io.CopyBuffer, which would call it again.
type spoolWriter struct{ s *Spool }

func (w spoolWriter) Write(p []byte) (int, error) { return w.s.Write(p) }

// NewSpillingSpool creates a spool that accepts at most maxSize bytes and holds them in
// memory up to memMax bytes, then in a temporary file in dir, as NewSpool.
func NewSpillingSpool(dir string, memMax, maxSize int64) (*Spool, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("new spool: max size %d is not positive", maxSize)
	}
	memMax = min(max(memMax, 0), maxSize)
	return &Spool{mem: make([]byte, 0, min(memMax, 4096)), spillDir: dir, memMax: memMax, digest: sha256.New(), maxSize: maxSize}, nil
}

// spill moves the bytes of a spilling spool from memory to a new temporary file.
func (s *Spool) spill() error {
	file, err := os.CreateTemp(s.spillDir, "spool-*")
	if err != nil {
		return fmt.Errorf("spool: spill to a file: %w", err)
	}
	if err := os.Remove(file.Name()); err != nil {
		file.Close()
		return fmt.Errorf("spool: unlink %s: %w", file.Name(), err)
	}
	if _, err := file.Write(s.mem); err != nil {
		file.Close()
		return fmt.Errorf("spool: spill to a file: %w", err)
	}
	s.file, s.mem, s.spillDir = file, nil, ""
	return nil
}

// Write appends p to the body. A write that would take the body past the spool's limit
// writes nothing and fails with ErrTooLarge; after any failure every Write fails the same way.
func (s *Spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if int64(len(p)) > s.maxSize-s.size {
		s.err = fmt.Errorf("spool: %w: more than %d bytes", ErrTooLarge, s.maxSize)
		return 0, s.err
	}
	if s.file == nil && s.spillDir != "" && s.size+int64(len(p)) > s.memMax {
		if err := s.spill(); err != nil {
			s.err = err
			return 0, err
		}
	}
	if s.file == nil {
		s.mem = append(s.mem, p...)
		s.digest.Write(p)
		s.size += int64(len(p))
		return len(p), nil
	}
	n, err := s.file.Write(p)
	s.digest.Write(p[:n])
	s.size += int64(n)
	if err != nil {
		s.err = fmt.Errorf("spool: write: %w", err)
		return n, s.err
	}
	return n, nil
}

// Sum returns the SHA-256 of the bytes written so far.
func (s *Spool) Sum() [sha256.Size]byte {
	var sum [sha256.Size]byte
	s.digest.Sum(sum[:0])
	return sum
}

// Size returns the number of bytes written so far.
func (s *Spool) Size() int64 {
	return s.size
}

// ReadAt reads spooled bytes at off, as io.ReaderAt.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	return s.Reader().ReadAt(p, off)
}

// Reader returns a reader over the bytes written so far, from the first. Each call gives an
// independent reader.
func (s *Spool) Reader() *io.SectionReader {
	if s.file == nil {
		return io.NewSectionReader(memReaderAt{s}, 0, s.size)
	}
	return io.NewSectionReader(s.file, 0, s.size)
}

// HashedReader returns a reader over the bytes written so far, from the first, that carries
// their SHA-256 as the spool computed it while they were written: a Store's Put that is
// given it checks the key against that sum (Prehashed) instead of hashing the bytes again.
// Each call gives an independent reader; writing must be over.
func (s *Spool) HashedReader() *HashedReader {
	return &HashedReader{SectionReader: s.Reader(), sum: s.Sum()}
}

// HashedReader reads a body whose SHA-256 is known from the spool that took it in. Only a
// Spool makes one, so a Store can trust its sum as it trusts its own hashing.
type HashedReader struct {
	*io.SectionReader
	sum [sha256.Size]byte
}

// Sum returns the SHA-256 of all the bytes of the reader, from its first.
func (h *HashedReader) Sum() [sha256.Size]byte { return h.sum }

// Prehashed reports whether r is a HashedReader that has not been read yet, holds exactly
// size bytes and hashes to sum: then a Put of size bytes from r under sum's key stores the
// bytes sum was computed over, and need not hash them again.
func Prehashed(r io.Reader, size int64, sum [sha256.Size]byte) bool {
	h, ok := r.(*HashedReader)
	if !ok || h.Size() != size || h.sum != sum {
		return false
	}
	pos, err := h.Seek(0, io.SeekCurrent)
	return err == nil && pos == 0
}

// memReaderAt reads a memory spool, and fails once it is closed as a file spool does.
type memReaderAt struct{ s *Spool }

func (m memReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if m.s.closed {
		return 0, fmt.Errorf("read spool: %w", os.ErrClosed)
	}
	if off >= int64(len(m.s.mem)) {
		return 0, io.EOF
	}
	n := copy(p, m.s.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close releases the temporary file and its space.
func (s *Spool) Close() error {
	if s.file == nil {
		if s.pooled != nil && !s.closed {
			// Readers go through the spool (memReaderAt), so none reads the buffer once
			// it is back in the pool.
			*s.pooled = s.mem[:0]
			memPool.Put(s.pooled)
		}
		s.closed, s.mem, s.pooled = true, nil, nil
		return nil
	}
	if err := s.file.Close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
