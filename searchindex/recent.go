package searchindex

import (
	"bytes"
	"context"
	"io"
	"math/bits"
	"slices"
	"sync"
	"time"
)

// RecentBodies hands the bodies the ingest path of this process just stored (APPEND,
// LMTP: frontend/ingest Committer.Recent) to the indexer in memory, so that indexing a
// fresh message reads no blob (doc.go "Cost on the write path"). Bodies are keyed by their
// blob key, a content hash under a tenant prefix (blobstore.Key): the bytes kept under a
// key are the bytes the store holds under it, so a body taken from here indexes exactly as
// one read from the store, and answers do not change.
//
// It is bounded: a body larger than the per-body cap is not kept, and while the kept
// bodies fill the byte budget a new one is refused rather than an older one evicted, since
// the indexer takes them in the order they were stored (oldest first) and a lagging
// indexer would otherwise find none. A body nobody takes (its append failed after the
// store, its mailbox was deleted first, a second recipient of one LMTP body) is dropped
// once it is older than staleAfter and room is needed. Whatever is not here (refused,
// dropped, taken already, or after a restart) the indexer reads from the blob store.
type RecentBodies struct {
	budget, perBody int64

	mu     sync.Mutex
	bodies map[string][]byte
	order  recentOrder[bodyRef]
	held   int64
	kept   uint64
	taken  uint64

	// records are the records of appended messages (KeepAppended), by mailbox and UID.
	records recentRecords
}

// bodyRef names a body in the order by its key and size: an entry is live while the body
// kept under its key has its size.
type bodyRef struct {
	key  string
	size int64
}

// staleAfter is how old a kept body or record may grow before it is dropped to make room.
const staleAfter = time.Minute

// recentOrder is the order in which RecentBodies kept its bodies or its records, oldest
// first, each entry with the time it was kept. It may name items taken or dropped since,
// and an item kept again stands in it once for every time: the store's live tells which
// entries name an item kept now.
type recentOrder[K comparable] struct {
	entries []recentEntry[K]
}

type recentEntry[K comparable] struct {
	item K
	at   time.Time
}

func (o *recentOrder[K]) add(item K, at time.Time) {
	o.entries = append(o.entries, recentEntry[K]{item: item, at: at})
}

// dropStale drops, through drop, the items of the oldest entries while they are older
// than staleAfter and fits says no.
func (o *recentOrder[K]) dropStale(now time.Time, fits func() bool, drop func(K)) {
	cutoff := now.Add(-staleAfter)
	for !fits() && len(o.entries) > 0 && o.entries[0].at.Before(cutoff) {
		e := o.entries[0]
		o.entries = o.entries[1:]
		drop(e.item)
	}
}

// compact pops the entries of items gone off the front. An item nobody takes (its APPEND
// was refused after the body was stored, its message expunged before the indexer came)
// holds the front, and with it the entries of every item kept and taken behind it: it
// sweeps those once they are most of the order, count the items kept, keeping the newest
// entry of an item kept again (amortized O(1) an add; review idxmem20).
func (o *recentOrder[K]) compact(live func(K) bool, count int) {
	for len(o.entries) > 0 && !live(o.entries[0].item) {
		o.entries = o.entries[1:]
	}
	if len(o.entries) == 0 && cap(o.entries) > 1024 {
		o.entries = nil
	}
	if len(o.entries) > 1024 && len(o.entries) > 2*count {
		last := make(map[K]int, count)
		for i, e := range o.entries {
			last[e.item] = i
		}
		i := 0
		o.entries = slices.DeleteFunc(o.entries, func(e recentEntry[K]) bool {
			stale := !live(e.item) || last[e.item] != i
			i++
			return stale
		})
	}
}

// NewRecentBodies returns a hand-off that holds at most budget bytes of bodies, each at
// most perBody bytes.
func NewRecentBodies(budget, perBody int64) *RecentBodies {
	return &RecentBodies{budget: budget, perBody: min(perBody, budget), bodies: map[string][]byte{},
		records: recentRecords{byMailbox: map[mailboxRef]map[uint32]recentRecord{}}}
}

// Keep copies the size bytes of body (a spool) under key, if they fit the bounds; a body
// kept under key already is kept once.
func (r *RecentBodies) Keep(key string, body io.ReaderAt, size int64) {
	if size <= 0 || size > r.perBody {
		return
	}
	r.mu.Lock()
	_, have := r.bodies[key]
	room := r.makeRoom(size)
	r.mu.Unlock()
	if have || !room {
		return
	}
	b := getBodyBuffer(size)
	if n, _ := body.ReadAt(b, 0); int64(n) != size {
		putBodyBuffer(b)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, have := r.bodies[key]; have || !r.makeRoom(size) {
		putBodyBuffer(b)
		return
	}
	r.bodies[key] = b
	r.order.add(bodyRef{key: key, size: size}, time.Now())
	r.held += size
	r.kept++
}

// Body buffers are pooled by size class (powers of two from 4 KiB): the indexer hands
// each back once it has read it (Over's readers' Close), so a steady stream of APPENDs
// reuses the same few buffers instead of allocating a body's size per message, which
// made the garbage collector and the scavenger work for the whole process.
const (
	minBodyClass = 12 // 4 KiB
	bodyClasses  = 20 // up to 2^31 bytes, past any per-body cap
)

var bodyPools [bodyClasses]sync.Pool

// bodyClass returns the size class of a buffer of size bytes: its capacity is
// 1<<(minBodyClass+class).
func bodyClass(size int64) int {
	return max(0, bits.Len64(uint64(size-1))-minBodyClass)
}

func getBodyBuffer(size int64) []byte {
	class := bodyClass(size)
	if class >= bodyClasses {
		return make([]byte, size)
	}
	if b, ok := bodyPools[class].Get().(*[]byte); ok {
		return (*b)[:size]
	}
	return make([]byte, size, 1<<(minBodyClass+class))
}

// putBodyBuffer returns a buffer of getBodyBuffer to its pool; b must not be used after.
func putBodyBuffer(b []byte) {
	class := bodyClass(int64(cap(b)))
	if class >= bodyClasses || cap(b) != 1<<(minBodyClass+class) {
		return
	}
	bodyPools[class].Put(&b)
}

// makeRoom drops stale bodies until size more bytes fit the budget; false if they do
// not. Under r.mu.
func (r *RecentBodies) makeRoom(size int64) bool {
	fits := func() bool { return r.held+size <= r.budget }
	r.order.dropStale(time.Now(), fits, func(b bodyRef) { r.drop(b.key) })
	r.compact()
	return fits()
}

// drop forgets the body under key and pops the oldest entries that are gone. Under r.mu.
func (r *RecentBodies) drop(key string) {
	if b, ok := r.bodies[key]; ok {
		r.held -= int64(len(b))
		delete(r.bodies, key)
	}
	r.compact()
}

// compact pops the entries of bodies gone off the front of the order. Under r.mu.
func (r *RecentBodies) compact() {
	r.order.compact(func(e bodyRef) bool {
		b, ok := r.bodies[e.key]
		return ok && int64(len(b)) == e.size
	}, len(r.bodies))
}

// take removes and returns the body under key, nil if none is kept.
func (r *RecentBodies) take(key string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.bodies[key]
	if !ok {
		return nil
	}
	r.drop(key)
	r.taken++
	return b
}

// Counts returns how many bodies were kept and how many the indexer took.
func (r *RecentBodies) Counts() (kept, taken uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kept, r.taken
}

// Held returns the bytes of the bodies kept now.
func (r *RecentBodies) Held() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// Over returns blobs that serve a body kept here from memory, once, and any other from
// store: what the indexer reads bodies through.
func (r *RecentBodies) Over(store Blobs) Blobs { return recentBlobs{r, store} }

type recentBlobs struct {
	recent *RecentBodies
	store  Blobs
}

// Get is blobstore.Store's Get: length bytes from offset (length < 0: to the end), cut
// at the end of the body.
func (b recentBlobs) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	body := b.recent.take(key)
	if body == nil {
		return b.store.Get(ctx, key, offset, length)
	}
	offset = min(max(offset, 0), int64(len(body)))
	end := int64(len(body))
	if length >= 0 {
		end = min(end, offset+length)
	}
	return &bodyReader{Reader: bytes.NewReader(body[offset:end]), body: body}, nil
}

// bodyReader reads a body taken from RecentBodies and hands its buffer back on Close.
type bodyReader struct {
	*bytes.Reader
	body []byte
}

func (r *bodyReader) Close() error {
	if r.body != nil {
		r.Reader.Reset(nil)
		putBodyBuffer(r.body)
		r.body = nil
	}
	return nil
}
