package metadata

import (
	"fmt"
	"hash/maphash"
)

// requestSet is what the FSM knows in memory of the request IDs its store holds (the
// 'Q' keys, requestKey): for each 64-bit hash of an ID, how many of the held IDs have
// it. It is a superset: an ID it does not hold is not in the store, so applyCommand
// skips the store read for it (issue 14: every command's request ID is new but for a
// retry, and its probe through the memtables and every L0 file was ~25 µs of an
// APPEND's CPU under 64 clients); an ID it holds is read from the store as before. It
// is therefore exact wherever it matters, on every replica: the answer still comes from
// the store, only a read that would find nothing is skipped.
//
// It is built when a store is opened (OpenFSM, Restore: openGeneration) by a scan of the
// 'Q' keys, and kept by the only code that writes or deletes them: applyCommand adds the
// ID it records, pruneRequests removes the IDs it deletes (each of which was added with
// its age key, in the same batch). Only ApplyBatch, on Raft's one FSM goroutine, uses
// it. Cost: a map entry per held ID (requestRetention of log time, or the retry
// horizon's entries, whichever is longer: ~900,000 at 1,500 commands a second), ~20 to 50
// bytes each; opening a store scans its IDs, ~0.5 µs each (BenchmarkLoadRequestSet).
type requestSet struct {
	seed   maphash.Seed
	counts map[uint64]uint32
}

func newRequestSet() *requestSet {
	return &requestSet{seed: maphash.MakeSeed(), counts: map[uint64]uint32{}}
}

// loadRequestSet returns the set of the request IDs r holds.
func loadRequestSet(r reader) (*requestSet, error) {
	s := newRequestSet()
	err := scan(r, []byte{prefixRequest}, []byte{prefixRequest + 1}, func(k, _ []byte) (bool, error) {
		s.counts[maphash.Bytes(s.seed, k[1:])]++
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("load request ids: %w", err)
	}
	return s, nil
}

// mayHold reports whether the store may hold id; false means it does not. A nil set
// knows nothing: every ID may be held.
func (s *requestSet) mayHold(id string) bool {
	if s == nil {
		return true
	}
	return s.counts[maphash.String(s.seed, id)] > 0
}

// add records that the store holds id (once per write of its 'Q' key where there was
// none).
func (s *requestSet) add(id string) {
	if s != nil {
		s.counts[maphash.String(s.seed, id)]++
	}
}

// remove records that the store no longer holds id, which it held.
func (s *requestSet) remove(id []byte) {
	if s == nil {
		return
	}
	h := maphash.Bytes(s.seed, id)
	switch n := s.counts[h]; {
	case n > 1:
		s.counts[h] = n - 1
	case n == 1:
		delete(s.counts, h)
	}
}

// len is the number of IDs the set holds.
func (s *requestSet) len() int {
	n := 0
	for _, c := range s.counts {
		n += int(c)
	}
	return n
}
