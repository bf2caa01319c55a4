package replication

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// Seed makes DataDir the Raft state of a new group whose only voter is nodeID at raftAddr
// and whose state is sm's, as `strata restore` builds it from a backup: a snapshot of sm
// at sm.AppliedIndex() in term 1 and no log. Open starts from it (no bootstrap: the
// snapshot is existing state) and the node elects itself; others join it as usual. The
// FSM is not restored again on start, as it has applied up to the snapshot already. It
// refuses a DataDir that already holds Raft state.
func Seed(dataDir, nodeID, raftAddr string, sm StateMachine) error {
	raftDir := filepath.Join(dataDir, "raft")
	if entries, err := os.ReadDir(raftDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("seed raft state: %s is not empty", raftDir)
	}
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return fmt.Errorf("seed raft state: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(raftDir, snapshotsRetained, io.Discard)
	if err != nil {
		return fmt.Errorf("seed raft state: open snapshot store: %w", err)
	}
	index := sm.AppliedIndex()
	if index == 0 {
		return fmt.Errorf("seed raft state: the state machine has applied nothing")
	}
	cfg := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(nodeID), Address: raft.ServerAddress(raftAddr)}}}
	// The store encodes the peers for old readers with a transport's EncodePeer; an
	// in-memory one encodes an address as itself, as the TCP transport does.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(raftAddr))
	defer trans.Close()
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, 1, cfg, index, trans)
	if err != nil {
		return fmt.Errorf("seed raft state: create snapshot: %w", err)
	}
	snap, err := sm.Snapshot()
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("seed raft state: snapshot the state machine: %w", err)
	}
	defer snap.Release()
	if err := snap.Persist(sink); err != nil {
		return fmt.Errorf("seed raft state: write snapshot: %w", err)
	}
	return nil
}
