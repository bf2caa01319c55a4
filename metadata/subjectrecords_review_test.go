package metadata

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestSubjectRecordsFillAcrossBatchCuts (review of subjrec25): the subject projection's
// fill of a mailbox created at level 5 (three chunks of UIDs), its NumberMessagesCommands
// of 40 entries interleaved with APPENDs, EXPUNGEs across chunks, a MOVE out to a level-6
// mailbox and a COPY back, and the level-6 mailbox deleted and made again, replayed in
// batches cut several ways: the same results and store as one entry per batch, and
// records exactly for the column's entries once complete (wantSortColumn).
func TestSubjectRecordsFillAcrossBatchCuts(t *testing.T) {
	h := withAccount(t)
	l5 := FeatureSubjectNumbers
	old := cmdCreateMailbox(alice, "Old")
	old.FeatureLevel = &l5
	h.ok(old)
	h.ok(cmdCreateMailbox(alice, "New"))
	oldID, newID := h.mustMailbox(alice, "Old").GetId(), h.mustMailbox(alice, "New").GetId()
	for round := range 10 {
		var subjects []string
		for i := range 30 {
			subjects = append(subjects, fmt.Sprintf("s%d", (round*30+i)%17))
		}
		h.ok(cmdAppendSubjects(alice, oldID, subjects...))
	}
	setup := len(h.log)
	for step := range 14 {
		h.apply(cmdNumberMessages(alice, oldID, 40))
		h.apply(cmdAppendSubjects(alice, oldID, fmt.Sprintf("n%d", step), "s3"))
		lo := uint32(20*step + 1)
		h.apply(cmdStore(alice, oldID, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(lo, lo+2), uidRange(lo+127, lo+129)}, `\Deleted`))
		h.apply(cmdExpunge(alice, oldID))
		h.apply(cmdNumberMessages(alice, oldID, 40))
		h.apply(cmdCopy(alice, oldID, newID, true, uidRange(lo+5, lo+6), uidRange(lo+200, lo+201)))
		h.apply(cmdCopy(alice, newID, oldID, false, uidRange(1, 1<<20)))
		if step%5 == 4 {
			h.apply(cmdDeleteMailbox(alice, "New"))
			h.apply(cmdCreateMailbox(alice, "New"))
			newID = h.mustMailbox(alice, "New").GetId()
		}
	}
	if rec := h.mustMailboxRecord(oldID); !rec.GetSubjectRecordsComplete() {
		t.Fatalf("not filled: %v", rec)
	}
	h.wantSortColumn()
	wantSameAcrossCuts(t, h, setup, 9, nil)
}

// TestSubjectRecordsMixedGroup (review of subjrec25): a group of a level-6 build and one
// of level 4 or 5 (played, preStampBuild), applying the clients' commands stamped with the
// group's level and the fill's NumberMessagesCommands of that level, answers and stores
// the same (no subject record, no subject_records_complete); once the group is at level 6
// the fill gives the level-6 replica's mailboxes what a mailbox complete from the start
// holds.
func TestSubjectRecordsMixedGroup(t *testing.T) {
	complete := newHarness(t)
	completeBoxes := mixedScript(t, complete.f, complete.ok)
	for _, level := range []uint32{FeatureThreadKeys, FeatureSubjectNumbers} {
		t.Run(fmt.Sprintf("level%d", level), func(t *testing.T) {
			stamped, old := newHarness(t), newHarness(t)
			old.f.preStampBuild.Store(level)
			apply := func(cmd *metadatapb.Command) *metadatapb.CommandResult {
				cmd.FeatureLevel = &level
				res := stamped.ok(cmd)
				again := proto.Clone(cmd).(*metadatapb.Command)
				if got := old.ok(again); !proto.Equal(got, res) {
					t.Fatalf("%T: the level-6 build answered %v, the level-%d build %v", cmd.GetOp(), res, level, got)
				}
				return res
			}
			boxes := mixedScript(t, stamped.f, apply)
			for _, box := range boxes {
				for range 8 {
					apply(cmdNumberMessages(alice, box, 64))
				}
				if n := countKeys(t, stamped.f, prefixSubjectRecords, box); n != 0 || stamped.mustMailboxRecord(box).GetSubjectRecordsComplete() {
					t.Fatalf("mailbox %d at level %d: %d subject chunks", box, level, n)
				}
			}
			if !bytes.Equal(stamped.digest(), old.digest()) {
				t.Fatalf("level %d: the level-6 build's digest differs from the level-%d build's", level, level)
			}
			stamped.wantSortColumn()
			for i, box := range boxes {
				stamped.fillMailbox(box, 64, 40, nil)
				if got, want := numberState(t, stamped.f, box), numberState(t, complete.f, completeBoxes[i]); !bytes.Equal(got, want) {
					t.Fatalf("mailbox %d filled: its record and columns differ from a mailbox complete from the start", box)
				}
			}
			stamped.wantSortColumn()
		})
	}
}
