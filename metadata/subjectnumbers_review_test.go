package metadata

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Review of subjnum24 (subject dictionary, feature level 5).

// TestSubjectNumbersBoundReview: once a mailbox's dictionary gave maxSubjectNumber
// numbers, a new subject's entry is left unnumbered (its thread-keys entry keeps the
// string), a subject already numbered still gets its number, "" stays 0, and the
// order lists only the numbers given; the fill stops at the same bound; a subject longer
// than maxNumberedSubject is not numbered, one of exactly that length is. Replicas agree.
func TestSubjectNumbersBoundReview(t *testing.T) {
	old := maxSubjectNumber
	maxSubjectNumber = 2
	t.Cleanup(func() { maxSubjectNumber = old })
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppendSubjects(alice, inbox, "b", "a", "c", "b", "", "a"))
	if got := fmt.Sprint(h.subjectNumbersOf(inbox)); got != "map[1:1 2:2 3:-1 4:1 5:0 6:2]" {
		t.Fatalf("subject numbers at the bound %s", got)
	}
	if got := fmt.Sprint(h.subjectOrderOf(inbox)); got != "[2 1]" {
		t.Fatalf("subject order %s", got)
	}
	if rec := h.mustMailboxRecord(inbox); rec.GetLastSubjectNumber() != 2 {
		t.Fatalf("last subject number %d", rec.GetLastSubjectNumber())
	}
	h.wantSortColumn() // the unnumbered entry's thread keys keep "c"

	// The fill of a mailbox created at level 4 stops at the same bound.
	level := FeatureThreadKeys
	create := cmdCreateMailbox(alice, "Old")
	create.FeatureLevel = &level
	h.ok(create)
	oldBox := h.mustMailbox(alice, "Old").GetId()
	appendOld := cmdAppendSubjects(alice, oldBox, "b", "a", "c", "b", "", "a")
	appendOld.FeatureLevel = &level
	h.ok(appendOld)
	h.fillMailbox(oldBox, 2, 10, nil)
	if got := fmt.Sprint(h.subjectNumbersOf(oldBox)); got != "map[1:1 2:2 3:-1 4:1 5:0 6:2]" {
		t.Fatalf("filled at the bound %s", got)
	}
	if rec := h.mustMailboxRecord(oldBox); !rec.GetSubjectsComplete() || rec.GetLastSubjectNumber() != 2 {
		t.Fatalf("filled record %v", rec)
	}
	h.wantSortColumn()

	h.ok(cmdCreateMailbox(alice, "Long")) // still at the bound of 2 numbers
	long := h.mustMailbox(alice, "Long").GetId()
	h.ok(cmdAppendSubjects(alice, long, strings.Repeat("x", maxNumberedSubject+1), strings.Repeat("x", maxNumberedSubject), "y"))
	if got := fmt.Sprint(h.subjectNumbersOf(long)); got != "map[1:-1 2:1 3:2]" {
		t.Fatalf("long subjects %s", got)
	}
	h.wantSortColumn()
	if !bytes.Equal(h.restored().digest(), h.digest()) {
		t.Fatal("a restored replica's store differs")
	}
}

// TestSubjectNumbersStampedFillReview: a NumberMessagesCommand stamped below
// FeatureSubjectNumbers, on a mailbox complete in the four layouts before, answers
// complete and numbers no subject, as a build of level 4 does (its result is in the
// digest); one stamped 5 then numbers them all; a level-4 stamped fill of a mailbox
// missing its thread keys fills those and answers complete without numbering subjects.
func TestSubjectNumbersStampedFillReview(t *testing.T) {
	h := withAccount(t)
	level := FeatureThreadKeys
	stamped := func(cmd *metadatapb.Command) *metadatapb.Command {
		cmd.FeatureLevel = &level
		return cmd
	}
	h.ok(stamped(cmdCreateMailbox(alice, "Old")))
	box := h.mustMailbox(alice, "Old").GetId()
	h.ok(stamped(cmdAppendSubjects(alice, box, "b", "a", "b")))
	out := h.ok(stamped(cmdNumberMessages(alice, box, 10))).GetNumberMessages()
	if !out.GetComplete() || out.GetSubjectsNumbered() != 0 {
		t.Fatalf("level-4 fill answered %v", out)
	}
	if got := fmt.Sprint(h.subjectNumbersOf(box)); got != "map[1:-1 2:-1 3:-1]" {
		t.Fatalf("a level-4 fill numbered subjects: %s", got)
	}
	if rec := h.mustMailboxRecord(box); rec.GetSubjectsComplete() || rec.GetSubjectsNumberedThroughUid() != 0 || rec.GetLastSubjectNumber() != 0 {
		t.Fatalf("a level-4 fill changed the record: %v", rec)
	}
	h.fillMailbox(box, 10, 3, nil)
	if got := fmt.Sprint(h.subjectNumbersOf(box)); got != "map[1:1 2:2 3:1]" {
		t.Fatalf("level-5 fill: %s", got)
	}
	if got := h.subjectOrderOf(box); !slices.Equal(got, []uint32{2, 1}) {
		t.Fatalf("order %v", got)
	}
	h.wantSortColumn()
}
