package imap

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
)

func sizeEntry(size uint64) sortEntry { return sortEntry{msg: sortthread.Message{Size: size}} }

// sizesOf returns the size of each of uids in box, 0 for those the cache lacks.
func sizesOf(c *sortKeyCache, box sortBoxKey, uids ...uint32) []uint64 {
	keys, rows := c.snapshot(box, uids)
	out := make([]uint64, len(uids))
	for k, r := range rows {
		if r >= 0 {
			out[k] = keys.size[r]
		}
	}
	return out
}

// TestSortKeyCacheEvictsWholeMailboxes: beyond its bound the cache drops the least recently
// used mailboxes, never the one just filled, and a mailbox's entries are found by UID.
func TestSortKeyCacheEvictsWholeMailboxes(t *testing.T) {
	c := newSortKeyCache(4)
	a, b, d := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}, sortBoxKey{owner: "u", mailboxID: 2, uidValidity: 1}, sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 2}
	c.put(a, []uint32{1, 2}, []sortEntry{sizeEntry(1), sizeEntry(2)})
	c.put(b, []uint32{7}, []sortEntry{sizeEntry(7)})
	if got := sizesOf(c, a, 1, 2, 3); !slices.Equal(got, []uint64{1, 2, 0}) { // a is now the most recently used
		t.Fatalf("sizes of a = %v", got)
	}
	c.put(d, []uint32{1, 2}, []sortEntry{sizeEntry(10), sizeEntry(20)}) // 5 entries: b goes
	if got := sizesOf(c, b, 7); got[0] != 0 {
		t.Errorf("mailbox b kept beyond the bound")
	}
	if got := sizesOf(c, d, 1); got[0] != 10 {
		t.Errorf("a new UIDVALIDITY shares entries with the old one: %v", got)
	}
	c.put(d, []uint32{3, 4, 5}, []sortEntry{sizeEntry(3), sizeEntry(4), sizeEntry(5)}) // d alone exceeds: a goes, d stays
	if got := sizesOf(c, a, 1); got[0] != 0 || c.entries != 5 || c.lru.Len() != 1 {
		t.Errorf("after d grew: a kept %v, %d entries in %d mailboxes", got, c.entries, c.lru.Len())
	}
	off := newSortKeyCache(-1)
	off.put(a, []uint32{1}, []sortEntry{sizeEntry(1)})
	if off.entries != 0 {
		t.Errorf("a cache turned off keeps entries")
	}
}

// TestSortColumnsGrowAndMerge: entries appended above the last UID and entries read out of
// UID order (below it, as records of messages the column lacks) end in one UID-ordered set
// of rows, each counted once; a snapshot taken before keeps what it saw; string ranks
// follow new distinct values; expunged UIDs (never added) have no row.
func TestSortColumnsGrowAndMerge(t *testing.T) {
	c := newSortKeyCache(1 << 20)
	box := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}
	entry := func(uid uint32) sortEntry {
		return sortEntry{reply: uid%2 == 0, msg: sortthread.Message{Arrival: int64(uid), Date: -int64(uid), Size: uint64(uid) * 10,
			Subject: fmt.Sprintf("s%d", uid%3), From: fmt.Sprintf("f%d", uid), MessageID: fmt.Sprintf("m%d", uid),
			References: []string{fmt.Sprintf("m%d", uid/2), ""}}}
	}
	put := func(uids ...uint32) {
		entries := make([]sortEntry, len(uids))
		for k, uid := range uids {
			entries[k] = entry(uid)
		}
		c.put(box, uids, entries)
	}
	put(10, 20, 30)
	before, _ := c.snapshot(box, nil)
	put(40, 50)      // appended in place
	put(5, 25, 30)   // merged: 30 is there already
	put(60, 15, 100) // not ascending above the last: merged too
	all := []uint32{5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 100}
	keys, rows := c.snapshot(box, all)
	if !slices.Equal(keys.uids, []uint32{5, 10, 15, 20, 25, 30, 40, 50, 60, 100}) || c.entries != 10 {
		t.Fatalf("rows %v, %d entries", keys.uids, c.entries)
	}
	if rows[6] != -1 { // 35: expunged, never added
		t.Errorf("UID 35 has row %d", rows[6])
	}
	for k, uid := range all {
		if uid == 35 {
			continue
		}
		r := rows[k]
		m, want := keys.entry(r), entry(uid).msg
		if m.Arrival != want.Arrival || m.Date != want.Date || m.Size != want.Size || m.Subject != want.Subject || m.From != want.From ||
			keys.sortColumns.ids.values[keys.messageID[r]] != want.MessageID || keys.reply[r] != (uid%2 == 0) {
			t.Errorf("UID %d: row %d holds %+v", uid, r, m)
		}
		refs := keys.refs[keys.refStart[r]:keys.refStart[r+1]]
		if len(refs) != 2 || keys.sortColumns.ids.values[refs[0]] != want.References[0] || refs[1] != 0 {
			t.Errorf("UID %d: references %v", uid, refs)
		}
	}
	if !slices.Equal(before.uids, []uint32{10, 20, 30}) || before.size[2] != 300 {
		t.Errorf("an earlier snapshot changed: %v %v", before.uids, before.size)
	}
	// The From ranks follow the values added: f100 < f15 < f20 ... in octet order, "" first.
	from := keys.rank(1)
	byRank := make([]string, len(from))
	for id, r := range from {
		byRank[r] = keys.values[1][id]
	}
	if !slices.IsSorted(byRank) || byRank[0] != "" || len(byRank) != 11 {
		t.Errorf("From values by rank: %q", byRank)
	}
	// A SORT over the snapshot orders as sortthread.Sort does over the messages.
	order := keys.columns(rows[:6], allFields).Order([]sortthread.Criterion{{Key: sortthread.Subject}, {Key: sortthread.Date}})
	var msgs []*sortthread.Message
	for k, r := range rows[:6] {
		m := keys.entry(r)
		m.Seq = uint32(k + 1)
		msgs = append(msgs, &m)
	}
	sortthread.Sort(msgs, []sortthread.Criterion{{Key: sortthread.Subject}, {Key: sortthread.Date}})
	for k, p := range order {
		if msgs[k].Seq != uint32(p+1) {
			t.Fatalf("order %v differs from sortthread.Sort at %d", order, k)
		}
	}
}

// TestCommandSortCacheKeepsItsFields: a cache for one command (another owner's mailbox)
// keeps only the keys it was made for (the base subject for THREAD too), and the UID,
// dates and size always.
func TestCommandSortCacheKeepsItsFields(t *testing.T) {
	box := sortBoxKey{owner: "o", mailboxID: 1, uidValidity: 1}
	e := sortEntry{msg: sortthread.Message{Date: 7, Subject: "s", From: "f", MessageID: "m", References: []string{"r"}}}
	for _, tc := range []struct {
		fields           sortFields
		text, threadKeys bool
	}{{0, false, false}, {textField(sortthread.From), true, false}, {fieldThread, false, true}, {allFields, true, true}} {
		c := newCommandSortCache(tc.fields, false)
		c.put(box, []uint32{3}, []sortEntry{e})
		keys, rows := c.snapshot(box, []uint32{3})
		if rows[0] != 0 || keys.date[0] != 7 {
			t.Fatalf("fields %b: rows %v", tc.fields, rows)
		}
		if (len(keys.text[1]) > 0) != tc.text || (len(keys.messageID) > 0) != tc.threadKeys || (len(keys.text[0]) > 0) != (tc.fields&(textField(sortthread.Subject)|fieldThread) != 0) {
			t.Errorf("fields %b: From %v, Message-ID %v, Subject %v", tc.fields, keys.text[1], keys.messageID, keys.text[0])
		}
	}
}

// TestFillNoticesEvictionBetweenSnapshots replays fillSortKeys with another mailbox's fill
// evicting this one while the missing keys are read: the box put back holds only the keys
// read, and the fill must report itself incomplete (its caller reads into a cache of its
// own) rather than answer a SORT with the new messages only (found in review).
func TestFillNoticesEvictionBetweenSnapshots(t *testing.T) {
	c := newSortKeyCache(15)
	a := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}
	b := sortBoxKey{owner: "u", mailboxID: 2, uidValidity: 1}
	var uids []uint32
	var es []sortEntry
	for u := uint32(1); u <= 10; u++ {
		uids, es = append(uids, u), append(es, sizeEntry(uint64(u)))
	}
	c.put(a, uids, es)
	view := append(append([]uint32{}, uids...), 11, 12)
	_, before := c.snapshot(a, view)
	var missing []uint32
	for k, r := range before {
		if r < 0 {
			missing = append(missing, view[k])
		}
	}
	if len(missing) != 2 {
		t.Fatalf("missing %v, want UIDs 11 and 12", missing)
	}
	c.put(b, uids, es) // another session's fill: a is evicted
	c.put(a, missing, []sortEntry{sizeEntry(11), sizeEntry(12)})
	keys, after := c.snapshot(a, view)
	if stillComplete(before, after, keys.rowsOf(missing)) {
		t.Fatalf("a fill whose box was evicted between its snapshots reports itself complete: rows %v", after)
	}
	// Without an eviction the same fill is complete.
	c2 := newSortKeyCache(100)
	c2.put(a, uids, es)
	_, before = c2.snapshot(a, view)
	c2.put(a, missing, []sortEntry{sizeEntry(11), sizeEntry(12)})
	keys, after = c2.snapshot(a, view)
	if !stillComplete(before, after, keys.rowsOf(missing)) {
		t.Fatalf("a fill without an eviction reports itself incomplete: rows %v", after)
	}
}

// TestColumnReadStopsWhenEvicted: a column read whose box another fill evicted between two
// chunks stops, and claims nothing read; before, the next chunk went into a box made anew
// and the read claimed the whole column, so the first chunk's rows were never read from
// the column again (found in review).
func TestColumnReadStopsWhenEvicted(t *testing.T) {
	c := newSortKeyCache(15)
	a := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}
	b := sortBoxKey{owner: "u", mailboxID: 2, uidValidity: 1}
	chunk := func(first, last uint32) func(add func(uint32, *sortEntry) error) error {
		return func(add func(uint32, *sortEntry) error) error {
			for u := first; u <= last; u++ {
				e := sizeEntry(uint64(u))
				if err := add(u, &e); err != nil {
					return err
				}
			}
			return nil
		}
	}
	filling, err := c.appendColumn(a, nil, 10, 20, chunk(1, 10))
	if err != nil || filling == nil {
		t.Fatalf("first chunk: %v, %v", filling, err)
	}
	var uids []uint32
	var es []sortEntry
	for u := uint32(1); u <= 10; u++ {
		uids, es = append(uids, u), append(es, sizeEntry(uint64(u)))
	}
	c.put(b, uids, es) // another mailbox's fill: a is evicted
	if _, err := c.appendColumn(a, filling, 20, 20, chunk(11, 20)); !errors.Is(err, errColumnEvicted) {
		t.Fatalf("second chunk after the eviction: %v, want errColumnEvicted", err)
	}
	c.columnUpTo(a, filling, 20)
	if got, _ := c.columnRead(a); got != 0 {
		t.Fatalf("column of the evicted mailbox claimed read up to UID %d, want 0", got)
	}
	// Without an eviction the read goes on and is claimed.
	filling, err = c.appendColumn(a, nil, 10, 20, chunk(1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if filling, err = c.appendColumn(a, filling, 12, 20, chunk(11, 12)); err != nil {
		t.Fatal(err)
	}
	c.columnUpTo(a, filling, 12)
	if got, _ := c.columnRead(a); got != 12 {
		t.Fatalf("column read up to UID %d, want 12", got)
	}
}
