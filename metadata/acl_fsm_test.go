package metadata

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdSetACL(user, owner, name, identifier, rights string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_SetAcl{SetAcl: &metadatapb.SetAclRequest{User: user, Account: owner, Name: name, Identifier: identifier, Rights: rights}}}
}

func cmdCreateAs(user, owner, name string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_CreateMailbox{CreateMailbox: &metadatapb.CreateMailboxRequest{User: user, Account: owner, Name: name}}}
}

func cmdDeleteAccount(email string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: email}}}
}

// aclIndex returns the ACL index as "tenant|identifier|owner|name=id" lines, in key order.
func (h *harness) aclIndex() []string {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	var out []string
	err := scan(v.r, []byte{prefixACLIndex}, []byte{prefixACLIndex + 1}, func(k, val []byte) (bool, error) {
		out = append(out, fmt.Sprintf("%s=%d", strings.ReplaceAll(string(k[1:]), "\x00", "|"), decodeUint64(val)))
		return true, nil
	})
	if err != nil {
		h.t.Fatalf("scan ACL index: %v", err)
	}
	return out
}

// wantACLIndex rebuilds the ACL index from the mailbox records and checks that the stored
// one is exactly that: no entry missing, none stale.
func (h *harness) wantACLIndex() {
	h.t.Helper()
	v := h.f.view()
	var want []string
	err := scan(v.r, []byte{prefixMailbox}, []byte{prefixMailbox + 1}, func(_, val []byte) (bool, error) {
		rec := &metadatapb.MailboxRecord{}
		if err := proto.Unmarshal(val, rec); err != nil {
			return false, err
		}
		tenant, _, err := ownerTenant(v.r, rec.GetAccount())
		if err != nil {
			return false, err
		}
		for _, e := range rec.GetMailbox().GetAcl() {
			key := aclIndexKey(tenant, e.GetIdentifier(), rec.GetAccount(), rec.GetMailbox().GetName())
			want = append(want, string(key[1:])+fmt.Sprintf("\x00=%d", rec.GetMailbox().GetId()))
		}
		return true, nil
	})
	v.close()
	if err != nil {
		h.t.Fatalf("scan mailboxes: %v", err)
	}
	slices.Sort(want) // in key order
	for i := range want {
		want[i] = strings.ReplaceAll(strings.Replace(want[i], "\x00=", "=", 1), "\x00", "|")
	}
	if got := h.aclIndex(); !slices.Equal(got, want) {
		h.t.Fatalf("ACL index:\n  %s\nwant, from the mailboxes' ACLs:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// shared returns "owner:name:rights" of the mailboxes ListMailboxes shows user in shared.
func (h *harness) shared(user string) []string {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	boxes, err := v.sharedMailboxes(user, user)
	if err != nil {
		h.t.Fatalf("shared mailboxes of %s: %v", user, err)
	}
	var out []string
	for _, b := range boxes {
		out = append(out, b.GetOwner()+":"+b.GetName()+":"+b.GetMyRights())
	}
	return out
}

func (h *harness) wantShared(user string, want ...string) {
	h.t.Helper()
	if got := h.shared(user); !slices.Equal(got, want) {
		h.t.Fatalf("shared with %s = %q, want %q", user, got, want)
	}
}

// aclScript drives ACL changes through every command that must keep the ACL index right.
func aclScript(h *harness) {
	h.ok(cmdTenant("example", "example.org"))
	h.ok(cmdTenant("globex", "globex.test"))
	for _, a := range []string{alice, bob, carol, mallory} {
		h.ok(cmdAccount(a))
	}
	h.ok(cmdCreateMailbox(alice, "Projects/A"))
	h.ok(cmdSetACL(alice, alice, "Projects", bob, "lr"))
	h.ok(cmdSetACL(alice, alice, "Projects/A", "anyone", "lr"))
	h.ok(cmdSetACL(alice, alice, "Projects/A", "-"+carol, "r"))
	h.ok(cmdCreateAs("", "tenant:example", "Support"))
	h.ok(cmdSetACL("", "tenant:example", "Support", "anyone", "lrs"))
	h.ok(cmdCreateMailbox(mallory, "Loot"))
	h.ok(cmdSetACL(mallory, mallory, "Loot", "anyone", "lrswi"))
}

// TestACLIndexFollowsEveryChange: the index of ACL entries by identifier stays exactly the
// mailboxes' ACLs through SETACL, CREATE (inherited ACLs), RENAME, DELETE (the \Noselect
// placeholder keeps the ACL), account deletion (grants to it go) and tenant deletion,
// and ListMailboxes' shared list follows it.
func TestACLIndexFollowsEveryChange(t *testing.T) {
	h := newHarness(t)
	aclScript(h)
	h.wantACLIndex()
	h.wantShared(bob, alice+":Projects:lr", alice+":Projects/A:lr", "tenant:example:Support:lrs")
	h.wantShared(carol, alice+":Projects/A:l", "tenant:example:Support:lrs")
	// "anyone" of globex is not anyone of example.
	h.wantShared(mallory)

	h.ok(cmdRename(alice, "Projects", "Work"))
	h.wantACLIndex()
	h.wantShared(bob, alice+":Work:lr", alice+":Work/A:lr", "tenant:example:Support:lrs")
	h.ok(cmdSetACL(alice, alice, "Work", bob, "lrk"))
	h.ok(cmdCreateAs(bob, alice, "Work/B/C")) // inherits Work's ACL
	h.wantACLIndex()
	h.wantShared(bob, alice+":Work:lrk", alice+":Work/A:lr", alice+":Work/B:lrk", alice+":Work/B/C:lrk", "tenant:example:Support:lrs")
	h.ok(cmdDeleteMailbox(alice, "Work/A"))
	h.ok(cmdDeleteMailbox(alice, "Work")) // has inferiors: a \Noselect placeholder with the ACL
	h.wantACLIndex()
	if placeholder := h.mustMailbox(alice, "Work"); !placeholder.GetNoselect() || len(placeholder.GetAcl()) != 1 {
		t.Fatalf("placeholder = %v", placeholder)
	}
	h.wantShared(bob, alice+":Work:lrk", alice+":Work/B:lrk", alice+":Work/B/C:lrk", "tenant:example:Support:lrs")
	h.ok(cmdSetACL(alice, alice, "Work/B", bob, ""))
	h.ok(cmdSetACL(alice, alice, "Work/B", "-"+bob, "l"))
	h.wantACLIndex()
	h.wantShared(bob, alice+":Work:lrk", alice+":Work/B/C:lrk", "tenant:example:Support:lrs")

	// Deleting bob removes every grant naming him, negative ones too; a new bob starts
	// with what "anyone" has.
	h.ok(cmdDeleteAccount(bob))
	h.wantACLIndex()
	for _, line := range h.aclIndex() {
		if strings.Contains(line, bob) {
			t.Fatalf("index still names deleted %s: %s", bob, line)
		}
	}
	h.ok(cmdAccount(bob))
	h.wantShared(bob, "tenant:example:Support:lrs")

	// Deleting alice removes her mailboxes' entries.
	h.ok(cmdDeleteAccount(alice))
	h.wantACLIndex()
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "example", Force: true}}})
	h.wantACLIndex()
	if h.mailbox("tenant:example", "Support") != nil {
		t.Fatal("the tenant's shared mailbox survived the tenant")
	}
	if got := h.aclIndex(); len(got) != 1 || !strings.HasPrefix(got[0], "globex|anyone|"+mallory+"|Loot=") {
		t.Fatalf("index after deleting tenant example = %v", got)
	}
}

// TestACLIndexSnapshotAndBatching: the ACL index is part of the replicated state: the
// same log gives the same store in any batching, and a snapshot restores it whole.
func TestACLIndexSnapshotAndBatching(t *testing.T) {
	a := newHarness(t)
	aclScript(a)
	a.ok(cmdRename(alice, "Projects", "Work"))
	a.ok(cmdDeleteAccount(bob))
	b := newHarness(t)
	for i := 0; i < len(a.log); {
		n := min(1+i%5, len(a.log)-i)
		b.f.ApplyBatch(a.log[i : i+n])
		i += n
	}
	if !bytes.Equal(a.digest(), b.digest()) {
		t.Fatal("same log, different batching: digests differ")
	}
	c := newHarness(t)
	c.ok(cmdTenant("stale", "stale.test")) // replaced whole by the restore
	restoreSnapshot(t, a.f, c.f)
	if !bytes.Equal(a.digest(), c.digest()) {
		t.Fatal("restored state differs")
	}
	c.wantACLIndex()
	if got, want := c.shared(carol), a.shared(carol); !slices.Equal(got, want) || len(got) != 2 {
		t.Fatalf("restored shared list of carol = %v, want %v", got, want)
	}
	// The restored store keeps indexing.
	c.index, c.now = a.index, a.now
	c.ok(cmdSetACL(alice, alice, "Work/A", carol, "lrs"))
	c.wantACLIndex()
	c.fails(codes.InvalidArgument, cmdSetACL(alice, alice, "Work/A", mallory, "lrs"))
}
