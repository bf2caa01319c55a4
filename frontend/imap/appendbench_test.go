package imap_test

import (
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
	benchAppend(b, []int{4 << 10, 64 << 10}, []int{1, 64}, func(b *testing.B) *embedded.Server {
		return startServerWith(b, func(cfg *embedded.Config) {})
	})
}
