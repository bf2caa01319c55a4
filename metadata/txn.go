package metadata

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
)

// txn is the write side of one Raft batch: an indexed Pebble batch, so that a
// command reads what earlier commands of the batch wrote, with a savepoint per
// command. A command that fails after writing is undone by restoring the prior value
// of every key it wrote, so a failed command leaves no trace whatever the order of
// its checks and writes.
type txn struct {
	b    *pebble.Batch
	undo []undoEntry
	// recording is set between savepoint and release/rollback.
	recording bool
}

type undoEntry struct {
	key     []byte
	prior   []byte
	existed bool
}

func (t *txn) savepoint() {
	t.undo = t.undo[:0]
	t.recording = true
}

func (t *txn) releaseSavepoint() {
	t.undo = t.undo[:0]
	t.recording = false
}

// rollback undoes every write since the savepoint, newest first.
func (t *txn) rollback() {
	t.recording = false
	for i := len(t.undo) - 1; i >= 0; i-- {
		u := t.undo[i]
		if u.existed {
			t.mustSet(u.key, u.prior)
		} else {
			t.mustDelete(u.key)
		}
	}
	t.undo = t.undo[:0]
}

func (t *txn) remember(key []byte) {
	if !t.recording {
		return
	}
	prior, existed, err := getRaw(t.b, key)
	if err != nil {
		panic(fmt.Sprintf("metadata fsm: read before write: %v", err))
	}
	t.undo = append(t.undo, undoEntry{key: append([]byte(nil), key...), prior: prior, existed: existed})
}

func (t *txn) mustSet(key, value []byte) {
	t.remember(key)
	if err := t.b.Set(key, value, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch set: %v", err))
	}
}

// insert writes a key the caller knows is absent (a new UID, MODSEQ or request
// ID), so the undo log needs no read.
func (t *txn) insert(key, value []byte) {
	if t.recording {
		t.undo = append(t.undo, undoEntry{key: append([]byte(nil), key...)})
	}
	if err := t.b.Set(key, value, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch set: %v", err))
	}
}

func (t *txn) mustDelete(key []byte) {
	t.remember(key)
	if err := t.b.Delete(key, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch delete: %v", err))
	}
}

func (t *txn) setProto(key []byte, m proto.Message) { t.mustSet(key, mustMarshal(m)) }

// view is a consistent read-only view of the store for one read.
type view struct {
	g    *generation
	snap *pebble.Snapshot
	r    reader
}

// view returns a point-in-time view; it must be closed.
func (f *FSM) view() *view {
	g := f.acquire()
	snap := g.db.NewSnapshot()
	return &view{g: g, snap: snap, r: snap}
}

func (v *view) close() {
	if err := v.snap.Close(); err != nil {
		v.g.logger.Error("close pebble snapshot", "err", err)
	}
	v.g.release()
}
