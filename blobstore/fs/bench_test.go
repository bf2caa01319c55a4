package fs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/strata-mail/strata/blobstore"
)

var benchSizes = []int{4 << 10, 64 << 10, 1 << 20}

// BenchmarkPut stores a new body per iteration: hashing, writing, fsync, rename and
// directory fsync.
func BenchmarkPut(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s, err := New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			body := bytes.Repeat([]byte("x"), size)
			b.SetBytes(int64(size))
			var n uint64
			for b.Loop() {
				n++
				binary.LittleEndian.PutUint64(body, n)
				key := blobstore.Key("acme", sha256.Sum256(body))
				if err := s.Put(b.Context(), key, bytes.NewReader(body), int64(size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPutDedup stores a body that is already there.
func BenchmarkPutDedup(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 64<<10)
	key := blobstore.Key("acme", sha256.Sum256(body))
	if err := s.Put(b.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Put(b.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet reads whole bodies and, as BODY[...]<0.4096> does, their first 4 KiB.
func BenchmarkGet(b *testing.B) {
	for _, size := range benchSizes {
		s, err := New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		body := bytes.Repeat([]byte("x"), size)
		key := blobstore.Key("acme", sha256.Sum256(body))
		if err := s.Put(b.Context(), key, bytes.NewReader(body), int64(size)); err != nil {
			b.Fatal(err)
		}
		for _, length := range []int64{-1, 4096} {
			name := fmt.Sprintf("%dKiB/whole", size>>10)
			want := int64(size)
			if length >= 0 {
				name = fmt.Sprintf("%dKiB/first4KiB", size>>10)
				want = min(length, want)
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(want)
				for b.Loop() {
					rc, err := s.Get(b.Context(), key, 0, length)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, rc)
					rc.Close()
					if err != nil || n != want {
						b.Fatalf("read %d bytes, %v; want %d", n, err, want)
					}
				}
			})
		}
	}
}
