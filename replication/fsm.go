package replication

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// StateMachine is the FSM a Node replicates. It applies batches and knows the last Raft index it
// applied durably, so a restart skips what it applied (no snapshot restore on start when the FSM
// is ahead of the latest snapshot).
//
// ApplyBatch must ignore (respond nil to) every log whose Index is <= AppliedIndex(), record the
// index of every log it is given (LogConfiguration ones too) in the same transaction as their
// effects, and return one response per log. Snapshot must capture the applied index with the
// state, and Restore must adopt the applied index found in the snapshot.
type StateMachine interface {
	raft.BatchingFSM
	AppliedIndex() uint64
}

// SnapshotApplied is implemented by a StateMachine whose snapshots begin with the applied
// index the state machine had when it took them, so that Open can tell from that alone
// whether a restore would add anything (restoreIfBehind).
type SnapshotApplied interface {
	// SnapshotAppliedIndex reads the applied index from the start of a snapshot.
	SnapshotAppliedIndex(snapshot io.Reader) (uint64, error)
}

// stateMachineAdapter sits between raft and the StateMachine and tells waiting readers how far
// the state machine has got, without polling it.
type stateMachineAdapter struct {
	sm             StateMachine
	beforeSnapshot func() error
	applied        appliedWatch
}

func newStateMachineAdapter(sm StateMachine, beforeSnapshot func() error) *stateMachineAdapter {
	a := &stateMachineAdapter{sm: sm, beforeSnapshot: beforeSnapshot}
	a.applied.set(sm.AppliedIndex())
	return a
}

// Apply is part of raft.FSM; raft calls ApplyBatch instead because the adapter is a
// raft.BatchingFSM, but the method stays correct on its own.
func (a *stateMachineAdapter) Apply(log *raft.Log) any {
	resp := a.sm.Apply(log)
	a.applied.advance(log.Index)
	return resp
}

func (a *stateMachineAdapter) ApplyBatch(logs []*raft.Log) []any {
	resp := a.sm.ApplyBatch(logs)
	if len(logs) > 0 {
		a.applied.advance(logs[len(logs)-1].Index)
	}
	return resp
}

// Snapshot runs Config.BeforeSnapshot first: a snapshot leads raft to compact the log up to
// it, so what must be settled for every entry the snapshot holds is settled before it is
// taken. Its error fails the snapshot; raft tries again at its next check.
func (a *stateMachineAdapter) Snapshot() (raft.FSMSnapshot, error) {
	if a.beforeSnapshot != nil {
		if err := a.beforeSnapshot(); err != nil {
			return nil, fmt.Errorf("before snapshot: %w", err)
		}
	}
	return a.sm.Snapshot()
}

// Restore replaces the state wholesale, so the applied index is set, not advanced: it may move
// back when a follower installs a snapshot older than what it held.
func (a *stateMachineAdapter) Restore(snapshot io.ReadCloser) error {
	err := a.sm.Restore(snapshot)
	a.applied.set(a.sm.AppliedIndex())
	return err
}

// appliedWatch holds the index the state machine has applied and wakes the goroutines waiting
// for it to reach some index.
type appliedWatch struct {
	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed and replaced whenever index changes
}

func (w *appliedWatch) set(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.index = index
	w.notifyLocked()
}

func (w *appliedWatch) advance(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index > w.index {
		w.index = index
		w.notifyLocked()
	}
}

func (w *appliedWatch) notifyLocked() {
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

func (w *appliedWatch) load() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index
}

// wait returns once index >= target, or with ctx's error, or ErrClosed when closing is closed.
func (w *appliedWatch) wait(ctx context.Context, target uint64, closing <-chan struct{}) error {
	for {
		w.mu.Lock()
		if w.index >= target {
			w.mu.Unlock()
			return nil
		}
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		changed := w.changed
		w.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return ErrClosed
		}
	}
}
