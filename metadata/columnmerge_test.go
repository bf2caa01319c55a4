package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The column chunks that commands only append to go into the store as merge operands
// (columnbatch.go); every read must find what the read, edit and set of before gave.

// TestColumnMergesMatchRewrites applies one log (appends of one to three messages into
// four mailboxes across chunk ends, STORE (\Flagged, \Deleted), which replaces listing
// entries of old UIDs without a removal, EXPUNGE, COPY and MOVE both ways, a rename, the INBOX rename, a
// mailbox deleted and created again, imports under UIDs, the numbering fill of a level-2
// mailbox) to two stores in the same random batches, with flushes, compactions and a
// snapshot restored at the same points: one with the merges, one with them off
// (FSM.rewriteAppends). Every answer, every key and value, and what ReadSortColumn and
// ListMessages read from the columns, are the same byte for byte; and the merges were
// made (the store with them took under 3/4 of the WAL bytes, with all the log's other
// writes).
func TestColumnMergesMatchRewrites(t *testing.T) {
	h := withAAndOld(t)
	h.ok(cmdAccount("bob@example.org"))
	l2 := uint32(FeatureSortDates)
	rng := rand.New(rand.NewPCG(27, 14))
	names := []string{"INBOX", "A", "Old", "bob"}
	id := func(name string) uint64 {
		account := alice
		if name == "bob" {
			account, name = "bob@example.org", "INBOX"
		}
		if mb := h.mailbox(account, name); mb != nil {
			return mb.GetId()
		}
		return 999999
	}
	owner := func(name string) string {
		if name == "bob" {
			return "bob@example.org"
		}
		return alice
	}
	randomRange := func() *metadatapb.UidRange {
		first := uint32(1 + rng.IntN(300))
		return uidRange(first, first+uint32(rng.IntN(40)))
	}
	for step := range 900 {
		name := names[rng.IntN(len(names))]
		switch k := rng.IntN(40); {
		case k < 28:
			var blobs []string
			for m := range 1 + rng.IntN(3) {
				blobs = append(blobs, fmt.Sprintf("m%d-%d", step, m))
			}
			cmd := cmdAppendKeys(owner(name), id(name), true, blobs...)
			if name == "Old" {
				cmd.FeatureLevel = &l2
			}
			h.apply(cmd)
		case k < 30:
			flag := `\Flagged`
			if rng.IntN(2) == 0 {
				flag = `\Deleted`
			}
			h.apply(cmdStore(owner(name), id(name), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{randomRange()}, flag))
		case k < 32:
			h.apply(cmdExpunge(owner(name), id(name), randomRange()))
		case k < 35:
			if name != "bob" {
				to := names[rng.IntN(3)]
				h.apply(cmdCopy(alice, id(name), id(to), rng.IntN(2) == 0, randomRange()))
			}
		case k < 36:
			h.apply(cmdNumberMessages(alice, id("Old"), uint32(1+rng.IntN(40))))
		case k == 36:
			if h.mailbox(alice, "A") != nil {
				h.apply(cmdRename(alice, "A", "A2"))
				h.apply(cmdAppendKeys(alice, id("A2"), true, fmt.Sprintf("m%d-renamed", step)))
				h.apply(cmdRename(alice, "A2", "A"))
			}
		case k == 37 && step%5 == 0:
			h.apply(cmdRename(alice, "INBOX", fmt.Sprintf("Archive%d", step)))
		case k == 38 && step%3 == 0:
			h.apply(cmdDeleteMailbox(alice, "A"))
			h.apply(cmdCreateMailbox(alice, "A"))
		case k == 39:
			imported := fmt.Sprintf("Imported%d", step)
			h.apply(cmdCreateMailbox(alice, imported))
			if mb := h.mailbox(alice, imported); mb != nil {
				h.apply(cmdImportKeys(alice, mb.GetId(), 900+uint32(step), []uint32{3, 130, 131, 400}, "i1", "i2", "i3", "i4"))
				h.apply(cmdAppendKeys(alice, mb.GetId(), true, fmt.Sprintf("m%d-after-import", step)))
			}
		}
	}
	h.wantSortColumn()

	merged, rewritten := newHarness(t), newHarness(t)
	rewritten.f.rewriteAppends.Store(true)
	cuts := rand.New(rand.NewPCG(14, 27))
	batches := 0
	for first := 0; first < len(h.log); batches++ {
		last := min(first+1+cuts.IntN(24), len(h.log))
		var wantRes []any
		for i, replay := range []*harness{merged, rewritten} {
			res := replay.f.ApplyBatch(h.log[first:last])
			if i == 0 {
				wantRes = res
				continue
			}
			for j := range res {
				if !proto.Equal(res[j].(*metadatapb.CommandResult), wantRes[j].(*metadatapb.CommandResult)) {
					t.Fatalf("entry %d answered %v with the merges, %v without", first+j, wantRes[j], res[j])
				}
			}
		}
		first = last
		switch {
		case batches%7 == 3:
			for _, replay := range []*harness{merged, rewritten} {
				if err := replay.f.gen.db.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		case batches%23 == 11:
			for _, replay := range []*harness{merged, rewritten} {
				if err := replay.f.gen.db.Compact(t.Context(), []byte{0}, []byte{0xff}, false); err != nil {
					t.Fatal(err)
				}
			}
		case batches == 40:
			for _, replay := range []*harness{merged, rewritten} {
				restoreSnapshot(t, replay.f, replay.f)
			}
		}
		if batches%10 == 9 || first == len(h.log) {
			if diff := diffStores(dumpStore(t, rewritten.f), dumpStore(t, merged.f)); diff != "" {
				t.Fatalf("after batch %d (entry %d): the store with merges differs: %s", batches, first, diff)
			}
			if diff := columnAnswers(t, rewritten.f, merged.f); diff != "" {
				t.Fatalf("after batch %d (entry %d): %s", batches, first, diff)
			}
		}
	}
	if diff := diffStores(dumpStore(t, h.f), dumpStore(t, merged.f)); diff != "" {
		t.Fatalf("the replay in batches differs from one entry per batch: %s", diff)
	}
	walMerged, walRewritten := merged.f.gen.db.Metrics().WAL.BytesIn, rewritten.f.gen.db.Metrics().WAL.BytesIn
	if walMerged*4 > walRewritten*3 {
		t.Fatalf("WAL bytes %d with merges, %d without: were the appends merged?", walMerged, walRewritten)
	}
	t.Logf("%d entries in %d batches; WAL bytes %d with merges, %d without", len(h.log), batches, walMerged, walRewritten)
}

// columnAnswers describes the first difference between what two stores answer from the
// columns of each mailbox ("" if none): the sort-key column's records (ReadSortColumn),
// its dates, subject and thread-keys projections, and the listing (ListMessages).
func columnAnswers(t *testing.T, want, got *FSM) string {
	t.Helper()
	wv, gv := want.view(), got.view()
	defer wv.close()
	defer gv.close()
	var boxes []*metadatapb.Mailbox
	err := scan(wv.r, []byte{prefixMailbox}, []byte{prefixMailbox + 1}, func(_, val []byte) (bool, error) {
		rec := &metadatapb.MailboxRecord{}
		if err := proto.Unmarshal(val, rec); err != nil {
			return false, err
		}
		boxes = append(boxes, rec.GetMailbox())
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) < 4 {
		t.Fatalf("%d mailboxes", len(boxes))
	}
	const all = sortColumnChunkBytes // as ReadSortColumn reads, each time
	reads := map[string]func(v *view, mailbox uint64) ([]byte, error){
		"sort column": func(v *view, mailbox uint64) ([]byte, error) {
			recs, _, _, err := v.sortColumnRecords(mailbox, 0, all, false)
			return recs, err
		},
		"thread keys": func(v *view, mailbox uint64) ([]byte, error) {
			recs, _, _, err := v.threadKeysRecords(mailbox, 0, all, false)
			return recs, err
		},
		"dates": func(v *view, mailbox uint64) ([]byte, error) {
			recs, _, _, err := v.sortDateRecords(mailbox, 0, all)
			return recs, err
		},
		"subjects": func(v *view, mailbox uint64) ([]byte, error) {
			recs, _, _, err := v.subjectRecords(mailbox, 0, all)
			return recs, err
		},
		"listing": func(v *view, mailbox uint64) ([]byte, error) {
			rec := &metadatapb.MailboxRecord{}
			if _, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil {
				return nil, err
			}
			resp, err := v.messageList(rec.GetMailbox(), listingQuery{owner: rec.GetAccount(), user: rec.GetAccount(), dictionary: true, column: rec.GetListingColumn()})
			if err != nil {
				return nil, err
			}
			return proto.Marshal(resp)
		},
	}
	for _, box := range boxes {
		for what, read := range reads {
			w, werr := read(wv, box.GetId())
			g, gerr := read(gv, box.GetId())
			if werr != nil || gerr != nil {
				t.Fatalf("mailbox %d, %s: %v, %v", box.GetId(), what, werr, gerr)
			}
			if !bytes.Equal(w, g) {
				return fmt.Sprintf("mailbox %d (%s), %s: %d bytes with merges, %d without, not the same", box.GetId(), box.GetName(), what, len(g), len(w))
			}
		}
	}
	return ""
}

// TestColumnMergeOperandsRead: a chunk appended to by many batches holds a merge operand
// per batch until a flush or compaction folds them; point reads (the txn's, a view's),
// iterators, a snapshot restored and a rewrite by a later STORE and EXPUNGE all read its
// records in UID order, once each.
func TestColumnMergeOperandsRead(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	for i := range 100 {
		h.ok(cmdAppendKeys(alice, inbox, true, fmt.Sprintf("b%d", i)))
	}
	want := func(from, to byte) []byte {
		var out []byte
		for uid := from; uid <= to; uid++ {
			out = append(out, uid)
		}
		return out
	}
	uidsOf := func(chunk []byte) []byte {
		var out []byte
		for len(chunk) > 0 {
			uid, _, rest, ok := nextColumnRecord(chunk)
			if !ok {
				t.Fatalf("chunk does not take apart at %x", chunk)
			}
			out = append(out, byte(uid))
			chunk = rest
		}
		return out
	}
	check := func(when string, wantUIDs []byte) {
		t.Helper()
		for _, key := range [][]byte{sortChunkKey(inbox, 0), listingChunkKey(inbox, 0), threadKeysChunkKey(inbox, 0)} {
			v := h.f.view()
			val, found, err := getRaw(v.r, key)
			var iterated []byte
			if err == nil {
				err = scan(v.r, key, successor(bytes.Clone(key)), func(_, val []byte) (bool, error) {
					iterated = bytes.Clone(val)
					return true, nil
				})
			}
			v.close()
			if err != nil || !found {
				t.Fatalf("%s: chunk %x: found %v, %v", when, key, found, err)
			}
			if got := uidsOf(val); !bytes.Equal(got, wantUIDs) {
				t.Fatalf("%s: chunk %x holds UIDs %v, want %v", when, key, got, wantUIDs)
			}
			if !bytes.Equal(iterated, val) {
				t.Fatalf("%s: chunk %x iterated %d bytes, read %d that differ", when, key, len(iterated), len(val))
			}
		}
	}
	check("in the memtable", want(1, 100))
	restoreSnapshot(t, h.f, h.f)
	check("restored", want(1, 100))
	for i := range 20 {
		h.ok(cmdAppendKeys(alice, inbox, true, fmt.Sprintf("c%d", i)))
	}
	if err := h.f.gen.db.Flush(); err != nil {
		t.Fatal(err)
	}
	check("flushed", want(1, 120))
	// A removal reads the chunk (operands in L0 and the memtable) and rewrites it; appends
	// in the same batch before and after it.
	batch := []*raft.Log{
		h.entry(cmdAppendKeys(alice, inbox, true, "d1")),
		h.entry(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(5, 6)}, `\Deleted`)),
		h.entry(cmdExpunge(alice, inbox, uidRange(5, 6))),
		h.entry(cmdAppendKeys(alice, inbox, true, "d2")),
	}
	for _, res := range h.f.ApplyBatch(batch) {
		if code := res.(*metadatapb.CommandResult).GetCode(); code != 0 {
			t.Fatalf("command refused: %v", res)
		}
	}
	var wantUIDs []byte
	for uid := byte(1); uid <= 122; uid++ {
		if uid != 5 && uid != 6 {
			wantUIDs = append(wantUIDs, uid)
		}
	}
	check("after the expunge", wantUIDs)
	if err := h.f.gen.db.Compact(t.Context(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	check("compacted", wantUIDs)
	h.wantSortColumn()
}

// TestConcatMergerMatchesDefault: the FSM store's merger gives what Pebble's default one
// gives (its name, so that either build opens the other's store), for operands handed
// newest first (reads, compactions) and oldest first, of sizes from 0 to 3,000 bytes.
func TestConcatMergerMatchesDefault(t *testing.T) {
	if concatMerger.Name != pebble.DefaultMerger.Name {
		t.Fatalf("merger named %q, the default %q", concatMerger.Name, pebble.DefaultMerger.Name)
	}
	rng := rand.New(rand.NewPCG(3, 27))
	for round := range 500 {
		operands := make([][]byte, 1+rng.IntN(200))
		for i := range operands {
			operands[i] = make([]byte, rng.IntN([]int{1, 20, 200, 3000}[rng.IntN(4)]))
			for j := range operands[i] {
				operands[i][j] = byte(rng.Uint32())
			}
		}
		older := rng.IntN(2) == 0
		results := make([][]byte, 2)
		for k, merger := range []*pebble.Merger{pebble.DefaultMerger, concatMerger} {
			first := operands[0]
			if older {
				first = operands[len(operands)-1]
			}
			m, err := merger.Merge(nil, bytes.Clone(first))
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(operands); i++ {
				if older {
					err = m.MergeOlder(bytes.Clone(operands[len(operands)-1-i]))
				} else {
					err = m.MergeNewer(bytes.Clone(operands[i]))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if results[k], _, err = m.Finish(true); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(results[0], results[1]) {
			t.Fatalf("round %d (%d operands, older %v): %d bytes, the default %d, not the same", round, len(operands), older, len(results[1]), len(results[0]))
		}
	}
}
