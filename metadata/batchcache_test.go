package metadata

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The caches of one batch (txn.go: decoded records taken and kept, the values carried on
// to the next batch; prunememo.go: what the prunes found) must not change what a batch
// does: each test below applies commands in one batch, where later commands read what
// earlier ones (and the batches before) cached, and the same log one entry per batch on a
// second store with nothing carried between batches, and wants the same results and the
// same digest.

// batchOf applies cmds to h as one Raft batch, then h's whole log one entry per batch to a
// new store; it checks that both give the same results and the same store, and returns
// the codes of the batch's results.
func batchOf(h *harness, cmds ...*metadatapb.Command) []codes.Code {
	h.t.Helper()
	first := len(h.log)
	entries := make([]*raft.Log, len(cmds))
	for i, cmd := range cmds {
		entries[i] = h.entry(cmd)
	}
	return h.applyBatchAndReplay(first, entries)
}

// applyBatchAndReplay applies entries, the last of h's log from first on, as one batch
// and compares with a replay of h's log one entry per batch.
func (h *harness) applyBatchAndReplay(first int, entries []*raft.Log) []codes.Code {
	h.t.Helper()
	batched := h.f.ApplyBatch(entries)
	single := newHarness(h.t)
	var replayed []any
	for i, l := range h.log {
		g := single.f.acquire()
		g.carried = nil // every entry on a cold cache
		g.release()
		res := single.f.ApplyBatch([]*raft.Log{l})
		if i >= first {
			replayed = append(replayed, res[0])
		}
	}
	var got []codes.Code
	for i := range batched {
		b, r := batched[i].(*metadatapb.CommandResult), replayed[i].(*metadatapb.CommandResult)
		if !proto.Equal(b, r) {
			h.t.Fatalf("entry %d of the batch: %v in one batch, %v alone", i, b, r)
		}
		got = append(got, codes.Code(b.GetCode()))
	}
	if !bytes.Equal(h.digest(), single.digest()) {
		h.t.Fatal("one batch and one entry per batch give different stores")
	}
	return got
}

func wantCodes(t *testing.T, got []codes.Code, want ...codes.Code) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
}

// TestBatchAppendsToOneMailbox: every Append of the batch after the first takes the
// mailbox record and the quota usage that the one before kept.
func TestBatchAppendsToOneMailbox(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "before"))
	got := batchOf(h, cmdAppend(alice, inbox, "b1"), cmdAppend(alice, inbox, "b2", "b3"), cmdAppend(alice, inbox, "b4"))
	wantCodes(t, got, codes.OK, codes.OK, codes.OK)
	box := h.mustMailbox(alice, "INBOX")
	if box.GetMessages() != 5 || box.GetUidNext() != 6 || box.GetUnseen() != 5 || box.GetSize() != 5*4400 {
		t.Fatalf("mailbox after the batch: %v", box)
	}
	if uids := h.messages(alice, inbox).GetUids(); !slices.Equal(uids, []uint32{1, 2, 3, 4, 5}) {
		t.Fatalf("uids %v", uids)
	}
	h.wantUsage(quotaAccount, alice, 5, 5*4400)
	h.wantUsage(quotaTenant, "example", 5, 5*4400)
}

// TestBatchAppendThenDeleteMailbox: a DELETE after an Append in the same batch removes the
// record the Append kept; an Append after it finds no mailbox.
func TestBatchAppendThenDeleteMailbox(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdCreateMailbox(alice, "Box"))
	box := h.mustMailbox(alice, "Box").GetId()
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	got := batchOf(h,
		cmdAppend(alice, box, "b1"),
		cmdDeleteMailbox(alice, "Box"),
		cmdAppend(alice, box, "b2"),
		cmdAppend(alice, inbox, "b3"),
		cmdCreateMailbox(alice, "Box"),
	)
	wantCodes(t, got, codes.OK, codes.OK, codes.NotFound, codes.OK, codes.OK)
	if again := h.mustMailbox(alice, "Box"); again.GetId() == box || again.GetMessages() != 0 {
		t.Fatalf("Box created again: %v (old id %d)", again, box)
	}
	if n := h.blobRefs("b1"); n != 0 {
		t.Fatalf("blob of the deleted mailbox has %d references", n)
	}
	h.wantUsage(quotaAccount, alice, 1, 4400)
}

// TestBatchQuotaExceededMidBatch: the usage one Append kept is what the next one checks
// against the limit; a refused Append leaves the usage alone, an expunge frees room in
// the same batch.
func TestBatchQuotaExceededMidBatch(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdSetQuota(alice, "", nil, proto.Uint64(3)))
	h.ok(cmdAppend(alice, inbox, "b1"))
	got := batchOf(h,
		cmdAppend(alice, inbox, "b2"),
		cmdAppend(alice, inbox, "b3"),
		cmdAppend(alice, inbox, "b4"),
		cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Deleted`),
		cmdExpunge(alice, inbox),
		cmdAppend(alice, inbox, "b5", "b6"),
		cmdAppend(alice, inbox, "b7"),
		cmdSetQuota(alice, "", nil, proto.Uint64(4)),
		cmdAppend(alice, inbox, "b8"),
	)
	wantCodes(t, got, codes.OK, codes.OK, codes.ResourceExhausted, codes.OK, codes.OK,
		codes.ResourceExhausted, codes.OK, codes.OK, codes.OK)
	h.wantUsage(quotaAccount, alice, 4, 4*4400)
	if box := h.mustMailbox(alice, "INBOX"); box.GetMessages() != 4 {
		t.Fatalf("mailbox after the batch: %v", box)
	}
}

// TestBatchFailedAppendLeavesNoTrace: an Append that fails after it changed the mailbox
// record it took and charged the usage is undone, and the next Append of the batch sees
// neither change.
func TestBatchFailedAppendLeavesNoTrace(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	bad := cmdAppend(alice, inbox, "b2", "") // refused after b2 was added: no blob key
	got := batchOf(h, cmdAppend(alice, inbox, "b1"), bad, cmdAppend(alice, inbox, "b3"))
	wantCodes(t, got, codes.OK, codes.InvalidArgument, codes.OK)
	if uids := h.messages(alice, inbox).GetUids(); !slices.Equal(uids, []uint32{1, 2}) {
		t.Fatalf("uids %v, want 1 and 2", uids)
	}
	h.wantUsage(quotaAccount, alice, 2, 2*4400)
	if n := h.blobRefs("b2"); n != 0 {
		t.Fatalf("blob of the failed append has %d references", n)
	}
}

// TestBatchPrunesHistoryAfterClockJump: a batch whose log time jumps past the journal and
// tombstone retention prunes what an earlier command of the batch found too young.
func TestBatchPrunesHistoryAfterClockJump(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "b1", "b2"))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	first := len(h.log)
	var entries []*raft.Log
	entries = append(entries, h.entry(cmdAppend(alice, inbox, "b3")))
	h.now = h.now.Add(journalRetention + time.Hour) // a leader whose clock is ahead
	entries = append(entries, h.entry(cmdAppend(alice, inbox, "b4")))
	h.now = h.now.Add(tombstoneRetention)
	entries = append(entries, h.entry(cmdAppend(alice, inbox, "b5")))
	wantCodes(t, h.applyBatchAndReplay(first, entries), codes.OK, codes.OK, codes.OK)
	box := h.mustMailbox(alice, "INBOX")
	if box.GetJournalFloor() == 0 || box.GetVanishedFloor() == 0 {
		t.Fatalf("journal floor %d, vanished floor %d: nothing pruned", box.GetJournalFloor(), box.GetVanishedFloor())
	}
}

// TestBatchPrunesDedupAfterHorizonMoves: the retry horizon moving within a batch lets a
// later command prune a dedup record that an earlier one could not.
func TestBatchPrunesDedupAfterHorizonMoves(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdDedupAppend(alice, inbox, "k1", 1, "b1"))
	h.now = h.now.Add(time.Minute)
	first := len(h.log)
	entries := []*raft.Log{h.entry(cmdAppend(alice, inbox, "b2"))}
	h.index += retryEntries
	entries = append(entries, h.entry(cmdAppend(alice, inbox, "b3")))
	h.index += retryEntries
	entries = append(entries, h.entry(cmdAppend(alice, inbox, "b4")))
	wantCodes(t, h.applyBatchAndReplay(first, entries), codes.OK, codes.OK, codes.OK)
	v := h.f.view()
	defer v.close()
	if _, found, err := getRaw(v.r, dedupKey(alice, []byte("k1"))); err != nil || found {
		t.Fatalf("dedup record after the horizon passed it: found=%v err=%v", found, err)
	}
}

// TestPruneMemoForgets: the writes that could make a memo wrong forget or lower it.
func TestPruneMemoForgets(t *testing.T) {
	var p pruneMemo
	p.dedup.learnBefore(100, 201)
	p.dedup.set(dedupAgeKey(201, alice, []byte("k")))
	if !p.dedup.empty(100, 200) || p.dedup.empty(100, 201) || p.dedup.empty(99, 200) {
		t.Fatal("dedup memo: a key outside its range changed it, or it covers more than it saw")
	}
	p.dedup.set(dedupAgeKey(150, alice, []byte("k")))
	if p.dedup.empty(100, 200) {
		t.Fatal("dedup memo kept after a key in its range was written")
	}
	p.marks.learnBefore(0, 11)
	p.track(markAgeKey(10, alice, []byte("k")), nil, true)
	if p.marks.empty(0, 10) {
		t.Fatal("mark memo kept after a mark in its range was written")
	}

	const id = 7
	m := p.historyOf(id)
	m.journal.learn(3, noEntry)
	m.tombstones.learn(3, 5000)
	journal := mustMarshal(&metadatapb.ChangeBatch{TimestampUnixNano: 4000})
	p.track(journalKey(id, 9), journal, true)
	p.track(journalKey(id+1, 9), mustMarshal(&metadatapb.ChangeBatch{TimestampUnixNano: 1}), true)
	if !m.journal.nothingBefore(3, 4000) || m.journal.nothingBefore(3, 4001) || m.journal.nothingBefore(4, 0) {
		t.Fatalf("journal memo %+v after an entry stamped 4000", m.journal)
	}
	ts := binary.BigEndian.AppendUint64(nil, 4500)
	p.track(tombstoneKey(id, 9, 1), ts, true)
	if !m.tombstones.nothingBefore(3, 4500) || m.tombstones.nothingBefore(3, 4501) {
		t.Fatalf("tombstone memo %+v after a tombstone stamped 4500", m.tombstones)
	}
	p.track(tombstoneKey(id, 9, 1), nil, false)
	p.track(journalKey(id, 9), nil, false)
	if m.journal.known || m.tombstones.known {
		t.Fatal("history memo kept after an entry was deleted")
	}
	m.journal.learn(3, noEntry)
	p.track(journalKey(id, 10), []byte{0xff}, true)
	if m.journal.known {
		t.Fatal("journal memo kept after an entry it cannot read")
	}
}

// TestRestoreForgetsCarriedCache: the first batch after a snapshot is restored reads the
// restored store, not what the batches before the restore left in their cache.
func TestRestoreForgetsCarriedCache(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "b1"))
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h.ok(cmdAppend(alice, inbox, "b2", "b3"))
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := h.f.Restore(readCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	if uids := h.ok(cmdAppend(alice, inbox, "b4")).GetAppend().GetUids(); !slices.Equal(uids, []uint32{2}) {
		t.Fatalf("first append after the restore got uids %v, want 2", uids)
	}
	h.wantUsage(quotaAccount, alice, 2, 2*4400)
}

// TestDedupMemoCarriedAcrossBatches: the dedup prune's memo, handed from batch to batch,
// learns from an empty index that nothing is due, is narrowed by a record written in a
// later batch, and lets the prune drop that record once the horizon passes it; a replica
// that applies the same log in other batches ends with the same store.
func TestDedupMemoCarriedAcrossBatches(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "b0")) // no dedup record: the memo covers every time
	h.ok(cmdDedupAppend(alice, inbox, "k1", 1, "b1"))
	h.ok(cmdAppend(alice, inbox, "b2")) // k1 not due: the memo skips the scan
	h.now = h.now.Add(time.Minute)
	first := len(h.log)
	h.index += retryEntries
	entries := []*raft.Log{h.entry(cmdAppend(alice, inbox, "b3"))}
	h.index += retryEntries
	entries = append(entries, h.entry(cmdAppend(alice, inbox, "b4")))
	wantCodes(t, h.applyBatchAndReplay(first, entries), codes.OK, codes.OK)
	v := h.f.view()
	defer v.close()
	if _, found, err := getRaw(v.r, dedupKey(alice, []byte("k1"))); err != nil || found {
		t.Fatalf("dedup record after the horizon passed it, with the memo carried from batch to batch: found=%v err=%v", found, err)
	}
}

// TestHistoryMemoCarriedAcrossBatches: the history prunes' memo, handed from batch to
// batch, skips the scans of young journals and tombstones, and a batch whose log time
// passes the retention still prunes them; a replica that applies the same log one entry
// per batch on a cold cache ends with the same store.
func TestHistoryMemoCarriedAcrossBatches(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "b1", "b2"))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	h.ok(cmdAppend(alice, inbox, "b3")) // young history: the memo learns it
	g := h.f.acquire()
	carried := g.carried
	g.release()
	if carried == nil || carried.history[inbox] == nil || !carried.history[inbox].journal.known || !carried.history[inbox].tombstones.known {
		t.Fatalf("no history memo of mailbox %d carried to the next batch", inbox)
	}
	h.ok(cmdAppend(alice, inbox, "b4")) // skips the scans
	if box := h.mustMailbox(alice, "INBOX"); box.GetJournalFloor() != 0 || box.GetVanishedFloor() != 0 {
		t.Fatalf("journal floor %d, vanished floor %d: pruned before the retention", box.GetJournalFloor(), box.GetVanishedFloor())
	}
	first := len(h.log)
	h.now = h.now.Add(tombstoneRetention + time.Hour)
	entries := []*raft.Log{h.entry(cmdAppend(alice, inbox, "b5"))}
	wantCodes(t, h.applyBatchAndReplay(first, entries), codes.OK)
	box := h.mustMailbox(alice, "INBOX")
	if box.GetJournalFloor() == 0 || box.GetVanishedFloor() == 0 {
		t.Fatalf("journal floor %d, vanished floor %d: nothing pruned with the memo carried", box.GetJournalFloor(), box.GetVanishedFloor())
	}
}
