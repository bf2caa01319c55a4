package replication

import (
	"encoding/json"
	"io"
	"log/slog"
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
	if err := restoreIfBehind(snaps, fsm, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := fsm.AppliedIndex(); got != 266 {
		t.Errorf("applied index after the restore %d, want 266", got)
	}
	if v, _ := fsm.get("k"); v != "v" {
		t.Errorf("restored state lost its key: %q", v)
	}

	// A restore must never take the state machine back.
	ahead := openKVFSM(t, filepath.Join(t.TempDir(), "kv.db"), false)
	ahead.applied.Store(267)
	if err := restoreIfBehind(snaps, ahead, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a restore to 266 of a state machine at 267 was accepted")
	}
}
