package metadata

import (
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
)

// txn is the write side of one Raft batch: an indexed Pebble batch, so that a
// command reads what earlier commands of the batch wrote, with a savepoint per
// command. A command that fails after writing is undone by restoring the prior value
// of every key it wrote, so a failed command leaves no trace whatever the order of
// its checks and writes.
//
// A txn is also the reader its commands read through: point reads are served from a
// cache of the values this batch has read, kept current by every write (all writes go
// through the txn), so the keys that each command of a batch reads again (the log clock,
// the prune floors, the account, quota usage and limits, the mailbox record, the blob
// epoch) cost one Pebble Get per batch rather than one per command, and the undo log's
// read before a write is mostly a hit. Cached values are never changed in place: a
// write replaces the entry, with the value it was given.
//
// The cache and the undo log keep the keys and values they are given, so a key or value
// passed to mustSet, insert or mustDelete must not be changed after the call (every
// caller builds them afresh, or copies an iterator's key before the write). Iterators read the batch itself, which the cache never
// contradicts.
type txn struct {
	b    *pebble.Batch
	undo []undoEntry
	// recording is set between savepoint and release/rollback.
	recording bool
	cache     map[string]*cachedValue
}

// maxTxnCache bounds the keys a txn caches: a command that touches many keys (STORE of
// a whole large mailbox) reads the others from the batch.
const maxTxnCache = 4096

// cachedValue is a key's value in the batch, or its absence (!found).
type cachedValue struct {
	value []byte
	found bool
}

func newTxn(b *pebble.Batch) *txn {
	return &txn{b: b, cache: make(map[string]*cachedValue, 64)}
}

type undoEntry struct {
	key     []byte
	prior   []byte
	existed bool
}

// noClose is the io.Closer of a value the txn serves: the value is the txn's own.
type noClose struct{}

func (noClose) Close() error { return nil }

// Get implements reader: the value at key as this batch holds it. The caller must not
// change the value.
func (t *txn) Get(key []byte) ([]byte, io.Closer, error) {
	v, found, err := t.get(key)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, pebble.ErrNotFound
	}
	return v, noClose{}, nil
}

// NewIter implements reader.
func (t *txn) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) {
	return t.b.NewIter(o)
}

func (t *txn) get(key []byte) ([]byte, bool, error) {
	if e := t.cache[string(key)]; e != nil {
		return e.value, e.found, nil
	}
	v, closer, err := t.b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		t.cacheValue(key, nil, false)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	value := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	t.cacheValue(key, value, true)
	return value, true, nil
}

// cacheValue caches a value read from the batch, if there is room.
func (t *txn) cacheValue(key, value []byte, found bool) {
	if len(t.cache) < maxTxnCache {
		t.cache[string(key)] = &cachedValue{value: value, found: found}
	}
}

// written updates the cache after a write of key, if it holds key. The cache keeps value
// itself: what a command writes it never changes afterwards.
func (t *txn) written(key, value []byte, found bool) {
	if e := t.cache[string(key)]; e != nil {
		e.value, e.found = value, found
	}
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

// remember records key's value before a write for rollback. The prior value may be the
// cache's, which a write replaces and never changes.
func (t *txn) remember(key []byte) {
	if !t.recording {
		return
	}
	prior, existed, err := t.get(key)
	if err != nil {
		panic(fmt.Sprintf("metadata fsm: read before write: %v", err))
	}
	t.undo = append(t.undo, undoEntry{key: key, prior: prior, existed: existed})
}

func (t *txn) mustSet(key, value []byte) {
	t.remember(key)
	if err := t.b.Set(key, value, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch set: %v", err))
	}
	t.written(key, value, true)
}

// insert writes a key the caller knows is absent (a new UID, MODSEQ or request
// ID), so the undo log needs no read.
func (t *txn) insert(key, value []byte) {
	if t.recording {
		t.undo = append(t.undo, undoEntry{key: key})
	}
	if err := t.b.Set(key, value, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch set: %v", err))
	}
	t.written(key, value, true)
}

func (t *txn) mustDelete(key []byte) {
	t.remember(key)
	if err := t.b.Delete(key, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch delete: %v", err))
	}
	t.written(key, nil, false)
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
