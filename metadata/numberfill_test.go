package metadata

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
	"github.com/strata-mail/strata/replication/cluster"
)

// fillThreads appends n messages to mailbox in commands of 100, message i with Message-ID
// m<i>@x referring to m<i/2>@x and m<i/3>@x.
func (h *harness) fillThreads(mailbox uint64, n int) {
	h.t.Helper()
	for first := 0; first < n; first += 100 {
		var ids [][]string
		for i := first; i < min(first+100, n); i++ {
			ids = append(ids, []string{fmt.Sprintf("m%d@x", i), fmt.Sprintf("m%d@x", i/2), fmt.Sprintf("m%d@x", i/3)})
		}
		h.ok(cmdAppendThread(alice, mailbox, ids...))
	}
}

// stripNumbers makes mailbox as a build before the Message-ID dictionary stored it, behind
// the FSM's back: its entries without numbers, no dictionaries, a record without
// last_message_number nor numbers_complete (nor the subject numbers'); the entries of the UIDs below perMessage in
// the 'C' layout (one key each).
func (h *harness) stripNumbers(mailbox uint64, perMessage uint32) {
	h.t.Helper()
	stripNumbers(h.t, h.f, mailbox, perMessage)
}

func stripNumbers(t testing.TB, f *FSM, mailbox uint64, perMessage uint32) {
	t.Helper()
	g := f.acquire()
	defer g.release()
	b := g.db.NewBatch()
	v := f.view()
	defer v.close()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.DeleteRange(mailboxPrefix(prefixMessageNumber, mailbox), mailboxPrefixEnd(prefixMessageNumber, mailbox), nil))
	must(b.DeleteRange(mailboxPrefix(prefixSubjectNumber, mailbox), mailboxPrefixEnd(prefixSubjectNumber, mailbox), nil))
	// A build before the subject numbers had no subject projection either.
	must(b.DeleteRange(mailboxPrefix(prefixSubjectRecords, mailbox), mailboxPrefixEnd(prefixSubjectRecords, mailbox), nil))
	must(scan(v.r, mailboxPrefix(prefixSortChunk, mailbox), mailboxPrefixEnd(prefixSortChunk, mailbox), func(k, val []byte) (bool, error) {
		var out []byte
		for len(val) > 0 {
			uid, rec, rest, ok := nextColumnRecord(val)
			if !ok {
				return false, fmt.Errorf("chunk %x does not take apart", k)
			}
			val = rest
			_, n := protowire.ConsumeVarint(rec)
			entry, _ := protowire.ConsumeBytes(rec[n:])
			e := &metadatapb.SortColumnEntry{}
			if err := proto.Unmarshal(entry, e); err != nil {
				return false, err
			}
			e.MessageNumber, e.ReferenceNumbers = nil, nil
			bare := sortColumnEntry(e.GetInternalDateUnix(), e.GetSize(), mustMarshal(e.GetKeys()))
			if uid < perMessage {
				must(b.Set(sortColumnKey(mailbox, uid), bare, nil))
			} else {
				out = appendColumnRecord(out, uid, bare)
			}
		}
		if len(out) == 0 {
			return true, b.Delete(k, nil)
		}
		return true, b.Set(bytes.Clone(k), out, nil)
	}))
	rec := &metadatapb.MailboxRecord{}
	if found, err := getProto(v.r, mailboxKey(mailbox), rec); err != nil || !found {
		t.Fatalf("mailbox %d: %v %v", mailbox, found, err)
	}
	rec.LastMessageNumber, rec.NumbersComplete, rec.NumberedThroughUid = 0, false, 0
	rec.LastSubjectNumber, rec.SubjectsComplete, rec.SubjectsNumberedThroughUid = 0, false, 0
	rec.SubjectRecordsComplete, rec.SubjectRecordedThroughUid = false, 0
	must(b.Set(mailboxKey(mailbox), mustMarshal(rec), nil))
	must(b.Commit(nil))
	g.carried = nil
}

// getMailboxRecord reads mailbox's record in f.
func getMailboxRecord(f *FSM, mailbox uint64) (*metadatapb.MailboxRecord, error) {
	v := f.view()
	defer v.close()
	rec := &metadatapb.MailboxRecord{}
	_, err := getProto(v.r, mailboxKey(mailbox), rec)
	return rec, err
}

func cmdNumberMessages(account string, mailbox uint64, maxEntries uint32) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_NumberMessages{NumberMessages: &metadatapb.NumberMessagesCommand{Account: account, MailboxId: mailbox, MaxEntries: maxEntries}}}
}

// fillMailbox applies NumberMessagesCommands of maxEntries to alice's mailbox until one
// answers complete, calling between (if not nil) with the step, from 0, and the result of
// each that does not; it fails the test where step most+1 does not complete either.
func (h *harness) fillMailbox(mailbox uint64, maxEntries uint32, most int, between func(step int, out *metadatapb.NumberMessagesResult)) {
	h.t.Helper()
	for step := 0; ; step++ {
		out := h.ok(cmdNumberMessages(alice, mailbox, maxEntries)).GetNumberMessages()
		if out.GetComplete() {
			return
		}
		if step > most {
			h.t.Fatalf("mailbox %d not complete after %d commands", mailbox, most)
		}
		if between != nil {
			between(step, out)
		}
	}
}

// reopen closes h's FSM and opens its store again, as a restart does.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.f.Close(); err != nil {
		h.t.Fatal(err)
	}
	f, err := OpenFSM(h.dir, testLogger(h.t))
	if err != nil {
		h.t.Fatalf("reopen: %v", err)
	}
	h.f = f
}

// numberState is what numbering writes of mailbox: its record, its column's chunks and
// entries, its dates, subject and thread-keys projections, its dictionaries.
func (h *harness) numberState(mailbox uint64) []byte {
	h.t.Helper()
	return numberState(h.t, h.f, mailbox)
}

func numberState(t testing.TB, f *FSM, mailbox uint64) []byte {
	t.Helper()
	v := f.view()
	defer v.close()
	var out []byte
	for _, r := range [][2][]byte{
		{mailboxKey(mailbox), mailboxKey(mailbox + 1)},
		{mailboxPrefix(prefixSortChunk, mailbox), mailboxPrefixEnd(prefixSortChunk, mailbox)},
		{mailboxPrefix(prefixSortColumn, mailbox), mailboxPrefixEnd(prefixSortColumn, mailbox)},
		{mailboxPrefix(prefixSortDates, mailbox), mailboxPrefixEnd(prefixSortDates, mailbox)},
		{mailboxPrefix(prefixSubjectRecords, mailbox), mailboxPrefixEnd(prefixSubjectRecords, mailbox)},
		{mailboxPrefix(prefixThreadKeys, mailbox), mailboxPrefixEnd(prefixThreadKeys, mailbox)},
		{mailboxPrefix(prefixMessageNumber, mailbox), mailboxPrefixEnd(prefixMessageNumber, mailbox)},
		{mailboxPrefix(prefixSubjectNumber, mailbox), mailboxPrefixEnd(prefixSubjectNumber, mailbox)},
	} {
		err := scan(v.r, r[0], r[1], func(k, val []byte) (bool, error) {
			out = protowire.AppendBytes(protowire.AppendBytes(out, k), val)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestNumberFillRestoresTheNumbers: a mailbox stored without numbers, numbered 50 entries
// a command with a restart in the middle, ends with what APPENDs of the same messages
// wrote (record, column, dictionary), since the fill numbers in the order the appends did; a
// new mailbox is complete from the start, and a command on it changes nothing.
func TestNumberFillRestoresTheNumbers(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.fillThreads(inbox, 300)
	if !h.mustMailboxRecord(inbox).GetNumbersComplete() {
		t.Fatal("a new mailbox is not numbers_complete")
	}
	want := h.numberState(inbox)
	wantNumbers := h.columnNumbers(inbox)
	h.ok(cmdNumberMessages(alice, inbox, 50))
	if !bytes.Equal(h.numberState(inbox), want) {
		t.Fatal("numbering a complete mailbox changed the store")
	}
	h.stripNumbers(inbox, 0)
	if got := h.columnNumbers(inbox); got[1] != nil || len(got) != 300 {
		t.Fatalf("stripped column: %v", got[1])
	}
	var through, subjectsThrough, recordsThrough []uint32
	for step := 0; ; step++ {
		if step == 3 {
			h.reopen()
		}
		out := h.ok(cmdNumberMessages(alice, inbox, 50)).GetNumberMessages()
		if out.GetComplete() {
			break
		}
		switch {
		case out.GetNumberedThroughUid() != 0:
			through = append(through, out.GetNumberedThroughUid())
		case out.GetSubjectRecordsThroughUid() != 0:
			recordsThrough = append(recordsThrough, out.GetSubjectRecordsThroughUid())
		default:
			subjectsThrough = append(subjectsThrough, out.GetSubjectsNumberedThroughUid())
		}
		if step > 20 {
			t.Fatalf("not complete after %d commands: %v", step, through)
		}
	}
	// The last command of the subject numbers reaches the column's end (0): the subject
	// records follow, to the command that completes them.
	if fmt.Sprint(through) != "[50 100 150 200 250 300]" || fmt.Sprint(subjectsThrough) != "[0 50 100 150 200 250 300 0]" ||
		fmt.Sprint(recordsThrough) != "[50 100 150 200 250 300]" {
		t.Fatalf("numbered through %v, subjects through %v, subject records through %v", through, subjectsThrough, recordsThrough)
	}
	h.wantSortColumn()
	if got := h.columnNumbers(inbox); !mapsEqual(got, wantNumbers) {
		t.Fatal("numbers differ from those given at append")
	}
	if !bytes.Equal(h.numberState(inbox), want) {
		t.Fatal("the numbered store differs from the one the appends wrote")
	}
}

// TestNumberFillBothLayoutsAndExpunge: entries of the 'C' layout are numbered in place,
// a message expunged between two commands is skipped, one appended meanwhile comes
// numbered and keeps its numbers, and a restored replica's store equals the original's.
func TestNumberFillBothLayoutsAndExpunge(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.fillThreads(inbox, 250)
	h.stripNumbers(inbox, 100)
	if out := h.ok(cmdNumberMessages(alice, inbox, 60)).GetNumberMessages(); out.GetNumbered() != 60 || out.GetNumberedThroughUid() != 60 {
		t.Fatalf("first command: %v", out)
	}
	h.ok(cmdStore(alice, inbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(10, 10), uidRange(61, 80), uidRange(200, 210)}, `\Deleted`))
	h.ok(cmdExpunge(alice, inbox))
	h.ok(cmdAppendThread(alice, inbox, []string{"new@x", "m1@x"}))
	appended := h.columnNumbers(inbox)[251]
	if len(appended) != 2 {
		t.Fatalf("appended meanwhile: numbers %v", appended)
	}
	out := h.ok(cmdNumberMessages(alice, inbox, maxNumberEntries+1)).GetNumberMessages()
	if out.GetNumbered() != 250-60-20-11 {
		t.Fatalf("second command: %v", out)
	}
	if !h.mustMailboxRecord(inbox).GetNumbersComplete() {
		t.Fatal("record not complete")
	}
	h.fillMailbox(inbox, maxNumberEntries, 1, nil) // the subject numbers (subjectnumbers.go)
	h.wantSortColumn()
	if got := h.columnNumbers(inbox)[251]; fmt.Sprint(got) != fmt.Sprint(appended) {
		t.Fatalf("appended message renumbered: %v, was %v", got, appended)
	}
	v := h.f.view()
	perMessage := 0
	err := scan(v.r, mailboxPrefix(prefixSortColumn, inbox), mailboxPrefixEnd(prefixSortColumn, inbox), func(k, val []byte) (bool, error) {
		perMessage++
		if _, numbered, _ := entryKeys(val); !numbered {
			return false, fmt.Errorf("'C' entry of UID %d unnumbered", binary.BigEndian.Uint32(k[9:]))
		}
		return true, nil
	})
	v.close()
	if err != nil || perMessage != 99-1-20 {
		t.Fatalf("'C' entries: %d, %v", perMessage, err)
	}
	if !bytes.Equal(h.restored().digest(), h.digest()) {
		t.Fatal("a restored replica's store differs")
	}
}

// numberingGroup is a real Raft group of n replicas in the test, each with its
// ClusterAdmin served over gRPC on loopback (so that the leader asks the others for their
// feature levels), and the metadata service of the first, its leader.
type numberingGroup struct {
	t      *testing.T
	fsms   []*FSM
	nodes  []*replication.Node
	admins []*cluster.Admin
	svc    *Service
	seq    int
}

func newNumberingGroup(t *testing.T, ctx context.Context, n int) *numberingGroup {
	g := &numberingGroup{t: t}
	for i := range n {
		dir := t.TempDir()
		f, err := OpenFSM(filepath.Join(dir, "fsm"), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("meta-%d", i)
		node, err := replication.Open(replication.Config{
			NodeID: id, DataDir: filepath.Join(dir, "raft"), RaftBind: "127.0.0.1:0",
			Bootstrap: i == 0, FSM: f, Logger: testLogger(t), CommitTimeout: 2 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		admin := cluster.NewAdmin(node, f.DigestAt, nil, insecure.NewCredentials(), testLogger(t))
		admin.SetFeatureLevel(FeatureLevel)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		clusterpb.RegisterClusterAdminServer(srv, admin)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() {
			srv.Stop()
			_ = admin.Close()
			node.Close()
			f.Close()
		})
		g.fsms, g.nodes, g.admins = append(g.fsms, f), append(g.nodes, node), append(g.admins, admin)
		if i == 0 {
			if err := node.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Join through the leader's admin, which so learns the member's gRPC address.
		join := &clusterpb.JoinRequest{Id: id, RaftAddr: node.Addr(), GrpcAddr: ln.Addr().String(), Voter: true}
		if _, err := g.admins[0].Join(ctx, join); err != nil {
			t.Fatal(err)
		}
	}
	g.svc = NewService(g.nodes[0], g.fsms[0], testLogger(t))
	g.svc.SetGroupFeatureLevel(g.admins[0].GroupFeatureLevel)
	return g
}

func (g *numberingGroup) propose(ctx context.Context, cmd *metadatapb.Command) *metadatapb.CommandResult {
	g.t.Helper()
	g.seq++
	res, err := g.svc.propose(ctx, fmt.Sprintf("test-%d", g.seq), cmd)
	if err != nil {
		g.t.Fatalf("command %v: %v", cmd.GetOp(), err)
	}
	return res
}

// appendThreads appends n messages to alice's mailbox in commands of 100, message i with
// Message-ID m<i>@x referring to m<i/2>@x.
func (g *numberingGroup) appendThreads(ctx context.Context, mailbox uint64, n int) {
	g.t.Helper()
	for first := 0; first < n; first += 100 {
		var ids [][]string
		for i := first; i < min(first+100, n); i++ {
			ids = append(ids, []string{fmt.Sprintf("m%d@x", i), fmt.Sprintf("m%d@x", i/2)})
		}
		g.propose(ctx, cmdAppendThread(alice, mailbox, ids...))
	}
}

// caughtUp waits until every replica applied what the first did.
func (g *numberingGroup) caughtUp() {
	g.t.Helper()
	testwait.Until(g.t, time.Minute, func() error {
		for i, f := range g.fsms[1:] {
			if a, b := g.fsms[0].AppliedIndex(), f.AppliedIndex(); a != b {
				return fmt.Errorf("replica 0 applied %d, replica %d %d", a, i+1, b)
			}
		}
		return nil
	})
}

// sameDigests fails unless every replica's digest is the first's.
func (g *numberingGroup) sameDigests() {
	g.t.Helper()
	g.caughtUp()
	d0, err := g.fsms[0].Digest()
	if err != nil {
		g.t.Fatal(err)
	}
	for i, f := range g.fsms[1:] {
		if d, err := f.Digest(); err != nil || !bytes.Equal(d, d0) {
			g.t.Fatalf("replica %d's digest differs from replica 0's (%v)", i+1, err)
		}
	}
}

// TestNumberFillReplicated: over a real two-voter Raft group, the leader's
// NumberAccountMessages numbers a mailbox stored without numbers on both replicas to what
// the APPENDs gave, and so does its background RunMessageNumbering for another account's
// mailbox (and then ends); the replicas' digests are equal after it.
func TestNumberFillReplicated(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	g := newNumberingGroup(t, ctx, 2)
	g.propose(ctx, cmdTenant("example", "Example.ORG"))
	g.propose(ctx, cmdAccount("Alice@Example.org"))
	g.propose(ctx, cmdAccount("bob@example.org"))
	inbox := g.propose(ctx, cmdCreateMailbox(alice, "Old")).GetMailbox().GetId()
	bobs := g.propose(ctx, cmdCreateMailbox("bob@example.org", "Old")).GetMailbox().GetId()
	g.propose(ctx, cmdAppendThread("bob@example.org", bobs, []string{"b1@x"}, []string{"b2@x", "b1@x"}))
	g.appendThreads(ctx, inbox, 300)
	g.caughtUp()
	want, wantBobs := numberState(t, g.fsms[0], inbox), numberState(t, g.fsms[0], bobs)
	for _, f := range g.fsms {
		stripNumbers(t, f, inbox, 0)
		stripNumbers(t, f, bobs, 0)
	}
	resp, err := g.svc.NumberAccountMessages(ctx, &metadatapb.NumberAccountMessagesRequest{Account: "Alice@Example.org"})
	if err != nil || !resp.GetDone() || resp.GetNumbered() != 300 || resp.GetCommands() != 3 {
		t.Fatalf("NumberAccountMessages: %v, %v", resp, err)
	}
	if rec := must(getMailboxRecord(g.fsms[0], bobs)); rec.GetNumbersComplete() {
		t.Fatal("NumberAccountMessages of alice numbered bob's mailbox")
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		g.svc.RunMessageNumbering(ctx, MessageNumbering{Idle: 10 * time.Millisecond, Duty: 0.5})
	}()
	<-ran
	g.caughtUp()
	for i, f := range g.fsms {
		if !bytes.Equal(numberState(t, f, inbox), want) || !bytes.Equal(numberState(t, f, bobs), wantBobs) {
			t.Fatalf("replica %d: numbers differ from the APPENDs'", i)
		}
	}
	g.sameDigests()

	// A follower does not answer from its own state, which may be behind the group's
	// (every mailbox numbered, done): the listing reads after a read barrier, which only
	// the leader passes, and the follower redirects to it.
	follower := NewService(g.nodes[1], g.fsms[1], testLogger(t))
	follower.SetGroupFeatureLevel(g.admins[1].GroupFeatureLevel)
	resp, err = follower.NumberAccountMessages(ctx, &metadatapb.NumberAccountMessagesRequest{Account: alice})
	if _, ok := cluster.LeaderRedirect(err); !ok {
		t.Fatalf("NumberAccountMessages on a follower: %v, %v; want NOT_LEADER", resp, err)
	}
}

// TestNumberingWaitsForFeatureLevel: in a real three-voter Raft group where one replica
// reports the feature level of a build from before NumberMessagesCommand (as a replica
// not yet upgraded does), the leader proposes none: NumberAccountMessages is refused with
// FailedPrecondition and the background numbering makes passes that number nothing, the
// log does not move. Once that replica reports this build's level (its upgrade), the
// background numbering numbers the mailbox on every replica to what the APPENDs gave, and
// the digests are equal.
func TestNumberingWaitsForFeatureLevel(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	g := newNumberingGroup(t, ctx, 3)
	var asked atomic.Int32
	g.svc.SetGroupFeatureLevel(func(ctx context.Context) (uint32, error) {
		asked.Add(1)
		return g.admins[0].GroupFeatureLevel(ctx)
	})
	g.propose(ctx, cmdTenant("example", "Example.ORG"))
	g.propose(ctx, cmdAccount("Alice@Example.org"))
	inbox := g.propose(ctx, cmdCreateMailbox(alice, "Old")).GetMailbox().GetId()
	g.appendThreads(ctx, inbox, 200)
	g.caughtUp()
	// Replica 2 reports an older level only now: the mailbox was created complete in every
	// layout (a mailbox created at a lower level lacks the listing column and is filled
	// later: TestMixedGroupWritesNoNewLayout).
	g.admins[2].SetFeatureLevel(FeatureLevel - 1)
	want := numberState(t, g.fsms[0], inbox)
	for _, f := range g.fsms {
		stripNumbers(t, f, inbox, 0)
	}
	g.sameDigests()
	applied := g.fsms[0].AppliedIndex()

	_, err := g.svc.NumberAccountMessages(ctx, &metadatapb.NumberAccountMessagesRequest{Account: alice})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("NumberAccountMessages with a replica of level 0: %v, want FailedPrecondition", err)
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		g.svc.RunMessageNumbering(ctx, MessageNumbering{Idle: 10 * time.Millisecond, Duty: 1})
	}()
	testwait.Until(t, time.Minute, func() error {
		if n := asked.Load(); n < 4 {
			return fmt.Errorf("the group's level was asked %d times", n)
		}
		return nil
	})
	for i, f := range g.fsms {
		if rec := must(getMailboxRecord(f, inbox)); rec.GetNumbersComplete() || rec.GetNumberedThroughUid() != 0 {
			t.Fatalf("replica %d: numbered while a replica reports level 0: %v", i, rec)
		}
		if got := f.AppliedIndex(); got != applied {
			t.Fatalf("replica %d: applied index %d, %d before the gated passes: a command was proposed", i, got, applied)
		}
	}

	g.admins[2].SetFeatureLevel(FeatureLevel)
	<-ran
	g.caughtUp()
	for i, f := range g.fsms {
		if !bytes.Equal(numberState(t, f, inbox), want) {
			t.Fatalf("replica %d: numbers differ from the APPENDs'", i)
		}
	}
	g.sameDigests()
}

// TestEntryKeys: an entry's keys and whether it has numbers; an entry cut anywhere or
// without keys is not numbered (and does not panic).
func TestEntryKeys(t *testing.T) {
	keys := mustMarshal(&metadatapb.SortKeys{Subject: "s", MessageId: "m"})
	bare := sortColumnEntry(7, 9, keys)
	numbered := protowire.AppendVarint(protowire.AppendTag(bytes.Clone(bare), sortColumnNumberField, protowire.VarintType), 3)
	if k, n, ok := entryKeys(bare); !ok || n || !bytes.Equal(k, keys) {
		t.Fatalf("bare entry: %x %v %v", k, n, ok)
	}
	if k, n, ok := entryKeys(numbered); !ok || !n || !bytes.Equal(k, keys) {
		t.Fatalf("numbered entry: %x %v %v", k, n, ok)
	}
	for i := range len(bare) {
		if _, _, ok := entryKeys(bare[:i]); ok {
			t.Fatalf("entry cut at %d of %d taken apart", i, len(bare))
		}
	}
}
