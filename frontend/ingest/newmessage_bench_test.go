package ingest_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/ingest"
)

// BenchmarkNewMessage is what every APPEND does to a spooled message before its body is
// stored: the parse (frontend/message.Parse), the sort and thread keys, the blob key. The
// messages are the load generator's (bench.Corpus, bodies up to 64 KiB, as
// `bench/scenario.sh compare-append` sends), 256 of them in turn.
//
//	go test -run '^$' -bench NewMessage -benchmem ./frontend/ingest
func BenchmarkNewMessage(b *testing.B) {
	corpus := bench.Corpus{Seed: 1, MaxSize: 64 << 10}
	var spools []*blobstore.Spool
	var total int64
	for i := range 256 {
		msg := corpus.Message(1, i)
		spool, err := blobstore.NewMemorySpool(int64(len(msg)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := spool.Write(msg); err != nil {
			b.Fatal(err)
		}
		spools = append(spools, spool)
		total += int64(len(msg))
	}
	b.SetBytes(total / int64(len(spools)))
	b.ReportAllocs()
	date := time.Unix(1_700_000_000, 0)
	i := 0
	start := processCPU()
	for b.Loop() {
		if _, err := ingest.NewMessage("t1", spools[i%len(spools)], date, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// CPU time by getrusage, the garbage collector's included: steadier than the wall
	// time on a shared machine.
	b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
