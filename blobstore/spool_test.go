package blobstore_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/strata-mail/strata/blobstore"
)

func newSpool(t *testing.T, dir string, maxSize int64) *blobstore.Spool {
	t.Helper()
	s, err := blobstore.NewSpool(dir, maxSize)
	if err != nil {
		t.Fatalf("NewSpool: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSpool(t *testing.T) {
	dir := t.TempDir()
	body := bytes.Repeat([]byte("From: a@example.com\r\n"), 50000)
	s := newSpool(t, dir, int64(len(body)))
	if n, err := io.Copy(s, bytes.NewReader(body)); err != nil || n != int64(len(body)) {
		t.Fatalf("copy into spool: %d, %v", n, err)
	}
	if s.Size() != int64(len(body)) {
		t.Errorf("Size = %d, want %d", s.Size(), len(body))
	}
	if s.Sum() != sha256.Sum256(body) {
		t.Errorf("Sum = %x, want %x", s.Sum(), sha256.Sum256(body))
	}
	for range 2 {
		got, err := io.ReadAll(s.Reader())
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("Reader gave %d bytes, %v; want the %d written", len(got), err, len(body))
		}
	}
	part := make([]byte, 100)
	if _, err := s.ReadAt(part, 123456); err != nil || !bytes.Equal(part, body[123456:123556]) {
		t.Fatalf("ReadAt(123456) = %q, %v", part, err)
	}
	if n, err := s.ReadAt(part, int64(len(body))-10); n != 10 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt near the end = %d, %v; want 10, EOF", n, err)
	}
}

func TestSpoolConcurrentReaders(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100000)
	s := newSpool(t, t.TempDir(), 1<<30)
	if _, err := s.Write(body); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			got, err := io.ReadAll(s.Reader())
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("concurrent Reader gave %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
}

func TestSpoolEmpty(t *testing.T) {
	s := newSpool(t, t.TempDir(), 10)
	if s.Size() != 0 || s.Sum() != sha256.Sum256(nil) {
		t.Fatalf("empty spool: size %d, sum %x", s.Size(), s.Sum())
	}
	if got, err := io.ReadAll(s.Reader()); err != nil || len(got) != 0 {
		t.Fatalf("empty spool read %q, %v", got, err)
	}
}

func TestSpoolMaxSize(t *testing.T) {
	s := newSpool(t, t.TempDir(), 10)
	if _, err := s.Write([]byte("0123456789")); err != nil {
		t.Fatalf("writing exactly the limit: %v", err)
	}
	n, err := s.Write([]byte("x"))
	if n != 0 || !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("writing past the limit = %d, %v; want 0, ErrTooLarge", n, err)
	}
	if _, err := s.Write(nil); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("Write after ErrTooLarge = %v, want ErrTooLarge again", err)
	}
	if s.Size() != 10 {
		t.Errorf("Size after ErrTooLarge = %d, want 10", s.Size())
	}

	s = newSpool(t, t.TempDir(), 1000)
	n64, err := io.Copy(s, strings.NewReader(strings.Repeat("y", 1001)))
	if !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("copying 1001 bytes into a 1000-byte spool = %d, %v; want ErrTooLarge", n64, err)
	}
}

func TestSpoolInvalidMaxSize(t *testing.T) {
	for _, maxSize := range []int64{0, -1} {
		if s, err := blobstore.NewSpool(t.TempDir(), maxSize); err == nil {
			s.Close()
			t.Errorf("NewSpool(max %d) succeeded", maxSize)
		}
	}
}

// TestSpoolLeavesNoFiles checks that the spool's file is gone from dir while it is in use
// and after Close.
func TestSpoolLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := blobstore.NewSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("body")); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("spool directory holds %d entries (%v) while spooling, want none", len(entries), err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("spool directory holds %d entries (%v) after Close, want none", len(entries), err)
	}
	if _, err := s.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("ReadAt after Close succeeded")
	}
}

func TestSpoolMissingDir(t *testing.T) {
	if s, err := blobstore.NewSpool(t.TempDir()+"/missing", 10); err == nil {
		s.Close()
		t.Fatal("NewSpool in a missing directory succeeded")
	}
}

// TestSpoolMemory checks that spooling a large body allocates nothing near its size.
func TestSpoolMemory(t *testing.T) {
	const size = 64 << 20
	s := newSpool(t, t.TempDir(), size)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := io.Copy(s, io.LimitReader(zeros{}, size)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<20 {
		t.Fatalf("spooling %d bytes allocated %d bytes", size, allocated)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestMemorySpool checks that a memory spool reads back, hashes and limits like a file spool,
// and fails reads once closed.
func TestMemorySpool(t *testing.T) {
	body := bytes.Repeat([]byte("Subject: small\r\n"), 1000)
	s, err := blobstore.NewMemorySpool(int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(s, bytes.NewReader(body)); err != nil || n != int64(len(body)) {
		t.Fatalf("copy into memory spool: %d, %v", n, err)
	}
	if s.Size() != int64(len(body)) || s.Sum() != sha256.Sum256(body) {
		t.Fatalf("Size %d Sum %x, want %d %x", s.Size(), s.Sum(), len(body), sha256.Sum256(body))
	}
	if got, err := io.ReadAll(s.Reader()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Reader gave %d bytes, %v; want the %d written", len(got), err, len(body))
	}
	part := make([]byte, 100)
	if n, err := s.ReadAt(part, int64(len(body))-10); n != 10 || !errors.Is(err, io.EOF) || !bytes.Equal(part[:10], body[len(body)-10:]) {
		t.Fatalf("ReadAt near the end = %d, %v; want 10, EOF", n, err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("writing past the max size = %v, want ErrTooLarge", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAt(part, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt after Close = %v, want ErrClosed", err)
	}
	if _, err := blobstore.NewMemorySpool(0); err == nil {
		t.Fatal("NewMemorySpool(0) succeeded")
	}
}

// TestSpillingSpool checks that a spilling spool keeps a small body in memory, moves a large
// one to a file without changing its bytes or digest, and leaves no file behind.
func TestSpillingSpool(t *testing.T) {
	for _, size := range []int{0, 100, 4096, 4097, 100000} {
		dir := t.TempDir()
		s, err := blobstore.NewSpillingSpool(dir, 4096, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 1000)
			if _, err := s.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		got, err := io.ReadAll(s.Reader())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, body) || s.Sum() != sha256.Sum256(body) || s.Size() != int64(size) {
			t.Fatalf("size %d: read back %d bytes, digest or size differ", size, len(got))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("size %d: %d files left in the spool directory", size, len(entries))
		}
	}
	s, err := blobstore.NewSpillingSpool(t.TempDir(), 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(make([]byte, 21)); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("write past the limit: %v, want ErrTooLarge", err)
	}
	if _, err := blobstore.NewSpillingSpool(t.TempDir()+"/missing", 1, 10); err != nil {
		t.Fatalf("a spilling spool touches its directory only when it spills: %v", err)
	}
	m, _ := blobstore.NewSpillingSpool(t.TempDir()+"/missing", 1, 10)
	if _, err := m.Write([]byte("abc")); err == nil {
		t.Fatal("spilling into a missing directory succeeded")
	}
}

func TestHashedReader(t *testing.T) {
	body := []byte("Subject: hi\r\n\r\nhello\r\n")
	for _, mem := range []bool{false, true} {
		var s *blobstore.Spool
		var err error
		if mem {
			s, err = blobstore.NewMemorySpool(100)
		} else {
			s, err = blobstore.NewSpool(t.TempDir(), 100)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(body); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		r := s.HashedReader()
		if r.Sum() != sum || r.Size() != int64(len(body)) {
			t.Fatalf("HashedReader: sum %x size %d; want %x %d", r.Sum(), r.Size(), sum, len(body))
		}
		if !blobstore.Prehashed(r, int64(len(body)), sum) {
			t.Errorf("a fresh HashedReader of the whole body is not prehashed")
		}
		if blobstore.Prehashed(r, int64(len(body))-1, sum) {
			t.Errorf("a HashedReader is prehashed for a size it does not hold")
		}
		if blobstore.Prehashed(r, int64(len(body)), sha256.Sum256(body[1:])) {
			t.Errorf("a HashedReader is prehashed for another sum")
		}
		if blobstore.Prehashed(bytes.NewReader(body), int64(len(body)), sum) {
			t.Errorf("a bytes.Reader is prehashed")
		}
		if _, err := r.Read(make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
		if blobstore.Prehashed(r, int64(len(body)), sum) {
			t.Errorf("a HashedReader read partly is still prehashed")
		}
		got, err := io.ReadAll(s.HashedReader())
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("HashedReader read %q, %v", got, err)
		}
		s.Close()
	}
}

// TestMemorySpoolReuse: memory spools share pooled buffers; a spool closed (twice) reads
// nothing, and the next spools, which may get its buffer, hold their own bytes exactly.
func TestMemorySpoolReuse(t *testing.T) {
	first, err := blobstore.NewMemorySpool(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Write(bytes.Repeat([]byte("a"), 60<<10)); err != nil {
		t.Fatal(err)
	}
	r := first.Reader()
	first.Close()
	first.Close()
	if _, err := r.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("reader of a closed spool: %v, want ErrClosed", err)
	}
	for i := range 4 {
		body := bytes.Repeat([]byte{'b' + byte(i)}, 100+i)
		s, err := blobstore.NewMemorySpool(int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.ReadFrom(bytes.NewReader(body)); err != nil || n != int64(len(body)) {
			t.Fatalf("ReadFrom = %d, %v", n, err)
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, blobstore.ErrTooLarge) {
			t.Fatalf("write past the max size of a pooled spool = %v, want ErrTooLarge", err)
		}
		got, err := io.ReadAll(s.Reader())
		if err != nil || !bytes.Equal(got, body) || s.Sum() != sha256.Sum256(body) {
			t.Fatalf("spool %d read %q, %v; want %q", i, got, err, body)
		}
		s.Close()
	}
}

// TestMemorySpoolReadFrom: ReadFrom into a memory spool, which reads into the spool's own
// memory, takes exactly what Write would, from readers that return a byte at a time, data
// with io.EOF, or more than the limit (ErrTooLarge, as io.Copy through Write), and keeps the
// bytes written before it; a read error other than io.EOF is returned.
func TestMemorySpoolReadFrom(t *testing.T) {
	body := []byte(strings.Repeat("0123456789", 500))
	whole := int64(len(body)) + 3 // 3 bytes are written first
	for _, tc := range []struct {
		name    string
		maxSize int64
		r       io.Reader
		wantErr error
	}{
		{"exact", whole, bytes.NewReader(body), nil},
		{"one byte at a time", whole, iotest.OneByteReader(bytes.NewReader(body)), nil},
		{"data with EOF", whole, iotest.DataErrReader(bytes.NewReader(body)), nil},
		{"under the limit", 64 << 10, bytes.NewReader(body), nil},
		{"past the limit", whole - 1, bytes.NewReader(body), blobstore.ErrTooLarge},
		{"past the limit, a byte at a time", whole - 1, iotest.OneByteReader(bytes.NewReader(body)), blobstore.ErrTooLarge},
		{"read error", whole, io.MultiReader(bytes.NewReader(body[:10]), iotest.ErrReader(iotest.ErrTimeout)), iotest.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := blobstore.NewMemorySpool(tc.maxSize)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Write(body[:3]); err != nil {
				t.Fatal(err)
			}
			n, err := s.ReadFrom(io.MultiReader(bytes.NewReader(nil), tc.r))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadFrom = %d, %v; want %v", n, err, tc.wantErr)
				}
				return
			}
			want := append(body[:3:3], body...)
			got, rerr := io.ReadAll(s.Reader())
			if err != nil || n != int64(len(body)) || rerr != nil || !bytes.Equal(got, want) || s.Size() != int64(len(want)) || s.Sum() != sha256.Sum256(want) {
				t.Fatalf("ReadFrom = %d, %v; spool holds %d bytes (%v), size %d", n, err, len(got), rerr, s.Size())
			}
		})
	}
}

// BenchmarkMemorySpool: an APPEND literal of 4 or 60 KiB copied into a memory spool (as
// frontend/imap readAppendMessage does with io.CopyN), then closed.
//
//	go test -run '^$' -bench MemorySpool -benchmem ./blobstore/
func BenchmarkMemorySpool(b *testing.B) {
	for _, size := range []int{4 << 10, 60 << 10} {
		body := bytes.Repeat([]byte("x"), size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				s, err := blobstore.NewMemorySpool(int64(size))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyN(s, bytes.NewReader(body), int64(size)); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
