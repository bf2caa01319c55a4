package fs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
)

// Results on the 2-core development VM (ext4 on virtio, November 2026), from
// go test -run '^$' -bench . -benchmem -benchtime 2s ./blobstore/fs/
//
//	BenchmarkPut/4KiB-2                    788295 ns/op    5.20 MB/s   3086 B/op   41 allocs/op
//	BenchmarkPut/64KiB-2                  1313692 ns/op   49.89 MB/s   3113 B/op   42 allocs/op
//	BenchmarkPut/1024KiB-2               14234295 ns/op   73.67 MB/s   3108 B/op   43 allocs/op
//	BenchmarkPutDedup-2                      3857 ns/op                  912 B/op   11 allocs/op
//	BenchmarkGet/4KiB/whole-2                7696 ns/op  532.20 MB/s   1000 B/op   14 allocs/op
//	BenchmarkGet/64KiB/whole-2              13286 ns/op 4932.58 MB/s   1000 B/op   14 allocs/op
//	BenchmarkGet/64KiB/first4KiB-2           8135 ns/op  503.47 MB/s   1000 B/op   14 allocs/op
//	BenchmarkGet/1024KiB/whole-2           112270 ns/op 9339.78 MB/s   1001 B/op   14 allocs/op
//	BenchmarkGet/1024KiB/first4KiB-2        10460 ns/op  391.59 MB/s   1000 B/op   14 allocs/op
//	BenchmarkPutParallel-2                1047538 ns/op    3.91 MB/s   3338 B/op   42 allocs/op
//
// A new body cost two fsyncs in series then (the file, then its directory). Since December
// 2026 the file, its directory and the parents of new directories are fsynced at once (one
// journal commit on ext4): BenchmarkPut/4KiB and /64KiB went from 4.5-8.1 ms and 5.3-10.4 ms
// to 1.6-2.0 ms and 1.6-1.7 ms a Put, measured alternately at load average 7 to 14.
// Timings vary by a factor of several while other processes use the disk.
//
// December 2026 (issue 14), load average 20 to 27: BenchmarkWriteBody, the copy into the
// temporary file with and without the SHA-256 that a spooled body no longer needs
// (blobstore.Prehashed): 64 KiB 155-309 us -> 5-17 us, 1 MiB 2.75-4.6 ms -> 0.33-0.48 ms.
// BenchmarkPutParallel (64 writers) stayed within the noise of the shared disk (2 to
// 19 ms a Put either way): directory fsyncs shared by concurrent Puts are mostly those of
// the tenant and first-level shard directories, and every Put still fsyncs its own file.
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

// BenchmarkPutParallel stores new 4 KiB bodies from many goroutines at once (writers is
// GOMAXPROCS times the parallelism, 2 cores here), as concurrent APPENDs do: their
// directory fsyncs are group-committed (dirSyncer). writers=32 is what this benchmark ran
// before it had sub-benchmarks.
func BenchmarkPutParallel(b *testing.B) {
	for _, perCPU := range []int{1, 4, 16, 32} {
		b.Run(fmt.Sprintf("writers=%d", perCPU*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			s, err := New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			var writers atomic.Uint64
			b.SetBytes(4 << 10)
			b.SetParallelism(perCPU)
			b.RunParallel(func(pb *testing.PB) {
				body := bytes.Repeat([]byte("x"), 4<<10)
				binary.LittleEndian.PutUint64(body[8:], writers.Add(1))
				var n uint64
				for pb.Next() {
					n++
					binary.LittleEndian.PutUint64(body, n)
					key := blobstore.Key("acme", sha256.Sum256(body))
					if err := s.Put(b.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkWriteBody is the part of a Put that a spooled body's HashedReader saves: copying
// the body into the temporary file (no fsync) while hashing it (verify=true, any reader) or
// not (verify=false: blobstore.Prehashed, the spool hashed it already).
func BenchmarkWriteBody(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, verify := range []bool{true, false} {
			b.Run(fmt.Sprintf("%dKiB/verify=%t", size>>10, verify), func(b *testing.B) {
				body := bytes.Repeat([]byte("x"), size)
				sum := sha256.Sum256(body)
				f, err := os.Create(filepath.Join(b.TempDir(), "body"))
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						b.Fatal(err)
					}
					if err := writeBody(b.Context(), f, bytes.NewReader(body), int64(size), sum, verify); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStagePacking stages and syncs new 8 KiB bodies from 64 goroutines, as 64
// appending clients do, a file per body and packed into segments, after 3,000 bodies
// stored first, and reports the process CPU time (user and system, from getrusage) per
// body beside the wall time. (BenchmarkStageLayouts of commit f5dc37d measured the shard
// layouts the same way.)
func BenchmarkStagePacking(b *testing.B) {
	for _, layout := range []string{"files", "packed"} {
		for _, par := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/writers=%d", layout, 2*par), func(b *testing.B) {
				s, err := Open(b.TempDir(), Options{Own: true, PackSmall: layout == "packed"})
				if err != nil {
					b.Fatal(err)
				}
				var seq atomic.Uint64
				putOne := func(body []byte) error {
					binary.LittleEndian.PutUint64(body, seq.Add(1))
					key := blobstore.Key("acme", sha256.Sum256(body))
					st, err := s.Stage(b.Context(), key, bytes.NewReader(body), int64(len(body)))
					if err != nil {
						return err
					}
					return st.Sync()
				}
				body := bytes.Repeat([]byte("x"), 8<<10)
				for range 3000 {
					if err := putOne(body); err != nil {
						b.Fatal(err)
					}
				}
				before := cpuTime()
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					body := bytes.Repeat([]byte("x"), 8<<10)
					for pb.Next() {
						if err := putOne(body); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-us/op")
			})
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPackedSyncLatency stages and syncs new bodies one at a time into a packing
// store, as one appending client does, and reports the median and 99th percentile of
// Stage+Sync. It first waits up to 5 s for the store's prepared segment (prepare.go), as a
// server has one ready before its first APPEND; a store without preparation (before
// commit pack28) starts after the same wait.
func BenchmarkPackedSyncLatency(b *testing.B) {
	for _, size := range []int{4 << 10, 32 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			root := b.TempDir()
			s, err := Open(root, Options{Own: true, PackSmall: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			waitForPreparedFile(filepath.Join(root, packDirName, "prepared.tmp"), DefaultSegmentSize)
			body := bytes.Repeat([]byte("x"), size)
			var took []time.Duration
			var n uint64
			b.SetBytes(int64(size))
			for b.Loop() {
				n++
				binary.LittleEndian.PutUint64(body, n)
				key := blobstore.Key("acme", sha256.Sum256(body))
				start := time.Now()
				st, err := s.Stage(b.Context(), key, bytes.NewReader(body), int64(size))
				if err == nil {
					err = st.Sync()
				}
				if err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-us")
		})
	}
}

// waitForPreparedFile waits up to 5 s for path to reach size bytes, and 0.5 s more for
// its sync.
func waitForPreparedFile(path string, size int64) {
	for range 500 {
		if info, err := os.Stat(path); err == nil && info.Size() == size {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
}
