package metadata

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdSetQuota(account, tenant string, storage, messages *uint64) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_SetQuota{SetQuota: &metadatapb.SetQuotaRequest{
		Account: account, Tenant: tenant, Limits: &metadatapb.QuotaLimits{StorageBytes: storage, Messages: messages},
	}}}
}

func (h *harness) usage(kind byte, name string) (messages, bytes uint64) {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	root, err := quotaRoot(v.r, kind, name)
	if err != nil {
		h.t.Fatalf("quota root %s: %v", name, err)
	}
	return root.GetUsage().GetMessages(), root.GetUsage().GetStorageBytes()
}

func (h *harness) wantUsage(kind byte, name string, messages, bytes uint64) {
	h.t.Helper()
	if m, b := h.usage(kind, name); m != messages || b != bytes {
		h.t.Fatalf("usage of %s: %d messages %d bytes, want %d and %d", name, m, b, messages, bytes)
	}
}

// TestQuotaUsageAccounting follows the usage of an account and its tenant through
// every command that adds or removes messages (cmdAppend messages are 4400 bytes).
func TestQuotaUsageAccounting(t *testing.T) {
	h := withAccount(t)
	const bob = "bob@example.org"
	h.ok(cmdAccount(bob))
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdCreateMailbox(alice, "Work"))
	work := h.mustMailbox(alice, "Work").GetId()

	h.ok(cmdAppend(alice, inbox, "b1", "b2", "b3"))
	h.wantUsage(quotaAccount, alice, 3, 3*4400)
	h.ok(cmdAppend(bob, h.mustMailbox(bob, "INBOX").GetId(), "b9"))
	h.wantUsage(quotaAccount, bob, 1, 4400)
	h.wantUsage(quotaTenant, "example", 4, 4*4400)

	h.ok(cmdCopy(alice, inbox, work, false, uidRange(1, 2)))
	h.wantUsage(quotaAccount, alice, 5, 5*4400)
	h.ok(cmdCopy(alice, inbox, work, true, uidRange(3, 3)))
	h.wantUsage(quotaAccount, alice, 5, 5*4400)

	h.ok(cmdStore(alice, work, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 1)}, `\Deleted`))
	h.ok(cmdExpunge(alice, work))
	h.wantUsage(quotaAccount, alice, 4, 4*4400)
	h.wantUsage(quotaTenant, "example", 5, 5*4400)

	h.ok(cmdDeleteMailbox(alice, "Work"))
	h.wantUsage(quotaAccount, alice, 2, 2*4400)

	// Renaming INBOX moves its messages within the account.
	h.ok(cmdRename(alice, "INBOX", "Old"))
	h.wantUsage(quotaAccount, alice, 2, 2*4400)

	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: alice}}})
	h.wantUsage(quotaTenant, "example", 1, 4400)
	h.wantUsage(quotaAccount, bob, 1, 4400)
	if h.blobRefs("b1") != 0 || h.blobRefs("b9") != 1 {
		t.Fatalf("blob refs after delete: b1 %d, b9 %d", h.blobRefs("b1"), h.blobRefs("b9"))
	}
}

func TestQuotaLimitsRefuse(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdCreateMailbox(alice, "Work"))
	work := h.mustMailbox(alice, "Work").GetId()
	h.ok(cmdSetQuota(alice, "", nil, proto.Uint64(3)))

	h.ok(cmdAppend(alice, inbox, "b1", "b2"))
	// MULTIAPPEND is all or nothing (RFC 3502): two more would make 4.
	h.fails(codes.ResourceExhausted, cmdAppend(alice, inbox, "b3", "b4"))
	h.wantUsage(quotaAccount, alice, 2, 2*4400)
	h.ok(cmdAppend(alice, inbox, "b3"))
	h.fails(codes.ResourceExhausted, cmdAppend(alice, inbox, "b4"))
	h.fails(codes.ResourceExhausted, cmdCopy(alice, inbox, work, false, uidRange(1, 1)))
	// MOVE does not grow the account.
	h.ok(cmdCopy(alice, inbox, work, true, uidRange(1, 1)))
	h.wantUsage(quotaAccount, alice, 3, 3*4400)

	// The tenant's STORAGE limit applies to every account of the tenant.
	h.ok(cmdSetQuota(alice, "", nil, nil))
	h.ok(cmdSetQuota("", "example", proto.Uint64(4*4400), nil))
	h.ok(cmdAppend(alice, inbox, "b5"))
	h.fails(codes.ResourceExhausted, cmdAppend(alice, inbox, "b6"))
	h.ok(cmdAccount("bob@example.org"))
	h.fails(codes.ResourceExhausted, cmdAppend("bob@example.org", h.mustMailbox("bob@example.org", "INBOX").GetId(), "b7"))

	// A lowered limit still lets the root shrink.
	h.ok(cmdSetQuota("", "example", proto.Uint64(4400), nil))
	h.ok(cmdStore(alice, work, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 0)}, `\Deleted`))
	h.ok(cmdExpunge(alice, work))
	h.wantUsage(quotaTenant, "example", 3, 3*4400)

	h.fails(codes.NotFound, cmdSetQuota("nobody@example.org", "", nil, proto.Uint64(1)))
	h.fails(codes.NotFound, cmdSetQuota("", "nope", nil, proto.Uint64(1)))
	h.fails(codes.InvalidArgument, cmdSetQuota(alice, "example", nil, proto.Uint64(1)))
}

// TestQuotaUsageComputedForOldStores checks that an account without a usage record
// (a store from before quotas) gets its usage from the mailbox counters.
func TestQuotaUsageComputedForOldStores(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "b1", "b2"))
	g := h.f.acquire()
	defer g.release()
	b := g.db.NewBatch()
	if err := b.Delete(quotaKey(prefixQuotaUsage, quotaAccount, alice), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(quotaKey(prefixQuotaUsage, quotaTenant, "example"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	g.carried = nil // written behind the FSM's back: the store as a restart opens it
	h.wantUsage(quotaAccount, alice, 2, 2*4400)
	h.wantUsage(quotaTenant, "example", 2, 2*4400)
	h.ok(cmdAppend(alice, inbox, "b3"))
	h.wantUsage(quotaTenant, "example", 3, 3*4400)
}

func TestTenantAndDomainAdmin(t *testing.T) {
	h := withAccount(t)
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_AddDomain{AddDomain: &metadatapb.AddDomainRequest{Tenant: "example", Domain: "Example.NET"}}})
	h.ok(cmdTenant("other", "other.org"))
	h.fails(codes.AlreadyExists, &metadatapb.Command{Op: &metadatapb.Command_AddDomain{AddDomain: &metadatapb.AddDomainRequest{Tenant: "other", Domain: "example.net"}}})
	h.ok(cmdAccount("carol@example.net"))
	rm := func(tenant, domain string) *metadatapb.Command {
		return &metadatapb.Command{Op: &metadatapb.Command_RemoveDomain{RemoveDomain: &metadatapb.RemoveDomainRequest{Tenant: tenant, Domain: domain}}}
	}
	h.fails(codes.FailedPrecondition, rm("example", "example.net"))
	h.fails(codes.NotFound, rm("other", "example.net"))
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: "carol@example.net"}}})
	res := h.ok(rm("example", "example.net"))
	if got := res.GetTenant().GetDomains(); len(got) != 1 || got[0] != "example.org" {
		t.Fatalf("domains after remove: %v", got)
	}
	h.fails(codes.NotFound, cmdAccount("carol@example.net"))

	del := func(name string, force bool) *metadatapb.Command {
		return &metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: name, Force: force}}}
	}
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "b1"))
	h.fails(codes.FailedPrecondition, del("example", false))
	res = h.ok(del("example", true))
	if got := res.GetDeleteTenant().GetDeletedAccounts(); len(got) != 1 || got[0] != alice {
		t.Fatalf("deleted accounts: %v", got)
	}
	if h.blobRefs("b1") != 0 || h.mailbox(alice, "INBOX") != nil {
		t.Fatal("tenant delete left alice's mail")
	}
	h.fails(codes.NotFound, cmdAccount("alice@example.org"))
	// The domain is free again for another tenant.
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_AddDomain{AddDomain: &metadatapb.AddDomainRequest{Tenant: "other", Domain: "example.org"}}})
	h.ok(del("other", false))
	h.fails(codes.NotFound, del("other", false))
}

func TestAccountDisable(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	if _, err := s.client.SetPassword(s.ctx(), &metadatapb.SetPasswordRequest{RequestId: s.reqID(), Email: alice, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	must(s.client.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "pw"}))
	acct := must(s.client.SetAccountDisabled(s.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: s.reqID(), Email: "ALICE@example.org", Disabled: true}))
	if !acct.GetDisabled() {
		t.Fatal("SetAccountDisabled returned an enabled account")
	}
	_, err := s.client.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "pw"})
	wantCode(t, err, codes.Unauthenticated)
	if got := must(s.client.GetAccount(s.ctx(), &metadatapb.GetAccountRequest{Email: alice})); !got.GetDisabled() {
		t.Fatal("GetAccount: not disabled")
	}
	must(s.client.SetAccountDisabled(s.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: s.reqID(), Email: alice}))
	must(s.client.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "pw"}))
	_, err = s.client.GetAccount(s.ctx(), &metadatapb.GetAccountRequest{Email: "nobody@example.org"})
	wantCode(t, err, codes.NotFound)
}

// TestConcurrentAppendsHitLimitExactly appends from many clients at once through
// the service with a MESSAGE limit: exactly the limit succeeds, the rest are
// refused with ResourceExhausted.
func TestConcurrentAppendsHitLimitExactly(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	const clients, limit = 40, 17
	must(s.client.SetQuota(s.ctx(), &metadatapb.SetQuotaRequest{RequestId: s.reqID(), Account: alice, Limits: &metadatapb.QuotaLimits{Messages: proto.Uint64(limit)}}))
	inbox := must(s.client.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{Account: alice, Name: "INBOX"}))
	var okCount, refused atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(t.Context(), rpcTimeout)
			defer cancel()
			_, err := s.client.Append(ctx, &metadatapb.AppendRequest{
				RequestId: fmt.Sprintf("concurrent-%d", i), Account: alice, MailboxId: inbox.GetId(),
				Messages: []*metadatapb.NewMessage{{BlobKey: fmt.Sprintf("blob-%d", i), Size: 100}},
			})
			switch status.Code(err) {
			case codes.OK:
				okCount.Add(1)
			case codes.ResourceExhausted:
				refused.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	if okCount.Load() != limit || refused.Load() != clients-limit {
		t.Fatalf("%d appended, %d refused; want %d and %d", okCount.Load(), refused.Load(), limit, clients-limit)
	}
	q := must(s.client.GetQuota(s.ctx(), &metadatapb.GetQuotaRequest{Account: alice}))
	if len(q.GetRoots()) != 2 || q.GetRoots()[0].GetUsage().GetMessages() != limit || q.GetRoots()[1].GetTenant() != "example" ||
		q.GetRoots()[1].GetUsage().GetStorageBytes() != 100*limit {
		t.Fatalf("GetQuota: %v", q)
	}
	if box := must(s.client.GetMailbox(s.ctx(), &metadatapb.GetMailboxRequest{Account: alice, Name: "INBOX"})); box.GetMessages() != limit {
		t.Fatalf("INBOX holds %d messages, want %d", box.GetMessages(), limit)
	}
}
