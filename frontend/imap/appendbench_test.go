package imap_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/strata-mail/strata/embedded"
)

// BenchmarkAppend measures APPEND through IMAP against `strata serve` in this process (the
// filesystem blob store, a single-voter Raft group), from 1 and 64 raw-socket clients,
// each APPEND a new body (no dedup hit) with LITERAL+, each client waiting for its tagged
// OK: the 1- and 64-client APPEND steps of bench-compare (docs/benchmarks.md).
//
//	go test -run '^$' -bench 'BenchmarkAppend$' -benchtime 2s -count 3 ./frontend/imap
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", s3SizeName(size), clients), func(b *testing.B) {
				srv := startServerWith(b, func(cfg *embedded.Config) {})
				conns := s3BenchClients(b, srv, clients)
				var next atomic.Int64
				b.SetBytes(int64(size))
				b.ResetTimer()
				runS3Clients(b, conns, func(c *s3BenchConn) error {
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						if err := c.append(s3BenchBody(size, n)); err != nil {
							return err
						}
					}
					return nil
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			})
		}
	}
}
