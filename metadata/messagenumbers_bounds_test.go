package metadata

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestMessageNumbersDoNotWrap (review sortfirst20, finding 3): last_message_number is
// a uint32 that messageNumber increments with no bound; past 2^32-1 it gives 0 (the number
// of "", no id) and then 1, 2, ... again, which name other ids: two messages with unrelated
// Message-IDs then share a number and THREAD links them. Reaching it takes 2^32 distinct ids,
// which APPEND + EXPUNGE of messages with 64 fresh references each adds 65 at a time with
// nothing charged to any quota (the dictionary is never trimmed); the record is set near the
// end here.
func TestMessageNumbersDoNotWrap(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppendThread(alice, inbox, []string{"a@x"})) // number 1
	g := h.f.acquire()
	rec := &metadatapb.MailboxRecord{}
	if _, err := getProto(g.db, mailboxKey(inbox), rec); err != nil {
		t.Fatal(err)
	}
	rec.LastMessageNumber = math.MaxUint32 - 1
	if err := g.db.Set(mailboxKey(inbox), mustMarshal(rec), nil); err != nil {
		t.Fatal(err)
	}
	g.carried = nil
	g.release()
	h.ok(cmdAppendThread(alice, inbox, []string{"p@x"}, []string{"q@x"}, []string{"r@x"}))
	got := h.columnNumbers(inbox)
	seen := map[uint32]uint32{}
	for uid := uint32(1); uid <= 4; uid++ {
		nums := got[uid]
		if nums == nil {
			continue // unnumbered: the frontend compares strings, which is right
		}
		if nums[0] == 0 {
			t.Errorf("UID %d, with a Message-ID, has number 0 (no id)", uid)
		}
		if other, dup := seen[nums[0]]; dup {
			t.Errorf("UIDs %d and %d, with different Message-IDs, share number %d", other, uid, nums[0])
		}
		seen[nums[0]] = uid
	}
	if t.Failed() {
		t.Logf("numbers by UID: %v", fmt.Sprint(got))
	}
}

// TestMessageNumbersDictionaryBounded (review sortfirst20, finding 3): the dictionary of a
// mailbox keeps every distinct id ever appended (an expunge keeps them, and INBOX is never
// deleted), so APPEND + EXPUNGE of messages with 64 fresh references each would grow it
// without bound; it stops at maxMessageNumber (lowered here to 1000): later entries naming
// a new id are left unnumbered, those naming only numbered ids still get their numbers.
func TestMessageNumbersDictionaryBounded(t *testing.T) {
	old := maxMessageNumber
	maxMessageNumber = 1000
	t.Cleanup(func() { maxMessageNumber = old })
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	for i := range 100 {
		ids := []string{fmt.Sprintf("m%d@x", i)}
		for r := range 64 {
			ids = append(ids, fmt.Sprintf("r%d.%d@x", i, r))
		}
		h.ok(cmdAppendThread(alice, inbox, ids))
		h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, uint32(i+1))}, `\Deleted`))
		h.ok(cmdExpunge(alice, inbox))
	}
	if n, last := h.dictionarySize(inbox), h.mustMailboxRecord(inbox).GetLastMessageNumber(); n > 1000 || last != 1000 {
		t.Errorf("an empty INBOX keeps %d dictionary keys (last number %d)", n, last)
	}
	h.ok(cmdAppendThread(alice, inbox, []string{"new@x", "m0@x"}, []string{"m1@x", "m0@x"}))
	got := h.columnNumbers(inbox)
	if nums, ok := got[101]; !ok || nums != nil {
		t.Errorf("a message naming an id past the bound has numbers %v (present %v)", nums, ok)
	}
	if nums := got[102]; !slices.Equal(nums, []uint32{66, 1}) {
		t.Errorf("a message naming only numbered ids has numbers %v, want [66 1]", nums)
	}
}

// TestMessageNumbersInOneBatch (review, not a finding): numbering in one batch with
// COPY, MOVE, the INBOX rename, a failing command and DELETE gives the store of one entry
// per batch.
func TestMessageNumbersInOneBatch(t *testing.T) {
	h := withAccount(t)
	inbox, archive := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(alice, "Archive").GetId()
	batchOf(h,
		cmdAppendThread(alice, inbox, []string{"a@x", "b@x", "a@x"}, []string{"b@x", "c@x"}, []string{"", "a@x", ""}),
		cmdAppendThread(alice, 999, []string{"z@x"}),
		cmdCopy(alice, inbox, archive, true, uidRange(2, 3)),
		cmdAppendThread(alice, inbox, []string{"c@x", "b@x"}),
		cmdCopy(alice, archive, inbox, false, uidRange(1, 2)),
		cmdRename(alice, "INBOX", "Old"),
		cmdAppendThread(alice, inbox, []string{"a@x", "d@x"}),
		cmdDeleteMailbox(alice, "Archive"),
	)
	h.wantSortColumn()
	if n := h.dictionarySize(archive); n != 0 {
		t.Fatalf("deleted mailbox keeps %d keys", n)
	}
	t.Logf("inbox numbers %v", h.columnNumbers(inbox))
}
