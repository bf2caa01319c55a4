package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdAppendDated is cmdAppendKeys whose message i has no sent date (a missing or
// unparseable Date field, RFC 5256 2.2) when i%3 == 0, and every fourth message an equal
// sent date, so that the projection's dates fall back to the internal date and tie.
func cmdAppendDated(account string, mailbox uint64, blobs ...string) *metadatapb.Command {
	cmd := cmdAppendKeys(account, mailbox, true, blobs...)
	for i, m := range cmd.GetAppend().GetMessages() {
		switch {
		case i%3 == 0:
			m.Structure.SortKeys.SentUnix = nil
		case i%4 == 0:
			m.Structure.SortKeys.SentUnix = proto.Int64(1793500000)
		}
	}
	return cmd
}

// readDates reads mailbox's dates projection above after as ReadSortColumn with dates_only
// does (complete: from the chunks, else derived from the column), maxBytes a read.
func (h *harness) readDates(mailbox uint64, after uint32, maxBytes int, complete bool) []byte {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	read := (*view).sortDatesFromColumn
	if complete {
		read = (*view).sortDateRecords
	}
	return h.readFixed(v, read, mailbox, after, maxBytes)
}

// readFixed reads a projection of fixed-width records of mailbox above after with read,
// maxBytes a read, to its end.
func (h *harness) readFixed(v *view, read func(*view, uint64, uint32, int) ([]byte, uint32, bool, error), mailbox uint64, after uint32, maxBytes int) []byte {
	h.t.Helper()
	var out []byte
	for {
		recs, last, more, err := read(v, mailbox, after, maxBytes)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, recs...)
		if !more {
			return out
		}
		after = last
	}
}

// stripDates makes mailbox as a build before the dates projection stored it, behind the
// FSM's back: no 'F' chunk, a record without dates_complete.
func (h *harness) stripDates(mailbox uint64) {
	h.t.Helper()
	h.stripDerived(mailbox, prefixSortDates, func(rec *metadatapb.MailboxRecord) { rec.DatesComplete, rec.DatedThroughUid = false, 0 })
}

// TestSortDatesFillRestoresTheProjection: a mailbox of 400 messages (a third without a
// sent date, messages without sort keys, expunged and moved ones, the first UIDs in the
// 'C' layout) has a dates projection equal, in reads of any size, to the one derived from
// its column; stripped as a build before the projection stored it (and before the
// numbers), it is read derived from the column with the same bytes, and the
// NumberMessagesCommands that fill it, 37 entries a command with an APPEND and an EXPUNGE
// in the middle, end with the store the commands wrote, dates_complete, and a restored
// replica's digest equal to the original's.
func TestSortDatesFillRestoresTheProjection(t *testing.T) {
	h := withAccount(t)
	inbox, archive := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(alice, "Archive").GetId()
	var blobs []string
	for i := range 400 {
		blobs = append(blobs, fmt.Sprintf("d%03d", i))
	}
	h.ok(cmdAppendDated(alice, inbox, blobs[:250]...))
	h.ok(cmdAppendKeys(alice, inbox, false, "bare1", "bare2"))
	h.ok(cmdAppendDated(alice, inbox, blobs[250:]...))
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(3, 3), uidRange(120, 140)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	h.ok(cmdCopy(alice, inbox, archive, true, uidRange(200, 210)))
	h.wantSortColumn()
	want := h.readDates(inbox, 0, 1<<20, true)
	if n := len(want) / sortDateRecordLen; n != 400-1-21-11 {
		t.Fatalf("%d dates, want %d", n, 400-1-21-11)
	}
	for _, maxBytes := range []int{1, 100, 5000} {
		if got := h.readDates(inbox, 0, maxBytes, true); !bytes.Equal(got, want) {
			t.Fatalf("read by %d bytes differs", maxBytes)
		}
		if got := h.readDates(inbox, 0, maxBytes, false); !bytes.Equal(got, want) {
			t.Fatalf("derived from the column by %d bytes differs", maxBytes)
		}
	}
	if got, w := h.readDates(inbox, 150, 100, true), want[bytes.Index(want, dateRecordOf(t, want, 151)):]; !bytes.Equal(got, w) {
		t.Fatalf("above UID 150: %d bytes, want %d", len(got), len(w))
	}

	h.stripNumbers(inbox, 60) // UIDs below 60 in the 'C' layout
	h.stripDates(inbox)
	if n := h.keysWith(prefixSortDates); n != 1 { // Archive's
		t.Fatalf("%d 'F' keys after the strip", n)
	}
	if got := h.readDates(inbox, 0, 100, false); !bytes.Equal(got, want) {
		t.Fatal("dates derived from a column without numbers and with 'C' entries differ")
	}
	h.fillMailbox(inbox, 37, 40, func(step int, _ *metadatapb.NumberMessagesResult) {
		if step == 14 {
			// An APPEND and an EXPUNGE while the dates are filled.
			h.ok(cmdAppendDated(alice, inbox, "late1", "late2"))
			h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(10, 11), uidRange(390, 390)}, `\Deleted`))
			h.ok(cmdExpunge(alice, inbox))
		}
	})
	rec := h.mustMailboxRecord(inbox)
	if !rec.GetDatesComplete() || rec.GetDatedThroughUid() != 0 || !rec.GetNumbersComplete() {
		t.Fatalf("after the fill: %v", rec)
	}
	h.wantSortColumn()
	filled := h.readDates(inbox, 0, 1<<20, true)
	if got := h.readDates(inbox, 0, 100, false); !bytes.Equal(got, filled) {
		t.Fatal("filled dates differ from those derived from the column")
	}
	if n := len(filled) / sortDateRecordLen; n != 400-1-21-11+2-3 {
		t.Fatalf("%d dates after the fill", n)
	}
	dst := h.restored()
	if !bytes.Equal(dst.digest(), h.digest()) {
		t.Fatal("a restored replica's digest differs")
	}
	dst.wantSortColumn()
}

// dateRecordOf returns the record of uid in recs (which must hold it).
func dateRecordOf(t *testing.T, recs []byte, uid uint32) []byte {
	t.Helper()
	for off := 0; off < len(recs); off += sortDateRecordLen {
		if dateRecordUID(recs[off:]) == uid {
			return recs[off : off+sortDateRecordLen]
		}
	}
	t.Fatalf("no record of UID %d", uid)
	return nil
}

// TestSortDatesFillWritesWhatAppendsWrote: a mailbox stripped of its projection (and its
// numbers) and filled ends with the very store (record, chunks, 'F' chunks, dictionary)
// its APPENDs wrote, and a filled mailbox is left alone.
func TestSortDatesFillWritesWhatAppendsWrote(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	var blobs []string
	for i := range 300 {
		blobs = append(blobs, fmt.Sprintf("w%03d", i))
	}
	h.ok(cmdAppendDated(alice, inbox, blobs...))
	want := h.numberState(inbox)
	h.ok(cmdNumberMessages(alice, inbox, 50))
	if !bytes.Equal(h.numberState(inbox), want) {
		t.Fatal("filling a complete mailbox changed the store")
	}
	for _, numbers := range []bool{false, true} {
		if numbers {
			h.stripNumbers(inbox, 0)
		}
		h.stripDates(inbox)
		h.fillMailbox(inbox, 64, 20, nil)
		if !bytes.Equal(h.numberState(inbox), want) {
			t.Fatalf("strip numbers %v: the filled store differs from the one the appends wrote", numbers)
		}
	}
}

// TestServiceReadSortDates reads the dates projection over gRPC (dates_only): per message
// in UID order its UID, its sent date or else its internal date (RFC 5256 2.2), its
// internal date and size, as the appended messages say.
func TestServiceReadSortDates(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	inbox := s.mailbox("INBOX")
	msgs := cmdAppendDated(alice, inbox.GetId(), "a", "b", "c", "d", "e").GetAppend().GetMessages()
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: msgs}))
	read := func(after uint32) []byte {
		stream, err := s.client.ReadSortColumn(s.ctx(), &metadatapb.ReadSortColumnRequest{User: alice, Account: alice, MailboxId: inbox.GetId(), AfterUid: after, DatesOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(chunk.GetRecords()) > 0 || len(chunk.GetUids()) > 0 {
				t.Fatal("dates_only answered with the column")
			}
			out = append(out, chunk.GetDates()...)
		}
	}
	var want []byte
	for i, m := range msgs {
		date := m.GetInternalDateUnix()
		if sent := m.GetStructure().GetSortKeys().SentUnix; sent != nil {
			date = *sent
		}
		want = appendDateRecord(want, uint32(i+1), date, m.GetInternalDateUnix(), m.GetSize())
	}
	if got := read(0); !bytes.Equal(got, want) {
		t.Fatalf("dates %x, want %x", got, want)
	}
	if got := read(3); !bytes.Equal(got, want[3*sortDateRecordLen:]) {
		t.Fatalf("above UID 3: %x", got)
	}
}
