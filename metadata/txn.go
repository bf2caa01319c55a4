package metadata

import (
	"bytes"
	"encoding/binary"
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
// caller builds them afresh, or copies an iterator's key before the write). Iterators read the batch itself: the
// writes of the keys that wait in the cache (defers) go into the batch before an iterator
// over them opens (NewIter) and before the commit, so an iterator never sees a value the
// cache contradicts; the probe's iterator reads only prefixes that never wait.
type txn struct {
	b    *pebble.Batch
	undo []undoEntry
	// recording is set between savepoint and release/rollback.
	recording bool
	cache     map[string]*cachedValue
	// arena is where small values and keys are built (alloc).
	arena []byte
	// carryKeys are the cached keys that go on to the next batch (carry).
	carryKeys []string
	// entries is the slab the cache's entries come from (newEntry).
	entries []cachedValue
	// keyBuf is where keys for reads only are built (the cache copies what it keeps).
	keyBuf []byte
	// memo is what this batch's prunes found (prunememo.go); every write updates it.
	memo pruneMemo
	// dropped are the key ranges the command being recorded removes when it succeeds
	// (dropRange).
	dropped [][2][]byte
	// probe is the iterator that point reads missing the cache go through (probeGet),
	// opened at the first and kept for the batch; close releases it.
	probe *pebble.Iterator
	// pending are the column chunks the batch's commands edited and the batch has not
	// written yet, by key (columnbatch.go).
	pending map[string]*pendingChunk
	// pendingSlab is where the pending chunks are allocated, a few dozen at a time.
	pendingSlab []pendingChunk
	// rewriteAppends writes the chunks that commands only append to as any other, read,
	// edited and set, not as merge operands (FSM.rewriteAppends).
	rewriteAppends bool
	// unwritten are the cache entries of keys written last with a value the batch does
	// not hold yet (defers), in the order of their first such write; unwrittenBuf holds
	// the first of them, so that a batch of one command allocates none.
	unwritten    []unwrittenKey
	unwrittenBuf [8]unwrittenKey
	// writeEach sets every write in the batch at once, none deferred (tests compare).
	writeEach bool
}

// unwrittenKey is a cached key whose value goes into the batch later (writeUnwritten).
type unwrittenKey struct {
	key []byte
	e   *cachedValue
}

// probeOptions are the probe's: bloom filters on every level, L6 included (Pebble's
// point Get reads an L6 table's index and data blocks without its filter, because it
// expects L6 reads to find their key; the FSM's reads of new request IDs, thread keys,
// Message-ID numbers and blob records mostly miss).
var probeOptions = pebble.IterOptions{UseL6Filters: true}

// maxTxnCache bounds the keys a txn caches: a command that touches many keys (STORE of
// a whole large mailbox) reads the others from the batch.
const maxTxnCache = 4096

// cachedValue is a key's value in the batch, or its absence (!found).
type cachedValue struct {
	value []byte
	found bool
	// decoded is value decoded, the message a command wrote there with keepProto, until
	// the next write of the key or the next takeProto of it.
	decoded proto.Message
	// unwritten: value is the key's last write, which the batch does not hold yet.
	unwritten bool
}

// newTxn returns the txn of a batch, its cache started with what the previous batch of
// the store carried (carry; nil: none).
func newTxn(b *pebble.Batch, carried *carriedCache) *txn {
	t := &txn{b: b}
	t.unwritten = t.unwrittenBuf[:0]
	if carried != nil {
		t.cache, t.carryKeys = carried.cache, carried.keys
		t.memo.dedup, t.memo.marks, t.memo.history = carried.dedup, carried.marks, carried.history
	} else {
		t.cache = make(map[string]*cachedValue, 64)
	}
	return t
}

// carriedCache is what one batch's cache hands to the next batch of the same store
// (generation.carried): the values of the keys that every batch reads again, as the
// committed batch left them.
type carriedCache struct {
	cache map[string]*cachedValue
	keys  []string
	// dedup and marks are the dedup and mark prunes' memos as the committed batch left
	// them (prunememo.go): a batch of one Append skips the scans while no record is due.
	dedup, marks expiryMemo
	// history is the history prunes' memo per mailbox (nil when it grew past
	// maxCarriedHistory): a batch skips a mailbox's journal and tombstone scans while
	// nothing there is older than the retention.
	history map[uint64]*historyMemo
}

// maxCarried bounds the keys a batch hands to the next.
const maxCarried = 256

// maxCarriedHistory bounds the mailboxes whose history memo a batch hands to the next; a
// larger memo is dropped whole, and the next batches learn again (issue 14: the first
// command of every batch on each mailbox scanned its journal and tombstones, 2 % of the
// CPU of 64 appending clients).
const maxCarriedHistory = 4096

// carries reports whether a key's cached value goes on to the next batch: the system keys
// (log clock, retry horizon, prune floors, blob epoch), accounts, mailboxes and quota
// records, which the commands of every batch read again.
func carries(key string) bool {
	switch key[0] {
	case prefixSystem, prefixAccount, prefixMailbox, prefixQuotaLimits, prefixQuotaUsage:
		return true
	}
	return false
}

// carry returns the cache to start the next batch of the store with. Only for a batch
// that committed: the store then holds exactly what the cache says, and nothing but the
// next batch writes it (a restored snapshot is a new generation, which starts empty).
// Values are copied out of the arena, so the next batch does not pin its chunks; decoded
// messages go on as they are.
func (t *txn) carry() *carriedCache {
	out := &carriedCache{cache: make(map[string]*cachedValue, len(t.carryKeys)+64), keys: t.carryKeys,
		dedup: t.memo.dedup, marks: t.memo.marks}
	if len(t.memo.history) <= maxCarriedHistory {
		out.history = t.memo.history
	}
	entries := make([]cachedValue, len(t.carryKeys))
	for i, k := range t.carryKeys {
		e := t.cache[k]
		entries[i] = cachedValue{value: bytes.Clone(e.value), found: e.found, decoded: e.decoded}
		out.cache[k] = &entries[i]
	}
	return out
}

// addEntry caches a new entry for key.
func (t *txn) addEntry(key []byte, v cachedValue) {
	k := string(key)
	t.cache[k] = t.newEntry(v)
	if len(t.carryKeys) < maxCarried && carries(k) {
		t.carryKeys = append(t.carryKeys, k)
	}
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

// NewIter implements reader. The pending column chunks and the unwritten values in the
// iterator's range are written first (columnbatch.go, writeUnwritten), so it sees them.
func (t *txn) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) {
	t.writeUnwritten(o.LowerBound, o.UpperBound)
	if t.mayHoldPending(o.LowerBound, o.UpperBound) {
		if err := t.writePending(o.LowerBound, o.UpperBound); err != nil {
			return nil, err
		}
	}
	return t.b.NewIter(o)
}

// get returns the value at key as this batch holds it, and whether there is one. The
// value is the txn's: the caller reads it and never changes it (getRaw copies).
func (t *txn) get(key []byte) ([]byte, bool, error) {
	if len(t.pending) > 0 && isColumnChunk(key) {
		if p := t.pending[string(key)]; p != nil {
			if err := t.writeChunk(key, p); err != nil {
				return nil, false, err
			}
		}
	}
	if e := t.cache[string(key)]; e != nil {
		return e.value, e.found, nil
	}
	if probed(key) {
		value, found, err := t.probeGet(key)
		if err != nil {
			return nil, false, fmt.Errorf("get %q: %w", key, err)
		}
		t.cacheValue(key, value, found)
		return value, found, nil
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

// probed reports whether a point read of key goes through the probe iterator: the keys an
// APPEND or a delivery mostly reads to find them absent (a new request ID, thread index
// entries and Message-ID numbers of a new message, the record of a new blob, a dedup key,
// a delivery mark). The others (records, chunks rewritten by every APPEND) are mostly
// there, often in the memtable, where a Get stops at the first level that holds the key
// and the probe's merge would still seek every level below it.
func probed(key []byte) bool {
	switch key[0] {
	case prefixRequest, prefixThread, prefixMessageNumber, prefixSubjectNumber, prefixBlob, prefixDedup, prefixMark:
		return true
	}
	return false
}

// probeGet reads key from the batch and the store below it through one iterator kept for
// the batch, with SeekPrefixGE (the default comparer's prefix is the whole key), and
// returns a copy of the value. It answers what the batch's Get answers: the iterator is
// the indexed batch's, and SetOptions with unchanged options brings its view of the batch
// up to the writes made since the last read (Pebble's fast path keeps the level
// iterators open). Issue 14: a Get opens an iterator per level on every call and reads
// L6 tables without their filters, which under 64 appending clients was ~14 % of the
// process's CPU, most of it for keys that are not there.
func (t *txn) probeGet(key []byte) ([]byte, bool, error) {
	if t.probe == nil {
		it, err := t.b.NewIter(&probeOptions)
		if err != nil {
			return nil, false, err
		}
		t.probe = it
	} else {
		t.probe.SetOptions(&probeOptions)
	}
	it := t.probe
	if !it.SeekPrefixGE(key) || !bytes.Equal(it.Key(), key) {
		return nil, false, it.Error()
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return nil, false, err
	}
	return append([]byte(nil), v...), true, nil
}

// close releases the probe iterator; the txn is not used after it.
func (t *txn) close() {
	if t.probe != nil {
		if err := t.probe.Close(); err != nil {
			panic(fmt.Sprintf("metadata fsm: close the read iterator: %v", err))
		}
		t.probe = nil
	}
}

// cacheValue caches a value read from the batch, if there is room.
func (t *txn) cacheValue(key, value []byte, found bool) {
	if len(t.cache) < maxTxnCache {
		t.addEntry(key, cachedValue{value: value, found: found})
	}
}

// newEntry returns a new cache entry holding v, allocated with others in a slab.
func (t *txn) newEntry(v cachedValue) *cachedValue {
	if len(t.entries) == cap(t.entries) {
		t.entries = make([]cachedValue, 0, 64)
	}
	t.entries = append(t.entries, v)
	return &t.entries[len(t.entries)-1]
}

// written updates the cache after a write of key, if it holds key. The cache keeps value
// itself: what a command writes it never changes afterwards.
func (t *txn) written(key, value []byte, found bool) {
	if e := t.cache[string(key)]; e != nil {
		e.value, e.found, e.decoded = value, found, nil
	}
}

func (t *txn) savepoint() {
	t.undo = t.undo[:0]
	t.dropped = t.dropped[:0]
	t.recording = true
}

func (t *txn) releaseSavepoint() {
	t.undo = t.undo[:0]
	t.recording = false
	for _, r := range t.dropped {
		t.deleteRange(r[0], r[1])
	}
	t.dropped = t.dropped[:0]
}

// rollback undoes every write since the savepoint, newest first, and forgets the ranges
// it was to drop.
func (t *txn) rollback() {
	t.recording = false
	t.dropped = t.dropped[:0]
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
	t.set(key, value)
}

// defers reports whether a write of key that the cache holds waits in the cache for the
// end of the batch (writeUnwritten): the keys that every command of a batch of Appends
// writes again, the log clock, the mailbox record and the account's and tenant's quota
// usage. The batch then holds each once, with its last value, where it held one version
// per command: fewer and smaller batch and memtable inserts and WAL bytes (issue 14),
// and the same state, since only the last version of a key in a batch is ever read
// after it. Until then the cache answers the key's reads (every read goes to the cache
// first, and a cached key stays cached for the batch), and an iterator over it writes it
// first (NewIter).
func defers(key []byte) bool {
	switch key[0] {
	case prefixSystem, prefixMailbox, prefixQuotaUsage:
		return true
	}
	return false
}

// set writes value at key, with no record for a rollback.
func (t *txn) set(key, value []byte) {
	e := t.cache[string(key)]
	if e != nil && !t.writeEach && defers(key) {
		// The value waits in the cache (defers); the batch gets it later.
		if !e.unwritten {
			e.unwritten = true
			t.unwritten = append(t.unwritten, unwrittenKey{key: key, e: e})
		}
	} else if err := t.b.Set(key, value, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch set: %v", err))
	}
	if e != nil {
		e.value, e.found, e.decoded = value, true, nil // as written
	}
	t.memo.track(key, value, true)
}

// writeUnwritten writes to the batch the unwritten values of the keys in [lower, upper)
// (nil: unbounded).
func (t *txn) writeUnwritten(lower, upper []byte) {
	if len(t.unwritten) == 0 {
		return
	}
	kept := t.unwritten[:0]
	for _, u := range t.unwritten {
		if !u.e.unwritten {
			continue
		}
		if (lower != nil && bytes.Compare(u.key, lower) < 0) || (upper != nil && bytes.Compare(u.key, upper) >= 0) {
			kept = append(kept, u)
			continue
		}
		u.e.unwritten = false
		if err := t.b.Set(u.key, u.e.value, nil); err != nil {
			panic(fmt.Sprintf("metadata fsm: batch set: %v", err))
		}
	}
	clear(t.unwritten[len(kept):])
	t.unwritten = kept
}

// insert writes a key the caller knows is absent (a new UID, MODSEQ or request
// ID), so the undo log needs no read.
func (t *txn) insert(key, value []byte) {
	if t.recording {
		t.undo = append(t.undo, undoEntry{key: key})
	}
	t.set(key, value)
}

func (t *txn) mustDelete(key []byte) {
	t.remember(key)
	t.del(key)
}

// del deletes key, with no record for a rollback. An unwritten value of key is dropped:
// the batch held it before the delete.
func (t *txn) del(key []byte) {
	if e := t.cache[string(key)]; e != nil {
		e.unwritten = false
	}
	if err := t.b.Delete(key, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch delete: %v", err))
	}
	t.written(key, nil, false)
	t.memo.track(key, nil, false)
}

// merge writes operand as a merge operand of key (columnbatch.go: records appended to a
// column chunk), with no record for a rollback. The store's merger concatenates, so the
// key's value becomes its value (none: empty) followed by operand; the cache forgets the
// key, whose next read goes to the batch, which resolves the merge.
func (t *txn) merge(key, operand []byte) {
	if defers(key) {
		// A value of key waiting in the cache would be written after the operand and
		// replace what it merges with (writeUnwritten): merges are for column chunks only.
		panic(fmt.Sprintf("metadata fsm: merge of a key whose writes wait in the cache: %q", key))
	}
	if err := t.b.Merge(key, operand, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch merge: %v", err))
	}
	delete(t.cache, string(key))
}

// dropRange removes every key in [start, end) with one range deletion in the batch: a
// write of O(1) keys however many the range holds, and the same keys gone as deleting each
// (so the same store and digest as a build that deletes them one by one). The undo log
// cannot bring a range back, so under a savepoint the range is removed when the command
// succeeds (releaseSavepoint), not at once: the command must not read or write in it
// after the call (its keys are of a mailbox being destroyed, whose id is never reused).
func (t *txn) dropRange(start, end []byte) {
	if t.recording {
		t.dropped = append(t.dropped, [2][]byte{start, end})
		return
	}
	t.deleteRange(start, end)
}

// deleteRange deletes [start, end) in the batch, marks the cached keys in it absent and
// forgets the pending column edits in it (columnbatch.go). The prune memos follow no key
// of the ranges dropped (a mailbox's column and dictionary).
func (t *txn) deleteRange(start, end []byte) {
	t.dropPending(start, end)
	if err := t.b.DeleteRange(start, end, nil); err != nil {
		panic(fmt.Sprintf("metadata fsm: batch delete range: %v", err))
	}
	for k, e := range t.cache {
		if k >= string(start) && k < string(end) {
			// An unwritten value in the range is dropped: the batch held it before.
			e.value, e.found, e.decoded, e.unwritten = nil, false, nil, false
		}
	}
}

func (t *txn) setProto(key []byte, m proto.Message) { t.mustSet(key, t.marshal(m)) }

// arenaChunk is the size of the chunks of the arena that a txn encodes values into.
const arenaChunk = 16 << 10

// alloc returns n bytes of the txn's arena, as an empty slice of capacity n: the small
// values and keys a batch writes share a few allocations. The arena only grows, so what
// alloc handed out is never touched again by the txn, and the cache and the undo log may
// keep it; it lives as long as the last value that points into its chunk.
func (t *txn) alloc(n int) []byte {
	if n > arenaChunk/8 {
		return make([]byte, 0, n)
	}
	if cap(t.arena)-len(t.arena) < n {
		t.arena = make([]byte, 0, arenaChunk)
	}
	start := len(t.arena)
	t.arena = t.arena[:start+n]
	return t.arena[start : start : start+n]
}

// marshal encodes m like mustMarshal, into the arena (alloc).
func (t *txn) marshal(m proto.Message) []byte {
	out, err := cachedSizeOpts.MarshalAppend(t.alloc(marshalOpts.Size(m)), m)
	if err != nil {
		panic(fmt.Sprintf("metadata fsm: marshal %T: %v", m, err))
	}
	return out
}

// cachedSizeOpts is marshalOpts for a message whose size marshal has just computed.
var cachedSizeOpts = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// encodeUint64 is encodeUint64 into the arena.
func (t *txn) encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(t.alloc(8), v)
}

// keepProto writes m at key like setProto and keeps m itself for the next takeProto of
// key, which then need not decode it again: the records each command of a batch of Appends
// reads, changes and writes back (the mailbox, the quota usage) are decoded once per batch.
// The caller gives m up: neither it nor anything that holds a part of m may change it
// afterwards, so that m stays what the value at key decodes to.
func (t *txn) keepProto(key []byte, m proto.Message) {
	value := t.marshal(m)
	t.mustSet(key, value)
	if e := t.cache[string(key)]; e != nil {
		e.decoded = m
	} else if len(t.cache) < maxTxnCache {
		t.addEntry(key, cachedValue{value: value, found: true, decoded: m})
	}
}

// peekProto returns the value at key decoded (a new message of fresh() when there is
// none), for reading only: the message is the txn's, kept for the next peekProto of key
// until key is written, and no caller may change it. A key is read with peekProto or with
// takeProto, never both.
func peekProto[M proto.Message](t *txn, key []byte, fresh func() M) (M, error) {
	if e := t.cache[string(key)]; e != nil && e.decoded != nil {
		if m, ok := e.decoded.(M); ok {
			return m, nil
		}
	}
	m := fresh()
	if _, err := getProto(t, key, m); err != nil {
		return m, err
	}
	if e := t.cache[string(key)]; e != nil {
		e.decoded = m
	}
	return m, nil
}

// takeProto returns the value at key decoded, and whether there is one: the message that
// keepProto left there, which the caller now owns and may change (the txn forgets it),
// or else a new message of fresh() decoded from the value.
func takeProto[M proto.Message](t *txn, key []byte, fresh func() M) (M, bool, error) {
	if e := t.cache[string(key)]; e != nil && e.decoded != nil {
		if m, ok := e.decoded.(M); ok {
			e.decoded = nil
			return m, true, nil
		}
	}
	m := fresh()
	found, err := getProto(t, key, m)
	return m, found, err
}

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
