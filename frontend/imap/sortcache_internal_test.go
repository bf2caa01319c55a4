package imap

import (
	"testing"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
)

// TestSortKeyCacheEvictsWholeMailboxes: beyond its bound the cache drops the least recently
// used mailboxes, never the one just filled, and a mailbox's entries are found by UID.
func TestSortKeyCacheEvictsWholeMailboxes(t *testing.T) {
	c := newSortKeyCache(4)
	a, b, d := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}, sortBoxKey{owner: "u", mailboxID: 2, uidValidity: 1}, sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 2}
	entry := func(size uint64) sortEntry { return sortEntry{msg: sortthread.Message{Size: size}} }
	c.put(a, []uint32{1, 2}, []sortEntry{entry(1), entry(2)})
	c.put(b, []uint32{7}, []sortEntry{entry(7)})
	out, ok := make([]sortEntry, 3), make([]bool, 3)
	c.get(a, []uint32{2, 3, 1}, out, ok) // a is now the most recently used
	if !ok[0] || ok[1] || !ok[2] || out[0].msg.Size != 2 || out[2].msg.Size != 1 {
		t.Fatalf("get = %v %v", out, ok)
	}
	c.put(d, []uint32{1, 2}, []sortEntry{entry(10), entry(20)}) // 5 entries: b goes
	clear(ok)
	c.get(b, []uint32{7}, out, ok)
	if ok[0] {
		t.Errorf("mailbox b kept beyond the bound")
	}
	c.get(d, []uint32{1}, out, ok)
	if !ok[0] || out[0].msg.Size != 10 {
		t.Errorf("a new UIDVALIDITY shares entries with the old one: %v", out[0])
	}
	c.put(d, []uint32{3, 4, 5}, []sortEntry{entry(3), entry(4), entry(5)}) // d alone exceeds: a goes, d stays
	clear(ok)
	c.get(a, []uint32{1}, out, ok)
	if ok[0] || c.entries != 5 || c.lru.Len() != 1 {
		t.Errorf("after d grew: a kept %v, %d entries in %d mailboxes", ok[0], c.entries, c.lru.Len())
	}
	off := newSortKeyCache(-1)
	off.put(a, []uint32{1}, []sortEntry{entry(1)})
	if off.entries != 0 {
		t.Errorf("a cache turned off keeps entries")
	}
}
