package metadata

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestAppendReplace: an APPEND that replaces a message (RFC 8508) expunges it in the same
// command, and fails whole, appending nothing, when that message is gone.
func TestAppendReplace(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	drafts := h.mustMailbox(alice, "Drafts")
	h.ok(cmdAppend(alice, drafts.GetId(), "blob-1", "blob-2"))
	replace := func(uid uint32) *metadatapb.Command {
		cmd := cmdAppend(alice, inbox.GetId(), "blob-3")
		a := cmd.GetAppend()
		a.ReplaceUid, a.ReplaceMailboxId = uid, drafts.GetId()
		return cmd
	}
	res := h.ok(replace(1)).GetAppend()
	if res.GetReplacedModseq() == 0 || len(res.GetUids()) != 1 {
		t.Fatalf("replace = %v", res)
	}
	if d, i := h.mustMailbox(alice, "Drafts"), h.mustMailbox(alice, "INBOX"); d.GetMessages() != 1 || i.GetMessages() != 1 || d.GetHighestModseq() != res.GetReplacedModseq() {
		t.Fatalf("after replace: Drafts %v, INBOX %v", d, i)
	}
	h.fails(codes.FailedPrecondition, replace(1))
	if i := h.mustMailbox(alice, "INBOX"); i.GetMessages() != 1 {
		t.Fatalf("a failed replace appended: INBOX %v", i)
	}
}

// TestAppendMailboxName: an append that names the mailbox it expects (mailbox_name, what a
// frontend sends when it remembers where a name led) is refused as NOT_FOUND, appending
// nothing, once the mailbox is renamed, and applies as before while the name holds.
func TestAppendMailboxName(t *testing.T) {
	h := withAccount(t)
	drafts := h.mustMailbox(alice, "Drafts")
	named := func(name, blob string) *metadatapb.Command {
		cmd := cmdAppend(alice, drafts.GetId(), blob)
		cmd.GetAppend().MailboxName = name
		return cmd
	}
	h.ok(named("Drafts", "blob-1"))
	h.ok(cmdRename(alice, "Drafts", "Old drafts"))
	h.fails(codes.NotFound, named("Drafts", "blob-2"))
	if box := h.mustMailbox(alice, "Old drafts"); box.GetId() != drafts.GetId() || box.GetMessages() != 1 {
		t.Fatalf("after a refused append by the old name: %v", box)
	}
	h.ok(named("Old drafts", "blob-3"))
	if box := h.mustMailbox(alice, "Old drafts"); box.GetMessages() != 2 {
		t.Fatalf("after an append by the new name: %v", box)
	}
}
