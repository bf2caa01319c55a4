package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// readSubjectRecords reads mailbox's subject projection above after, maxBytes a read: from
// its chunks if complete, else derived from the column.
func (h *harness) readSubjectRecords(mailbox uint64, after uint32, maxBytes int, complete bool) []byte {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	read := (*view).subjectRecordsFromColumn
	if complete {
		read = (*view).subjectRecords
	}
	return h.readFixed(v, read, mailbox, after, maxBytes)
}

// subjectRecordNumbers is "uid:number" of each record of recs, "-" for an unnumbered one.
func subjectRecordNumbers(recs []byte) string {
	var out []string
	for off := 0; off+subjectRecordLen <= len(recs); off += subjectRecordLen {
		n := fmt.Sprint(binary.LittleEndian.Uint32(recs[off+4:]))
		if binary.LittleEndian.Uint32(recs[off+4:]) == metadatapb.UnnumberedSubject {
			n = "-"
		}
		out = append(out, fmt.Sprintf("%d:%s", dateRecordUID(recs[off:]), n))
	}
	return strings.Join(out, " ")
}

// TestSubjectRecordsLevelGateAndFill: a mailbox created at level 6 has a subject record
// per column entry from its first APPEND (the subject's number, 0 for none, UnnumberedSubject
// for a subject longer than the dictionary holds), kept through EXPUNGE, COPY and MOVE
// (wantSortColumn after each command); one created by a command stamped 5 has none, and
// APPENDs into it (of any stamp) write none, while ReadSortColumn derives the same records
// from its column and from its thread-keys projection; the NumberMessagesCommands, after its subject numbers, fill the
// projection 2 entries a command (an APPEND and an EXPUNGE between them) to the chunks a
// level-6 mailbox holds, with subject_records_complete; a restored replica's digest is the
// original's.
func TestSubjectRecordsLevelGateAndFill(t *testing.T) {
	h := withAccount(t)
	h.ok(stamped(cmdCreateMailbox(alice, "Old"), FeatureSubjectNumbers))
	old := h.mustMailbox(alice, "Old").GetId()
	h.ok(cmdCreateMailbox(alice, "New"))
	fresh := h.mustMailbox(alice, "New").GetId()
	long := strings.Repeat("l", maxNumberedSubject+1)
	subjects := []string{"b", "a", long, "", "b", "c", "a"}
	for _, mb := range []uint64{old, fresh} {
		h.ok(stamped(cmdAppendSubjects(alice, mb, subjects[:3]...), FeatureSubjectNumbers))
		h.ok(cmdAppendSubjects(alice, mb, subjects[3:]...))
		h.wantSortColumn()
	}
	if rec := h.mustMailboxRecord(old); rec.GetSubjectRecordsComplete() || !rec.GetSubjectsComplete() {
		t.Fatalf("mailbox created at level 5: %v", rec)
	}
	if got := h.readSubjectRecords(old, 0, 1<<20, true); len(got) != 0 {
		t.Fatalf("records written below the level: %s", subjectRecordNumbers(got))
	}
	want := "1:1 2:2 3:- 4:0 5:1 6:3 7:2"
	if got := subjectRecordNumbers(h.readSubjectRecords(fresh, 0, 1<<20, true)); got != want {
		t.Fatalf("level-6 mailbox's records %s, want %s", got, want)
	}
	for _, maxBytes := range []int{1, 8, 17, 1 << 20} {
		if got := subjectRecordNumbers(h.readSubjectRecords(old, 0, maxBytes, false)); got != want {
			t.Fatalf("records derived from the level-5 column, %d bytes a read: %s, want %s", maxBytes, got, want)
		}
		v := h.f.view()
		got := subjectRecordNumbers(h.readFixed(v, (*view).subjectRecordsFromThreadKeys, old, 0, maxBytes))
		v.close()
		if got != want {
			t.Fatalf("records derived from the level-5 thread keys, %d bytes a read: %s, want %s", maxBytes, got, want)
		}
	}
	var through []uint32
	h.fillMailbox(old, 2, 12, func(step int, out *metadatapb.NumberMessagesResult) {
		through = append(through, out.GetSubjectRecordsThroughUid())
		if step == 1 {
			for _, mb := range []uint64{old, fresh} {
				h.ok(cmdAppendSubjects(alice, mb, "d", "a"))
				h.ok(cmdStore(alice, mb, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(2, 2), uidRange(6, 6)}, `\Deleted`))
				h.ok(cmdExpunge(alice, mb))
			}
		}
		h.wantSortColumn()
	})
	if fmt.Sprint(through) != "[2 4 7 9]" { // 6 expunged after the second
		t.Fatalf("filled through %v", through)
	}
	if rec := h.mustMailboxRecord(old); !rec.GetSubjectRecordsComplete() || rec.GetSubjectRecordedThroughUid() != 0 {
		t.Fatalf("filled mailbox: %v", rec)
	}
	got, wantChunks := h.readSubjectRecords(old, 0, 1<<20, true), h.readSubjectRecords(fresh, 0, 1<<20, true)
	if !bytes.Equal(got, wantChunks) || subjectRecordNumbers(got) != "1:1 3:- 4:0 5:1 7:2 8:4 9:2" {
		t.Fatalf("filled %s, level-6 mailbox %s", subjectRecordNumbers(got), subjectRecordNumbers(wantChunks))
	}
	h.ok(cmdCopy(alice, old, fresh, true, uidRange(1, 5)))
	h.wantSortColumn()
	if !bytes.Equal(h.restored().digest(), h.digest()) {
		t.Fatal("a restored replica's store differs")
	}
}
