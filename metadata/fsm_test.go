package metadata

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// harness feeds commands to an FSM as Raft log entries, step of log time apart.
type harness struct {
	t     testing.TB
	f     *FSM
	dir   string
	index uint64
	now   time.Time
	step  time.Duration // log time between entries
	log   []*raft.Log   // every entry fed, for replays
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	dir := t.TempDir()
	f, err := OpenFSM(dir, testLogger(t))
	if err != nil {
		t.Fatalf("open fsm: %v", err)
	}
	h := &harness{t: t, f: f, dir: dir, now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), step: time.Second}
	t.Cleanup(func() { h.f.Close() })
	return h
}

// entry encodes cmd as the next log entry; an empty request ID gets a unique one.
func (h *harness) entry(cmd *metadatapb.Command) *raft.Log {
	h.index++
	h.now = h.now.Add(h.step)
	if cmd.RequestId == "" {
		cmd.RequestId = fmt.Sprintf("req-%d", h.index)
	}
	cmd.TimestampUnixNano = h.now.UnixNano()
	if cmd.FeatureLevel == nil {
		// As a leader of a group of this build stamps it (featurelevel.go).
		level := FeatureLevel
		cmd.FeatureLevel = &level
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		h.t.Fatalf("marshal: %v", err)
	}
	l := &raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: data}
	h.log = append(h.log, l)
	return l
}

func (h *harness) apply(cmd *metadatapb.Command) *metadatapb.CommandResult {
	h.t.Helper()
	res := h.f.ApplyBatch([]*raft.Log{h.entry(cmd)})[0]
	r, isResult := res.(*metadatapb.CommandResult)
	if !isResult {
		h.t.Fatalf("response %T, want *CommandResult", res)
	}
	return r
}

func (h *harness) ok(cmd *metadatapb.Command) *metadatapb.CommandResult {
	h.t.Helper()
	r := h.apply(cmd)
	if codes.Code(r.GetCode()) != codes.OK {
		h.t.Fatalf("command %v: %v %s", cmd.GetOp(), codes.Code(r.GetCode()), r.GetMessage())
	}
	return r
}

func (h *harness) fails(want codes.Code, cmd *metadatapb.Command) {
	h.t.Helper()
	r := h.apply(cmd)
	if got := codes.Code(r.GetCode()); got != want {
		h.t.Fatalf("command %v: code %v (%s), want %v", cmd.GetOp(), got, r.GetMessage(), want)
	}
}

// horizonNow makes the retry horizon of the next command the log time now: it applies a
// refused command (it changes nothing but the marks of the log the horizon comes from) with
// retryEntries entries before and after it that are not commands, as Raft's own entries
// leave gaps in the indexes the state machine sees.
func (h *harness) horizonNow() {
	h.t.Helper()
	h.index += retryEntries
	h.fails(codes.NotFound, cmdCreateMailbox("horizon@nowhere.example", "X"))
	h.index += retryEntries
}

func (h *harness) digest() []byte {
	h.t.Helper()
	d, err := h.f.Digest()
	if err != nil {
		h.t.Fatalf("digest: %v", err)
	}
	return d
}

func (h *harness) mailbox(account, name string) *metadatapb.Mailbox {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	box, found, err := v.mailboxByName(account, name)
	if err != nil {
		h.t.Fatalf("read mailbox %q: %v", name, err)
	}
	if !found {
		return nil
	}
	return box
}

func (h *harness) mustMailbox(account, name string) *metadatapb.Mailbox {
	h.t.Helper()
	box := h.mailbox(account, name)
	if box == nil {
		h.t.Fatalf("mailbox %q of %s does not exist", name, account)
	}
	return box
}

func (h *harness) messages(account string, mailbox uint64) *metadatapb.ListMessagesResponse {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	box, found, err := v.mailbox(account, mailbox)
	if err != nil || !found {
		h.t.Fatalf("mailbox %d: found=%v err=%v", mailbox, found, err)
	}
	return listBothWays(h.t, v, box, listingQuery{owner: account})
}

func (h *harness) journal(mailbox, after uint64) []*metadatapb.Change {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	entries, err := v.journal(mailbox, after, 1<<30)
	if err != nil {
		h.t.Fatalf("journal: %v", err)
	}
	var out []*metadatapb.Change
	for _, e := range entries {
		out = append(out, e.GetChanges()...)
	}
	return out
}

func (h *harness) blobRefs(key string) uint64 {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	ref := &metadatapb.BlobRef{}
	if _, err := getProto(v.r, blobKey(key), ref); err != nil {
		h.t.Fatalf("blob ref: %v", err)
	}
	return ref.GetRefs()
}

// Command constructors keep the tests short.

func cmdTenant(name string, domains ...string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_CreateTenant{CreateTenant: &metadatapb.CreateTenantRequest{Name: name, Domains: domains}}}
}

func cmdAccount(email string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_CreateAccount{CreateAccount: &metadatapb.CreateAccountCommand{Email: email}}}
}

func cmdCreateMailbox(account, name string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_CreateMailbox{CreateMailbox: &metadatapb.CreateMailboxRequest{Account: account, Name: name}}}
}

func cmdDeleteMailbox(account, name string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_DeleteMailbox{DeleteMailbox: &metadatapb.DeleteMailboxRequest{Account: account, Name: name}}}
}

func cmdRename(account, from, to string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_RenameMailbox{RenameMailbox: &metadatapb.RenameMailboxRequest{Account: account, From: from, To: to}}}
}

func testStructure(subject string) *metadatapb.MessageStructure {
	return &metadatapb.MessageStructure{
		Envelope: &metadatapb.Envelope{
			Date:      "Sun, 01 Nov 2026 12:00:00 +0000",
			Subject:   subject,
			From:      []*metadatapb.Address{{Name: "Alice Example", Mailbox: "alice", Host: "example.org"}},
			To:        []*metadatapb.Address{{Name: "Bob", Mailbox: "bob", Host: "example.com"}},
			MessageId: "<" + subject + "@example.org>",
		},
		Body: &metadatapb.BodyPart{
			Type: "multipart", Subtype: "alternative", Params: []*metadatapb.Param{{Key: "boundary", Value: "b1"}},
			Parts: []*metadatapb.BodyPart{
				{Type: "text", Subtype: "plain", Params: []*metadatapb.Param{{Key: "charset", Value: "utf-8"}}, Encoding: "7BIT", Size: 1200, Lines: 30, HeaderOffset: 600, BodyOffset: 660, EndOffset: 1860},
				{Type: "text", Subtype: "html", Params: []*metadatapb.Param{{Key: "charset", Value: "utf-8"}}, Encoding: "QUOTED-PRINTABLE", Size: 2400, Lines: 45, HeaderOffset: 1880, BodyOffset: 1950, EndOffset: 4350},
			},
			HeaderOffset: 0, BodyOffset: 580, EndOffset: 4400,
		},
		Header:  bytes.Repeat([]byte("Received: from mx.example.org by mail.example.com\r\n"), 10),
		Preview: "Hello Bob, this is the preview of " + subject,
	}
}

func cmdAppend(account string, mailbox uint64, blobs ...string) *metadatapb.Command {
	req := &metadatapb.AppendRequest{Account: account, MailboxId: mailbox}
	for _, b := range blobs {
		req.Messages = append(req.Messages, &metadatapb.NewMessage{BlobKey: b, Size: 4400, InternalDateUnix: 1793534400, Structure: testStructure(b)})
	}
	return &metadatapb.Command{Op: &metadatapb.Command_Append{Append: req}}
}

func cmdStore(account string, mailbox uint64, op metadatapb.FlagOp, uids []*metadatapb.UidRange, flags ...string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_StoreFlags{StoreFlags: &metadatapb.StoreFlagsRequest{Account: account, MailboxId: mailbox, Op: op, Uids: uids, Flags: flags}}}
}

func cmdCopy(account string, src, dst uint64, move bool, uids ...*metadatapb.UidRange) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_Copy{Copy: &metadatapb.CopyRequest{Account: account, SourceMailboxId: src, DestMailboxId: dst, Move: move, Uids: uids}}}
}

func cmdExpunge(account string, mailbox uint64, uids ...*metadatapb.UidRange) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_Expunge{Expunge: &metadatapb.ExpungeRequest{Account: account, MailboxId: mailbox, Uids: uids}}}
}

func uidRange(first, last uint32) *metadatapb.UidRange {
	return &metadatapb.UidRange{First: first, Last: last}
}

const alice = "alice@example.org"

// withAccount returns a harness with tenant "example" owning example.org and the
// account alice@example.org.
func withAccount(t testing.TB) *harness {
	h := newHarness(t)
	h.ok(cmdTenant("example", "Example.ORG"))
	h.ok(cmdAccount("Alice@Example.org"))
	return h
}

func TestCreateTenantAndAccount(t *testing.T) {
	h := newHarness(t)
	h.ok(cmdTenant("example", "example.org", "example.net"))
	h.fails(codes.AlreadyExists, cmdTenant("example", "other.org"))
	h.fails(codes.AlreadyExists, cmdTenant("other", "EXAMPLE.net"))
	h.fails(codes.InvalidArgument, cmdTenant("bad", "exa mple.com"))
	// The failed tenant left no domain behind.
	h.ok(cmdTenant("other", "other.org"))

	h.fails(codes.NotFound, cmdAccount("bob@unknown.org"))
	h.fails(codes.InvalidArgument, cmdAccount("no-at-sign"))
	res := h.ok(cmdAccount("Bob@Example.Net"))
	if got := res.GetAccount(); got.GetEmail() != "bob@example.net" || got.GetTenant() != "example" || got.GetCreatedUnix() != h.now.Unix() {
		t.Fatalf("account = %v", got)
	}
	h.fails(codes.AlreadyExists, cmdAccount("bob@example.net"))

	v := h.f.view()
	boxes, err := v.mailboxes("bob@example.net")
	v.close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range boxes {
		if !b.GetSubscribed() || b.GetUidNext() != 1 || b.GetUidValidity() == 0 {
			t.Errorf("default mailbox %v", b)
		}
		got[b.GetName()] = b.GetSpecialUse()
	}
	want := map[string]string{"INBOX": "", "Drafts": `\Drafts`, "Sent": `\Sent`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("default mailboxes = %v, want %v", got, want)
	}

	h.ok(&metadatapb.Command{Op: &metadatapb.Command_SetPassword{SetPassword: &metadatapb.SetPasswordCommand{Email: "bob@example.net", PasswordHash: "$argon2id$x"}}})
	h.fails(codes.NotFound, &metadatapb.Command{Op: &metadatapb.Command_SetPassword{SetPassword: &metadatapb.SetPasswordCommand{Email: "carol@example.net"}}})
	v = h.f.view()
	rec, _, err := v.account("bob@example.net")
	accounts, _ := v.accounts("other")
	all, _ := v.accounts("")
	v.close()
	if err != nil || rec.GetPasswordHash() != "$argon2id$x" {
		t.Fatalf("password hash = %q, %v", rec.GetPasswordHash(), err)
	}
	if len(accounts) != 0 || len(all) != 1 {
		t.Fatalf("accounts of other = %v, all = %v", accounts, all)
	}
}

func TestDeleteAccountReleasesEverything(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	h.ok(cmdAppend(alice, inbox.GetId(), "blob-a", "blob-b"))
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: alice}}})
	if h.mailbox(alice, "INBOX") != nil {
		t.Fatal("INBOX survived account deletion")
	}
	if n := h.blobRefs("blob-a"); n != 0 {
		t.Fatalf("blob-a refs = %d after account deletion", n)
	}
	changes := h.journal(inbox.GetId(), 0)
	if last := changes[len(changes)-1]; last.GetKind() != metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED {
		t.Fatalf("last journal change = %v, want MAILBOX_DELETED", last)
	}
	h.fails(codes.NotFound, &metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: alice}}})
	// The address can be created again, with fresh UIDVALIDITYs.
	h.ok(cmdAccount(alice))
	if again := h.mustMailbox(alice, "INBOX"); again.GetUidValidity() <= inbox.GetUidValidity() || again.GetId() == inbox.GetId() {
		t.Fatalf("recreated INBOX %v reuses identity of %v", again, inbox)
	}
}

func TestNormalizeMailboxName(t *testing.T) {
	cases := []struct {
		in, want string
		valid    bool
	}{
		{"INBOX", "INBOX", true},
		{"inbox", "INBOX", true},
		{"InBoX/Sub", "INBOX/Sub", true},
		{"Inboxes", "Inboxes", true},
		{"Work/Projects/", "Work/Projects", true},
		{"Très/Ünïcode", "Très/Ünïcode", true},
		{"", "", false},
		{"/", "", false},
		{"a//b", "", false},
		{"/a", "", false},
		{"a*", "", false},
		{"a%b", "", false},
		{"a\x00b", "", false},
		{"a\tb", "", false},
		{"bad\xff", "", false},
	}
	for _, c := range cases {
		got, valid := NormalizeMailboxName(c.in)
		if got != c.want || valid != c.valid {
			t.Errorf("NormalizeMailboxName(%q) = %q, %v; want %q, %v", c.in, got, valid, c.want, c.valid)
		}
	}
}

func TestNormalizeFlags(t *testing.T) {
	got, valid := normalizeFlags([]string{"$Forwarded", `\seen`, "work", `\DELETED`, "WORK", `\Seen`, "$forwarded", "Alpha"})
	want := []string{`\Seen`, `\Deleted`, "$Forwarded", "Alpha", "work"}
	if !valid || !slices.Equal(got, want) {
		t.Fatalf("normalizeFlags = %q, %v; want %q", got, valid, want)
	}
	for _, bad := range []string{`\Recent`, `\Unknown`, "a b", "a(", "x]", "", "é"} {
		if _, valid := normalizeFlags([]string{bad}); valid {
			t.Errorf("flag %q accepted", bad)
		}
	}
}

func TestCreateMailbox(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdCreateMailbox(alice, "Work/Projects/2026"))
	for _, name := range []string{"Work", "Work/Projects", "Work/Projects/2026"} {
		if box := h.mustMailbox(alice, name); box.GetNoselect() || box.GetSubscribed() {
			t.Errorf("%s = %v, want selectable and unsubscribed", name, box)
		}
	}
	h.fails(codes.AlreadyExists, cmdCreateMailbox(alice, "Work/Projects/"))
	h.fails(codes.AlreadyExists, cmdCreateMailbox(alice, "inbox"))
	h.fails(codes.InvalidArgument, cmdCreateMailbox(alice, "a%b"))
	h.fails(codes.NotFound, cmdCreateMailbox("nobody@example.org", "x"))
	res := h.ok(&metadatapb.Command{Op: &metadatapb.Command_CreateMailbox{CreateMailbox: &metadatapb.CreateMailboxRequest{Account: alice, Name: "All Mail", SpecialUse: `\all`}}})
	if res.GetMailbox().GetSpecialUse() != `\All` {
		t.Fatalf("special use = %q", res.GetMailbox().GetSpecialUse())
	}
	h.fails(codes.InvalidArgument, &metadatapb.Command{Op: &metadatapb.Command_CreateMailbox{CreateMailbox: &metadatapb.CreateMailboxRequest{Account: alice, Name: "X", SpecialUse: `\Important`}}})
	// UIDVALIDITY never repeats, even within one second of log time.
	a, b := h.mustMailbox(alice, "Work"), h.mustMailbox(alice, "Work/Projects")
	if a.GetUidValidity() == b.GetUidValidity() || a.GetId() == b.GetId() {
		t.Fatalf("mailboxes share identity: %v %v", a, b)
	}
}

func TestDeleteMailbox(t *testing.T) {
	h := withAccount(t)
	h.fails(codes.FailedPrecondition, cmdDeleteMailbox(alice, "inbox"))
	h.fails(codes.NotFound, cmdDeleteMailbox(alice, "Nope"))
	h.ok(cmdCreateMailbox(alice, "Work/Old"))
	work := h.mustMailbox(alice, "Work")
	h.ok(cmdAppend(alice, work.GetId(), "blob-w"))

	// RFC 9051 6.3.5: with inferiors, the messages go and the name stays \Noselect.
	h.ok(cmdDeleteMailbox(alice, "Work"))
	placeholder := h.mustMailbox(alice, "Work")
	if !placeholder.GetNoselect() || placeholder.GetMessages() != 0 || placeholder.GetId() == work.GetId() {
		t.Fatalf("placeholder = %v", placeholder)
	}
	if h.blobRefs("blob-w") != 0 {
		t.Fatal("blob of deleted mailbox still referenced")
	}
	if changes := h.journal(work.GetId(), 0); changes[len(changes)-1].GetKind() != metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED {
		t.Fatalf("journal of deleted mailbox ends with %v", changes[len(changes)-1])
	}
	h.fails(codes.NotFound, cmdAppend(alice, placeholder.GetId(), "blob-x"))
	h.fails(codes.FailedPrecondition, cmdDeleteMailbox(alice, "Work"))

	// CREATE turns the placeholder into a real mailbox with a new UIDVALIDITY.
	h.ok(cmdCreateMailbox(alice, "Work"))
	if again := h.mustMailbox(alice, "Work"); again.GetNoselect() || again.GetUidValidity() == placeholder.GetUidValidity() {
		t.Fatalf("recreated Work = %v", again)
	}
	h.ok(cmdDeleteMailbox(alice, "Work/Old"))
	h.ok(cmdDeleteMailbox(alice, "Work"))
	if h.mailbox(alice, "Work") != nil || h.mailbox(alice, "Work/Old") != nil {
		t.Fatal("mailboxes without inferiors were not removed")
	}
}

func TestRenameMailbox(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdCreateMailbox(alice, "A/B/C"))
	b := h.mustMailbox(alice, "A/B")
	h.fails(codes.AlreadyExists, cmdRename(alice, "A", "Sent"))
	h.fails(codes.InvalidArgument, cmdRename(alice, "A", "A/B/D"))
	h.fails(codes.NotFound, cmdRename(alice, "Z", "Y"))

	h.ok(cmdRename(alice, "A", "X/Y"))
	for _, name := range []string{"X", "X/Y", "X/Y/B", "X/Y/B/C"} {
		h.mustMailbox(alice, name)
	}
	if h.mailbox(alice, "A") != nil || h.mailbox(alice, "A/B") != nil {
		t.Fatal("old names remain after rename")
	}
	renamed := h.mustMailbox(alice, "X/Y/B")
	if renamed.GetId() != b.GetId() || renamed.GetUidValidity() != b.GetUidValidity() {
		t.Fatalf("rename changed identity: %v -> %v", b, renamed)
	}
	changes := h.journal(b.GetId(), 0)
	if len(changes) != 1 || changes[0].GetKind() != metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_RENAMED || changes[0].GetName() != "X/Y/B" {
		t.Fatalf("journal = %v", changes)
	}

	// RFC 9051 6.3.6: renaming INBOX moves its messages and leaves it empty.
	h.ok(cmdCreateMailbox(alice, "INBOX/Child"))
	inbox := h.mustMailbox(alice, "INBOX")
	h.ok(cmdAppend(alice, inbox.GetId(), "blob-1", "blob-2"))
	h.ok(cmdRename(alice, "inbox", "Old Inbox"))
	inboxAfter := h.mustMailbox(alice, "INBOX")
	old := h.mustMailbox(alice, "Old Inbox")
	if inboxAfter.GetId() != inbox.GetId() || inboxAfter.GetMessages() != 0 || inboxAfter.GetUidNext() != 3 {
		t.Fatalf("INBOX after rename = %v", inboxAfter)
	}
	if old.GetMessages() != 2 || old.GetSize() != 2*4400 || old.GetUidValidity() == inbox.GetUidValidity() {
		t.Fatalf("renamed INBOX = %v", old)
	}
	h.mustMailbox(alice, "INBOX/Child")
	if h.blobRefs("blob-1") != 1 {
		t.Fatalf("blob-1 refs = %d, want 1", h.blobRefs("blob-1"))
	}
}

func TestMessageLifecycle(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	archive := h.mustMailbox(alice, "Archive")

	res := h.ok(cmdAppend(alice, inbox.GetId(), "blob-1", "blob-2", "blob-3")).GetAppend()
	if !slices.Equal(res.GetUids(), []uint32{1, 2, 3}) || res.GetModseq() != 2 || res.GetUidValidity() != inbox.GetUidValidity() {
		t.Fatalf("append = %v", res)
	}
	box := h.mustMailbox(alice, "INBOX")
	if box.GetMessages() != 3 || box.GetUnseen() != 3 || box.GetSize() != 3*4400 || box.GetUidNext() != 4 || box.GetHighestModseq() != 2 {
		t.Fatalf("INBOX after append = %v", box)
	}

	// STORE: only messages whose flags change get the new MODSEQ.
	h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\seen`))
	st := h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 2)}, `\Seen`, "Work")).GetStoreFlags()
	if st.GetModseq() != 4 || len(st.GetUpdated()) != 2 {
		t.Fatalf("store = %v", st)
	}
	st = h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 2)}, `\SEEN`, "work")).GetStoreFlags()
	if len(st.GetUpdated()) != 0 || st.GetModseq() != 4 {
		t.Fatalf("no-op store = %v", st)
	}
	list := h.messages(alice, inbox.GetId())
	if !slices.Equal(list.GetModseqs(), []uint64{4, 4, 2}) || !slices.Equal(list.GetFlags()[0].GetFlags(), []string{`\Seen`, "Work"}) {
		t.Fatalf("list = %v", list)
	}
	if list.GetMailbox().GetUnseen() != 1 {
		t.Fatalf("unseen = %d, want 1", list.GetMailbox().GetUnseen())
	}

	// RFC 7162 3.1.3 UNCHANGEDSINCE.
	req := cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_REPLACE, []*metadatapb.UidRange{uidRange(1, 0)}, `\Flagged`)
	req.GetStoreFlags().UnchangedSince = 3
	st = h.ok(req).GetStoreFlags()
	if !slices.Equal(st.GetModified(), []uint32{1, 2}) || len(st.GetUpdated()) != 1 || st.GetUpdated()[0].GetUid() != 3 {
		t.Fatalf("unchangedsince store = %v", st)
	}
	h.fails(codes.InvalidArgument, cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 0)}, `\Recent`))

	// COPY keeps flags and adds blob references.
	cp := h.ok(cmdCopy(alice, inbox.GetId(), archive.GetId(), false, uidRange(2, 3))).GetCopy()
	if !slices.Equal(cp.GetSourceUids(), []uint32{2, 3}) || !slices.Equal(cp.GetDestUids(), []uint32{1, 2}) || cp.GetDestUidValidity() != archive.GetUidValidity() {
		t.Fatalf("copy = %v", cp)
	}
	if h.blobRefs("blob-2") != 2 {
		t.Fatalf("blob-2 refs = %d, want 2", h.blobRefs("blob-2"))
	}
	// MOVE (RFC 6851) expunges the source in the same command.
	mv := h.ok(cmdCopy(alice, inbox.GetId(), archive.GetId(), true, uidRange(1, 1))).GetCopy()
	if !slices.Equal(mv.GetDestUids(), []uint32{3}) {
		t.Fatalf("move = %v", mv)
	}
	inboxNow := h.mustMailbox(alice, "INBOX")
	if inboxNow.GetMessages() != 2 || inboxNow.GetUnseen() != 1 {
		t.Fatalf("INBOX after move = %v", inboxNow)
	}
	changes := h.journal(inbox.GetId(), inboxNow.GetHighestModseq()-1)
	if len(changes) != 1 || changes[0].GetKind() != metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE || changes[0].GetUid() != 1 {
		t.Fatalf("move journal = %v", changes)
	}
	h.fails(codes.NotFound, cmdCopy(alice, inbox.GetId(), 9999, false, uidRange(1, 0)))

	// EXPUNGE only removes \Deleted messages, within the UID set.
	h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(2, 3)}, `\Deleted`))
	ex := h.ok(cmdExpunge(alice, inbox.GetId(), uidRange(3, 3))).GetExpunge()
	if !slices.Equal(ex.GetExpunged(), []uint32{3}) {
		t.Fatalf("uid expunge = %v", ex)
	}
	ex = h.ok(cmdExpunge(alice, inbox.GetId())).GetExpunge()
	if !slices.Equal(ex.GetExpunged(), []uint32{2}) {
		t.Fatalf("expunge = %v", ex)
	}
	inboxNow = h.mustMailbox(alice, "INBOX")
	if inboxNow.GetMessages() != 0 || inboxNow.GetUnseen() != 0 || inboxNow.GetSize() != 0 || inboxNow.GetHighestModseq() != ex.GetModseq() {
		t.Fatalf("INBOX after expunge = %v", inboxNow)
	}
	v := h.f.view()
	_, found, err := getRaw(v.r, tombstoneKey(inbox.GetId(), ex.GetModseq(), 2))
	v.close()
	if err != nil || !found {
		t.Fatalf("tombstone of uid 2: found %v, %v", found, err)
	}
	if h.blobRefs("blob-3") != 1 || h.blobRefs("blob-1") != 1 {
		t.Fatalf("blob refs after expunge: blob-3=%d blob-1=%d", h.blobRefs("blob-3"), h.blobRefs("blob-1"))
	}

	// The journal replays the mailbox's whole history in MODSEQ order.
	var kinds []metadatapb.ChangeKind
	last := uint64(0)
	for _, c := range h.journal(inbox.GetId(), 0) {
		if c.GetModseq() < last {
			t.Fatalf("journal out of order at %v", c)
		}
		last = c.GetModseq()
		kinds = append(kinds, c.GetKind())
	}
	if len(kinds) != 3+1+2+1+1+2+1+1 {
		t.Fatalf("journal kinds = %v", kinds)
	}
}

func TestFailedCommandLeavesNoTrace(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	cmd := cmdAppend(alice, inbox.GetId(), "blob-1", "blob-2")
	cmd.GetAppend().Messages[1].Flags = []string{"bad flag"}
	h.fails(codes.InvalidArgument, cmd)
	if box := h.mustMailbox(alice, "INBOX"); !proto.Equal(box, inbox) {
		t.Fatalf("failed append changed INBOX: %v", box)
	}
	if h.blobRefs("blob-1") != 0 || len(h.journal(inbox.GetId(), 0)) != 0 {
		t.Fatal("failed append left a blob reference or journal entry")
	}
	v := h.f.view()
	defer v.close()
	if _, found, _ := getRaw(v.r, messageKey(inbox.GetId(), 1)); found {
		t.Fatal("failed append left message 1")
	}
}

func TestRequestIDIdempotency(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	first := cmdAppend(alice, inbox.GetId(), "blob-1")
	first.RequestId = "retry-me"
	r1 := h.ok(first)
	retry := cmdAppend(alice, inbox.GetId(), "blob-1")
	retry.RequestId = "retry-me"
	r2 := h.ok(retry)
	if !proto.Equal(r1, r2) {
		t.Fatalf("retry result %v differs from %v", r2, r1)
	}
	if box := h.mustMailbox(alice, "INBOX"); box.GetMessages() != 1 || h.blobRefs("blob-1") != 1 {
		t.Fatalf("retried append applied twice: %v", box)
	}
	// A failure is remembered too.
	bad := cmdCreateMailbox(alice, "INBOX")
	bad.RequestId = "dup-create"
	h.fails(codes.AlreadyExists, bad)
	// The same request ID for another command is refused.
	other := cmdCreateMailbox("bob@example.org", "X")
	other.RequestId = "retry-me"
	h.fails(codes.FailedPrecondition, other)

	// Once both the retention period of log time and the retry horizon have passed it, the
	// ID is forgotten.
	h.now = h.now.Add(requestRetention + time.Minute)
	h.horizonNow()
	again := cmdAppend(alice, inbox.GetId(), "blob-1")
	again.RequestId = "retry-me"
	if r3 := h.ok(again); slices.Equal(r3.GetAppend().GetUids(), r1.GetAppend().GetUids()) {
		t.Fatalf("pruned request ID still returned the old result %v", r3)
	}
}

func TestLogTimeNeverGoesBackwards(t *testing.T) {
	h := withAccount(t)
	before := h.mustMailbox(alice, "INBOX").GetUidValidity()
	h.now = h.now.Add(-time.Hour) // a new leader with a slow clock
	h.ok(cmdCreateMailbox(alice, "Late"))
	if late := h.mustMailbox(alice, "Late").GetUidValidity(); late <= before {
		t.Fatalf("UIDVALIDITY %d after %d", late, before)
	}
}

// script applies a mixed sequence of commands touching every table.
func script(h *harness) {
	h.ok(cmdTenant("example", "example.org"))
	h.ok(cmdAccount(alice))
	h.ok(cmdAccount("bob@example.org"))
	inbox := h.mustMailbox(alice, "INBOX")
	trash := h.mustMailbox(alice, "Trash")
	for i := range 20 {
		h.ok(cmdAppend(alice, inbox.GetId(), fmt.Sprintf("blob-%d", i), fmt.Sprintf("blob-%d", i+100)))
	}
	h.ok(cmdClaimRecent(alice, alice, inbox.GetId(), 12))
	h.appendThreaded(alice, trash.GetId(), "blob-root", &metadatapb.ThreadKeys{MessageId: "root@x", BaseSubject: "plans"})
	h.appendThreaded(alice, trash.GetId(), "blob-reply", &metadatapb.ThreadKeys{MessageId: "reply@x", References: []string{"root@x"}, BaseSubject: "plans", Reply: true})
	h.ok(cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 10), uidRange(30, 0)}, `\Seen`, `\Deleted`))
	h.ok(cmdCopy(alice, inbox.GetId(), trash.GetId(), true, uidRange(5, 15)))
	h.ok(cmdExpunge(alice, inbox.GetId()))
	h.ok(cmdClaimRecent(alice, alice, inbox.GetId(), 35))
	h.ok(cmdCreateMailbox(alice, "A/B"))
	h.ok(cmdRename(alice, "A", "C"))
	h.ok(cmdDeleteMailbox(alice, "C"))
	h.fails(codes.NotFound, cmdDeleteMailbox(alice, "A"))
}

func TestDeterministicAcrossBatching(t *testing.T) {
	a := newHarness(t)
	script(a)
	b := newHarness(t)
	// Feed b the same entries in batches of different sizes.
	for i := 0; i < len(a.log); {
		n := min(1+i%7, len(a.log)-i)
		b.f.ApplyBatch(a.log[i : i+n])
		i += n
	}
	if !bytes.Equal(a.digest(), b.digest()) {
		t.Fatal("same log, different batching: digests differ")
	}
	if a.f.AppliedIndex() != b.f.AppliedIndex() || a.f.AppliedIndex() != uint64(len(a.log)) {
		t.Fatalf("applied index %d and %d, want %d", a.f.AppliedIndex(), b.f.AppliedIndex(), len(a.log))
	}
}

func TestRestartSkipsAppliedEntries(t *testing.T) {
	h := newHarness(t)
	script(h)
	digest := h.digest()
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFSM(h.dir, testLogger(t))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	h.f = f
	if f.AppliedIndex() != uint64(len(h.log)) {
		t.Fatalf("applied index after reopen = %d, want %d", f.AppliedIndex(), len(h.log))
	}
	// Raft replays from the last snapshot: everything here is already applied.
	for _, r := range f.ApplyBatch(h.log) {
		if r != nil {
			t.Fatalf("replayed entry returned %v", r)
		}
	}
	if !bytes.Equal(digest, h.digest()) {
		t.Fatal("replaying applied entries changed the state")
	}
	// Entries after the applied index, also mixed with old ones and a
	// configuration entry, are applied.
	h.index++
	cfg := &raft.Log{Index: h.index, Type: raft.LogConfiguration}
	next := h.entry(cmdCreateMailbox(alice, "After Restart"))
	f.ApplyBatch(append(slices.Clone(h.log[len(h.log)-5:len(h.log)-1]), cfg, next))
	h.mustMailbox(alice, "After Restart")
	if f.AppliedIndex() != next.Index {
		t.Fatalf("applied index = %d, want %d", f.AppliedIndex(), next.Index)
	}
}

// memorySink is a raft.SnapshotSink in memory.
type memorySink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memorySink) ID() string    { return "test" }
func (s *memorySink) Close() error  { s.closed = true; return nil }
func (s *memorySink) Cancel() error { s.cancelled = true; return nil }

func TestSnapshotPersistRestore(t *testing.T) {
	src := newHarness(t)
	script(src)
	snap, err := src.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after Snapshot() are not in it.
	want := src.digest()
	wantIndex := src.f.AppliedIndex()
	src.ok(cmdCreateMailbox(alice, "After Snapshot"))
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v (closed %v)", err, sink.closed)
	}
	snap.Release()
	stream := sink.Bytes()
	// Open reads the applied index from the header alone (replication.SnapshotApplied).
	if got, err := src.f.SnapshotAppliedIndex(bytes.NewReader(stream)); err != nil || got != wantIndex {
		t.Fatalf("SnapshotAppliedIndex = %d, %v; want %d", got, err, wantIndex)
	}
	if _, err := src.f.SnapshotAppliedIndex(bytes.NewReader([]byte("not a snapshot at all"))); err == nil {
		t.Fatal("SnapshotAppliedIndex of a stream without the magic succeeded")
	}

	dst := newHarness(t)
	dst.ok(cmdTenant("other", "other.org"))
	sub := dst.f.Subscribe(0)
	defer sub.Close()
	prior := dst.digest()

	// A corrupt stream fails and leaves the old state.
	corrupt := slices.Clone(stream)
	corrupt[len(corrupt)/2] ^= 0xff
	if err := dst.f.Restore(readCloser(corrupt)); err == nil {
		t.Fatal("restore of a corrupt snapshot succeeded")
	}
	if err := dst.f.Restore(readCloser(stream[:len(stream)-10])); err == nil {
		t.Fatal("restore of a truncated snapshot succeeded")
	}
	if !bytes.Equal(prior, dst.digest()) || dst.f.AppliedIndex() != 1 {
		t.Fatal("failed restore changed the state")
	}

	// A reader holding the old store keeps reading it across the swap.
	oldView := dst.f.view()
	if err := dst.f.Restore(readCloser(stream)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if _, found, err := getRaw(oldView.r, tenantKey("other")); err != nil || !found {
		t.Fatalf("old view after restore: found=%v err=%v", found, err)
	}
	oldView.close()
	if !bytes.Equal(want, dst.digest()) || dst.f.AppliedIndex() != wantIndex {
		t.Fatalf("restored state differs (applied %d, want %d)", dst.f.AppliedIndex(), wantIndex)
	}
	select {
	case <-sub.Ready():
		if _, overflowed, _ := sub.Drain(); !overflowed {
			t.Fatal("restore did not signal subscribers to re-read")
		}
	default:
		t.Fatal("restore did not wake subscribers")
	}
	// The restored store survives a reopen.
	if err := dst.f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFSM(dst.dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	dst.f = f
	if !bytes.Equal(want, dst.digest()) {
		t.Fatal("restored state lost on reopen")
	}
}

type bytesReadCloser struct{ *bytes.Reader }

func (bytesReadCloser) Close() error { return nil }

func readCloser(b []byte) bytesReadCloser { return bytesReadCloser{bytes.NewReader(b)} }

func TestChangeEvents(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX")
	sub := h.f.Subscribe(inbox.GetId())
	defer sub.Close()
	all := h.f.Subscribe(0)
	defer all.Close()
	h.ok(cmdAppend(alice, inbox.GetId(), "blob-1"))
	h.ok(cmdCreateMailbox(alice, "Quiet")) // no MODSEQ change anywhere
	<-sub.Ready()
	events, overflowed, closed := sub.Drain()
	want := []ChangeEvent{{Account: alice, MailboxID: inbox.GetId(), HighestModSeq: 2, Kinds: ChangedAppend}}
	if !slices.Equal(events, want) || overflowed || closed {
		t.Fatalf("events = %v %v %v, want %v", events, overflowed, closed, want)
	}
	// Each event says what its command did (the search index skips flag changes).
	all1 := []*metadatapb.UidRange{{First: 1, Last: 1}}
	for _, step := range []struct {
		cmd  *metadatapb.Command
		want ChangeKinds
	}{
		{cmdStore(alice, inbox.GetId(), metadatapb.FlagOp_FLAG_OP_ADD, all1, "\\Deleted"), ChangedFlags},
		{cmdExpunge(alice, inbox.GetId(), all1...), ChangedExpunge},
		{cmdAppend(alice, inbox.GetId(), "blob-2", "blob-3"), ChangedAppend},
	} {
		h.ok(step.cmd)
		select {
		case <-sub.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("no event after %v", step.cmd)
		}
		events, _, _ := sub.Drain()
		if len(events) != 1 || events[0].Kinds != step.want {
			t.Fatalf("after %v: events %v, want kinds %b", step.cmd, events, step.want)
		}
	}
	all.Drain()
	// A subscriber that does not keep up gets one coalesced signal.
	for i := range maxPendingEvents + 10 {
		h.ok(cmdAppend(alice, inbox.GetId(), fmt.Sprintf("blob-%d", i)))
	}
	<-all.Ready()
	if events, overflowed, _ := all.Drain(); !overflowed || len(events) != 0 {
		t.Fatalf("overflowed subscription drained %d events, overflowed=%v", len(events), overflowed)
	}
}
