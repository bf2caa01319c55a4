package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

const (
	bob     = "bob@example.org"
	carol   = "carol@example.org"
	mallory = "mallory@globex.test"
)

// setupTenants creates tenant example (example.org, example.net) with alice, bob and carol,
// and tenant globex (globex.test) with mallory.
func (s *testService) setupTenants() {
	s.t.Helper()
	c := s.client
	must(c.CreateTenant(s.ctx(), &metadatapb.CreateTenantRequest{RequestId: s.reqID(), Name: "example", Domains: []string{"example.org", "example.net"}}))
	must(c.CreateTenant(s.ctx(), &metadatapb.CreateTenantRequest{RequestId: s.reqID(), Name: "globex", Domains: []string{"globex.test"}}))
	for _, email := range []string{alice, bob, carol, mallory} {
		must(c.CreateAccount(s.ctx(), &metadatapb.CreateAccountRequest{RequestId: s.reqID(), Email: email}))
	}
}

func (s *testService) setACL(user, owner, name, identifier, rights string) *metadatapb.AclResponse {
	s.t.Helper()
	return must(s.client.SetAcl(s.ctx(), &metadatapb.SetAclRequest{RequestId: s.reqID(), User: user, Account: owner, Name: name, Identifier: identifier, Rights: rights}))
}

func (s *testService) createMailbox(user, owner, name string) *metadatapb.Mailbox {
	s.t.Helper()
	return must(s.client.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), User: user, Account: owner, Name: name}))
}

func (s *testService) getMailbox(user, owner, name string) *metadatapb.Mailbox {
	s.t.Helper()
	return must(s.client.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{User: user, Account: owner, Name: name}))
}

// drain reads a server stream to its end and returns its first error (nil at EOF).
func drain[T any](recv func() (T, error)) error {
	for {
		if _, err := recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// watchOnce opens a Watch stream and returns the error of its first message: nil when the
// stream sends the journal (the user may read the mailbox), else the refusal.
func (s *testService) watchOnce(req *metadatapb.WatchRequest) error {
	ctx, cancel := context.WithTimeout(s.t.Context(), rpcTimeout)
	defer cancel()
	stream, err := s.client.Watch(ctx, req)
	if err != nil {
		return err
	}
	_, err = stream.Recv()
	return err
}

// aclOperation is one RPC a user calls on a mailbox of another owner, and the rights RFC
// 4314 4 says it needs there.
type aclOperation struct {
	name  string
	needs string
	call  func(s *testService, user, owner string, box *metadatapb.Mailbox, own *metadatapb.Mailbox) error
}

var uids1to3 = []*metadatapb.UidRange{uidRange(1, 3)}

// aclOperations: RFC 4314 4, one row per operation. box is a mailbox of owner with three
// messages (UID 3 flagged \Deleted) and a child "Child"; own is the user's INBOX.
var aclOperations = []aclOperation{
	{"GetMailbox", "", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{User: user, Account: owner, Id: box.GetId()})
		return err
	}},
	{"GetMailbox by name", "", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{User: user, Account: owner, Name: box.GetName()})
		return err
	}},
	{"ListMessages", "r", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.ListMessages(s.ctx(), &metadatapb.ListMessagesRequest{User: user, Account: owner, MailboxId: box.GetId()})
		return err
	}},
	{"FetchMessages", "r", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		stream, err := s.client.FetchMessages(s.ctx(), &metadatapb.FetchMessagesRequest{User: user, Account: owner, MailboxId: box.GetId(), WithStructure: true})
		if err != nil {
			return err
		}
		return drain(stream.Recv)
	}},
	{"Watch", "r", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		return s.watchOnce(&metadatapb.WatchRequest{User: user, Account: owner, MailboxId: box.GetId()})
	}},
	{"Append", "i", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: user, Account: owner, MailboxId: box.GetId(), Messages: newMessages(1, "acl-append")})
		return err
	}},
	{"StoreFlags \\Seen", "s", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: user, Account: owner, MailboxId: box.GetId(), Uids: uids1to3, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Seen`}})
		return err
	}},
	{"StoreFlags \\Deleted", "t", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: user, Account: owner, MailboxId: box.GetId(), Uids: uids1to3, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`}})
		return err
	}},
	{"StoreFlags keyword", "w", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: user, Account: owner, MailboxId: box.GetId(), Uids: uids1to3, Op: metadatapb.FlagOp_FLAG_OP_REMOVE, Flags: []string{`$Important`, `\Flagged`}})
		return err
	}},
	{"Expunge", "e", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.Expunge(s.ctx(), &metadatapb.ExpungeRequest{RequestId: s.reqID(), User: user, Account: owner, MailboxId: box.GetId()})
		return err
	}},
	{"Copy out", "r", func(s *testService, user, owner string, box, own *metadatapb.Mailbox) error {
		_, err := s.client.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), User: user, Account: owner, SourceMailboxId: box.GetId(), Uids: uids1to3, DestAccount: user, DestMailboxId: own.GetId()})
		return err
	}},
	{"Move out", "rte", func(s *testService, user, owner string, box, own *metadatapb.Mailbox) error {
		_, err := s.client.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), User: user, Account: owner, SourceMailboxId: box.GetId(), Uids: uids1to3, DestAccount: user, DestMailboxId: own.GetId(), Move: true})
		return err
	}},
	{"Copy in", "i", func(s *testService, user, owner string, box, own *metadatapb.Mailbox) error {
		_, err := s.client.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), User: user, Account: user, SourceMailboxId: own.GetId(), Uids: uids1to3, DestAccount: owner, DestMailboxId: box.GetId()})
		return err
	}},
	{"ClaimRecent", "r", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.ClaimRecent(s.ctx(), &metadatapb.ClaimRecentRequest{RequestId: s.reqID(), User: user, Account: owner, MailboxId: box.GetId(), UpToUid: 4})
		return err
	}},
	{"CreateMailbox below", "k", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), User: user, Account: owner, Name: box.GetName() + "/New"})
		return err
	}},
	{"DeleteMailbox", "x", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.DeleteMailbox(s.ctx(), &metadatapb.DeleteMailboxRequest{RequestId: s.reqID(), User: user, Account: owner, Name: box.GetName()})
		return err
	}},
	{"RenameMailbox", "x", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		// The new name is below the box itself's parent, on which the user has k only
		// through rows that grant it: rename within the box's own subtree level.
		_, err := s.client.RenameMailbox(s.ctx(), &metadatapb.RenameMailboxRequest{RequestId: s.reqID(), User: user, Account: owner, From: box.GetName() + "/Child", To: box.GetName() + "/Renamed"})
		return err
	}},
	{"SetAcl", "a", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.SetAcl(s.ctx(), &metadatapb.SetAclRequest{RequestId: s.reqID(), User: user, Account: owner, MailboxId: box.GetId(), Identifier: carol, Rights: "lr"})
		return err
	}},
	{"DeleteAcl", "a", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.DeleteAcl(s.ctx(), &metadatapb.DeleteAclRequest{RequestId: s.reqID(), User: user, Account: owner, Name: box.GetName(), Identifier: carol})
		return err
	}},
	{"GetAcl", "a", func(s *testService, user, owner string, box, _ *metadatapb.Mailbox) error {
		_, err := s.client.GetAcl(s.ctx(), &metadatapb.GetAclRequest{User: user, Account: owner, MailboxId: box.GetId()})
		return err
	}},
}

// wantCodeFor is the answer RFC 4314 gives a user with granted for an operation that needs
// needs: NotFound without l, r and i (section 6; i alone is a drop box), PermissionDenied
// without a needed right.
// RenameMailbox of box/Child needs x on the child (which inherited box's ACL) and k on
// box, the new name's parent; ClaimRecent needs r and one of i, e, s, t, w.
func wantCodeFor(op aclOperation, granted string) codes.Code {
	if !strings.ContainsAny(granted, "lri") {
		return codes.NotFound
	}
	needs := op.needs
	if op.name == "RenameMailbox" {
		needs += "k"
	}
	for _, r := range needs {
		if !strings.ContainsRune(granted, r) {
			return codes.PermissionDenied
		}
	}
	if op.name == "ClaimRecent" && !strings.ContainsAny(granted, "iestw") {
		return codes.PermissionDenied // a read-write session's: RFC 4314 5.2
	}
	return codes.OK
}

// TestACLRightsTable: every operation of the metadata API, called by bob on a mailbox of
// alice for which the ACL grants bob each of these sets of rights, succeeds exactly when
// RFC 4314 4 says it may, and otherwise fails with NotFound (none of l, r, i: RFC 4314 6) or
// PermissionDenied.
func TestACLRightsTable(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	grants := []string{"", "l", "r", "i", "kx", "lr", "lrs", "lrw", "lrt", "lri", "lre", "lrk", "lrx", "lra", "lrte", "lrxk", "lrswipkxtea"}
	bobInbox := s.getMailbox(bob, bob, "INBOX")
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: bob, Account: bob, MailboxId: bobInbox.GetId(), Messages: newMessages(3, "bob-own")}))
	n := 0
	for _, granted := range grants {
		for _, op := range aclOperations {
			n++
			name := fmt.Sprintf("Case%d", n)
			box := s.createMailbox("", alice, name)
			s.createMailbox(alice, alice, name+"/Child")
			app := must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: alice, Account: alice, MailboxId: box.GetId(), Messages: newMessages(3, name)}))
			must(s.client.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), User: alice, Account: alice, MailboxId: box.GetId(),
				Uids: []*metadatapb.UidRange{uidRange(app.GetUids()[2], app.GetUids()[2])}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Deleted`, `$Important`}}))
			if granted != "" {
				s.setACL(alice, alice, name, bob, granted)
				s.setACL(alice, alice, name+"/Child", bob, granted)
			}
			err := op.call(s, bob, alice, box, bobInbox)
			if got, want := status.Code(err), wantCodeFor(op, granted); got != want {
				t.Errorf("bob with %q: %s = %v, want %v", granted, op.name, err, want)
			}
		}
	}
}

// TestACLNotFoundIsUniform: the refusal for a mailbox the user may not see is the refusal
// for one that does not exist, message included (RFC 4314 6), for every operation.
func TestACLNotFoundIsUniform(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	secret := s.createMailbox(alice, alice, "Secret")
	s.createMailbox(alice, alice, "Secret/Child")
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: secret.GetId(), Messages: newMessages(3, "secret")}))
	missing := &metadatapb.Mailbox{Id: secret.GetId() + 1000, Name: "NoSuchBox"}
	bobInbox := s.getMailbox(bob, bob, "INBOX")
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: bob, MailboxId: bobInbox.GetId(), Messages: newMessages(3, "bob")}))
	for _, op := range aclOperations {
		forbidden := op.call(s, bob, alice, secret, bobInbox)
		absent := op.call(s, bob, alice, missing, bobInbox)
		noOwner := op.call(s, bob, "nobody@example.org", missing, bobInbox)
		fs, as, ns := status.Convert(forbidden), status.Convert(absent), status.Convert(noOwner)
		if fs.Code() != codes.NotFound || fs.Code() != as.Code() || fs.Message() != as.Message() || fs.Code() != ns.Code() || fs.Message() != ns.Message() {
			t.Errorf("%s: forbidden %v, missing %v, unknown owner %v: want the same NotFound", op.name, forbidden, absent, noOwner)
		}
		for _, leak := range []string{"Secret", "forbidden", "permission", "alice"} {
			if strings.Contains(strings.ToLower(fs.Message()), strings.ToLower(leak)) {
				t.Errorf("%s: refusal %q names %q", op.name, fs.Message(), leak)
			}
		}
	}
}

// TestACLTenantIsolation: a user of tenant globex reaches nothing of tenant example, not
// even a mailbox example's owner granted to "anyone" with every right, by any RPC, naming
// example's owner or itself as the account, with example's mailbox ids and names.
func TestACLTenantIsolation(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	open := s.createMailbox(alice, alice, "Open")
	s.createMailbox(alice, alice, "Open/Child")
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: open.GetId(), Messages: newMessages(3, "open")}))
	s.setACL(alice, alice, "Open", "anyone", "lrswipkxtea")
	s.setACL(alice, alice, "Open/Child", "anyone", "lrswipkxtea")
	inbox := s.getMailbox(alice, alice, "INBOX")
	must(s.client.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), Account: "tenant:example", Name: "Support"}))
	support := s.getMailbox("", "tenant:example", "Support")
	s.setACL("", "tenant:example", "Support", "anyone", "lrswipkxtea")
	// Bob of the same tenant does get "anyone"'s rights: the grant is real.
	if got := s.getMailbox(bob, alice, "Open").GetMyRights(); got != "lrswipkxtea" {
		t.Fatalf("bob's rights on Open = %q", got)
	}
	malloryInbox := s.getMailbox(mallory, mallory, "INBOX")
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: mallory, MailboxId: malloryInbox.GetId(), Messages: newMessages(3, "mallory")}))
	targets := []struct {
		owner string
		box   *metadatapb.Mailbox
	}{
		{alice, open}, {alice, inbox}, {"tenant:example", support},
		// Her own account with example's mailbox ids: the id does not belong to her.
		{mallory, open}, {mallory, support},
	}
	for _, target := range targets {
		for _, op := range aclOperations {
			if target.owner == mallory && op.name == "CreateMailbox below" {
				continue // a name in her own space, which she may create
			}
			err := op.call(s, mallory, target.owner, target.box, malloryInbox)
			if status.Code(err) != codes.NotFound {
				t.Errorf("mallory %s on %s's %q: %v, want NotFound", op.name, target.owner, target.box.GetName(), err)
			}
		}
	}
	// Copy from her own mailbox into example's, naming the destination's owner.
	_, err := s.client.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), User: mallory, Account: mallory, SourceMailboxId: malloryInbox.GetId(), Uids: uids1to3, DestAccount: alice, DestMailboxId: open.GetId()})
	wantCode(t, err, codes.NotFound)
	// Listing example's owners shows nothing.
	for _, owner := range []string{alice, "tenant:example"} {
		list := must(s.client.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{User: mallory, Account: owner}))
		if len(list.GetMailboxes())+len(list.GetShared())+len(list.GetSubscriptions()) != 0 {
			t.Errorf("mallory lists %s: %v", owner, list)
		}
	}
	// Nothing changed in example.
	if got := s.getMailbox("", alice, "Open"); got.GetMessages() != 3 || len(got.GetAcl()) != 1 {
		t.Fatalf("Open after mallory = %v", got)
	}
	// Even an admin cannot copy between tenants: blobs are kept per tenant.
	_, err = s.client.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), Account: mallory, SourceMailboxId: malloryInbox.GetId(), Uids: uids1to3, DestAccount: alice, DestMailboxId: open.GetId()})
	wantCode(t, err, codes.InvalidArgument)
}

// TestACLIdentifiersAndModes: SETACL identifiers and rights (RFC 4314 2, 2.1.1, 3.1).
func TestACLIdentifiersAndModes(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	s.createMailbox(alice, alice, "Team")
	for _, bad := range []struct{ identifier, rights string }{
		{mallory, "lr"},                // another tenant's account
		{"-" + mallory, "lr"},          // negated, still another tenant's
		{"someone@nowhere.test", "lr"}, // a domain no tenant owns
		{"tenant:example", "lr"},       // an owner, not an identifier
		{"no-at-sign", "lr"},
		{"bad\x01id@example.org", "lr"},
		{"", "lr"},
		{"-", "lr"},
		{alice, "lr"}, // the owner's rights are fixed
		{"-" + alice, "lr"},
		{bob, "lrz"}, // unknown right (RFC 4314 3.1: never ignored)
		{bob, "+"},
		{bob, "l r"},
	} {
		_, err := s.client.SetAcl(s.ctx(), &metadatapb.SetAclRequest{RequestId: s.reqID(), User: alice, Account: alice, Name: "Team", Identifier: bad.identifier, Rights: bad.rights})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("SetAcl %q %q: %v, want InvalidArgument", bad.identifier, bad.rights, err)
		}
	}
	// Another domain of the same tenant is fine; identifiers are stored lower-case; c and
	// d are k+x and e+t (RFC 4314 2.1.1).
	s.setACL(alice, alice, "Team", "Someone@Example.NET", "cd")
	s.setACL(alice, alice, "Team", "anyone", "lr")
	s.setACL(alice, alice, "Team", "-"+carol, "r")
	acl := s.setACL(alice, alice, "Team", bob, "lrs")
	add := func(mode metadatapb.AclMode, rights string) *metadatapb.AclResponse {
		return must(s.client.SetAcl(s.ctx(), &metadatapb.SetAclRequest{RequestId: s.reqID(), User: alice, Account: alice, Name: "Team", Identifier: bob, Rights: rights, Mode: mode}))
	}
	if got := fmt.Sprint(acl.GetAcl()); got != fmt.Sprint([]*metadatapb.AclEntry{
		{Identifier: "-" + carol, Rights: "r"}, {Identifier: "anyone", Rights: "lr"},
		{Identifier: bob, Rights: "lrs"}, {Identifier: "someone@example.net", Rights: "kxte"},
	}) {
		t.Fatalf("acl = %s", got)
	}
	if got := add(metadatapb.AclMode_ACL_MODE_ADD, "wi").GetAcl()[2].GetRights(); got != "lrswi" {
		t.Fatalf("after +wi: %q", got)
	}
	if got := add(metadatapb.AclMode_ACL_MODE_REMOVE, "rw").GetAcl()[2].GetRights(); got != "lsi" {
		t.Fatalf("after -rw: %q", got)
	}
	if got := add(metadatapb.AclMode_ACL_MODE_REMOVE, "lsi").GetAcl(); len(got) != 3 || slices.ContainsFunc(got, func(e *metadatapb.AclEntry) bool { return e.GetIdentifier() == bob }) {
		t.Fatalf("an entry left without rights must go: %v", got)
	}
	s.setACL(alice, alice, "Team", bob, "lr")
	if got := s.setACL(alice, alice, "Team", bob, "").GetAcl(); len(got) != 3 {
		t.Fatalf("empty rights must remove the entry: %v", got)
	}
	// Negative rights (RFC 4314 2): anyone's r taken from carol; her l stays.
	if got := s.getMailbox(carol, alice, "Team").GetMyRights(); got != "l" {
		t.Fatalf("carol's rights = %q, want l", got)
	}
	must(s.client.DeleteAcl(s.ctx(), &metadatapb.DeleteAclRequest{RequestId: s.reqID(), User: alice, Account: alice, Name: "Team", Identifier: "-" + carol}))
	must(s.client.DeleteAcl(s.ctx(), &metadatapb.DeleteAclRequest{RequestId: s.reqID(), User: alice, Account: alice, Name: "Team", Identifier: "never@example.org"}))
	got := must(s.client.GetAcl(s.ctx(), &metadatapb.GetAclRequest{User: alice, Account: alice, Name: "Team"})).GetAcl()
	if fmt.Sprint(got) != fmt.Sprint([]*metadatapb.AclEntry{{Identifier: "anyone", Rights: "lr"}, {Identifier: "someone@example.net", Rights: "kxte"}}) {
		t.Fatalf("GetAcl = %v", got)
	}
	_, err := s.client.DeleteAcl(s.ctx(), &metadatapb.DeleteAclRequest{RequestId: s.reqID(), User: alice, Account: alice, Name: "Team", Identifier: mallory})
	wantCode(t, err, codes.InvalidArgument)
}

// TestACLOwnerAndPresentation: the owner has every right whatever the ACL says (RFC 4314
// 2.1 via "-anyone"); responses carry owner and my_rights, and the ACL only for a.
func TestACLOwnerAndPresentation(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	s.createMailbox(alice, alice, "Docs")
	s.setACL(alice, alice, "Docs", "-anyone", "lrswipkxtea")
	s.setACL(alice, alice, "Docs", bob, "lr")
	own := s.getMailbox(alice, alice, "Docs")
	if own.GetOwner() != alice || own.GetMyRights() != "lrswipkxtea" || len(own.GetAcl()) != 2 {
		t.Fatalf("alice sees %v", own)
	}
	// bob: anyone's negative rights take his grant away.
	_, err := s.client.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{User: bob, Account: alice, Name: "Docs"})
	wantCode(t, err, codes.NotFound)
	s.setACL(alice, alice, "Docs", "-anyone", "w")
	seen := s.getMailbox(bob, alice, "Docs")
	if seen.GetOwner() != alice || seen.GetMyRights() != "lr" || seen.GetAcl() != nil || seen.GetSubscribed() {
		t.Fatalf("bob sees %v", seen)
	}
	s.setACL(alice, alice, "Docs", bob, "lra")
	if got := s.getMailbox(bob, alice, "Docs"); len(got.GetAcl()) != 2 {
		t.Fatalf("bob with a sees ACL %v", got.GetAcl())
	}
	// With l and without r, nothing of the contents (RFC 4314 4: STATUS needs r).
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: own.GetId(), Messages: newMessages(2, "docs")}))
	s.setACL(alice, alice, "Docs", bob, "l")
	if got := s.getMailbox(bob, alice, "Docs"); got.GetMessages() != 0 || got.GetUidNext() != 0 || got.GetMyRights() != "l" {
		t.Fatalf("bob with l only sees %v", got)
	}
	if admin := s.getMailbox("", alice, "Docs"); admin.GetMyRights() != "" || admin.GetOwner() != alice || admin.GetMessages() != 2 {
		t.Fatalf("admin sees %v", admin)
	}
	list := must(s.client.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{User: bob, Account: alice}))
	if len(list.GetMailboxes()) != 1 || list.GetMailboxes()[0].GetName() != "Docs" || list.GetSubscriptions() != nil {
		t.Fatalf("bob lists alice's mailboxes: %v", list)
	}
}

// TestACLCreateInheritsAndHides: CREATE needs k on the nearest existing parent and the new
// mailbox inherits its ACL (RFC 4314 4); a parent the user cannot see is as good as
// missing, and a top-level name in another owner's space is refused like a missing one.
func TestACLCreateInheritsAndHides(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	s.createMailbox(alice, alice, "Projects")
	s.createMailbox(alice, alice, "Projects/Hidden")
	s.setACL(alice, alice, "Projects", bob, "lrk")
	s.setACL(alice, alice, "Projects", carol, "lr")
	created := s.createMailbox(bob, alice, "Projects/New/Deep")
	if created.GetOwner() != alice || created.GetMyRights() != "lrk" {
		t.Fatalf("created = %v", created)
	}
	if acl := s.getMailbox("", alice, "Projects/New").GetAcl(); len(acl) != 2 {
		t.Fatalf("created parent's ACL = %v, want Projects' own", acl)
	}
	for _, c := range []struct {
		user, name string
		want       codes.Code
	}{
		{carol, "Projects/Other", codes.PermissionDenied}, // l without k
		{bob, "Projects", codes.AlreadyExists},            // visible and existing
		{bob, "Projects/Hidden", codes.AlreadyExists},     // k on the parent reveals names below it
		{bob, "Projects/Hidden/X", codes.PermissionDenied},
		{bob, "TopLevel", codes.NotFound},
		{bob, "INBOX/Child", codes.NotFound},
		{carol, "Projects/Hidden/X", codes.PermissionDenied}, // as for Projects/Other
	} {
		_, err := s.client.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), User: c.user, Account: alice, Name: c.name})
		if status.Code(err) != c.want {
			t.Errorf("%s creates %q: %v, want %v", c.user, c.name, err, c.want)
		}
	}
	// RENAME needs x on the source and k on the new parent.
	s.setACL(alice, alice, "Projects/New", bob, "lrx")
	_, err := s.client.RenameMailbox(s.ctx(), &metadatapb.RenameMailboxRequest{RequestId: s.reqID(), User: bob, Account: alice, From: "Projects/New", To: "Elsewhere"})
	wantCode(t, err, codes.NotFound)
	must(s.client.RenameMailbox(s.ctx(), &metadatapb.RenameMailboxRequest{RequestId: s.reqID(), User: bob, Account: alice, From: "Projects/New", To: "Projects/Newer"}))
	if got := s.getMailbox("", alice, "Projects/Newer/Deep"); got.GetName() != "Projects/Newer/Deep" {
		t.Fatalf("renamed subtree: %v", got)
	}
}

func (s *testService) usage(account, tenant string) string {
	s.t.Helper()
	roots := must(s.client.GetQuota(s.ctx(), &metadatapb.GetQuotaRequest{Account: account, Tenant: tenant})).GetRoots()
	var parts []string
	for _, r := range roots {
		parts = append(parts, fmt.Sprintf("%s%s=%d", r.GetAccount(), r.GetTenant(), r.GetUsage().GetMessages()))
	}
	return strings.Join(parts, " ")
}

// TestACLSharedCopyQuotaAndListing: COPY and MOVE between owners of one tenant charge the
// destination owner's quota roots (the tenant's only for its shared mailboxes), and
// ListMailboxes shows a user what is shared with it.
func TestACLSharedCopyQuotaAndListing(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	c := s.client
	team := s.createMailbox(alice, alice, "Team")
	s.setACL(alice, alice, "Team", bob, "lrite")
	bobInbox := s.getMailbox(bob, bob, "INBOX")
	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: bob, Account: bob, MailboxId: bobInbox.GetId(), Messages: newMessages(3, "bob")}))

	cp := must(c.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), User: bob, Account: bob, SourceMailboxId: bobInbox.GetId(), Uids: uids1to3, DestAccount: alice, DestMailboxId: team.GetId()}))
	if len(cp.GetDestUids()) != 3 {
		t.Fatalf("copy = %v", cp)
	}
	if got := s.usage(alice, ""); got != alice+"=3 example=6" {
		t.Fatalf("after copy into alice's Team: %s", got)
	}
	if got := s.usage(bob, ""); got != bob+"=3 example=6" {
		t.Fatalf("bob after copy: %s", got)
	}
	must(c.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), User: bob, Account: alice, SourceMailboxId: team.GetId(), Uids: []*metadatapb.UidRange{uidRange(1, 2)}, DestAccount: bob, DestMailboxId: bobInbox.GetId(), Move: true}))
	if got := s.usage(alice, "") + " " + s.usage(bob, ""); got != alice+"=1 example=6 "+bob+"=5 example=6" {
		t.Fatalf("after move out of Team: %s", got)
	}
	// The destination owner's limit refuses a copy into its mailbox.
	must(c.SetQuota(s.ctx(), &metadatapb.SetQuotaRequest{RequestId: s.reqID(), Account: alice, Limits: &metadatapb.QuotaLimits{Messages: proto.Uint64(2)}}))
	_, err := c.Copy(s.ctx(), &metadatapb.CopyRequest{RequestId: s.reqID(), User: bob, Account: bob, SourceMailboxId: bobInbox.GetId(), Uids: uids1to3, DestAccount: alice, DestMailboxId: team.GetId()})
	wantCode(t, err, codes.ResourceExhausted)

	// A tenant-shared mailbox: created by an admin call, reached through "anyone"; its
	// usage goes to the tenant root only; a user with k creates below it.
	_, err = c.CreateMailbox(s.ctx(), &metadatapb.CreateMailboxRequest{RequestId: s.reqID(), User: bob, Account: "tenant:example", Name: "Support"})
	wantCode(t, err, codes.NotFound) // a top-level shared name needs an admin
	support := s.createMailbox("", "tenant:example", "Support")
	if support.GetOwner() != "tenant:example" {
		t.Fatalf("support = %v", support)
	}
	s.setACL("", "tenant:example", "Support", "anyone", "lrsik")
	must(c.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: bob, Account: "tenant:example", MailboxId: support.GetId(), Messages: newMessages(2, "support")}))
	if got := s.usage(bob, "") + " " + s.usage("", "example"); got != bob+"=5 example=8 example=8" {
		t.Fatalf("after append to Support: %s", got)
	}
	sub := s.createMailbox(carol, "tenant:example", "Support/Tier2")
	if sub.GetMyRights() != "lrsik" {
		t.Fatalf("carol's Support/Tier2 = %v", sub)
	}
	_, err = c.DeleteMailbox(s.ctx(), &metadatapb.DeleteMailboxRequest{RequestId: s.reqID(), User: carol, Account: "tenant:example", Name: "Support/Tier2"})
	wantCode(t, err, codes.PermissionDenied)

	list := must(c.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{User: bob, Account: bob}))
	var shared []string
	for _, m := range list.GetShared() {
		shared = append(shared, m.GetOwner()+":"+m.GetName()+":"+m.GetMyRights())
	}
	if want := []string{alice + ":Team:lrite", "tenant:example:Support:lrsik", "tenant:example:Support/Tier2:lrsik"}; !slices.Equal(shared, want) {
		t.Fatalf("bob's shared = %v, want %v", shared, want)
	}
	if len(list.GetMailboxes()) != 6 || list.GetMailboxes()[0].GetOwner() != bob || list.GetMailboxes()[0].GetMyRights() != "lrswipkxtea" {
		t.Fatalf("bob's own mailboxes = %v", list.GetMailboxes())
	}
	admin := must(c.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{Account: "tenant:example"}))
	if len(admin.GetMailboxes()) != 2 || admin.GetShared() != nil {
		t.Fatalf("admin lists tenant:example: %v", admin)
	}
	_, err = c.ListMailboxes(s.ctx(), &metadatapb.ListMailboxesRequest{Account: "tenant:nosuch"})
	wantCode(t, err, codes.NotFound)
}

// TestParseRights: the rights letters of SETACL (RFC 4314 2.1) in any order and repeated,
// the obsolete c and d as k+x and e+t (2.1.1), rendered back in the canonical order; any
// other byte is refused (3.1), never ignored.
func TestParseRights(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"lrswipkxtea", "lrswipkxtea"},
		{"aetxkpiwsrl", "lrswipkxtea"},
		{"llrr", "lr"},
		{"c", "kx"},
		{"d", "te"},
		{"lrcd", "lrkxte"},
	} {
		r, ok := parseRights(tc.in)
		if !ok || r.String() != tc.want {
			t.Errorf("parseRights(%q) = %q, %v; want %q", tc.in, r.String(), ok, tc.want)
		}
	}
	for _, in := range []string{"L", "lrz", "+l", "-l", "l r", "0", "\xff", "\x00"} {
		if r, ok := parseRights(in); ok {
			t.Errorf("parseRights(%q) = %q, want refused", in, r.String())
		}
	}
}

// watchRights opens a Watch stream of user on owner's mailbox that follows the user's
// rights (WatchRequest.follow_rights), holding those of ACL version known.
func (s *testService) watchRights(user, owner string, mailbox, since, known uint64) *watcher {
	return s.watchRequest(&metadatapb.WatchRequest{User: user, Account: owner, MailboxId: mailbox, SinceModseq: since, FollowRights: true, KnownAclVersion: known})
}

// next returns the watcher's next batch, described as "modseq: kind/uid/rights@acl_version ...".
func (w *watcher) next(t *testing.T) string {
	t.Helper()
	select {
	case b := <-w.batches:
		var parts []string
		for _, c := range b.GetChanges() {
			kind := strings.ToLower(strings.TrimPrefix(c.GetKind().String(), "CHANGE_KIND_"))
			switch c.GetKind() {
			case metadatapb.ChangeKind_CHANGE_KIND_RIGHTS:
				parts = append(parts, fmt.Sprintf("%s/%s@%d", kind, c.GetRights(), c.GetAclVersion()))
			default:
				parts = append(parts, fmt.Sprintf("%s/%d", kind, c.GetUid()))
			}
		}
		return fmt.Sprintf("%d: %s", b.GetHighestModseq(), strings.Join(parts, " "))
	case err := <-w.done:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(rpcTimeout):
		t.Fatal("no batch")
	}
	return ""
}

// TestWatchFollowsRights: a Watch with follow_rights starts with the user's rights when
// they are of another ACL version than the watcher holds, and sends them again with every
// change of the mailbox's ACL, at the ACL version that SetAcl answered and GetMailbox shows,
// without a MODSEQ; losing r ends it (RFC 4314 4).
func TestWatchFollowsRights(t *testing.T) {
	s := startService(t)
	s.setupTenants()
	team := s.createMailbox(alice, alice, "Team")
	granted := s.setACL(alice, alice, "Team", bob, "lr")
	if granted.GetAclVersion() != 1 {
		t.Fatalf("ACL version after the first SETACL: %d", granted.GetAclVersion())
	}
	mb := s.getMailbox(bob, alice, "Team")
	if mb.GetAclVersion() != 1 || mb.GetMyRights() != "lr" {
		t.Fatalf("bob's GetMailbox: version %d, rights %q", mb.GetAclVersion(), mb.GetMyRights())
	}
	since := mb.GetHighestModseq()
	wb := s.watchRights(bob, alice, team.GetId(), since, 0)
	if got, want := wb.next(t), fmt.Sprintf("%d: rights/lr@1", since); got != want {
		t.Fatalf("bob's first batch %q, want %q", got, want)
	}
	wa := s.watchRights(alice, alice, team.GetId(), since, 0)
	if got, want := wa.next(t), fmt.Sprintf("%d: rights/lrswipkxtea@1", since); got != want {
		t.Fatalf("alice's first batch %q, want %q (the owner's fixed rights)", got, want)
	}
	// A watcher that holds the rights of the current version gets none at first.
	current := s.watchRights(bob, alice, team.GetId(), since, 1)

	if got := s.setACL(alice, alice, "Team", bob, "lrw").GetAclVersion(); got != 2 {
		t.Fatalf("ACL version after the second SETACL: %d", got)
	}
	if got, want := wb.next(t), fmt.Sprintf("%d: rights/lrw@2", since); got != want {
		t.Errorf("bob's batch after +w %q, want %q", got, want)
	}
	if got, want := wa.next(t), fmt.Sprintf("%d: rights/lrswipkxtea@2", since); got != want {
		t.Errorf("alice's batch after bob's +w %q, want %q", got, want)
	}
	if got, want := current.next(t), fmt.Sprintf("%d: rights/lrw@2", since); got != want {
		t.Errorf("first batch of the watch that held version 1: %q, want %q", got, want)
	}
	// A change of another user's entry is a new version; the rights come again, the same.
	s.setACL(alice, alice, "Team", carol, "l")
	if got, want := wb.next(t), fmt.Sprintf("%d: rights/lrw@3", since); got != want {
		t.Errorf("bob's batch after carol's SETACL %q, want %q", got, want)
	}
	// Mail changes come as before, with no rights when the ACL did not change.
	app := must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), User: alice, Account: alice, MailboxId: team.GetId(), Messages: newMessages(1, "rights")}))
	if got, want := wb.next(t), fmt.Sprintf("%d: append/%d", app.GetModseq(), app.GetUids()[0]); got != want {
		t.Errorf("bob's batch after the APPEND %q, want %q", got, want)
	}
	// Without r the stream ends: no rights change says so.
	s.setACL(alice, alice, "Team", bob, "l")
	select {
	case err := <-wb.done:
		wantCode(t, err, codes.PermissionDenied)
	case b := <-wb.batches:
		t.Fatalf("bob's watch sent %v after his r was revoked", b)
	case <-time.After(rpcTimeout):
		t.Fatal("bob's watch went on after his r was revoked")
	}
	// A stream without follow_rights carries no rights.
	plain := s.watchAs(alice, alice, team.GetId(), since)
	if got, want := func() string { defer plain.cancel(); return plain.next(t) }(), fmt.Sprintf("%d: append/%d", app.GetModseq(), app.GetUids()[0]); got != want {
		t.Errorf("a plain watch's first batch %q, want %q", got, want)
	}
}
