package replication

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigCommand is a command of about 4 KiB, as an Append of many messages is large.
func bigCommand(i int) string {
	return fmt.Sprintf("k%d=%s", i, strings.Repeat(fmt.Sprintf("%08d", i), 512))
}

// waitSnapshotAfter waits until raft's latest snapshot is past index.
func waitSnapshotAfter(t *testing.T, n *Node, index uint64) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for n.lastSnapshotIndex() <= index {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot past index %d within %v (latest at %d)", index, testWait, n.lastSnapshotIndex())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSnapshotOnLogBytes: entries far fewer than SnapshotThreshold but large make the node
// snapshot once they take SnapshotBytes, compaction keeps about TrailingBytes of them,
// and a restart hands the state machine only what was stored after the snapshot.
// Without the byte threshold raft takes no snapshot and the restart hands over all 301.
func TestSnapshotOnLogBytes(t *testing.T) {
	s := startSoleNode(t, func(cfg *Config) {
		cfg.SnapshotThreshold = 1 << 20 // never by count here
		cfg.SnapshotBytes = 256 << 10   // about 60 of the 4 KiB entries
		cfg.TrailingBytes = 64 << 10    // about 16 of them: the floor of 64 entries applies
	})
	n := s.n
	const entries = 300
	for i := range entries {
		apply(t, n, bigCommand(i))
	}
	waitSnapshotAfter(t, n, 0)
	// The last writes may have crossed the threshold again: let that snapshot finish.
	deadline := time.Now().Add(testWait)
	for bytes, _ := n.growth.sinceSnapshot(); bytes >= s.cfg.SnapshotBytes; bytes, _ = n.growth.sinceSnapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of log after the latest snapshot, over the threshold %d", bytes, s.cfg.SnapshotBytes)
		}
		time.Sleep(10 * time.Millisecond)
		n.growth.snapshotAt(n.lastSnapshotIndex())
	}
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	if kept := last - first + 1; kept > minTrailingLogs+entries*4/10 {
		t.Fatalf("the log keeps %d entries (%d-%d) after byte-bounded snapshots", kept, first, last)
	}
	if got := n.Raft().ReloadableConfig().TrailingLogs; got != minTrailingLogs {
		t.Fatalf("TrailingLogs is %d, want the floor %d for 64 KiB of 4 KiB entries", got, minTrailingLogs)
	}
	snapshotIndex := n.lastSnapshotIndex()
	s.stop()

	s.start()
	fsm := s.fsm
	// Handed over again: the entries after the snapshot (under 64 of 4 KiB), not the 301.
	if got, want := fsm.skips.Load(), int64(last-snapshotIndex); got != want || got >= 64 {
		t.Fatalf("restart handed the state machine %d applied entries again, want %d (after the snapshot at %d), under 64", got, want, snapshotIndex)
	}
	if fsm.applies.Load() != 0 {
		t.Fatalf("restart re-applied %d entries", fsm.applies.Load())
	}
	for i := range entries {
		if v, _ := fsm.get(fmt.Sprintf("k%d", i)); v != strings.Repeat(fmt.Sprintf("%08d", i), 512) {
			t.Fatalf("k%d lost after restart", i)
		}
	}
}

// TestSnapshotAfterStartOnLargeLog: a store whose log outgrew the byte threshold before
// the node had one (filled without it) snapshots once raft has replayed it at the next
// start, without a write, so the start after that replays nothing of it.
func TestSnapshotAfterStartOnLargeLog(t *testing.T) {
	s := startSoleNode(t, func(cfg *Config) {
		cfg.SnapshotThreshold = 1 << 20
		cfg.SnapshotBytes = 1 << 40 // as before the byte threshold: no snapshot
	})
	const entries = 200
	for i := range entries {
		apply(t, s.n, bigCommand(i))
	}
	s.stop()

	// 200 entries of 4 KiB, estimated from a sample of them.
	s.cfg.SnapshotBytes = 64 << 10
	s.start()
	if got := s.fsm.skips.Load(); got != entries+1 {
		t.Fatalf("first start handed over %d entries again, want all %d", got, entries+1)
	}
	waitSnapshotAfter(t, s.n, 0)
	s.stop()

	s.start()
	if got := s.fsm.skips.Load(); got > 2 {
		t.Fatalf("start after the snapshot handed over %d entries again, want at most the no-op's neighbours (2)", got)
	}
	s.stop()
}

// TestLogGrowthSnapshotAt: a snapshot takes off the writes it covers whole, and a write
// that straddles its index stays counted.
func TestLogGrowthSnapshotAt(t *testing.T) {
	g := newLogGrowth(100)
	g.stored(3, 30, 3)
	g.stored(5, 20, 2)
	g.stored(9, 40, 4)
	if bytes, entries := g.sinceSnapshot(); bytes != 90 || entries != 9 {
		t.Fatalf("before a snapshot: %d bytes, %d entries; want 90, 9", bytes, entries)
	}
	g.snapshotAt(6)
	if bytes, entries := g.sinceSnapshot(); bytes != 40 || entries != 4 {
		t.Fatalf("after a snapshot at 6: %d bytes, %d entries; want 40, 4", bytes, entries)
	}
	select {
	case <-g.over:
		t.Fatal("signalled under the threshold")
	default:
	}
	g.stored(12, 70, 3)
	select {
	case <-g.over:
	default:
		t.Fatal("not signalled at 110 bytes of a threshold of 100")
	}
	g.snapshotAt(12)
	if bytes, _ := g.sinceSnapshot(); bytes != 0 {
		t.Fatalf("after a snapshot of everything: %d bytes", bytes)
	}
}
