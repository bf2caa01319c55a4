package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCompactionWaitsForSuperseders (review G1 of 2026-12-06): K is acknowledged and durable in
// segment 1. Segment 1's tombstone file fails once (a best-effort superseded tombstone's
// fsync), so durableLocked refuses dedup hits on it and a new Stage of K writes a second
// record into segment 2, superseding the durable one in memory (live -= size). The
// compaction of segment 1 (compactable: tombs failed) then skips K and unlinks segment 1
// while K's only other copy is not yet synced: power loss now loses an acknowledged body.
func TestCompactionWaitsForSuperseders(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	fail := failSyncsOf(s)
	s.packs.compactMu.Lock()
	held := true
	defer func() {
		if held {
			s.packs.compactMu.Unlock()
		}
	}()
	bodyK := seededBody(901, 1200)
	k := put(t, s, "acme", bodyK) // acknowledged, durable in segment 1
	fail("0000000000000001.seg")
	bodyJ := seededBody(902, 1200)
	j := putFails(t, s, bodyJ) // J's record in segment 1 may be lost; segment 1 failed
	fail("0000000000000001.del")
	// J again: a new record in segment 2, synced; the best-effort tombstone of the old J
	// in segment 1 fails its fsync: segment 1's tombstone file has failed.
	if err := s.Put(t.Context(), j, bytes.NewReader(bodyJ), int64(len(bodyJ))); err != nil {
		t.Fatalf("Put J again: %v", err)
	}
	fail()
	if !s.packs.segments[1].tombs.hasFailed() {
		t.Fatal("setup: segment 1's tombstones did not fail")
	}
	// A second delivery of the same body K (Stage; its Sync comes later, as the group
	// commit or the raft snapshot's SyncStaged would).
	st, err := s.Stage(t.Context(), k, bytes.NewReader(bodyK), int64(len(bodyK)))
	if err != nil {
		t.Fatal(err)
	}
	_ = st // its Sync would come later
	loc, _ := s.packs.lookup(k)
	t.Logf("K now indexed in segment %d (synced %d of %d)", loc.seg.seq, loc.seg.data.syncedBytes(), loc.end())
	held = false
	s.packs.compactMu.Unlock()
	_ = s.packs.compact()
	if _, err := os.Stat(filepath.Join(root, packDirName, segmentName(1))); os.IsNotExist(err) {
		loc, ok := s.packs.lookup(k)
		if !ok || loc.seg.data.syncedBytes() < loc.end() {
			t.Fatalf("segment 1, holding the only durable copy of acknowledged K, was unlinked while K's other record (segment %d) is synced only %d of %d: power loss loses K",
				loc.seg.seq, loc.seg.data.syncedBytes(), loc.end())
		}
	}
}
