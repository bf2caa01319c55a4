package metadata

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestHistoryRetention: write commands drop a mailbox's journal entries older than
// journalRetention and its tombstones older than tombstoneRetention, at most
// historyPruneBatch per command, and raise the floors; vanished is complete only above the
// vanished floor; replicas that apply the same log agree (the digest).
func TestHistoryRetention(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	id := inbox.GetId()
	var blobs []string
	for i := range 10 {
		blobs = append(blobs, fmt.Sprintf("blob-%d", i))
	}
	h.ok(cmdAppend(alice, id, blobs...))
	expunge := func(uid uint32) uint64 {
		h.ok(cmdStore(alice, id, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(uid, uid)}, `\Deleted`))
		return h.ok(cmdExpunge(alice, id, uidRange(uid, uid))).GetExpunge().GetModseq()
	}
	first := expunge(1)
	expunge(2)

	// 31 days later: the journal so far is past its retention, the tombstones are not.
	h.now = h.now.Add(journalRetention + 24*time.Hour)
	third := expunge(3)
	box := h.mustMailbox(alice, "INBOX")
	if box.GetJournalFloor() < first || box.GetJournalFloor() >= third-1 || box.GetVanishedFloor() != 0 {
		t.Fatalf("after the journal retention: journal floor %d (want >= %d and < %d), vanished floor %d", box.GetJournalFloor(), first, third-1, box.GetVanishedFloor())
	}
	v := h.f.view()
	entries, err := v.journal(id, 0, 1000)
	v.close()
	if err != nil || len(entries) == 0 || entries[0].GetHighestModseq() <= box.GetJournalFloor() {
		t.Fatalf("journal after pruning: %d entries, first %v, err %v", len(entries), entries, err)
	}
	vanished := func(since uint64) ([]uint32, bool) {
		t.Helper()
		v := h.f.view()
		defer v.close()
		uids, complete, err := v.vanished(h.mustMailbox(alice, "INBOX"), since, allUIDs)
		if err != nil {
			t.Fatal(err)
		}
		return uids, complete
	}
	if uids, complete := vanished(0); !slices.Equal(uids, []uint32{1, 2, 3}) || !complete {
		t.Fatalf("vanished since 0 = %v complete %v", uids, complete)
	}

	// Half a year on: the tombstones of 1 and 2 go, 3's stays (it is younger).
	h.now = h.now.Add(tombstoneRetention - 24*time.Hour)
	fourth := expunge(4)
	box = h.mustMailbox(alice, "INBOX")
	second := first + 2 // the STORE of \Deleted, then the expunge
	if box.GetVanishedFloor() != second {
		t.Fatalf("vanished floor %d, want %d (the expunge of 2)", box.GetVanishedFloor(), second)
	}
	if uids, complete := vanished(0); !slices.Equal(uids, []uint32{3, 4}) || complete {
		t.Fatalf("vanished since 0 = %v complete %v, want [3 4], incomplete", uids, complete)
	}
	if uids, complete := vanished(second); !slices.Equal(uids, []uint32{3, 4}) || !complete {
		t.Fatalf("vanished since the floor = %v complete %v", uids, complete)
	}
	if uids, complete := vanished(fourth); len(uids) != 0 || !complete {
		t.Fatalf("vanished since the last expunge = %v complete %v", uids, complete)
	}

	// A replica that applies the same log ends in the same state.
	replica := newHarness(t)
	if got := replica.f.ApplyBatch(h.log); len(got) != len(h.log) {
		t.Fatalf("replay applied %d of %d", len(got), len(h.log))
	}
	if d1, d2 := h.digest(), replica.digest(); string(d1) != string(d2) {
		t.Fatal("a replica that replays the log has another digest")
	}
}

// TestHistoryPruneBatch: one command drops at most historyPruneBatch journal entries, so a
// mailbox with a long history is trimmed over several commands, never in one long apply.
func TestHistoryPruneBatch(t *testing.T) {
	h := withAccount(t)
	id := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, id, "blob-1"))
	for range 2*historyPruneBatch + 10 {
		h.ok(cmdStore(alice, id, metadatapb.FlagOp_FLAG_OP_REPLACE, []*metadatapb.UidRange{uidRange(1, 1)}, "$x"))
		h.ok(cmdStore(alice, id, metadatapb.FlagOp_FLAG_OP_REPLACE, []*metadatapb.UidRange{uidRange(1, 1)}))
	}
	h.now = h.now.Add(journalRetention + time.Hour)
	before := h.mustMailbox(alice, "INBOX").GetHighestModseq()
	v := h.f.view()
	entries, err := v.journal(id, 0, 1<<20)
	v.close()
	if err != nil || len(entries) < historyPruneBatch {
		t.Fatalf("journal: %d entries, %v", len(entries), err)
	}
	h.ok(cmdStore(alice, id, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Seen`))
	if floor, want := h.mustMailbox(alice, "INBOX").GetJournalFloor(), entries[historyPruneBatch-1].GetHighestModseq(); floor != want {
		t.Fatalf("journal floor after one command = %d, want %d", floor, want)
	}
	for i := range 5 {
		// Only a command that changes the mailbox prunes its history.
		h.ok(cmdStore(alice, id, []metadatapb.FlagOp{metadatapb.FlagOp_FLAG_OP_ADD, metadatapb.FlagOp_FLAG_OP_REMOVE}[i%2], []*metadatapb.UidRange{uidRange(1, 1)}, `\Flagged`))
	}
	if floor := h.mustMailbox(alice, "INBOX").GetJournalFloor(); floor != before {
		t.Fatalf("journal floor = %d, want %d (everything older than the retention)", floor, before)
	}
}

// TestWatchBelowJournalFloor: a change feed whose cursor is below the journal floor ends
// with OutOfRange, since the changes after it cannot be replayed.
func TestWatchBelowJournalFloor(t *testing.T) {
	h := withAccount(t)
	id := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, id, "blob-1"))
	h.ok(cmdStore(alice, id, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Seen`))
	h.now = h.now.Add(journalRetention + time.Hour)
	h.ok(cmdStore(alice, id, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Flagged`))
	floor := h.mustMailbox(alice, "INBOX").GetJournalFloor()
	if floor == 0 {
		t.Fatal("nothing was pruned")
	}
	v := h.f.view()
	defer v.close()
	_, err := v.watchAccess(&watchState{owner: alice, user: alice, mailbox: id, cursor: floor - 1})
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("watch below the floor: %v, want OutOfRange", err)
	}
	if _, err := v.watchAccess(&watchState{owner: alice, user: alice, mailbox: id, cursor: floor}); err != nil {
		t.Fatalf("watch at the floor: %v", err)
	}
}

// TestJournalTimestamp checks the timestamp picked off a stored journal entry against
// the decoded entry's.
func TestJournalTimestamp(t *testing.T) {
	for _, b := range []*metadatapb.ChangeBatch{
		{},
		{TimestampUnixNano: 1793534400123456789},
		{TimestampUnixNano: -5, HighestModseq: 9},
		{Changes: []*metadatapb.Change{{Kind: metadatapb.ChangeKind_CHANGE_KIND_APPEND, Uid: 7, Flags: []string{`\Seen`, "$Junk"}, Modseq: 12}}, HighestModseq: 12, TimestampUnixNano: 1793534400000000001},
	} {
		v := mustMarshal(b)
		got, err := journalTimestamp(v)
		if err != nil || got != b.GetTimestampUnixNano() {
			t.Errorf("journalTimestamp(%v) = %d, %v; want %d", b, got, err, b.GetTimestampUnixNano())
		}
		if len(v) > 1 {
			if _, err := journalTimestamp(v[:len(v)-1]); err == nil {
				t.Errorf("journalTimestamp of %v cut short: no error", b)
			}
		}
	}
}
