package fs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
)

// BenchmarkStageLayouts stages and syncs new 8 KiB bodies from 64 goroutines, as 64
// appending clients do, into a tenant in the new layout (256 shard directories) and in the
// old one (65,536), after prefill bodies, and reports the process CPU time (user and
// system, from getrusage) per body beside the wall time.
func BenchmarkStageLayouts(b *testing.B) {
	for _, layout := range []string{"new", "old"} {
		for _, par := range []int{1, 32} {
			prefill := 3000
			b.Run(layout+"/writers="+strconv.Itoa(2*par), func(b *testing.B) {
				root := b.TempDir()
				if layout == "old" {
					if err := os.MkdirAll(filepath.Join(root, oldTenantsDir, "acme"), 0o750); err != nil {
						b.Fatal(err)
					}
				}
				s, err := New(root)
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
				for range prefill {
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

