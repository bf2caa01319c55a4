package metadata

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdImport(account string, mailbox uint64, uidValidity uint32, uids []uint32, blobs ...string) *metadatapb.Command {
	req := cmdAppend(account, mailbox, blobs...).GetAppend()
	return &metadatapb.Command{Op: &metadatapb.Command_ImportMessages{ImportMessages: &metadatapb.ImportMessagesRequest{
		Account: account, MailboxId: mailbox, Messages: req.GetMessages(), Uids: uids, UidValidity: uidValidity,
	}}}
}

// TestImportKeepsUIDs: an import into a mailbox that never held a message takes the
// source's UIDVALIDITY and UIDs; UIDNEXT, HIGHESTMODSEQ and the counts follow; later
// appends continue above; a mailbox that held messages keeps its UIDVALIDITY; UIDs that
// go backwards or under UIDNEXT are refused; a new UIDVALIDITY is above the imported one.
func TestImportKeepsUIDs(t *testing.T) {
	h := withAccount(t)
	archive := h.mustMailbox(alice, "Archive")
	const sourceValidity = 4000000000 // above any log-time value, so raising shows
	before := archive.GetHighestModseq()
	r := h.ok(cmdImport(alice, archive.GetId(), sourceValidity, []uint32{3, 7, 8}, "b1", "b2", "b3")).GetAppend()
	if r.GetUidValidity() != sourceValidity || !slices.Equal(r.GetUids(), []uint32{3, 7, 8}) {
		t.Fatalf("import answered %v", r)
	}
	box := h.mustMailbox(alice, "Archive")
	if box.GetUidValidity() != sourceValidity || box.GetUidNext() != 9 || box.GetMessages() != 3 || box.GetHighestModseq() != before+1 || r.GetModseq() != box.GetHighestModseq() {
		t.Fatalf("after the import: %v", box)
	}
	if box.GetObjectId() == archive.GetObjectId() {
		t.Fatal("MAILBOXID not minted again with the new UIDVALIDITY")
	}
	list := h.messages(alice, box.GetId())
	if !slices.Equal(list.GetUids(), []uint32{3, 7, 8}) {
		t.Fatalf("stored UIDs %v", list.GetUids())
	}
	// A second batch continues, with the same UIDVALIDITY given again.
	h.ok(cmdImport(alice, box.GetId(), sourceValidity, []uint32{10}, "b4"))
	if got := h.ok(cmdAppend(alice, box.GetId(), "b5")).GetAppend().GetUids(); !slices.Equal(got, []uint32{11}) {
		t.Fatalf("append after the import got UIDs %v", got)
	}
	h.fails(codes.FailedPrecondition, cmdImport(alice, box.GetId(), 0, []uint32{11}, "b6"))
	h.fails(codes.FailedPrecondition, cmdImport(alice, box.GetId(), sourceValidity+1, nil, "b6"))
	h.fails(codes.InvalidArgument, cmdImport(alice, box.GetId(), 0, []uint32{20, 20}, "b6", "b7"))
	h.fails(codes.InvalidArgument, cmdImport(alice, box.GetId(), 0, []uint32{20}, "b6", "b7"))
	h.fails(codes.InvalidArgument, cmdImport(alice, box.GetId(), 0, []uint32{maxUID}, "b6"))
	if box := h.mustMailbox(alice, "Archive"); box.GetUidNext() != 12 || box.GetMessages() != 5 {
		t.Fatalf("refused imports changed the mailbox: %v", box)
	}
	// Without UIDs the import appends under the next ones.
	if got := h.ok(cmdImport(alice, box.GetId(), 0, nil, "b8")).GetAppend().GetUids(); !slices.Equal(got, []uint32{12}) {
		t.Fatalf("import without UIDs got %v", got)
	}
	// Without messages, an import only sets the UIDVALIDITY of an unused mailbox.
	h.ok(cmdCreateMailbox(alice, "Empty"))
	empty := h.mustMailbox(alice, "Empty")
	h.ok(cmdImport(alice, empty.GetId(), sourceValidity-5, nil))
	if box := h.mustMailbox(alice, "Empty"); box.GetUidValidity() != sourceValidity-5 || box.GetUidNext() != 1 || box.GetMessages() != 0 {
		t.Fatalf("empty mailbox after a UIDVALIDITY import: %v", box)
	}
	h.fails(codes.InvalidArgument, cmdImport(alice, empty.GetId(), 0, nil))
	h.ok(cmdCreateMailbox(alice, "Later"))
	if v := h.mustMailbox(alice, "Later").GetUidValidity(); v <= sourceValidity {
		t.Fatalf("new mailbox got UIDVALIDITY %d, not above the imported %d", v, uint32(sourceValidity))
	}
	replay := newHarness(t)
	replay.f.ApplyBatch(h.log)
	if !bytes.Equal(replay.digest(), h.digest()) {
		t.Fatal("replayed log has another digest")
	}
}

// TestImportRecordsSourceUIDs: an import with source UIDs stores each message's in its
// record, with the copy or with new UIDs; ListMessages lists them when asked (0 for mail
// that was not imported); a flag change keeps them; a COPY or MOVE does not carry them;
// a count that differs from the messages' is refused.
func TestImportRecordsSourceUIDs(t *testing.T) {
	h := withAccount(t)
	box := h.mustMailbox(alice, "Archive")
	h.ok(cmdImport(alice, box.GetId(), 0, []uint32{5, 9}, "b1", "b2"))
	h.ok(cmdAppend(alice, box.GetId(), "b3"))
	imp := cmdImport(alice, box.GetId(), 0, nil, "b4", "b5")
	imp.GetImportMessages().SourceUids = []uint32{2, 3}
	h.ok(imp)
	kept := cmdImport(alice, box.GetId(), 0, []uint32{20}, "b6")
	kept.GetImportMessages().SourceUids = []uint32{20}
	h.ok(kept)
	h.ok(cmdStore(alice, box.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 0)}, `\Flagged`))
	bad := cmdImport(alice, box.GetId(), 0, nil, "b7", "b8")
	bad.GetImportMessages().SourceUids = []uint32{7}
	h.fails(codes.InvalidArgument, bad)

	list := func(mailbox uint64) ([]uint32, []uint32) {
		t.Helper()
		v := h.f.view()
		defer v.close()
		b, _, err := v.mailbox(alice, mailbox)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := v.messageList(b, listingQuery{owner: alice, dictionary: true, sourceUIDs: true})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetUids(), resp.GetSourceUids()
	}
	uids, sources := list(box.GetId())
	if !slices.Equal(uids, []uint32{5, 9, 10, 11, 12, 20}) || !slices.Equal(sources, []uint32{0, 0, 0, 2, 3, 20}) {
		t.Fatalf("UIDs %v with source UIDs %v", uids, sources)
	}
	h.ok(cmdCreateMailbox(alice, "Other"))
	other := h.mustMailbox(alice, "Other")
	h.ok(cmdCopy(alice, box.GetId(), other.GetId(), false, uidRange(11, 11)))
	h.ok(cmdCopy(alice, box.GetId(), other.GetId(), true, uidRange(20, 20)))
	if uids, sources := list(other.GetId()); len(uids) != 2 || !slices.Equal(sources, []uint32{0, 0}) {
		t.Fatalf("copied and moved messages: UIDs %v with source UIDs %v", uids, sources)
	}
	replay := newHarness(t)
	replay.f.ApplyBatch(h.log)
	if !bytes.Equal(replay.digest(), h.digest()) {
		t.Fatal("replayed log has another digest")
	}
}
