package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/internal/s3test"
)

// BenchmarkPut and BenchmarkGet measure the store against versitygw on loopback. Put of a new
// body is a HEAD and a PUT (versitygw takes a conditional PUT's body before refusing it);
// Get of a whole body includes checking its SHA-256.
//
//	go test -run '^$' -bench . -benchmem -benchtime 2s ./blobstore/s3
//
// On the 2-core development VM (Xeon 2.5 GHz), November 2026, versitygw v1.8.0 posix on ext4:
//
//	BenchmarkPut/4KiB-2   1741   1405110 ns/op    2.92 MB/s  58712 B/op  494 allocs/op
//	BenchmarkPut/1MiB-2    165  14335051 ns/op   73.15 MB/s  87552 B/op  495 allocs/op
//	BenchmarkGet/4KiB-2   4046    508439 ns/op    8.06 MB/s  25769 B/op  241 allocs/op
//	BenchmarkGet/1MiB-2    512   4379760 ns/op  239.41 MB/s  25766 B/op  240 allocs/op
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			srv := s3test.Start(b, s3test.Options{})
			s := newTestStore(b, testConfig(srv))
			content := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				binary.LittleEndian.PutUint64(content, uint64(i))
				key := blobstore.Key("bench", sha256.Sum256(content))
				if err := s.Put(b.Context(), key, bytes.NewReader(content), int64(size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			srv := s3test.Start(b, s3test.Options{})
			s := newTestStore(b, testConfig(srv))
			content := make([]byte, size)
			key := blobstore.Key("bench", sha256.Sum256(content))
			if err := s.Put(b.Context(), key, bytes.NewReader(content), int64(size)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				rc, err := s.Get(b.Context(), key, 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}

func sizeName(size int) string {
	if size >= 1<<20 {
		return "1MiB"
	}
	return "4KiB"
}
