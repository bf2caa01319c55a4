package metadata

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// mixedScript is what clients' commands do to a group during a rolling upgrade: an account
// created (with its INBOX), a mailbox created, APPENDs with sort keys, flag changes, an
// EXPUNGE, a COPY and a MOVE into a second mailbox, and an APPEND to the INBOX. apply
// proposes each command; f is a replica to read the INBOX's id from. It returns the ids of
// the INBOX and the two mailboxes.
func mixedScript(t testing.TB, f *FSM, apply func(*metadatapb.Command) *metadatapb.CommandResult) []uint64 {
	t.Helper()
	apply(cmdTenant("example", "Example.ORG"))
	apply(cmdAccount("Alice@Example.org"))
	v := f.view()
	box, found, err := v.mailboxByName(alice, "INBOX")
	v.close()
	if err != nil || !found {
		t.Fatalf("INBOX: %v %v", found, err)
	}
	inbox := box.GetId()
	mixed := apply(cmdCreateMailbox(alice, "Mixed")).GetMailbox().GetId()
	archive := apply(cmdCreateMailbox(alice, "Moved")).GetMailbox().GetId()
	for first := 0; first < 300; first += 100 {
		var ids [][]string
		for i := first; i < first+100; i++ {
			ids = append(ids, []string{fmt.Sprintf("m%d@x", i), fmt.Sprintf("m%d@x", i/2)})
		}
		apply(cmdAppendThread(alice, mixed, ids...))
	}
	apply(cmdStore(alice, mixed, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 40)}, `\Seen`))
	apply(cmdStore(alice, mixed, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(20, 30), uidRange(250, 260)}, `\Deleted`))
	apply(cmdExpunge(alice, mixed))
	apply(cmdCopy(alice, mixed, archive, false, uidRange(1, 10)))
	apply(cmdCopy(alice, mixed, archive, true, uidRange(100, 120)))
	apply(cmdAppendThread(alice, inbox, []string{"in@x", "m1@x"}))
	return []uint64{inbox, mixed, archive}
}

// countKeys is the number of f's keys under prefix for mailbox.
func countKeys(t testing.TB, f *FSM, prefix byte, mailbox uint64) int {
	t.Helper()
	v := f.view()
	defer v.close()
	n := 0
	if err := scan(v.r, mailboxPrefix(prefix, mailbox), mailboxPrefixEnd(prefix, mailbox), func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// listing is mailbox's SELECT listing read from f as ListMessages reads it (from the
// listing column if the record says listing_column, else from the records).
func listing(t testing.TB, f *FSM, mailbox uint64) *metadatapb.ListMessagesResponse {
	t.Helper()
	rec := must(getMailboxRecord(f, mailbox))
	v := f.view()
	defer v.close()
	resp, err := v.messageList(rec.GetMailbox(), listingQuery{owner: alice, user: alice, dictionary: true, column: rec.GetListingColumn()})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sortDates is mailbox's dates projection read from f as ReadSortColumn (dates_only) reads
// it: from its chunks if the record says dates_complete, else derived from the column.
func sortDates(t testing.TB, f *FSM, mailbox uint64) []byte {
	t.Helper()
	read := (*view).sortDatesFromColumn
	if must(getMailboxRecord(f, mailbox)).GetDatesComplete() {
		read = (*view).sortDateRecords
	}
	v := f.view()
	defer v.close()
	var out []byte
	for after := uint32(0); ; {
		recs, last, more, err := read(v, mailbox, after, sortColumnChunkBytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
		if !more {
			return out
		}
		after = last
	}
}

// TestStampedLevelWritesAsThatBuild: for each level, an FSM that applies commands stamped
// with it (Command.feature_level) stores exactly what an FSM playing a build of that level
// from before the stamp stores from the same commands unstamped (digests equal): below
// FeatureSortDates no dates projection and no mailbox dates_complete, below
// FeatureListingColumn no listing column and no mailbox listing_column; at level 3, what
// this build stores unstamped. The layouts left out are then filled by the backfill
// (NumberMessagesCommand) to what a mailbox complete from the start holds, and the
// listings and dates read the same before (from the records, derived from the column) and
// after (from the layouts).
func TestStampedLevelWritesAsThatBuild(t *testing.T) {
	complete := newHarness(t)
	completeBoxes := mixedScript(t, complete.f, complete.ok)
	for _, level := range []uint32{FeatureMessageNumbers, FeatureSortDates, FeatureListingColumn} {
		t.Run(fmt.Sprintf("level%d", level), func(t *testing.T) {
			stamped, old := newHarness(t), newHarness(t)
			old.f.preStampBuild.Store(level)
			apply := func(cmd *metadatapb.Command) *metadatapb.CommandResult {
				unstamped := proto.Clone(cmd).(*metadatapb.Command)
				cmd.FeatureLevel = &level
				res := stamped.ok(cmd)
				unstamped.RequestId = cmd.GetRequestId()
				if got := old.ok(unstamped); !proto.Equal(got, res) {
					t.Fatalf("%T: the stamped FSM answered %v, the old build %v", cmd.GetOp(), res, got)
				}
				return res
			}
			boxes := mixedScript(t, stamped.f, apply)
			if !bytes.Equal(stamped.digest(), old.digest()) {
				t.Fatalf("level %d: the stamped FSM's digest differs from the old build's", level)
			}
			for _, box := range boxes {
				rec := stamped.mustMailboxRecord(box)
				dates, listed := countKeys(t, stamped.f, prefixSortDates, box), countKeys(t, stamped.f, prefixListingChunk, box)
				if rec.GetDatesComplete() != (level >= FeatureSortDates) || (dates == 0) != (level < FeatureSortDates) {
					t.Fatalf("mailbox %d at level %d: dates_complete %v, %d dates chunks", box, level, rec.GetDatesComplete(), dates)
				}
				if rec.GetListingColumn() != (level >= FeatureListingColumn) || (listed == 0) != (level < FeatureListingColumn) {
					t.Fatalf("mailbox %d at level %d: listing_column %v, %d listing chunks", box, level, rec.GetListingColumn(), listed)
				}
			}
			var before []*metadatapb.ListMessagesResponse
			var datesBefore [][]byte
			for _, box := range boxes {
				before = append(before, listing(t, stamped.f, box))
				datesBefore = append(datesBefore, sortDates(t, stamped.f, box))
				stamped.fillMailbox(box, 100, 20, nil)
			}
			for i, box := range boxes {
				if after := listing(t, stamped.f, box); !proto.Equal(before[i], after) {
					t.Fatalf("mailbox %d: the listing from the filled column differs from the one from the records", box)
				}
				if after := sortDates(t, stamped.f, box); len(after) == 0 || !bytes.Equal(datesBefore[i], after) {
					t.Fatalf("mailbox %d: the dates from the filled projection differ from those derived from the column", box)
				}
				if got, want := numberState(t, stamped.f, box), numberState(t, complete.f, completeBoxes[i]); !bytes.Equal(got, want) {
					t.Fatalf("mailbox %d filled: its record and columns differ from a mailbox complete from the start", box)
				}
				if got, want := stamped.listingEntries(box), complete.listingEntries(completeBoxes[i]); !slices.Equal(got, want) {
					t.Fatalf("mailbox %d filled: listing column %v, want %v", box, got, want)
				}
			}
		})
	}
}

// restoreInto restores a snapshot of src into a new FSM, which plays a build from before
// the stamp of level playBuild if that is not 0.
func restoreInto(t *testing.T, src *FSM, playBuild uint32) *FSM {
	t.Helper()
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	dst, err := OpenFSM(filepath.Join(t.TempDir(), "fsm"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	dst.preStampBuild.Store(playBuild)
	if err := dst.Restore(readCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestMixedGroupWritesNoNewLayout: a real three-voter Raft group in a rolling upgrade,
// replica 2 still on a build of FeatureSortDates from before Command.feature_level (it
// reports level 2 and applies as that build: no listing column). The leader stamps the
// group's level 2 on the commands of mixedScript, so no replica writes a listing chunk or
// marks a mailbox listing_column, the dates projection is written everywhere, and every
// replica's digest is equal; a snapshot of the old replica restores on this build, and one
// of a new replica on the old build, to the same digest, and the listing reads from the
// records. Then replica 2 is upgraded: the background fill gives every mailbox its column
// and ends, the listings read the same from it, a mailbox created now is listing_column
// from the start, and the digests are equal again.
func TestMixedGroupWritesNoNewLayout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	g := newNumberingGroup(t, ctx, 3)
	g.fsms[2].preStampBuild.Store(FeatureSortDates)
	g.admins[2].SetFeatureLevel(FeatureSortDates)
	boxes := mixedScript(t, g.fsms[0], func(cmd *metadatapb.Command) *metadatapb.CommandResult { return g.propose(ctx, cmd) })
	g.sameDigests()
	for i, f := range g.fsms {
		for _, box := range boxes {
			rec := must(getMailboxRecord(f, box))
			if rec.GetListingColumn() || !rec.GetDatesComplete() {
				t.Fatalf("replica %d, mailbox %d at level 2: listing_column %v, dates_complete %v", i, box, rec.GetListingColumn(), rec.GetDatesComplete())
			}
			if n := countKeys(t, f, prefixListingChunk, box); n != 0 {
				t.Fatalf("replica %d, mailbox %d at level 2: %d listing chunks", i, box, n)
			}
			if n := countKeys(t, f, prefixSortDates, box); n == 0 {
				t.Fatalf("replica %d, mailbox %d at level 2: no dates chunk", i, box)
			}
		}
	}
	want0, err := g.fsms[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	before := map[uint64]*metadatapb.ListMessagesResponse{}
	for _, box := range boxes {
		before[box] = listing(t, g.fsms[0], box)
		if len(before[box].GetUids()) == 0 {
			t.Fatalf("mailbox %d lists nothing", box)
		}
	}
	for _, restored := range []*FSM{restoreInto(t, g.fsms[2], 0), restoreInto(t, g.fsms[0], FeatureSortDates)} {
		if d, err := restored.Digest(); err != nil || !bytes.Equal(d, want0) {
			t.Fatalf("a restored snapshot's digest differs (%v)", err)
		}
		for _, box := range boxes {
			if got := listing(t, restored, box); !proto.Equal(got, before[box]) {
				t.Fatalf("mailbox %d restored lists %v, want %v", box, got, before[box])
			}
		}
	}

	// The upgrade of replica 2: it applies as this build and reports its level.
	g.fsms[2].preStampBuild.Store(0)
	g.admins[2].SetFeatureLevel(FeatureLevel)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		g.svc.RunMessageNumbering(ctx, MessageNumbering{Idle: 10 * time.Millisecond, Duty: 1})
	}()
	<-ran
	fresh := g.propose(ctx, cmdCreateMailbox(alice, "After")).GetMailbox().GetId()
	g.propose(ctx, cmdAppendThread(alice, fresh, []string{"a@x"}))
	g.sameDigests()
	for i, f := range g.fsms {
		for _, box := range append(boxes, fresh) {
			rec := must(getMailboxRecord(f, box))
			if !rec.GetListingColumn() || !rec.GetDatesComplete() || !rec.GetNumbersComplete() {
				t.Fatalf("replica %d, mailbox %d after the upgrade: %v", i, box, rec)
			}
			if n := countKeys(t, f, prefixListingChunk, box); n == 0 {
				t.Fatalf("replica %d, mailbox %d after the upgrade: no listing chunk", i, box)
			}
		}
		for _, box := range boxes {
			if got := listing(t, f, box); !proto.Equal(got, before[box]) {
				t.Fatalf("replica %d, mailbox %d lists %v from its column, %v from its records", i, box, got, before[box])
			}
		}
	}
}
