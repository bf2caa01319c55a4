package replication

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// TestRestoreIfBehindSnapshotEndingInNoOps: a snapshot taken at raft index 268 of a state
// machine whose last entry was 266 (267 and 268 were the no-op of a new leader and a barrier,
// which never reach it) restores to 266, and the node starts; the consistency checker found
// a node that refused to start after such a snapshot.
func TestRestoreIfBehindSnapshotEndingInNoOps(t *testing.T) {
	dir := t.TempDir()
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, 268, 3, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(sink).Encode(kvState{Applied: 266, KV: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}

	fsm := openKVFSM(t, filepath.Join(t.TempDir(), "kv.db"), false)
	fsm.applied.Store(200) // its last writes were lost with the process
	if err := restoreIfBehind(snaps, fsm, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := fsm.AppliedIndex(); got != 266 {
		t.Errorf("applied index after the restore %d, want 266", got)
	}
	if v, _ := fsm.get("k"); v != "v" {
		t.Errorf("restored state lost its key: %q", v)
	}

	// A state machine that has applied what the snapshot had (266, below raft's 268) is
	// not restored: before, every start after such a snapshot restored the whole store to
	// the same index, and the next start did again.
	// With a peek (Open's: the state file read directly, without the CRC pass over the whole
	// snapshot) and without.
	peeked := 0
	peek := func(id string) (io.ReadCloser, error) {
		peeked++
		return os.Open(filepath.Join(dir, "snapshots", id, "state.bin"))
	}
	for _, at := range []uint64{266, 267} {
		held := openKVFSM(t, filepath.Join(t.TempDir(), "kv.db"), false)
		held.applied.Store(at)
		p := peek
		if at == 267 {
			p = nil
		}
		if err := restoreIfBehind(snaps, held, slog.New(slog.DiscardHandler), p); err != nil {
			t.Fatalf("state machine at %d: %v", at, err)
		}
		if n := held.restores.Load(); n != 0 || held.AppliedIndex() != at {
			t.Errorf("state machine at %d: %d restores, applied index %d after", at, n, held.AppliedIndex())
		}
		if v, _ := held.get("k"); v != "" {
			t.Errorf("state machine at %d took the snapshot's key %q", at, v)
		}
	}
	if peeked != 1 {
		t.Errorf("the snapshot's state file was peeked %d times, want 1", peeked)
	}
}
