package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdStoreAs(user, owner string, mailbox uint64, op metadatapb.FlagOp, since uint64, uids []*metadatapb.UidRange, flags ...string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_StoreFlags{StoreFlags: &metadatapb.StoreFlagsRequest{
		User: user, Account: owner, MailboxId: mailbox, Op: op, Uids: uids, Flags: flags, UnchangedSince: since,
	}}}
}

func cmdAppendAs(user, owner string, mailbox uint64, flags []string, blobs ...string) *metadatapb.Command {
	cmd := cmdAppend(owner, mailbox, blobs...)
	cmd.GetAppend().User = user
	for _, m := range cmd.GetAppend().GetMessages() {
		m.Flags = flags
	}
	return cmd
}

// seenView returns "uid:flags@modseq" of every message of the mailbox as user sees it, and
// the mailbox's unseen count for user.
func (h *harness) seenView(user, owner string, mailbox uint64) (string, uint32) {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	rec, granted, err := v.access(user, owner, mailbox, "", rightRead)
	if err != nil {
		h.t.Fatalf("%s reads mailbox %d: %v", user, mailbox, err)
	}
	box, err := v.present(rec, user, granted)
	if err != nil {
		h.t.Fatal(err)
	}
	list := listBothWays(h.t, v, box, listingQuery{owner: owner, user: user})
	var parts []string
	for i, uid := range list.GetUids() {
		parts = append(parts, fmt.Sprintf("%d:%s@%d", uid, strings.Join(list.GetFlags()[i].GetFlags(), ","), list.GetModseqs()[i]))
	}
	return strings.Join(parts, " "), box.GetUnseen()
}

func (h *harness) wantSeenView(user, owner string, mailbox uint64, want string, unseen uint32) {
	h.t.Helper()
	got, gotUnseen := h.seenView(user, owner, mailbox)
	if got != want || gotUnseen != unseen {
		h.t.Fatalf("%s sees %q (unseen %d), want %q (unseen %d)", user, got, gotUnseen, want, unseen)
	}
}

// wantPrivateSeenConsistent checks the private \Seen tables: every record belongs to a
// message that exists and to a user with a counter, and every counter is the number of
// its records that say seen.
func (h *harness) wantPrivateSeenConsistent() {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	counted := map[string]uint64{}
	err := scan(v.r, []byte{prefixPrivateSeen}, []byte{prefixPrivateSeen + 1}, func(k, val []byte) (bool, error) {
		mailbox := binary.BigEndian.Uint64(k[1:9])
		user, uidBytes, _ := bytes.Cut(k[9:], []byte{0})
		uid := binary.BigEndian.Uint32(uidBytes)
		if _, found, err := getRaw(v.r, messageKey(mailbox, uid)); err != nil || !found {
			return false, fmt.Errorf("record of %s for message %d/%d, which does not exist (%v)", user, mailbox, uid, err)
		}
		rec, err := decodePrivateSeen(val)
		if err != nil {
			return false, err
		}
		key := fmt.Sprintf("%s/%d", user, mailbox)
		if _, found, err := getRaw(v.r, seenCountKey(string(user), mailbox)); err != nil || !found {
			return false, fmt.Errorf("no counter for %s (%v)", key, err)
		}
		if rec.seen {
			counted[key]++
		}
		return true, nil
	})
	if err == nil {
		err = scan(v.r, []byte{prefixSeenCount}, []byte{prefixSeenCount + 1}, func(k, val []byte) (bool, error) {
			user, mailbox, _ := bytes.Cut(k[1:], []byte{0})
			key := fmt.Sprintf("%s/%d", user, binary.BigEndian.Uint64(mailbox))
			if got := decodeUint64(val); got != counted[key] {
				return false, fmt.Errorf("counter %s = %d, records say %d", key, got, counted[key])
			}
			return true, nil
		})
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// TestPrivateSeenFSM: in alice's shared mailbox bob's and carol's \Seen are their own,
// alice's is the shared one; each change takes a MODSEQ, journals a change for its user
// only, and the records go with their messages, mailbox and user.
func TestPrivateSeenFSM(t *testing.T) {
	h := newHarness(t)
	h.ok(cmdTenant("example", "example.org"))
	for _, a := range []string{alice, bob, carol} {
		h.ok(cmdAccount(a))
	}
	h.ok(cmdCreateMailbox(alice, "Team"))
	team := h.mustMailbox(alice, "Team").GetId()
	h.ok(cmdSetACL(alice, alice, "Team", bob, "lrswite"))
	h.ok(cmdSetACL(alice, alice, "Team", carol, "lrs"))
	h.ok(cmdAppendAs(alice, alice, team, []string{`\Seen`}, "m1"))
	h.ok(cmdAppendAs(alice, alice, team, nil, "m2", "m3")) // modseq 3
	h.wantSeenView(alice, alice, team, `1:\Seen@2 2:@3 3:@3`, 2)
	h.wantSeenView(bob, alice, team, `1:@2 2:@3 3:@3`, 3)

	// bob's \Seen: his record, a new MODSEQ, a change only his Watch gets.
	res := h.ok(cmdStoreAs(bob, alice, team, metadatapb.FlagOp_FLAG_OP_ADD, 0, []*metadatapb.UidRange{uidRange(1, 2)}, `\Seen`))
	if got := updates(res.GetStoreFlags()); got != `1:\Seen@4 2:\Seen@4` {
		t.Fatalf("store response = %s", got)
	}
	h.wantSeenView(bob, alice, team, `1:\Seen@4 2:\Seen@4 3:@3`, 1)
	h.wantSeenView(carol, alice, team, `1:@2 2:@3 3:@3`, 3)
	h.wantSeenView(alice, alice, team, `1:\Seen@2 2:@3 3:@3`, 2)
	journal := h.journal(team, 3)
	if len(journal) != 2 || journal[0].GetUser() != bob || journal[1].GetUser() != bob || journal[1].GetUid() != 2 {
		t.Fatalf("journal of bob's STORE = %v", journal)
	}

	// A shared flag and bob's \Seen in one STORE: one shared change, the view follows.
	h.ok(cmdStoreAs(bob, alice, team, metadatapb.FlagOp_FLAG_OP_REPLACE, 0, []*metadatapb.UidRange{uidRange(3, 3)}, `\Seen`, `\Answered`))
	h.wantSeenView(bob, alice, team, `1:\Seen@4 2:\Seen@4 3:\Seen,\Answered@5`, 0)
	h.wantSeenView(alice, alice, team, `1:\Seen@2 2:@3 3:\Answered@5`, 2)
	if j := h.journal(team, 4); len(j) != 1 || j[0].GetUser() != "" || !slices.Equal(j[0].GetFlags(), []string{`\Answered`}) {
		t.Fatalf("journal of the mixed STORE = %v", j)
	}
	// Clearing keeps the record's MODSEQ: bob's MODSEQ of 2 never goes back.
	h.ok(cmdStoreAs(bob, alice, team, metadatapb.FlagOp_FLAG_OP_REMOVE, 0, []*metadatapb.UidRange{uidRange(2, 2)}, `\Seen`))
	h.wantSeenView(bob, alice, team, `1:\Seen@4 2:@6 3:\Seen,\Answered@5`, 1)
	// UNCHANGEDSINCE compares bob's MODSEQ: 2 changed (for him) at 6.
	res = h.ok(cmdStoreAs(bob, alice, team, metadatapb.FlagOp_FLAG_OP_ADD, 5, []*metadatapb.UidRange{uidRange(1, 3)}, `\Flagged`))
	if got := res.GetStoreFlags(); !slices.Equal(got.GetModified(), []uint32{2}) || len(got.GetUpdated()) != 2 {
		t.Fatalf("UNCHANGEDSINCE 5 = %v", got)
	}
	// A right carol lacks (w) leaves her STORE of \Seen \Flagged with \Seen only.
	h.ok(cmdStoreAs(carol, alice, team, metadatapb.FlagOp_FLAG_OP_ADD, 0, []*metadatapb.UidRange{uidRange(2, 2)}, `\Seen`, `$Later`))
	h.wantSeenView(carol, alice, team, `1:\Flagged@7 2:\Seen@8 3:\Answered,\Flagged@7`, 2)

	// bob's APPEND with \Seen: the shared flags stay unseen for alice.
	h.ok(cmdAppendAs(bob, alice, team, []string{`\Seen`, `\Draft`}, "m4"))
	h.wantSeenView(bob, alice, team, `1:\Seen,\Flagged@7 2:@6 3:\Seen,\Answered,\Flagged@7 4:\Seen,\Draft@9`, 1)
	h.wantSeenView(alice, alice, team, `1:\Seen,\Flagged@7 2:@3 3:\Answered,\Flagged@7 4:\Draft@9`, 3)
	// bob copies from Team to his INBOX: his own view of \Seen goes along, as his.
	bobInbox := h.mustMailbox(bob, "INBOX").GetId()
	cp := &metadatapb.Command{Op: &metadatapb.Command_Copy{Copy: &metadatapb.CopyRequest{User: bob, Account: alice, SourceMailboxId: team, DestAccount: bob, DestMailboxId: bobInbox, Uids: []*metadatapb.UidRange{uidRange(1, 2)}}}}
	h.ok(cp)
	h.wantSeenView(bob, bob, bobInbox, `1:\Seen,\Flagged@2 2:@2`, 1)
	h.wantPrivateSeenConsistent()

	// Expunge drops the records of the expunged messages, for every user.
	h.ok(cmdStore(alice, team, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 2)}, `\Deleted`))
	h.ok(cmdExpunge(alice, team))
	h.wantSeenView(bob, alice, team, `3:\Seen,\Answered,\Flagged@7 4:\Seen,\Draft@9`, 0)
	h.wantSeenView(carol, alice, team, `3:\Answered,\Flagged@7 4:\Draft@9`, 2)
	h.wantPrivateSeenConsistent()
	// MOVE out of Team by bob (t and e) drops them too.
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_Copy{Copy: &metadatapb.CopyRequest{User: bob, Account: alice, SourceMailboxId: team, DestAccount: bob, DestMailboxId: bobInbox, Uids: []*metadatapb.UidRange{uidRange(3, 3)}, Move: true}}})
	h.wantPrivateSeenConsistent()
	h.wantSeenView(bob, alice, team, `4:\Seen,\Draft@9`, 0)

	// Deleting carol's account drops her records; deleting Team drops the rest.
	h.ok(cmdStoreAs(carol, alice, team, metadatapb.FlagOp_FLAG_OP_ADD, 0, []*metadatapb.UidRange{uidRange(4, 4)}, `\Seen`))
	h.ok(cmdDeleteAccount(carol))
	h.wantPrivateSeenConsistent()
	if n := h.countPrefix([]byte{prefixSeenCount}); n != 1 {
		t.Fatalf("%d counters after deleting carol, want bob's one", n)
	}
	h.ok(cmdDeleteMailbox(alice, "Team"))
	if n := h.countPrefix([]byte{prefixPrivateSeen}) + h.countPrefix([]byte{prefixSeenCount}); n != 0 {
		t.Fatalf("%d private \\Seen keys after deleting Team", n)
	}
	// The mailbox is gone for bob too.
	h.fails(codes.NotFound, cmdStoreAs(bob, alice, team, metadatapb.FlagOp_FLAG_OP_ADD, 0, []*metadatapb.UidRange{uidRange(4, 4)}, `\Seen`))
}

// updates renders a StoreFlags response's updated messages as "uid:flags@modseq".
func updates(resp *metadatapb.StoreFlagsResponse) string {
	var parts []string
	for _, u := range resp.GetUpdated() {
		parts = append(parts, fmt.Sprintf("%d:%s@%d", u.GetUid(), strings.Join(u.GetFlags(), ","), u.GetModseq()))
	}
	return strings.Join(parts, " ")
}

func (h *harness) countPrefix(prefix []byte) int {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	n := 0
	if err := scan(v.r, prefix, prefixEnd(prefix), func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// TestPrivateSeenSnapshot: the records and counters are replicated state: a snapshot
// restores them, and the same log in other batches gives the same store.
func TestPrivateSeenSnapshot(t *testing.T) {
	a := newHarness(t)
	a.ok(cmdTenant("example", "example.org"))
	a.ok(cmdAccount(alice))
	a.ok(cmdAccount(bob))
	a.ok(cmdCreateMailbox(alice, "Team"))
	team := a.mustMailbox(alice, "Team").GetId()
	a.ok(cmdSetACL(alice, alice, "Team", bob, "lrs"))
	for i := range 10 {
		a.ok(cmdAppend(alice, team, fmt.Sprintf("m%d", i)))
	}
	a.ok(cmdStoreAs(bob, alice, team, metadatapb.FlagOp_FLAG_OP_ADD, 0, []*metadatapb.UidRange{uidRange(2, 6)}, `\Seen`))
	a.ok(cmdStoreAs(bob, alice, team, metadatapb.FlagOp_FLAG_OP_REMOVE, 0, []*metadatapb.UidRange{uidRange(4, 4)}, `\Seen`))
	want, wantUnseen := a.seenView(bob, alice, team)

	b := newHarness(t)
	for i := 0; i < len(a.log); {
		n := min(1+i%4, len(a.log)-i)
		b.f.ApplyBatch(a.log[i : i+n])
		i += n
	}
	if !bytes.Equal(a.digest(), b.digest()) {
		t.Fatal("same log, different batching: digests differ")
	}
	c := newHarness(t)
	restoreSnapshot(t, a.f, c.f)
	c.wantSeenView(bob, alice, team, want, wantUnseen)
	if wantUnseen != 6 {
		t.Fatalf("bob's unseen = %d, want 6", wantUnseen)
	}
	c.wantPrivateSeenConsistent()
}

// watchAs is watch for user on owner's mailbox.
func (s *testService) watchAs(user, owner string, mailbox, since uint64) *watcher {
	return s.watchRequest(&metadatapb.WatchRequest{User: user, Account: owner, MailboxId: mailbox, SinceModseq: since})
}

func describeChanges(changes []*metadatapb.Change) string {
	var parts []string
	for _, c := range changes {
		parts = append(parts, fmt.Sprintf("%d:%s@%d:%s", c.GetUid(), strings.Join(c.GetFlags(), ","), c.GetModseq(), c.GetUser()))
	}
	return strings.Join(parts, " ")
}

// TestPrivateSeenService: over gRPC, each user of alice's shared mailbox gets its own \Seen
// in ListMessages, FetchMessages (across fetch chunks), StoreFlags, Mailbox.unseen and
// Watch, where another user's private change never shows and shared changes carry the
// watcher's own \Seen.
func TestPrivateSeenService(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	c := s.client
	team := s.createMailbox(alice, alice, "Team")
	s.setACL(alice, alice, "Team", bob, "lrsw")
	s.setACL(alice, alice, "Team", carol, "lrs")
	n := uint32(fetchChunk + 10)
	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: alice, Account: alice, MailboxId: team.GetId(), Messages: newMessages(int(n), "team")}))
	wa := s.watchAs(alice, alice, team.GetId(), 2)
	wb := s.watchAs(bob, alice, team.GetId(), 2)
	wc := s.watchAs(carol, alice, team.GetId(), 2)

	st := must(c.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: bob, Account: alice, MailboxId: team.GetId(),
		Uids: []*metadatapb.UidRange{uidRange(1, 1), uidRange(n, n)}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Seen`}}))
	if got := updates(st); got != fmt.Sprintf(`1:\Seen@3 %d:\Seen@3`, n) || st.GetModseq() != 3 {
		t.Fatalf("bob's store = %s (modseq %d)", got, st.GetModseq())
	}
	must(c.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: alice, Account: alice, MailboxId: team.GetId(),
		Uids: []*metadatapb.UidRange{uidRange(1, 1)}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Flagged`}}))
	if got, want := describeChanges(wb.changes(t, 4)), fmt.Sprintf(`1:\Seen@3:%s %d:\Seen@3:%s 1:\Seen,\Flagged@4:`, bob, n, bob); got != want {
		t.Fatalf("bob's watch = %q, want %q", got, want)
	}
	for who, w := range map[string]*watcher{alice: wa, carol: wc} {
		if got := describeChanges(w.changes(t, 4)); got != `1:\Flagged@4:` {
			t.Fatalf("%s's watch = %q: another user's \\Seen must not show", who, got)
		}
	}

	list := must(c.ListMessages(s.ctx(), &metadatapb.ListMessagesRequest{User: bob, Account: alice, MailboxId: team.GetId()}))
	if f := list.GetFlags(); !slices.Equal(f[0].GetFlags(), []string{`\Seen`, `\Flagged`}) || !slices.Equal(f[n-1].GetFlags(), []string{`\Seen`}) || len(f[1].GetFlags()) != 0 {
		t.Fatalf("bob's ListMessages flags: first %v, last %v", f[0], f[n-1])
	}
	if list.GetModseqs()[n-1] != 3 || list.GetMailbox().GetUnseen() != n-2 || list.GetMailbox().GetHighestModseq() != 4 {
		t.Fatalf("bob's ListMessages: last modseq %d, mailbox %v", list.GetModseqs()[n-1], list.GetMailbox())
	}
	// Paged (issue 14), the same list: pages of 7 above after_uid, more on all but the last,
	// bob's \Seen on the first and last message; with a flag-set dictionary too.
	whole := describeListing(t, list)
	for _, dictionary := range []bool{false, true} {
		var paged []string
		for after, more := uint32(0), true; more; {
			page := must(c.ListMessages(s.ctx(), &metadatapb.ListMessagesRequest{User: bob, Account: alice, MailboxId: team.GetId(), AfterUid: after, Limit: 7, FlagSetDictionary: dictionary}))
			if len(page.GetUids()) > 7 || len(page.GetUids()) == 0 || page.GetMailbox().GetHighestModseq() != 4 {
				t.Fatalf("page after %d: %d uids, mailbox %v", after, len(page.GetUids()), page.GetMailbox())
			}
			paged = append(paged, describeListing(t, page)...)
			after, more = page.GetUids()[len(page.GetUids())-1], page.GetMore()
			if more == (after == n) {
				t.Fatalf("page ending at %d says more = %v", after, more)
			}
		}
		if !slices.Equal(paged, whole) {
			t.Fatalf("bob's paged list (dictionary %v) differs from the whole:\n%v\n%v", dictionary, paged, whole)
		}
	}
	records := s.fetch(&metadatapb.FetchMessagesRequest{User: bob, Account: alice, MailboxId: team.GetId()})
	var seenUIDs []uint32
	for _, r := range records {
		if hasFlag(r.GetFlags(), `\Seen`) {
			seenUIDs = append(seenUIDs, r.GetUid())
		}
	}
	if len(records) != int(n) || !slices.Equal(seenUIDs, []uint32{1, n}) || records[n-1].GetModseq() != 3 {
		t.Fatalf("bob's FetchMessages: %d records, \\Seen on %v", len(records), seenUIDs)
	}
	for _, r := range s.fetch(&metadatapb.FetchMessagesRequest{User: carol, Account: alice, MailboxId: team.GetId(), Uids: []*metadatapb.UidRange{uidRange(n-1, 0)}}) {
		if hasFlag(r.GetFlags(), `\Seen`) {
			t.Fatalf("carol sees bob's \\Seen on %d", r.GetUid())
		}
	}
	for user, want := range map[string]uint32{alice: n, bob: n - 2, carol: n} {
		if got := s.getMailbox(user, alice, "Team").GetUnseen(); got != want {
			t.Errorf("%s's unseen = %d, want %d", user, got, want)
		}
	}
	shared := must(c.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{User: bob, Account: bob})).GetShared()
	if len(shared) != 1 || shared[0].GetUnseen() != n-2 {
		t.Fatalf("bob's shared list = %v", shared)
	}
	// Revoking r ends bob's watch at its next wake-up (RFC 4314 4: Watch needs r).
	s.setACL(alice, alice, "Team", bob, "l")
	select {
	case err := <-wb.done:
		wantCode(t, err, codes.PermissionDenied)
	case <-time.After(rpcTimeout):
		t.Fatal("bob's watch went on after his r was revoked")
	}
}
