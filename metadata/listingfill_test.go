package metadata

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// stripListing makes mailbox as a build before the listing column stored it, behind the
// FSM's back: no listing chunk, a record without listing_column.
func (h *harness) stripListing(mailbox uint64) {
	h.t.Helper()
	h.stripDerived(mailbox, prefixListingChunk, func(rec *metadatapb.MailboxRecord) {
		rec.ListingColumn, rec.ListedThroughUid = false, 0
	})
}

// stripDerived removes every key of mailbox under prefix (data derived from its records)
// and changes its record with clear, behind the FSM's back, dropping the carried cache.
func (h *harness) stripDerived(mailbox uint64, prefix byte, clear func(*metadatapb.MailboxRecord)) {
	h.t.Helper()
	g := h.f.acquire()
	defer g.release()
	b := g.db.NewBatch()
	v := h.f.view()
	defer v.close()
	if err := b.DeleteRange(mailboxPrefix(prefix, mailbox), mailboxPrefixEnd(prefix, mailbox), nil); err != nil {
		h.t.Fatal(err)
	}
	rec := &metadatapb.MailboxRecord{}
	if found, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil || !found {
		h.t.Fatalf("mailbox %d: %v %v", mailbox, found, err)
	}
	clear(rec)
	if err := b.Set(mailboxKey(mailbox), mustMarshal(rec), nil); err != nil {
		h.t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		h.t.Fatal(err)
	}
	g.carried = nil
}

// listingEntries renders mailbox's listing column as "uid:entry" per record, and
// recordEntries its records at or below through (0: all) as the entries putListing writes
// of them.
func (h *harness) listingEntries(mailbox uint64) []string {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	var out []string
	if err := scan(v.r, mailboxPrefix(prefixListingChunk, mailbox), mailboxPrefixEnd(prefixListingChunk, mailbox), func(k, val []byte) (bool, error) {
		for len(val) > 0 {
			uid, rec, rest, ok := nextColumnRecord(val)
			if !ok {
				return false, fmt.Errorf("chunk %x does not take apart", k)
			}
			if want := listingChunkKey(mailbox, uid/sortChunkUIDs); string(k) != string(want) {
				return false, fmt.Errorf("UID %d in chunk %x", uid, k)
			}
			_, n := protowire.ConsumeVarint(rec)
			entry, _ := protowire.ConsumeBytes(rec[n:])
			out = append(out, fmt.Sprintf("%d:%x", uid, entry))
			val = rest
		}
		return true, nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) recordEntries(mailbox uint64, through uint32) []string {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	var out []string
	if err := scan(v.r, mailboxPrefix(prefixMessage, mailbox), mailboxPrefixEnd(prefixMessage, mailbox), func(k, val []byte) (bool, error) {
		uid := uidFromKey(k)
		if through > 0 && uid > through {
			return false, nil
		}
		idx := &metadatapb.MessageIndex{}
		if err := proto.Unmarshal(val, idx); err != nil {
			return false, err
		}
		out = append(out, fmt.Sprintf("%d:%x", uid, listingEntry(idx)))
		return true, nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// TestListingFillKeepsTheColumnEqual: a mailbox of 1,000 messages stored before the
// listing column (and before the numbers and dates) is filled 100 records a command (fill
// points inside chunks), with STOREs and EXPUNGEs of UIDs on both sides of the fill point,
// APPENDs, COPY in and MOVE out between commands. After every command the column holds
// exactly the entries of the records at or below listed_through_uid; at the end,
// listing_column is set, the column equals the records entry for entry, the listing reads
// the same both ways in pages of any size, and a replica restored from a snapshot has the
// same digest and listing.
func TestListingFillKeepsTheColumnEqual(t *testing.T) {
	h := withAccount(t)
	inbox, archive := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(alice, "Archive").GetId()
	for first := 0; first < 1000; first += 100 {
		h.ok(cmdAppendFlagged(inbox, first, 100))
	}
	h.ok(cmdAppendFlagged(archive, 0, 50))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(100, 130)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	want := h.listingEntries(inbox)
	if got := h.recordEntries(inbox, 0); !slices.Equal(got, want) {
		t.Fatalf("before the strip, the fill's entries differ from the column APPEND wrote:\n%v\n%v", got, want)
	}
	h.stripNumbers(inbox, 0)
	h.stripDates(inbox)
	h.stripListing(inbox)
	if n := listingChunks(t, h, inbox); n != 0 {
		t.Fatalf("%d listing chunks after the strip", n)
	}
	var listed []uint32
	h.fillMailbox(inbox, 100, 40, func(step int, _ *metadatapb.NumberMessagesResult) {
		through := h.mustMailboxRecord(inbox).GetListedThroughUid()
		if through == 0 && h.mustMailboxRecord(inbox).GetListingColumn() {
			return // the stages after the listing (threadkeys.go, subjectnumbers.go)
		}
		if through == 0 {
			if n := listingChunks(t, h, inbox); n != 0 {
				t.Fatalf("step %d: %d listing chunks before the fill", step, n)
			}
			return
		}
		listed = append(listed, through)
		if got, want := h.listingEntries(inbox), h.recordEntries(inbox, through); !slices.Equal(got, want) {
			t.Fatalf("step %d, through %d: column\n%v\nrecords\n%v", step, through, got, want)
		}
		// Both sides of the fill point, in the chunk it cuts and the next.
		around := []*metadatapb.UidRange{uidRange(max(through, 3)-2, through+2), uidRange(through+130, through+131)}
		switch step % 3 {
		case 0:
			h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, around, "$Fill", `\Answered`))
			h.ok(cmdAppendFlagged(inbox, 2000+step*3, 3))
		case 1:
			h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, around, `\Deleted`))
			h.ok(cmdExpunge(alice, inbox))
			h.ok(cmdCopy(alice, archive, inbox, false, uidRange(uint32(step), uint32(step)+1)))
		case 2:
			h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_REPLACE, around, "$Only"))
			h.ok(cmdCopy(alice, inbox, archive, true, uidRange(through-1, through+1)))
		}
		if got, want := h.listingEntries(inbox), h.recordEntries(inbox, through); !slices.Equal(got, want) {
			t.Fatalf("step %d, after the interleaved commands, through %d: column\n%v\nrecords\n%v", step, through, got, want)
		}
	})
	if rec := h.mustMailboxRecord(inbox); !rec.GetListingColumn() || rec.GetListedThroughUid() != 0 || !rec.GetNumbersComplete() || !rec.GetDatesComplete() {
		t.Fatalf("complete: %v", rec)
	}
	if len(listed) < 5 {
		t.Fatalf("fill points %v: too few commands to interleave", listed)
	}
	if got, want := h.listingEntries(inbox), h.recordEntries(inbox, 0); !slices.Equal(got, want) {
		t.Fatalf("after the fill: column\n%v\nrecords\n%v", got, want)
	}
	records := pagedListing(t, h, inbox, 0, false)
	for _, limit := range []uint32{0, 1, 127, 128, 1000} {
		if got := pagedListing(t, h, inbox, limit, true); !slices.Equal(got, records) {
			t.Fatalf("in pages of %d, column:\n%v\nrecords:\n%v", limit, got, records)
		}
	}
	h.messages(alice, inbox)
	// Kept by the commands after the fill, as for a new mailbox.
	h.ok(cmdAppendFlagged(inbox, 3000, 5))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 0)}, "$After"))
	if got, want := h.listingEntries(inbox), h.recordEntries(inbox, 0); !slices.Equal(got, want) {
		t.Fatal("the column differs from the records after the fill's end")
	}
	dst := h.restored()
	if string(dst.digest()) != string(h.digest()) {
		t.Fatal("a restored replica's digest differs")
	}
	if got := pagedListing(t, dst, inbox, 128, true); !slices.Equal(got, pagedListing(t, h, inbox, 0, false)) {
		t.Fatal("the restored replica lists otherwise")
	}
}

// BenchmarkListingFill measures the backfill of the listing column of a mailbox stored
// before it: 100,000 records, or STRATA_COLD_SELECT_MESSAGES, written straight into the
// store (fillListingMailbox), their column then removed; an iteration is the
// NumberMessagesCommands (4,096 records each) that write it again, applied to the
// in-process FSM (no Raft). It reports the CPU time per 100,000 messages besides the wall
// time.
//
//	go test ./metadata -run '^$' -bench BenchmarkListingFill -benchtime 3x
func BenchmarkListingFill(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("STRATA_COLD_SELECT_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	h := withAccount(b)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	fillListingMailbox(b, h.f, inbox, n)
	want := h.listingEntries(inbox)
	var cpu time.Duration
	commands := 0
	for b.Loop() {
		b.StopTimer()
		h.stripListing(inbox)
		b.StartTimer()
		start := processCPU(b)
		for {
			commands++
			if h.ok(cmdNumberMessages(alice, inbox, maxNumberEntries)).GetNumberMessages().GetComplete() {
				break
			}
		}
		cpu += processCPU(b) - start
	}
	b.StopTimer()
	if got := h.listingEntries(inbox); !slices.Equal(got, want) {
		b.Fatalf("the filled column (%d entries) differs from the one written (%d)", len(got), len(want))
	}
	b.ReportMetric(float64(cpu)/float64(b.N)*100_000/float64(n), "cpu-ns/100k")
	b.ReportMetric(float64(commands)/float64(b.N), "commands/op")
}
