package metadata

import (
	"fmt"
	"slices"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// pagedListing lists mailbox of alice in pages of limit (0: whole) from the listing column
// or from the records, rendered by describeListing.
func pagedListing(t *testing.T, h *harness, mailbox uint64, limit uint32, column bool) []string {
	t.Helper()
	var out []string
	after := uint32(0)
	for {
		v := h.f.view()
		box, found, err := v.mailbox(alice, mailbox)
		if err != nil || !found {
			t.Fatalf("mailbox %d: found=%v err=%v", mailbox, found, err)
		}
		page, err := v.messageList(box, listingQuery{owner: alice, afterUID: after, limit: limit, dictionary: true, column: column})
		v.close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, describeListing(t, page)...)
		if n := len(page.GetUids()); n > 0 {
			after = page.GetUids()[n-1]
		}
		if !page.GetMore() {
			return out
		}
	}
}

// listingChunks counts the listing column's chunks of mailbox.
func listingChunks(t *testing.T, h *harness, mailbox uint64) int {
	t.Helper()
	v := h.f.view()
	defer v.close()
	n := 0
	if err := scan(v.r, mailboxPrefix(prefixListingChunk, mailbox), mailboxPrefixEnd(prefixListingChunk, mailbox), func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func cmdAppendFlagged(mailbox uint64, first, n int) *metadatapb.Command {
	req := &metadatapb.AppendRequest{Account: alice, MailboxId: mailbox}
	for i := first; i < first+n; i++ {
		var flags []string
		if i%4 == 0 {
			flags = append(flags, `\Seen`)
		}
		if i%7 == 0 {
			flags = append(flags, `\Flagged`, fmt.Sprintf("$K%d", i%3))
		}
		req.Messages = append(req.Messages, &metadatapb.NewMessage{BlobKey: fmt.Sprintf("blob-%d", i), Size: 100, Flags: flags})
	}
	return &metadatapb.Command{Op: &metadatapb.Command_Append{Append: req}}
}

// TestListingColumnFollowsRecords: through APPEND, STORE, EXPUNGE, COPY and MOVE the
// listing column of a mailbox answers exactly what its records do, whole and in pages
// that end inside and at the edge of a chunk; DELETE removes the column. A mailbox stored
// before the column (listing_column false) gets no chunks and is listed from its records.
func TestListingColumnFollowsRecords(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdCreateMailbox(alice, "Keep"))
	keep := h.mustMailbox(alice, "Keep").GetId()
	for first := 0; first < 400; first += 100 {
		h.ok(cmdAppendFlagged(inbox, first, 100))
	}
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 100)}, `\Seen`))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(50, 150), uidRange(390, 0)}, "$Work"))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_REMOVE, []*metadatapb.UidRange{uidRange(20, 30)}, `\Seen`))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_REPLACE, []*metadatapb.UidRange{uidRange(128, 129)}))
	h.ok(cmdExpunge(alice, inbox, uidRange(10, 20), uidRange(128, 128), uidRange(256, 300)))
	h.ok(cmdCopy(alice, inbox, keep, false, uidRange(100, 150)))
	h.ok(cmdCopy(alice, inbox, keep, true, uidRange(250, 260), uidRange(380, 383)))
	for _, box := range []uint64{inbox, keep} {
		want := pagedListing(t, h, box, 0, false)
		if len(want) == 0 {
			t.Fatalf("mailbox %d is empty", box)
		}
		for _, limit := range []uint32{0, 1, 7, 127, 128, 129, 1000} {
			if got := pagedListing(t, h, box, limit, true); !slices.Equal(got, want) {
				t.Fatalf("mailbox %d in pages of %d, column:\n%v\nrecords:\n%v", box, limit, got, want)
			}
		}
	}
	h.messages(alice, inbox) // and through the harness, which compares the two
	if listingChunks(t, h, keep) == 0 {
		t.Fatal("no listing chunks for Keep")
	}
	h.ok(cmdDeleteMailbox(alice, "Keep"))
	if n := listingChunks(t, h, keep); n != 0 {
		t.Fatalf("%d listing chunks left of the deleted Keep", n)
	}

	// A mailbox stored before the column: its record without listing_column.
	h.ok(cmdCreateMailbox(alice, "Old"))
	old := h.mustMailbox(alice, "Old").GetId()
	h.stripListing(old)
	h.ok(cmdAppendFlagged(old, 0, 200))
	h.ok(cmdStore(alice, old, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 50)}, `\Answered`))
	h.ok(cmdCopy(alice, inbox, old, true, uidRange(1, 5)))
	if n := listingChunks(t, h, old); n != 0 {
		t.Fatalf("%d listing chunks for a mailbox without listing_column", n)
	}
	if got := len(h.messages(alice, old).GetUids()); got != 205 {
		t.Fatalf("Old lists %d messages, want 205", got)
	}
}

// TestColumnEditSortsAdds: additions out of UID order, and a UID added twice, are written
// in UID order with the last addition of each UID.
func TestColumnEditSortsAdds(t *testing.T) {
	var e columnEdit
	for _, add := range []struct {
		uid   uint32
		entry string
	}{{5, "a"}, {3, "b"}, {5, "c"}, {9, "d"}, {3, "e"}} {
		e.add(add.uid, []byte(add.entry))
	}
	var got []string
	for rest := editColumnChunk(nil, e.sortedAdds(), nil); len(rest) > 0; {
		uid, rec, next, ok := nextColumnRecord(rest)
		if !ok {
			t.Fatalf("chunk does not take apart at %x", rest)
		}
		got = append(got, fmt.Sprintf("%d:%s", uid, rec[2:]))
		rest = next
	}
	if want := []string{"3:e", "5:c", "9:d"}; !slices.Equal(got, want) {
		t.Fatalf("chunk %v, want %v", got, want)
	}
}
