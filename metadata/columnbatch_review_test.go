package metadata

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// wantSameAcrossCuts replays h's log (applied one entry per batch) from setup on in
// batches cut several ways (all in one; runs of 1, 2, 3 and 7; random runs of up to
// maxRun, the last of them with the store replaced by a snapshot of itself between some
// batches) and wants, for every cut, the results and every key and value that one entry
// per batch gave. atSetup (if not nil) is done to every replay's store at setup, as it
// was to h's.
func wantSameAcrossCuts(t *testing.T, h *harness, setup, maxRun int, atSetup func(*FSM)) {
	t.Helper()
	want := dumpStore(t, h.f)
	single := newHarness(t)
	var wantResults []any
	for i, l := range h.log {
		if i == setup && atSetup != nil {
			atSetup(single.f)
		}
		wantResults = append(wantResults, single.f.ApplyBatch([]*raft.Log{l})[0])
	}
	rng := rand.New(rand.NewPCG(24, 14))
	for _, cut := range []string{"all", "1", "2", "3", "7", "random", "restored"} {
		replay := newHarness(t)
		var got []any
		for _, l := range h.log[:setup] {
			got = append(got, replay.f.ApplyBatch([]*raft.Log{l})...)
		}
		if atSetup != nil {
			atSetup(replay.f)
		}
		for first := setup; first < len(h.log); {
			n := len(h.log)
			switch cut {
			case "all":
			case "random", "restored":
				n = 1 + rng.IntN(maxRun)
			default:
				fmt.Sscan(cut, &n)
			}
			last := min(first+n, len(h.log))
			got = append(got, replay.f.ApplyBatch(h.log[first:last])...)
			first = last
			if cut == "restored" && rng.IntN(3) == 0 {
				restoreSnapshot(t, replay.f, replay.f)
			}
		}
		for i := range got {
			if !proto.Equal(got[i].(*metadatapb.CommandResult), wantResults[i].(*metadatapb.CommandResult)) {
				t.Fatalf("batches of %s: entry %d answered %v, alone %v", cut, i, got[i], wantResults[i])
			}
		}
		if diff := diffStores(want, dumpStore(t, replay.f)); diff != "" {
			t.Fatalf("batches of %s: the store differs from one entry per batch: %s", cut, diff)
		}
	}
}

// cmdImportKeys is cmdImport of messages with sort keys (so with column entries and
// dates records), under uids in the order given.
func cmdImportKeys(account string, mailbox uint64, uidValidity uint32, uids []uint32, blobs ...string) *metadatapb.Command {
	msgs := cmdAppendKeys(account, mailbox, true, blobs...).GetAppend().GetMessages()
	return &metadatapb.Command{Op: &metadatapb.Command_ImportMessages{ImportMessages: &metadatapb.ImportMessagesRequest{
		Account: account, MailboxId: mailbox, Messages: msgs, Uids: uids, UidValidity: uidValidity,
	}}}
}

// TestColumnBatchSplitsLifecycle: the column chunks a batch writes once come out as one
// command per batch for the commands that move or destroy whole columns in a batch with
// appends: the INBOX rename (its messages move to a new mailbox), account deletion and
// recreation, tenant deletion, MOVE and COPY both ways, imports under UIDs across chunks,
// commands refused over quota, and the numbering fill of a level-2 mailbox.
func TestColumnBatchSplitsLifecycle(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdAccount("bob@example.org"))
	h.ok(cmdTenant("globex", "globex.example"))
	h.ok(cmdAccount("carol@globex.example"))
	h.ok(cmdCreateMailbox(alice, "Other"))
	l2 := uint32(FeatureSortDates)
	old := cmdCreateMailbox(alice, "Old")
	old.FeatureLevel = &l2
	h.ok(old)
	setup := len(h.log)
	apply := func(cmd *metadatapb.Command) *metadatapb.CommandResult { return h.apply(cmd) }
	inbox := func(account string) uint64 { return h.mustMailbox(account, "INBOX").GetId() }
	other := h.mustMailbox(alice, "Other").GetId()
	oldID := h.mustMailbox(alice, "Old").GetId()
	imported := 0
	for round := range 6 {
		for i := range 5 {
			apply(cmdAppendKeys(alice, inbox(alice), true, fmt.Sprintf("r%d-a%d", round, i), fmt.Sprintf("r%d-b%d", round, i)))
			apply(cmdAppendKeys("bob@example.org", inbox("bob@example.org"), true, fmt.Sprintf("r%d-bob%d", round, i)))
			apply(cmdAppendKeys("carol@globex.example", inbox("carol@globex.example"), true, fmt.Sprintf("r%d-carol%d", round, i)))
			oldAppend := cmdAppendKeys(alice, oldID, true, fmt.Sprintf("r%d-old%d", round, i))
			oldAppend.FeatureLevel = &l2
			apply(oldAppend)
		}
		apply(cmdCopy(alice, inbox(alice), other, true, uidRange(1, 4)))
		apply(cmdCopy(alice, other, inbox(alice), false, uidRange(1, 1000)))
		apply(cmdStore(alice, inbox(alice), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1000)}, `\Seen`))
		apply(cmdExpunge(alice, other, uidRange(2, 3)))
		apply(cmdNumberMessages(alice, oldID, 3))
		apply(cmdAppendKeys(alice, inbox(alice), true, fmt.Sprintf("r%d-after-move", round)))
		// The INBOX rename moves INBOX's messages (and their column entries) to a new
		// mailbox, in the batch of the appends before and after it.
		apply(cmdRename(alice, "INBOX", fmt.Sprintf("Archive%d", round)))
		apply(cmdAppendKeys(alice, inbox(alice), true, fmt.Sprintf("r%d-after-rename", round)))
		archive := h.mustMailbox(alice, fmt.Sprintf("Archive%d", round)).GetId()
		apply(cmdAppendKeys(alice, archive, true, fmt.Sprintf("r%d-archive", round)))
		apply(cmdCopy(alice, archive, inbox(alice), true, uidRange(3, 6)))
		// Imports under UIDs across chunks, into a mailbox made for them.
		name := fmt.Sprintf("Imported%d", round)
		apply(cmdCreateMailbox(alice, name))
		if mb := h.mailbox(alice, name); mb != nil {
			res := apply(cmdImportKeys(alice, mb.GetId(), 777+uint32(round), []uint32{5, 10, 20, 4999, 5000}, "i1", "i2", "i3", "i4", "i5"))
			if res.GetCode() == 0 {
				imported++
			}
			apply(cmdAppendKeys(alice, mb.GetId(), true, fmt.Sprintf("r%d-after-import", round)))
			apply(cmdExpunge(alice, mb.GetId(), uidRange(10, 20)))
		}
		// Bob's account goes and comes back in the batch of his appends.
		if round%2 == 1 {
			apply(cmdDeleteAccount("bob@example.org"))
			apply(cmdAccount("bob@example.org"))
			apply(cmdAppendKeys("bob@example.org", inbox("bob@example.org"), true, fmt.Sprintf("r%d-bob-again", round)))
		}
		// Quota: the last appends and copies are refused.
		if round == 2 {
			limit := uint64(3)
			apply(cmdSetQuota("carol@globex.example", "", nil, &limit))
		}
		apply(cmdAppendKeys("carol@globex.example", inbox("carol@globex.example"), true, fmt.Sprintf("r%d-carol-last", round)))
		apply(cmdDeleteMailbox(alice, "Other"))
		apply(cmdCreateMailbox(alice, "Other"))
		other = h.mustMailbox(alice, "Other").GetId()
		apply(cmdCopy(alice, inbox(alice), other, false, uidRange(1, 1000)))
	}
	apply(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "globex", Force: true}}})
	apply(cmdAppendKeys(alice, inbox(alice), true, "last"))
	if imported != 6 {
		t.Fatalf("%d imports of 6 were taken", imported)
	}
	h.wantSortColumn()
	wantSameAcrossCuts(t, h, setup, 12, nil)
}

// TestColumnBatchSplitsRandom: random runs of the commands that edit the columns (appends
// of one to three messages, STORE, EXPUNGE, COPY and MOVE between three mailboxes, the
// numbering fill of a level-2 mailbox, mailbox deletion and re-creation, the INBOX
// rename) over a few chunks, replayed in batches cut several ways.
func TestColumnBatchSplitsRandom(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 14))
			h := withAAndOld(t)
			l2 := uint32(FeatureSortDates)
			setup := len(h.log)
			names := []string{"INBOX", "A", "Old"}
			id := func(name string) uint64 {
				if mb := h.mailbox(alice, name); mb != nil {
					return mb.GetId()
				}
				return 999999
			}
			randomRange := func() *metadatapb.UidRange {
				first := uint32(1 + rng.IntN(400))
				return uidRange(first, first+uint32(rng.IntN(60)))
			}
			renames := 0
			for step := range 400 {
				name := names[rng.IntN(len(names))]
				switch k := rng.IntN(20); {
				case k < 10:
					var blobs []string
					for m := range 1 + rng.IntN(3) {
						blobs = append(blobs, fmt.Sprintf("s%d-%d", step, m))
					}
					cmd := cmdAppendKeys(alice, id(name), true, blobs...)
					if name == "Old" {
						cmd.FeatureLevel = &l2
					}
					h.apply(cmd)
				case k < 12:
					op := metadatapb.FlagOp_FLAG_OP_ADD
					if rng.IntN(2) == 0 {
						op = metadatapb.FlagOp_FLAG_OP_REMOVE
					}
					h.apply(cmdStore(alice, id(name), op, []*metadatapb.UidRange{randomRange()}, `\Flagged`))
				case k < 14:
					h.apply(cmdExpunge(alice, id(name), randomRange()))
				case k < 16:
					h.apply(cmdCopy(alice, id(name), id(names[rng.IntN(len(names))]), rng.IntN(2) == 0, randomRange()))
				case k < 18:
					h.apply(cmdNumberMessages(alice, id("Old"), uint32(1+rng.IntN(40))))
				case k < 19:
					h.apply(cmdDeleteMailbox(alice, "A"))
					h.apply(cmdCreateMailbox(alice, "A"))
				default:
					renames++
					h.apply(cmdRename(alice, "INBOX", fmt.Sprintf("Archive%d", renames)))
				}
			}
			h.wantSortColumn()
			wantSameAcrossCuts(t, h, setup, 12, nil)
		})
	}
}

// withAAndOld is withAccount with alice's mailboxes A and Old, Old created by a command of
// level 2, so that its newer layouts are filled later (numberfill.go).
func withAAndOld(t *testing.T) *harness {
	t.Helper()
	h := withAccount(t)
	l2 := uint32(FeatureSortDates)
	for _, name := range []string{"A", "Old"} {
		cmd := cmdCreateMailbox(alice, name)
		if name == "Old" {
			cmd.FeatureLevel = &l2
		}
		h.ok(cmd)
	}
	return h
}

// restoreSnapshot restores into dst a snapshot of src, taken between batches (dst may
// be src).
func restoreSnapshot(t *testing.T, src, dst *FSM) {
	t.Helper()
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := dst.Restore(readCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
}
