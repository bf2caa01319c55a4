package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdAppendSubjects is an Append of one message per subject, with that base subject.
func cmdAppendSubjects(account string, mailbox uint64, subjects ...string) *metadatapb.Command {
	var blobs []string
	for k := range subjects {
		blobs = append(blobs, fmt.Sprintf("s%d-%s", k, subjects[k]))
	}
	cmd := cmdAppend(account, mailbox, blobs...)
	for k, m := range cmd.GetAppend().GetMessages() {
		m.Structure.SortKeys = &metadatapb.SortKeys{Subject: subjects[k], MessageId: blobs[k] + "@x"}
	}
	return cmd
}

// subjectNumbersOf returns the subject number of each of mailbox's column entries by UID,
// -1 for an entry without one.
func (h *harness) subjectNumbersOf(mailbox uint64) map[uint32]int64 {
	h.t.Helper()
	out := map[uint32]int64{}
	for _, recs := range h.chunks(mailbox) {
		for len(recs) > 0 {
			uid, rec, rest, _ := nextColumnRecord(recs)
			recs = rest
			e := &metadatapb.SortColumnEntry{}
			_, n := binary.Uvarint(rec)
			_, m := binary.Uvarint(rec[n:])
			if err := proto.Unmarshal(rec[n+m:], e); err != nil {
				h.t.Fatal(err)
			}
			out[uid] = -1
			if e.SubjectNumber != nil {
				out[uid] = int64(e.GetSubjectNumber())
			}
		}
	}
	return out
}

// subjectOrderOf reads mailbox's subject order as ReadSortColumn subject_order does.
func (h *harness) subjectOrderOf(mailbox uint64) []uint32 {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	order, err := v.subjectOrder(mailbox)
	if err != nil {
		h.t.Fatal(err)
	}
	return order
}

// TestSubjectNumbersAtAdd: APPEND numbers each distinct base subject of a mailbox densely
// from 1 in the order of the log, "" as 0; the subject order lists the numbers in the
// octet order of the subjects (RFC 5256 3 SUBJECT: the casemapped base subject's octets);
// the thread-keys projection has the number and not the subject. An EXPUNGE keeps the
// dictionary (a later message with an expunged subject gets its old number), COPY and MOVE
// number in the target's own dictionary, a rename keeps it, a DELETE drops it; replicas
// applying the same log, one entry a batch or a restored snapshot, end with the same store.
func TestSubjectNumbersAtAdd(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppendSubjects(alice, inbox, "re b", "a", "", "re b", "c~", "c"))
	if got := fmt.Sprint(h.subjectNumbersOf(inbox)); got != "map[1:1 2:2 3:0 4:1 5:3 6:4]" {
		t.Fatalf("subject numbers %s", got)
	}
	if got := fmt.Sprint(h.subjectOrderOf(inbox)); got != "[2 4 3 1]" { // a, c, c~, re b
		t.Fatalf("subject order %s", got)
	}
	if rec := h.mustMailboxRecord(inbox); rec.GetLastSubjectNumber() != 4 || !rec.GetSubjectsComplete() {
		t.Fatalf("record %v", rec)
	}
	h.wantSortColumn() // every entry's number is its subject's, the projection without subjects

	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(2, 2)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	h.ok(cmdAppendSubjects(alice, inbox, "a", "d"))
	if got := h.subjectNumbersOf(inbox); got[7] != 2 || got[8] != 5 || len(got) != 7 {
		t.Fatalf("after the expunge: %v", got)
	}
	h.ok(cmdCreateMailbox(alice, "Other"))
	other := h.mustMailbox(alice, "Other").GetId()
	h.ok(cmdAppendSubjects(alice, other, "z"))
	h.ok(cmdCopy(alice, inbox, other, false, uidRange(4, 5)))
	h.ok(cmdCopy(alice, inbox, other, true, uidRange(8, 8)))
	if got := fmt.Sprint(h.subjectNumbersOf(other)); got != "map[1:1 2:2 3:3 4:4]" { // z, re b, c~, d
		t.Fatalf("copied and moved: %s", got)
	}
	if got := fmt.Sprint(h.subjectOrderOf(other)); got != "[3 4 2 1]" {
		t.Fatalf("other's subject order %s", got)
	}
	h.ok(cmdRename(alice, "Other", "Renamed"))
	if got := fmt.Sprint(h.subjectOrderOf(other)); got != "[3 4 2 1]" {
		t.Fatalf("renamed: subject order %s", got)
	}
	h.wantSortColumn()
	if !bytes.Equal(h.restored().digest(), h.digest()) {
		t.Fatal("a restored replica's store differs")
	}
	replica := newHarness(t)
	for _, l := range h.log {
		replica.f.ApplyBatch([]*raft.Log{l})
	}
	if !bytes.Equal(replica.digest(), h.digest()) {
		t.Fatal("a replica applying the same log one entry a batch differs")
	}
	h.ok(cmdDeleteMailbox(alice, "Renamed"))
	if got := h.subjectOrderOf(other); len(got) != 0 {
		t.Fatalf("deleted mailbox's dictionary: %v", got)
	}
}

// TestSubjectNumbersLevelGate: a mailbox created by a command stamped below
// FeatureSubjectNumbers is not complete in the numbers, and APPENDs into it (of any stamp)
// write none, as a build of level 4 does; the NumberMessagesCommands then number its
// entries in UID order, 2 a command, rewriting their thread-keys entries, to what APPENDs
// into a mailbox created at level 5 wrote; a command stamped 4 on a complete mailbox still
// numbers (the layout is kept whatever the stamp).
func TestSubjectNumbersLevelGate(t *testing.T) {
	h := withAccount(t)
	h.ok(stamped(cmdCreateMailbox(alice, "Old"), FeatureThreadKeys))
	old := h.mustMailbox(alice, "Old").GetId()
	h.ok(cmdCreateMailbox(alice, "New"))
	fresh := h.mustMailbox(alice, "New").GetId()
	subjects := []string{"b", "a", "b", "", "c"}
	h.ok(stamped(cmdAppendSubjects(alice, old, subjects[:3]...), FeatureThreadKeys))
	h.ok(cmdAppendSubjects(alice, old, subjects[3:]...)) // level 5, the mailbox not complete
	h.ok(cmdAppendSubjects(alice, fresh, subjects[:3]...))
	h.ok(stamped(cmdAppendSubjects(alice, fresh, subjects[3:]...), FeatureThreadKeys))
	if rec := h.mustMailboxRecord(old); rec.GetSubjectsComplete() || rec.GetLastSubjectNumber() != 0 {
		t.Fatalf("mailbox created at level 4: %v", rec)
	}
	if got := fmt.Sprint(h.subjectNumbersOf(old)); got != "map[1:-1 2:-1 3:-1 4:-1 5:-1]" {
		t.Fatalf("numbers written below the level: %s", got)
	}
	h.wantSortColumn()
	var through []uint32
	h.fillMailbox(old, 2, 5, func(_ int, out *metadatapb.NumberMessagesResult) {
		if n := out.GetSubjectsNumberedThroughUid(); n != 0 { // then the subject records
			through = append(through, n)
		}
	})
	if fmt.Sprint(through) != "[2 4]" {
		t.Fatalf("filled through %v", through)
	}
	want, got := h.subjectNumbersOf(fresh), h.subjectNumbersOf(old)
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(got) != "map[1:1 2:2 3:1 4:0 5:3]" {
		t.Fatalf("filled %v, appended at level 5 %v", got, want)
	}
	if !slices.Equal(h.subjectOrderOf(old), h.subjectOrderOf(fresh)) {
		t.Fatal("subject orders differ")
	}
	h.wantSortColumn() // the thread-keys entries follow the numbered column entries
	if !bytes.Equal(h.restored().digest(), h.digest()) {
		t.Fatal("a restored replica's store differs")
	}
}

// stamped sets cmd's feature level, as a leader of a group at that level does.
func stamped(cmd *metadatapb.Command, level uint32) *metadatapb.Command {
	cmd.FeatureLevel = &level
	return cmd
}
