package metadata

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdClaimRecent(user, owner string, mailbox uint64, upTo uint32) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_ClaimRecent{ClaimRecent: &metadatapb.ClaimRecentRequest{User: user, Account: owner, MailboxId: mailbox, UpToUid: upTo}}}
}

// claim applies a ClaimRecent and returns the UIDs it claimed as "[first,next)".
func (h *harness) claim(user, owner string, mailbox uint64, upTo uint32) string {
	h.t.Helper()
	res := h.ok(cmdClaimRecent(user, owner, mailbox, upTo)).GetClaimRecent()
	return fmt.Sprintf("[%d,%d)", res.GetFirstUid(), res.GetNextUid())
}

// presented reads a mailbox as an admin answer shows it (view.present).
func (h *harness) presented(owner string, mailbox uint64) *metadatapb.Mailbox {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	rec, granted, err := v.access("", owner, mailbox, "", 0)
	if err != nil {
		h.t.Fatalf("read mailbox %d: %v", mailbox, err)
	}
	box, err := v.present(rec, "", granted)
	if err != nil {
		h.t.Fatalf("present mailbox %d: %v", mailbox, err)
	}
	return box
}

// wantRecent checks a mailbox's \Recent mark and count as answers show them.
func (h *harness) wantRecent(owner string, mailbox uint64, mark, count uint32) {
	h.t.Helper()
	box := h.presented(owner, mailbox)
	if box.GetFirstRecentUid() != mark || box.GetRecent() != count {
		h.t.Fatalf("mailbox %d: first_recent_uid %d, recent %d; want %d, %d", mailbox, box.GetFirstRecentUid(), box.GetRecent(), mark, count)
	}
}

// wantRecentCounters recounts every mailbox's messages at or above its mark and checks the
// stored counter against it (doc.go: Counters).
func (h *harness) wantRecentCounters() {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	err := scan(v.r, []byte{prefixMailbox}, []byte{prefixMailbox + 1}, func(_, val []byte) (bool, error) {
		rec := &metadatapb.MailboxRecord{}
		if err := proto.Unmarshal(val, rec); err != nil {
			return false, err
		}
		box := rec.GetMailbox()
		if box.GetFirstRecentUid() == 0 || box.GetFirstRecentUid() > box.GetUidNext() {
			h.t.Errorf("mailbox %q: first_recent_uid %d, uid_next %d", box.GetName(), box.GetFirstRecentUid(), box.GetUidNext())
		}
		var n uint32
		err := scan(v.r, messageKey(box.GetId(), box.GetFirstRecentUid()), prefixEnd(mailboxPrefix(prefixMessage, box.GetId())), func(_, _ []byte) (bool, error) {
			n++
			return true, nil
		})
		if n != box.GetRecent() {
			h.t.Errorf("mailbox %q: recent %d, but %d messages at or above UID %d", box.GetName(), box.GetRecent(), n, box.GetFirstRecentUid())
		}
		return true, err
	})
	if err != nil {
		h.t.Fatalf("scan mailboxes: %v", err)
	}
}

// TestClaimRecent: the \Recent mark of a mailbox (RFC 3501 2.3.2) starts at 1, only grows,
// never passes UIDNEXT, and each claim gets the UIDs between the mark it found and the one
// it left, so no two claims share one; the recent count follows appends, expunges, moves
// and claims; a claim takes no MODSEQ and journals nothing.
func TestClaimRecent(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	archive := h.mustMailbox(alice, "Archive").GetId()
	h.wantRecent(alice, inbox, 1, 0)
	h.ok(cmdAppend(alice, inbox, "blob-1", "blob-2", "blob-3"))
	h.wantRecent(alice, inbox, 1, 3)

	before := h.mustMailbox(alice, "INBOX")
	journal := len(h.journal(inbox, 0))
	sub := h.f.Subscribe(inbox)
	defer sub.Close()
	if got := h.claim(alice, alice, inbox, 3); got != "[1,3)" {
		t.Fatalf("first claim = %s, want [1,3)", got)
	}
	h.wantRecent(alice, inbox, 3, 1)
	after := h.mustMailbox(alice, "INBOX")
	if after.GetHighestModseq() != before.GetHighestModseq() || len(h.journal(inbox, 0)) != journal {
		t.Fatalf("claim took a MODSEQ or a journal entry: %v -> %v", before, after)
	}
	if events, _, _ := sub.Drain(); len(events) != 0 {
		t.Fatalf("claim published %v", events)
	}

	// A claim below the mark gets nothing and leaves it; one past UIDNEXT stops there.
	if got := h.claim(alice, alice, inbox, 2); got != "[3,3)" {
		t.Fatalf("claim below the mark = %s, want [3,3)", got)
	}
	if got := h.claim(alice, alice, inbox, 100); got != "[3,4)" {
		t.Fatalf("claim past UIDNEXT = %s, want [3,4)", got)
	}
	h.wantRecent(alice, inbox, 4, 0)
	if got := h.claim(alice, alice, inbox, 4); got != "[4,4)" {
		t.Fatalf("claim of nothing = %s", got)
	}

	// New mail is recent; an expunge counts when the message was unclaimed; a move adds a
	// recent message to the destination.
	h.ok(cmdAppend(alice, inbox, "blob-4", "blob-5", "blob-6"))
	h.wantRecent(alice, inbox, 4, 3)
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1), uidRange(5, 5)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	h.wantRecent(alice, inbox, 4, 2)
	h.ok(cmdCopy(alice, inbox, archive, true, uidRange(2, 2), uidRange(6, 6)))
	h.wantRecent(alice, inbox, 4, 1)
	h.wantRecent(alice, archive, 1, 2)
	// A claim over an expunged UID counts only the messages still there.
	if got := h.claim(alice, alice, inbox, 7); got != "[4,7)" {
		t.Fatalf("claim = %s, want [4,7)", got)
	}
	h.wantRecent(alice, inbox, 7, 0)
	h.wantRecentCounters()

	h.fails(codes.NotFound, cmdClaimRecent(alice, alice, 9999, 1))
	h.fails(codes.NotFound, cmdClaimRecent(alice, "bob@example.org", inbox, 1))
}

// TestClaimRecentIdempotent: a retried ClaimRecent returns what the first attempt claimed
// and claims nothing more, even after the mark moved on; its request ID is refused for
// another command.
func TestClaimRecentIdempotent(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "blob-1", "blob-2"))
	first := cmdClaimRecent(alice, alice, inbox, 2)
	first.RequestId = "claim-1"
	r1 := h.ok(first)
	h.ok(cmdAppend(alice, inbox, "blob-3"))
	if got := h.claim(alice, alice, inbox, 4); got != "[2,4)" {
		t.Fatalf("second claim = %s, want [2,4)", got)
	}
	retry := cmdClaimRecent(alice, alice, inbox, 2)
	retry.RequestId = "claim-1"
	if r2 := h.ok(retry); !proto.Equal(r1, r2) || r2.GetClaimRecent().GetFirstUid() != 1 || r2.GetClaimRecent().GetNextUid() != 2 {
		t.Fatalf("retried claim = %v, want %v", r2, r1)
	}
	h.wantRecent(alice, inbox, 4, 0)
	reused := cmdAppend(alice, inbox, "blob-4")
	reused.RequestId = "claim-1"
	h.fails(codes.FailedPrecondition, reused)
}

// TestClaimRecentRights: a claim is a read-write session's (RFC 4314 5.2): it needs r and
// one of i, e, s, t, w; with l or r alone it is refused, and a mailbox the user may not see
// is missing (RFC 4314 6).
func TestClaimRecentRights(t *testing.T) {
	h := withAccount(t)
	const bob = "bob@example.org"
	h.ok(cmdAccount(bob))
	h.ok(cmdCreateMailbox(alice, "Team"))
	team := h.mustMailbox(alice, "Team").GetId()
	h.ok(cmdAppend(alice, team, "blob-1", "blob-2"))
	h.fails(codes.NotFound, cmdClaimRecent(bob, alice, team, 3))
	for _, granted := range []string{"l", "lr", "lra", "lrk", "lrx", "i", "lsw"} {
		h.ok(cmdSetACL(alice, alice, "Team", bob, granted))
		h.fails(codes.PermissionDenied, cmdClaimRecent(bob, alice, team, 3))
	}
	h.wantRecent(alice, team, 1, 2)
	h.ok(cmdSetACL(alice, alice, "Team", bob, "lrs"))
	if got := h.claim(bob, alice, team, 2); got != "[1,2)" {
		t.Fatalf("bob's claim with lrs = %s", got)
	}
	for _, granted := range []string{"lri", "lre", "lrt", "lrw"} {
		h.ok(cmdSetACL(alice, alice, "Team", bob, granted))
		h.claim(bob, alice, team, 2)
	}
	// Another tenant's account sees no mailbox, whatever the ACL says.
	h.ok(cmdTenant("other", "other.org"))
	h.ok(cmdAccount("eve@other.org"))
	h.fails(codes.NotFound, cmdClaimRecent("eve@other.org", alice, team, 3))
	h.wantRecent(alice, team, 2, 1)
}

// TestRecentMarkForOldStores: a mailbox record stored before the mark existed
// (first_recent_uid 0, recent 0) reads as claimed up to its UIDNEXT, so its count stays
// exact, and what arrives after it is recent.
func TestRecentMarkForOldStores(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "blob-1", "blob-2"))
	g := h.f.acquire()
	defer g.release()
	rec := &metadatapb.MailboxRecord{}
	if _, err := getProto(g.db, mailboxKey(inbox), rec); err != nil {
		t.Fatal(err)
	}
	rec.Mailbox.FirstRecentUid, rec.Mailbox.Recent = 0, 0
	if err := g.db.Set(mailboxKey(inbox), mustMarshal(rec), nil); err != nil {
		t.Fatal(err)
	}
	g.carried = nil // written behind the FSM's back: the store as a restart opens it
	h.wantRecent(alice, inbox, 3, 0)
	if got := h.claim(alice, alice, inbox, 3); got != "[3,3)" {
		t.Fatalf("claim in an old mailbox = %s, want [3,3)", got)
	}
	h.ok(cmdAppend(alice, inbox, "blob-3"))
	h.wantRecent(alice, inbox, 3, 1)
	h.wantRecentCounters()
	if got := h.claim(alice, alice, inbox, 4); got != "[3,4)" {
		t.Fatalf("claim after new mail = %s, want [3,4)", got)
	}
}
