package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The column chunks a batch writes once (columnbatch.go) must leave the store exactly as
// writing each command's edits at once does.

// TestFoldMatchesEditByEdit: for random chunks and random runs of edits (adds that
// replace records, removes, UIDs removed and added back, added and removed), applying the
// fold of the edits once gives the bytes that applying the edits one after another gives,
// for chunks of records and of dates and subject records.
func TestFoldMatchesEditByEdit(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 24))
	for _, width := range []int{0, sortDateRecordLen, subjectRecordLen} {
		for round := range 3000 {
			record := func(uid uint32, gen int) []byte {
				switch width {
				case sortDateRecordLen:
					return appendDateRecord(nil, uid, int64(gen), int64(uid), uint64(gen))
				case subjectRecordLen:
					return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uid), uint32(gen))
				}
				return appendColumnRecord(nil, uid, fmt.Appendf(nil, "entry %d of %d", uid, gen))
			}
			randomAdds := func(gen int) []byte {
				var out []byte
				for uid := uint32(rng.IntN(4)); uid < 40; uid += 1 + uint32(rng.IntN(8)) {
					if rng.IntN(3) > 0 {
						out = append(out, record(uid, gen)...)
					}
				}
				return out
			}
			edit := func(old, adds []byte, removes []uint32) []byte {
				if width > 0 {
					return editFixedChunk(old, adds, removes, width)
				}
				return editColumnChunk(old, adds, removes)
			}
			base := randomAdds(0)
			want := base
			p := &pendingChunk{width: width}
			for gen := 1; gen <= 1+rng.IntN(6); gen++ {
				var adds []byte
				if rng.IntN(4) > 0 {
					adds = randomAdds(gen)
				}
				var removes []uint32
				for range rng.IntN(6) {
					removes = append(removes, uint32(rng.IntN(44)))
				}
				slices.Sort(removes)
				want = edit(want, adds, removes)
				p.fold(adds, removes)
			}
			if got := edit(base, p.adds, p.removes); !bytes.Equal(got, want) {
				t.Fatalf("width %d, round %d: the fold gives %x, edit by edit %x", width, round, got, want)
			}
		}
	}
}

// TestColumnBatchSplits applies one log in batches cut in several ways
// (wantSameAcrossCuts) and wants the same results and the same
// keys and values: appends with sort keys to three mailboxes past a chunk's end, STORE
// (listing entries replaced), EXPUNGE and appends behind it, COPY and MOVE, refused
// appends, edits of chunks out of order (left by a bug), the fill of a mailbox created at level 2 (its walk of the column reads the
// chunks the batch's appends left) between appends to it, commands that edit 9 chunks of
// a large mailbox, and mailboxes deleted after edits in their batch.
func TestColumnBatchSplits(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdAccount("bob@example.org"))
	a := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdCreateMailbox(alice, "B"))
	b := h.mustMailbox(alice, "B").GetId()
	l2 := uint32(FeatureSortDates)
	old := cmdCreateMailbox(alice, "Old")
	old.FeatureLevel = &l2
	h.ok(old)
	c := h.mustMailbox(alice, "Old").GetId()
	bobInbox := h.mustMailbox("bob@example.org", "INBOX").GetId()
	// Chunks a build with a bug might have left, written behind the FSM's back in every
	// store at this point of the log: records out of order, a dates chunk cut short, a
	// record that does not take apart. Edits of them go in command by command.
	odd := [][2][]byte{
		{sortChunkKey(a, 1), append(appendColumnRecord(nil, 200, []byte("x")), appendColumnRecord(nil, 150, []byte("y"))...)},
		{sortDatesKey(a, 0), make([]byte, sortDateRecordLen+2)},
		{listingChunkKey(b, 0), append(appendColumnRecord(nil, 1, []byte("z")), 0x80)},
	}
	setup := len(h.log)
	oddChunks(t, h.f, odd)
	apply := func(cmd *metadatapb.Command) { h.apply(cmd) } // refusals are part of the log
	for i := range 40 {
		apply(cmdAppendKeys(alice, a, true, fmt.Sprintf("a%d", i)))
		apply(cmdAppendKeys("bob@example.org", bobInbox, true, fmt.Sprintf("bob%d", i)))
		if i%3 == 0 {
			apply(cmdAppendKeys(alice, b, true, fmt.Sprintf("b%d-1", i), fmt.Sprintf("b%d-2", i), fmt.Sprintf("b%d-3", i)))
		}
		if i%4 == 0 {
			oldAppend := cmdAppendThread(alice, c, []string{fmt.Sprintf("c%d@x", i), ""}, []string{fmt.Sprintf("d%d@x", i), fmt.Sprintf("c%d@x", i)})
			oldAppend.FeatureLevel = &l2
			apply(oldAppend)
		}
	}
	for i := range 100 {
		apply(cmdAppendKeys(alice, a, true, fmt.Sprintf("more%d", i)))
		switch i % 10 {
		case 1:
			apply(cmdStore(alice, a, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(uint32(i), uint32(i+20))}, `\Flagged`))
		case 2:
			apply(cmdExpunge(alice, a, uidRange(uint32(i/2), uint32(i/2+3))))
		case 3:
			apply(cmdCopy(alice, a, b, false, uidRange(uint32(i), uint32(i+5))))
		case 4:
			apply(cmdCopy(alice, b, a, true, uidRange(1, uint32(i/3))))
		case 5:
			apply(cmdAppendKeys(alice, 999999, true, "nowhere"))
		case 6:
			apply(cmdNumberMessages(alice, c, 7))
			apply(cmdAppendKeys(alice, c, true, fmt.Sprintf("c-more%d", i)))
		case 7:
			apply(cmdStore(alice, a, metadatapb.FlagOp_FLAG_OP_REMOVE, []*metadatapb.UidRange{uidRange(1, 200)}, `\Flagged`))
			apply(cmdExpunge(alice, a, uidRange(uint32(i+20), uint32(i+21))))
		}
	}
	// A mailbox of 9 chunks: commands that edit more chunks than a command looks through
	// one by one (linearEdits), then its deletion in the batch of its last edits.
	h.ok(cmdCreateMailbox(alice, "Big"))
	big := h.mustMailbox(alice, "Big").GetId()
	for i := range 11 {
		var blobs []string
		for k := range 100 {
			blobs = append(blobs, fmt.Sprintf("big%d-%d", i, k))
		}
		apply(cmdAppendKeys(alice, big, true, blobs...))
	}
	apply(cmdStore(alice, big, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1100)}, `\Seen`))
	var spread []*metadatapb.UidRange
	for first := uint32(5); first < 1100; first += 120 {
		spread = append(spread, uidRange(first, first+2))
	}
	apply(cmdExpunge(alice, big, spread...))
	apply(cmdCopy(alice, big, a, true, uidRange(300, 700)))
	apply(cmdAppendKeys(alice, big, true, "big-last"))
	apply(cmdDeleteMailbox(alice, "Big"))
	apply(cmdAppendKeys(alice, b, true, "b-last"))
	apply(cmdDeleteMailbox(alice, "B"))
	apply(cmdCreateMailbox(alice, "B"))
	apply(cmdAppendKeys(alice, h.mustMailbox(alice, "B").GetId(), true, "b-again"))
	for range 3 {
		apply(cmdNumberMessages(alice, c, 50))
	}
	wantSameAcrossCuts(t, h, setup, 40, func(f *FSM) { oddChunks(t, f, odd) })
}

// oddChunks writes kvs into f's store directly.
func oddChunks(t *testing.T, f *FSM, kvs [][2][]byte) {
	t.Helper()
	g := f.acquire()
	defer g.release()
	b := g.db.NewBatch()
	for _, kv := range kvs {
		if err := b.Set(kv[0], kv[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
}

// dumpStore returns every key and value of f's store, in key order.
func dumpStore(t *testing.T, f *FSM) [][2][]byte {
	t.Helper()
	v := f.view()
	defer v.close()
	var kvs [][2][]byte
	err := scan(v.r, nil, nil, func(k, val []byte) (bool, error) {
		kvs = append(kvs, [2][]byte{bytes.Clone(k), bytes.Clone(val)})
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return kvs
}

// diffStores describes the first difference between two dumps, "" if none.
func diffStores(want, got [][2][]byte) string {
	for i := range min(len(want), len(got)) {
		if !bytes.Equal(want[i][0], got[i][0]) {
			return fmt.Sprintf("key %d is %x, want %x", i, got[i][0], want[i][0])
		}
		if !bytes.Equal(want[i][1], got[i][1]) {
			return fmt.Sprintf("key %x holds %x, want %x", got[i][0], got[i][1], want[i][1])
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("%d keys, want %d", len(got), len(want))
	}
	return ""
}

// TestPendingChunkReads: a chunk edited by a succeeded command and not yet written reads,
// through the txn's point reads and its iterators, as the edits left it; a command that
// reads it and then fails leaves it so; a range deletion removes it for good.
func TestPendingChunkReads(t *testing.T) {
	tx := newHarness(t).batchTxn()
	key := sortChunkKey(7, 0)
	one, two := appendColumnRecord(nil, 1, []byte("one")), appendColumnRecord(nil, 2, []byte("two"))
	for _, adds := range [][]byte{one, two} {
		if err := tx.editChunk(key, 0, adds, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.editChunk(key, 0, nil, []uint32{1}, false); err != nil {
		t.Fatal(err)
	}
	if tx.pending[string(key)] == nil {
		t.Fatal("the edits were written at once, not folded")
	}
	iterated := func() []byte {
		t.Helper()
		var got []byte
		err := scan(tx, mailboxPrefix(prefixSortChunk, 7), mailboxPrefixEnd(prefixSortChunk, 7), func(_, v []byte) (bool, error) {
			got = append(got, v...)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := iterated(); !bytes.Equal(got, two) {
		t.Fatalf("iterated %x, want %x", got, two)
	}
	if err := tx.editChunk(key, 0, one, nil, false); err != nil {
		t.Fatal(err)
	}
	tx.savepoint()
	got, found, err := tx.get(key)
	if err != nil || !found || !bytes.Equal(got, append(bytes.Clone(one), two...)) {
		t.Fatalf("read %x (found %v, %v), want %x%x", got, found, err, one, two)
	}
	tx.mustSet(sortChunkKey(7, 1), one)
	tx.rollback()
	if got := iterated(); !bytes.Equal(got, append(bytes.Clone(one), two...)) {
		t.Fatalf("after a rollback iterated %x, want %x%x", got, one, two)
	}
	if err := tx.editChunk(key, 0, appendColumnRecord(nil, 3, []byte("three")), nil, false); err != nil {
		t.Fatal(err)
	}
	tx.deleteRange(mailboxPrefix(prefixSortChunk, 7), mailboxPrefixEnd(prefixSortChunk, 7))
	if err := tx.writePending(nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, found, err := tx.get(key); err != nil || found {
		t.Fatalf("after the range deletion: found %v, %v", found, err)
	}
}

// TestUnorderedChunkEditedAtOnce: the edits of a stored chunk out of UID order (a bug's
// leftovers) go in command by command, since their fold would not give the same bytes:
// removing UID 150 and adding it back leaves one record of it, where the fold would add
// the new record beside the old.
func TestUnorderedChunkEditedAtOnce(t *testing.T) {
	tx := newHarness(t).batchTxn()
	key := listingChunkKey(7, 1)
	tx.set(key, append(appendColumnRecord(nil, 200, []byte("x")), appendColumnRecord(nil, 150, []byte("old"))...))
	if err := tx.editChunk(key, 0, nil, []uint32{150}, false); err != nil {
		t.Fatal(err)
	}
	if err := tx.editChunk(key, 0, appendColumnRecord(nil, 150, []byte("new")), nil, false); err != nil {
		t.Fatal(err)
	}
	if err := tx.writePending(nil, nil); err != nil {
		t.Fatal(err)
	}
	want := append(appendColumnRecord(nil, 150, []byte("new")), appendColumnRecord(nil, 200, []byte("x"))...)
	if got, _, err := tx.get(key); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("chunk %x (%v), want %x", got, err, want)
	}
}
