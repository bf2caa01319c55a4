package metadata

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// objectIDSyntax is RFC 8474 7 objectid.
var objectIDSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

func checkObjectID(t *testing.T, what, id, prefix string, hexDigits int) {
	t.Helper()
	if !objectIDSyntax.MatchString(id) || !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+hexDigits {
		t.Fatalf("%s = %q, want %s and %d hex digits", what, id, prefix, hexDigits)
	}
}

// record returns the stored record of uid in mailbox, as FetchMessages renders it.
func (h *harness) record(mailbox uint64, uid uint32) *metadatapb.MessageRecord {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	recs, err := v.messageRecords(mailbox, "", [][2]uint32{{uid, uid}}, false, nil, 1)
	if err != nil || len(recs) != 1 {
		h.t.Fatalf("record %d of mailbox %d: %d records, %v", uid, mailbox, len(recs), err)
	}
	return recs[0]
}

// thread returns the THREADID of uid in mailbox.
func (h *harness) thread(mailbox uint64, uid uint32) string {
	h.t.Helper()
	return h.record(mailbox, uid).GetThreadId()
}

// appendThreaded appends one message with blob and thread keys and returns its UID.
func (h *harness) appendThreaded(account string, mailbox uint64, blob string, keys *metadatapb.ThreadKeys) uint32 {
	h.t.Helper()
	cmd := cmdAppend(account, mailbox, blob)
	cmd.GetAppend().GetMessages()[0].Thread = keys
	return h.ok(cmd).GetAppend().GetUids()[0]
}

// TestMailboxObjectID: RFC 8474 4. The MAILBOXID survives RENAME, a recreated name gets a
// new one, and two groups that assign the same mailbox id and UIDVALIDITY mint two.
func TestMailboxObjectID(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdCreateMailbox(alice, "Projects/2026"))
	projects := h.mustMailbox(alice, "Projects").GetObjectId()
	year := h.mustMailbox(alice, "Projects/2026").GetObjectId()
	checkObjectID(t, "MAILBOXID", projects, "F", 24)
	if projects == year || projects == h.mustMailbox(alice, "INBOX").GetObjectId() {
		t.Fatalf("MAILBOXIDs repeat: %q %q", projects, year)
	}
	h.ok(cmdRename(alice, "Projects", "Work"))
	if got := h.mustMailbox(alice, "Work").GetObjectId(); got != projects {
		t.Errorf("MAILBOXID after RENAME = %q, want %q", got, projects)
	}
	if got := h.mustMailbox(alice, "Work/2026").GetObjectId(); got != year {
		t.Errorf("MAILBOXID of the renamed inferior = %q, want %q", got, year)
	}
	// Deleted and created again: a new mailbox, a new MAILBOXID.
	h.ok(cmdDeleteMailbox(alice, "Work/2026"))
	h.ok(cmdCreateMailbox(alice, "Work/2026"))
	if got := h.mustMailbox(alice, "Work/2026").GetObjectId(); got == year {
		t.Errorf("recreated mailbox kept MAILBOXID %q", got)
	}
	// Work has an inferior: DELETE leaves a \Noselect placeholder, which CREATE makes real
	// again with a new UIDVALIDITY and a new MAILBOXID.
	h.ok(cmdDeleteMailbox(alice, "Work"))
	placeholder := h.mustMailbox(alice, "Work").GetObjectId()
	h.ok(cmdCreateMailbox(alice, "Work"))
	if got := h.mustMailbox(alice, "Work").GetObjectId(); got == projects || got == placeholder {
		t.Errorf("MAILBOXID of Work made real again = %q (was %q, placeholder %q)", got, projects, placeholder)
	}
	// RENAME INBOX moves its messages to a new mailbox; INBOX keeps its MAILBOXID.
	inbox := h.mustMailbox(alice, "INBOX").GetObjectId()
	h.ok(cmdRename(alice, "INBOX", "Old Inbox"))
	if got := h.mustMailbox(alice, "INBOX").GetObjectId(); got != inbox {
		t.Errorf("INBOX MAILBOXID after RENAME INBOX = %q, want %q", got, inbox)
	}
	if got := h.mustMailbox(alice, "Old Inbox").GetObjectId(); got == inbox {
		t.Error("the mailbox RENAME INBOX made has INBOX's MAILBOXID")
	}

	// Another group (another FSM) hands out the same ids and UIDVALIDITY values at another
	// log time: its MAILBOXIDs differ.
	one, other := withAccount(t), newHarness(t)
	other.now = other.now.Add(500 * time.Millisecond)
	other.ok(cmdTenant("example", "example.org"))
	other.ok(cmdAccount(alice))
	a, b := one.mustMailbox(alice, "Drafts"), other.mustMailbox(alice, "Drafts")
	if a.GetId() != b.GetId() || a.GetUidValidity() != b.GetUidValidity() || a.GetObjectId() == b.GetObjectId() {
		t.Errorf("Drafts in two groups: ids %d %d, UIDVALIDITY %d %d, MAILBOXID %q %q",
			a.GetId(), b.GetId(), a.GetUidValidity(), b.GetUidValidity(), a.GetObjectId(), b.GetObjectId())
	}

	// A record stored before MAILBOXIDs were minted gets a stable one from its fields.
	stored := &metadatapb.Mailbox{Id: 7, UidValidity: 42}
	first := presentMailbox(stored, alice, "", allRights).GetObjectId()
	checkObjectID(t, "MAILBOXID of an old record", first, "F", 24)
	if again := presentMailbox(&metadatapb.Mailbox{Id: 7, UidValidity: 42}, alice, "", allRights).GetObjectId(); again != first {
		t.Errorf("MAILBOXID of an old record not stable: %q, %q", first, again)
	}
}

// TestEmailObjectID: RFC 8474 5.1. The EMAILID is the same for copies and moves and for
// the same content appended again, and differs for other content.
func TestEmailObjectID(t *testing.T) {
	h := withAccount(t)
	inbox, trash := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(alice, "Trash").GetId()
	h.ok(cmdAppend(alice, inbox, "t/example/aaaa", "t/example/bbbb", "t/example/aaaa"))
	one := h.record(inbox, 1).GetEmailId()
	checkObjectID(t, "EMAILID", one, "M", 64)
	if h.record(inbox, 2).GetEmailId() == one || h.record(inbox, 3).GetEmailId() != one {
		t.Fatal("EMAILID does not follow the content")
	}
	h.ok(cmdCopy(alice, inbox, trash, false, uidRange(1, 1)))
	h.ok(cmdCopy(alice, inbox, trash, true, uidRange(2, 2)))
	if h.record(trash, 1).GetEmailId() != one || h.record(trash, 2).GetEmailId() != emailObjectID("t/example/bbbb") {
		t.Error("COPY or MOVE changed the EMAILID")
	}
}

// TestThreads: RFC 8474 5.2 THREADID from Message-ID, In-Reply-To and References.
func TestThreads(t *testing.T) {
	h := withAccount(t)
	inbox, archive := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(alice, "Archive").GetId()
	keys := func(id, subject string, reply bool, refs ...string) *metadatapb.ThreadKeys {
		return &metadatapb.ThreadKeys{MessageId: id, References: refs, BaseSubject: subject, Reply: reply}
	}
	root := h.appendThreaded(alice, inbox, "b-root", keys("root@x", "plans", false))
	reply := h.appendThreaded(alice, inbox, "b-reply", keys("reply@x", "plans", true, "root@x"))
	chain := h.appendThreaded(alice, inbox, "b-chain", keys("chain@x", "plans", true, "reply@x", "root@x"))
	other := h.appendThreaded(alice, inbox, "b-other", keys("other@x", "lunch", false))
	thread := h.thread(inbox, root)
	checkObjectID(t, "THREADID", thread, "T", 16)
	if h.thread(inbox, reply) != thread || h.thread(inbox, chain) != thread {
		t.Fatal("a reply and a References chain do not share the root's THREADID")
	}
	if h.thread(inbox, other) == thread {
		t.Fatal("unrelated mail joined the thread")
	}
	// The thread of a new root derives from its EMAILID's digest.
	if want := "T" + strings.TrimPrefix(h.record(inbox, root).GetEmailId(), "M")[:16]; thread != want {
		t.Errorf("THREADID of a root = %q, want %q", thread, want)
	}

	// A reply that arrives before its original starts the thread; the original joins it.
	early := h.appendThreaded(alice, inbox, "b-early", keys("early@x", "report", true, "late@x"))
	late := h.appendThreaded(alice, inbox, "b-late", keys("late@x", "report", false))
	if h.thread(inbox, late) != h.thread(inbox, early) {
		t.Error("the original of an earlier reply started its own thread")
	}

	// Subjects: a reply whose references are unknown joins the latest thread of its base
	// subject; a message that is not a reply does not.
	orphan := h.appendThreaded(alice, inbox, "b-orphan", keys("orphan@x", "plans", true, "unknown@x"))
	if h.thread(inbox, orphan) != thread {
		t.Error("a reply with unknown references did not join by subject")
	}
	same := h.appendThreaded(alice, inbox, "b-same", keys("same@x", "lunch", false))
	if h.thread(inbox, same) == h.thread(inbox, other) {
		t.Error("a message that is not a reply joined by subject")
	}
	bare := h.appendThreaded(alice, inbox, "b-bare", keys("", "lunch", true))
	if h.thread(inbox, bare) != h.thread(inbox, same) {
		t.Error("a reply without references did not join the latest thread of its subject")
	}
	// And a reply whose reference is known follows the reference, not the subject.
	if u := h.appendThreaded(alice, inbox, "b-ref", keys("", "lunch", true, "root@x")); h.thread(inbox, u) != thread {
		t.Error("a known reference did not win over the subject")
	}

	// The same content again (no Message-ID, no subject) has the same THREADID.
	h.appendThreaded(alice, archive, "b-plain", nil)
	again := h.appendThreaded(alice, inbox, "b-plain", nil)
	if h.thread(inbox, again) != h.thread(archive, 1) {
		t.Error("two messages with one EMAILID have two THREADIDs")
	}
	// Also when the content joined a thread by reference.
	if u := h.appendThreaded(alice, archive, "b-chain", nil); h.thread(archive, u) != thread {
		t.Error("the content of a threaded message appended again has another THREADID")
	}

	// COPY and MOVE keep it; RENAME does not touch it; an expunged message's thread stays
	// in the index.
	h.ok(cmdCopy(alice, inbox, archive, false, uidRange(reply, reply)))
	h.ok(cmdCopy(alice, inbox, archive, true, uidRange(chain, chain)))
	h.ok(cmdRename(alice, "Archive", "Old"))
	n := h.mustMailbox(alice, "Old").GetUidNext()
	if h.thread(archive, n-2) != thread || h.thread(archive, n-1) != thread {
		t.Error("COPY, MOVE or RENAME changed a THREADID")
	}
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(root, root)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	if u := h.appendThreaded(alice, inbox, "b-late-reply", keys("", "plans", true, "root@x")); h.thread(inbox, u) != thread {
		t.Error("a reply to an expunged message lost its thread")
	}

	// Keys out of bounds are refused.
	tooMany := make([]string, maxThreadReferences+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("r%d@x", i)
	}
	for _, bad := range []*metadatapb.ThreadKeys{
		{References: tooMany},
		{MessageId: strings.Repeat("x", maxMessageIDBytes+1)},
		{BaseSubject: strings.Repeat("s", maxBaseSubjectBytes+1)},
	} {
		cmd := cmdAppend(alice, inbox, "b-bad")
		cmd.GetAppend().GetMessages()[0].Thread = bad
		h.fails(codes.InvalidArgument, cmd)
	}
}

// TestThreadsPerOwner: each owner has its own index; a copy into another owner's mailbox
// keeps its thread unless that owner already has the content; the index goes with the
// account.
func TestThreadsPerOwner(t *testing.T) {
	h := withAccount(t)
	const bob = "bob@example.org"
	h.ok(cmdAccount(bob))
	aliceInbox, bobInbox := h.mustMailbox(alice, "INBOX").GetId(), h.mustMailbox(bob, "INBOX").GetId()
	keys := &metadatapb.ThreadKeys{MessageId: "root@x", BaseSubject: "plans"}
	h.appendThreaded(alice, aliceInbox, "b-root", keys)
	h.appendThreaded(alice, aliceInbox, "b-reply", &metadatapb.ThreadKeys{MessageId: "reply@x", References: []string{"root@x"}})
	// Bob receives only the reply: his index does not know root@x, so it starts a thread.
	h.appendThreaded(bob, bobInbox, "b-reply", &metadatapb.ThreadKeys{MessageId: "reply@x", References: []string{"root@x"}})
	if h.thread(bobInbox, 1) == h.thread(aliceInbox, 2) {
		t.Fatal("bob's reply joined alice's thread")
	}
	share := &metadatapb.Command{Op: &metadatapb.Command_SetAcl{SetAcl: &metadatapb.SetAclRequest{Account: alice, MailboxId: aliceInbox, Identifier: bob, Rights: "lr"}}}
	h.ok(share)
	copyTo := func(uid uint32) uint32 {
		res := h.ok(&metadatapb.Command{Op: &metadatapb.Command_Copy{Copy: &metadatapb.CopyRequest{
			User: bob, Account: alice, SourceMailboxId: aliceInbox, DestAccount: bob, DestMailboxId: bobInbox, Uids: []*metadatapb.UidRange{uidRange(uid, uid)},
		}}})
		return res.GetCopy().GetDestUids()[0]
	}
	// The root is new to bob: it keeps alice's THREADID. The reply's content bob has: it
	// takes bob's THREADID for it, so that bob's two copies agree.
	if u := copyTo(1); h.thread(bobInbox, u) != h.thread(aliceInbox, 1) {
		t.Error("a copy into another owner's mailbox changed the THREADID")
	}
	if u := copyTo(2); h.thread(bobInbox, u) != h.thread(bobInbox, 1) {
		t.Error("bob has one EMAILID with two THREADIDs")
	}

	prefix := threadIndexPrefix(bob)
	countIndex := func() int {
		v := h.f.view()
		defer v.close()
		n := 0
		if err := scan(v.r, prefix, prefixEnd(prefix), func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if countIndex() == 0 {
		t.Fatal("bob has no thread index")
	}
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: bob}}})
	if n := countIndex(); n != 0 {
		t.Errorf("%d thread index entries outlive their account", n)
	}
}

// TestThreadsDeterministic: replicas fed the same threaded log agree, whatever the
// batching, and a snapshot carries the thread index.
func TestThreadsDeterministic(t *testing.T) {
	a := withAccount(t)
	inbox := a.mustMailbox(alice, "INBOX").GetId()
	for i := range 30 {
		a.appendThreaded(alice, inbox, fmt.Sprintf("b-%d", i), &metadatapb.ThreadKeys{
			MessageId: fmt.Sprintf("m%d@x", i), References: []string{fmt.Sprintf("m%d@x", i/3)},
			BaseSubject: fmt.Sprintf("s%d", i%4), Reply: i%2 == 1,
		})
	}
	b := newHarness(t)
	for i := 0; i < len(a.log); {
		n := min(1+i%5, len(a.log)-i)
		b.f.ApplyBatch(a.log[i : i+n])
		i += n
	}
	if !bytes.Equal(a.digest(), b.digest()) {
		t.Fatal("same threaded log, different batching: digests differ")
	}
	for uid := uint32(1); uid <= 30; uid++ {
		if a.thread(inbox, uid) != b.thread(inbox, uid) {
			t.Fatalf("THREADID of %d differs between replicas", uid)
		}
	}
}

// TestServiceObjectIDs: the service hands the object ids out: CreateMailbox and GetMailbox
// the MAILBOXID, FetchMessages EMAILID and THREADID.
func TestServiceObjectIDs(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	created := must(c.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), Account: alice, Name: "Lists"}))
	checkObjectID(t, "MAILBOXID of CreateMailbox", created.GetObjectId(), "F", 24)
	if got := s.mailbox("Lists").GetObjectId(); got != created.GetObjectId() {
		t.Fatalf("GetMailbox MAILBOXID = %q, CreateMailbox said %q", got, created.GetObjectId())
	}
	msgs := newMessages(2, "m")
	msgs[0].Thread = &metadatapb.ThreadKeys{MessageId: "a@x"}
	msgs[1].Thread = &metadatapb.ThreadKeys{MessageId: "b@x", References: []string{"a@x"}}
	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: created.GetId(), Messages: msgs}))
	recs := s.fetch(&metadatapb.FetchMessagesRequest{Account: alice, MailboxId: created.GetId(), Uids: []*metadatapb.UidRange{uidRange(1, 0)}})
	if len(recs) != 2 {
		t.Fatalf("fetched %d records", len(recs))
	}
	checkObjectID(t, "EMAILID", recs[0].GetEmailId(), "M", 64)
	checkObjectID(t, "THREADID", recs[0].GetThreadId(), "T", 16)
	if recs[0].GetEmailId() == recs[1].GetEmailId() || recs[0].GetThreadId() != recs[1].GetThreadId() {
		t.Fatalf("records %v", recs)
	}
}
