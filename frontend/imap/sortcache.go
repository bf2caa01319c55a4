package imap

import (
	"container/list"
	"sync"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
)

// sortKeyCache keeps, per frontend, the sort keys SORT and THREAD read (sort.go), by
// mailbox, so that a repeated SORT of a large mailbox orders in memory instead of reading
// every message's keys from the metadata service again. A message's keys never change (its
// content is immutable and a UID names one message within a UIDVALIDITY, RFC 9051 2.3.1.1),
// so an entry is never stale; the sessions ask only for the UIDs of their views, so an
// expunged message's entry is never used and goes with its mailbox's eviction. Only the
// sessions' own mailboxes are cached (as in the record cache): another owner's is read
// under the rights in force. Whole mailboxes are evicted, least recently used first, to keep
// at most Limits.SortCacheMessages entries.
type sortKeyCache struct {
	mu      sync.Mutex
	max     int
	entries int
	boxes   map[sortBoxKey]*list.Element // of *sortBox
	lru     list.List                    // front: most recently used
}

type sortBoxKey struct {
	owner       string
	mailboxID   uint64
	uidValidity uint32
}

type sortBox struct {
	key  sortBoxKey
	msgs map[uint32]sortEntry
	// columnUpTo is the UID up to which the mailbox's sort-key column was read into msgs
	// (sortcolumn.go): a later read asks only for the UIDs above it.
	columnUpTo uint32
}

// sortEntry is a message's keys (its Seq is the session's and is set per command).
type sortEntry struct {
	msg   sortthread.Message
	reply bool
}

func newSortKeyCache(maxMessages int) *sortKeyCache {
	return &sortKeyCache{max: maxMessages, boxes: make(map[sortBoxKey]*list.Element)}
}

// get returns the cached entries of uids in box (ok false for those it lacks).
func (c *sortKeyCache) get(box sortBoxKey, uids []uint32, out []sortEntry, ok []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.boxes[box]
	if e == nil {
		return
	}
	c.lru.MoveToFront(e)
	msgs := e.Value.(*sortBox).msgs
	for k, uid := range uids {
		out[k], ok[k] = msgs[uid]
	}
}

// columnRead returns the UID up to which box's sort-key column was read (0: none).
func (c *sortKeyCache) columnRead(box sortBoxKey) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.boxes[box]; e != nil {
		return e.Value.(*sortBox).columnUpTo
	}
	return 0
}

// missingAbove counts the uids above UID floor that box has no entry for.
func (c *sortKeyCache) missingAbove(box sortBoxKey, uids []uint32, floor uint32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var msgs map[uint32]sortEntry
	if e := c.boxes[box]; e != nil {
		msgs = e.Value.(*sortBox).msgs
	}
	n := 0
	for _, uid := range uids {
		if _, ok := msgs[uid]; !ok && uid > floor {
			n++
		}
	}
	return n
}

// putColumn is put of entries read from box's sort-key column up to UID upTo.
func (c *sortKeyCache) putColumn(box sortBoxKey, uids []uint32, entries []sortEntry, upTo uint32) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.add(box, uids, entries)
	b.columnUpTo = max(b.columnUpTo, upTo)
}

// put adds the entries of uids in box, then evicts mailboxes beyond the bound (never box).
func (c *sortKeyCache) put(box sortBoxKey, uids []uint32, entries []sortEntry) {
	if c.max <= 0 || len(uids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(box, uids, entries)
}

// add is put under c.mu; it returns box's entry.
func (c *sortKeyCache) add(box sortBoxKey, uids []uint32, entries []sortEntry) *sortBox {
	e := c.boxes[box]
	if e == nil {
		e = c.lru.PushFront(&sortBox{key: box, msgs: make(map[uint32]sortEntry, len(uids))})
		c.boxes[box] = e
	}
	c.lru.MoveToFront(e)
	msgs := e.Value.(*sortBox).msgs
	for k, uid := range uids {
		if _, had := msgs[uid]; !had {
			c.entries++
		}
		msgs[uid] = entries[k]
	}
	for c.entries > c.max && c.lru.Len() > 1 {
		last := c.lru.Back()
		b := last.Value.(*sortBox)
		c.entries -= len(b.msgs)
		delete(c.boxes, b.key)
		c.lru.Remove(last)
	}
	return e.Value.(*sortBox)
}
