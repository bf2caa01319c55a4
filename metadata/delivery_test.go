package metadata

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdAddAlias(address string, targets ...string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_AddAlias{AddAlias: &metadatapb.AddAliasRequest{Address: address, Targets: targets}}}
}

func cmdDeleteAlias(address string, targets ...string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_DeleteAlias{DeleteAlias: &metadatapb.DeleteAliasRequest{Address: address, Targets: targets}}}
}

func cmdDeliverySettings(tenant string, s *metadatapb.DeliverySettings) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_SetDeliverySettings{SetDeliverySettings: &metadatapb.SetDeliverySettingsRequest{Tenant: tenant, Settings: s}}}
}

// keysWith counts the store's keys that start with prefix.
func (h *harness) keysWith(prefix ...byte) int {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	n := 0
	if err := scan(v.r, prefix, prefixEnd(prefix), func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) resolve(address string) (*metadatapb.ResolveRecipientResponse, error) {
	v := h.f.view()
	defer v.close()
	return v.resolveRecipient(address)
}

func (h *harness) mustResolve(address string) *metadatapb.ResolveRecipientResponse {
	h.t.Helper()
	r, err := h.resolve(address)
	if err != nil {
		h.t.Fatalf("resolve %q: %v", address, err)
	}
	return r
}

func (h *harness) resolveFails(address string, want codes.Code) {
	h.t.Helper()
	r, err := h.resolve(address)
	if err == nil {
		h.t.Fatalf("resolve %q = %v, want %v", address, r, want)
	}
	if got := cmdCode(err); got != want {
		h.t.Fatalf("resolve %q: %v, want %v", address, err, want)
	}
}

// cmdCode is the code of a command refusal.
func cmdCode(err error) codes.Code {
	if ce, isCmd := err.(*cmdError); isCmd {
		return ce.code
	}
	return codes.Unknown
}

// TestResolveRecipient: the order of the lookups (exact account, alias, then the address
// without its RFC 5233 detail, then the catch-all), the tenant's delimiter, and what each
// answer carries.
func TestResolveRecipient(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdAccount("bob@example.org"))
	h.ok(cmdAccount("a+b@example.org"))
	h.ok(cmdAddAlias("Sales@Example.org", "bob@example.org", alice))

	r := h.mustResolve("Alice@EXAMPLE.org")
	if r.GetAccount() != alice || r.GetVia() != viaAccount || r.GetDetail() != "" || r.GetTenant() != "example" || r.GetDisabled() || r.GetOverQuota() {
		t.Fatalf("exact account: %v", r)
	}
	if r.GetSettings().GetSubaddressDelimiter() != "+" || r.GetSettings().SubaddressDelimiter == nil || r.GetSettings().GetSpamAction() != "file" || r.GetSettings().GetDedupWindowSeconds() != 86400 {
		t.Fatalf("default settings: %v", r.GetSettings())
	}
	// RFC 5233: the detail keeps its case; the user part compares without case.
	r = h.mustResolve("ALICE+Lists.Go@example.org")
	if r.GetAccount() != alice || r.GetDetail() != "Lists.Go" || r.GetVia() != viaAccount {
		t.Fatalf("subaddress: %v", r)
	}
	// An account whose name holds the delimiter is found before the split.
	if r := h.mustResolve("a+b@example.org"); r.GetAccount() != "a+b@example.org" || r.GetDetail() != "" {
		t.Fatalf("account with a delimiter in its name: %v", r)
	}
	h.resolveFails("a+c@example.org", codes.NotFound) // "a" is no account; no catch-all yet
	r = h.mustResolve("sales+q4@example.org")
	if r.GetVia() != viaAlias || r.GetDetail() != "q4" || r.GetAccount() != alice || len(r.GetTargets()) != 2 || r.GetTargets()[1].GetAccount() != "bob@example.org" {
		t.Fatalf("alias with detail: %v", r)
	}
	h.resolveFails("nobody@example.org", codes.NotFound)
	h.resolveFails("alice@elsewhere.org", codes.NotFound)
	h.resolveFails("no-at-sign", codes.InvalidArgument)
	h.resolveFails("+x@example.org", codes.NotFound) // no user part: not split

	h.ok(cmdAddAlias("@example.org", "bob@example.org"))
	if r := h.mustResolve("nobody+x@example.org"); r.GetVia() != viaCatchAll || r.GetAccount() != "bob@example.org" || r.GetDetail() != "" {
		t.Fatalf("catch-all: %v", r)
	}
	// The exact address wins over the catch-all.
	if r := h.mustResolve("alice@example.org"); r.GetVia() != viaAccount {
		t.Fatalf("account behind a catch-all: %v", r)
	}

	// Another delimiter set, then none.
	h.ok(cmdDeliverySettings("example", &metadatapb.DeliverySettings{SubaddressDelimiter: proto.String("-_"), SpamAction: "reject", SpamRejectScore: 12.5, QuotaPermanent: true}))
	if r := h.mustResolve("alice_x-y@example.org"); r.GetAccount() != alice || r.GetDetail() != "x-y" || !r.GetSettings().GetQuotaPermanent() || r.GetSettings().GetSpamRejectScore() != 12.5 {
		t.Fatalf("delimiter _: %v", r)
	}
	if r := h.mustResolve("alice+x@example.org"); r.GetVia() != viaCatchAll {
		t.Fatalf("+ is no delimiter any more: %v", r)
	}
	h.ok(cmdDeliverySettings("example", &metadatapb.DeliverySettings{SubaddressDelimiter: proto.String("")}))
	if r := h.mustResolve("alice-x@example.org"); r.GetVia() != viaCatchAll || r.GetSettings().GetSubaddressDelimiter() != "" || r.GetSettings().SubaddressDelimiter == nil {
		t.Fatalf("subaddressing disabled: %v", r)
	}

	// Disabled accounts and full quotas are reported, not hidden.
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_SetAccountDisabled{SetAccountDisabled: &metadatapb.SetAccountDisabledRequest{Email: alice, Disabled: true}}})
	one, zero := uint64(1), uint64(0)
	h.ok(cmdSetQuota("bob@example.org", "", nil, &zero))
	r = h.mustResolve("sales@example.org")
	if !r.GetDisabled() || r.GetOverQuota() || !r.GetTargets()[1].GetOverQuota() || r.GetTargets()[1].StorageAvailable != nil {
		t.Fatalf("disabled and over quota: %v", r)
	}
	h.ok(cmdSetQuota("", "example", &one, nil))
	r = h.mustResolve("alice@example.org")
	if r.GetTargets()[0].GetStorageAvailable() != 1 || r.GetOverQuota() {
		t.Fatalf("tenant storage limit: %v", r)
	}
	inbox := h.mustMailbox(alice, "INBOX")
	h.fails(codes.ResourceExhausted, cmdAppend(alice, inbox.GetId(), "blob-1"))
	h.ok(cmdSetQuota("", "example", nil, nil))
	h.ok(cmdAppend(alice, inbox.GetId(), "blob-1"))
	h.ok(cmdSetQuota(alice, "", proto.Uint64(4400), nil))
	if r := h.mustResolve("alice@example.org"); !r.GetOverQuota() || r.GetTargets()[0].GetStorageAvailable() != 0 {
		t.Fatalf("storage full: %v", r)
	}
}

// TestAliasAdmin: AddAlias adds targets of the alias's tenant only; DeleteAlias removes
// targets or the whole alias; an address is an account or an alias, never both.
func TestAliasAdmin(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdAccount("bob@example.org"))
	h.ok(cmdTenant("other", "other.org"))
	h.ok(cmdAccount("mallory@other.org"))

	h.fails(codes.InvalidArgument, cmdAddAlias("team@example.org", "mallory@other.org"))
	h.fails(codes.NotFound, cmdAddAlias("team@example.org", "ghost@example.org"))
	h.fails(codes.NotFound, cmdAddAlias("team@nowhere.org", alice))
	h.fails(codes.AlreadyExists, cmdAddAlias("bob@example.org", alice))
	h.fails(codes.InvalidArgument, cmdAddAlias("team@example.org"))
	h.fails(codes.InvalidArgument, cmdAddAlias("bad address@example.org", alice))
	h.fails(codes.InvalidArgument, cmdAddAlias("@", alice))
	if h.keysWith(prefixAlias)+h.keysWith(prefixAliasTarget) != 0 {
		t.Fatal("refused AddAlias left state")
	}

	a := h.ok(cmdAddAlias("Team@example.org", "bob@example.org")).GetAlias()
	a2 := h.ok(cmdAddAlias("team@example.org", "ALICE@example.org", "bob@example.org")).GetAlias()
	if a.GetAddress() != "team@example.org" || !slices.Equal(a2.GetTargets(), []string{alice, "bob@example.org"}) || a2.GetTenant() != "example" {
		t.Fatalf("aliases: %v then %v", a, a2)
	}
	h.fails(codes.AlreadyExists, cmdAccount("team@example.org"))
	h.ok(cmdAddAlias("@example.org", alice))
	h.ok(cmdAddAlias("abuse@other.org", "mallory@other.org"))

	v := h.f.view()
	all, err := v.listAliases("", "")
	mine, err2 := v.listAliases("example", "")
	dom, err3 := v.listAliases("", "Other.ORG")
	_, err4 := v.listAliases("ghost", "")
	v.close()
	if err != nil || err2 != nil || err3 != nil || len(all) != 3 || len(mine) != 2 || mine[0].GetAddress() != "@example.org" || len(dom) != 1 {
		t.Fatalf("list: all %v (%v), example %v (%v), other.org %v (%v)", all, err, mine, err2, dom, err3)
	}
	if cmdCode(err4) != codes.NotFound {
		t.Fatalf("list of an unknown tenant: %v", err4)
	}

	h.fails(codes.NotFound, cmdDeleteAlias("team@example.org", "mallory@other.org"))
	if left := h.ok(cmdDeleteAlias("team@example.org", "bob@example.org")).GetDeleteAlias().GetAlias(); !slices.Equal(left.GetTargets(), []string{alice}) {
		t.Fatalf("after removing bob: %v", left)
	}
	if left := h.ok(cmdDeleteAlias("team@example.org")).GetDeleteAlias().GetAlias(); left != nil {
		t.Fatalf("whole alias deleted, left %v", left)
	}
	h.fails(codes.NotFound, cmdDeleteAlias("team@example.org"))
	// alice is in the catch-all only.
	if n := h.keysWith(append([]byte{prefixAliasTarget}, alice...)...); n != 1 {
		t.Fatalf("alice's alias index entries = %d, want 1", n)
	}
	h.ok(cmdAccount("team@example.org"))
}

// TestAliasesGoWithTheirState: a deleted account leaves its aliases (an alias left empty
// goes), a removed domain takes its aliases, a deleted tenant its aliases and settings.
func TestAliasesGoWithTheirState(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdAccount("bob@example.org"))
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_AddDomain{AddDomain: &metadatapb.AddDomainRequest{Tenant: "example", Domain: "example.net"}}})
	h.ok(cmdAddAlias("team@example.org", alice, "bob@example.org"))
	h.ok(cmdAddAlias("solo@example.org", "bob@example.org"))
	h.ok(cmdAddAlias("@example.net", alice))
	h.ok(cmdAddAlias("info@example.net", "bob@example.org"))
	h.ok(cmdDeliverySettings("example", &metadatapb.DeliverySettings{SpamAction: "tag"}))

	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: "bob@example.org"}}})
	if r := h.mustResolve("team@example.org"); len(r.GetTargets()) != 1 || r.GetAccount() != alice {
		t.Fatalf("team after bob left: %v", r)
	}
	h.resolveFails("solo@example.org", codes.NotFound)
	if r := h.mustResolve("info@example.net"); r.GetVia() != viaCatchAll {
		t.Fatalf("info@example.net after bob left: %v", r)
	}
	if n := h.keysWith(prefixAliasTarget); n != 2 {
		t.Fatalf("alias index entries = %d, want 2 (alice's)", n)
	}

	h.ok(&metadatapb.Command{Op: &metadatapb.Command_RemoveDomain{RemoveDomain: &metadatapb.RemoveDomainRequest{Tenant: "example", Domain: "example.net"}}})
	if n := h.keysWith(append([]byte{prefixAlias}, "example.net"...)...); n != 0 {
		t.Fatalf("aliases of a removed domain: %d", n)
	}
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "example", Force: true}}})
	for _, p := range []byte{prefixAlias, prefixAliasTarget, prefixDeliverySettings} {
		if n := h.keysWith(p); n != 0 {
			t.Fatalf("%d keys %q left after the tenant went", n, p)
		}
	}
}

func TestDeliverySettingsChecks(t *testing.T) {
	h := withAccount(t)
	for _, bad := range []*metadatapb.DeliverySettings{
		{SubaddressDelimiter: proto.String("@")},
		{SubaddressDelimiter: proto.String(" ")},
		{SubaddressDelimiter: proto.String("+-_=.~!#$")},
		{SpamAction: "drop"},
		{DedupWindowSeconds: 31 * 86400},
		{SieveMaxScriptBytes: 2 << 20},
		{SieveMaxScripts: 5000},
	} {
		h.fails(codes.InvalidArgument, cmdDeliverySettings("example", bad))
	}
	h.fails(codes.NotFound, cmdDeliverySettings("ghost", &metadatapb.DeliverySettings{}))
	got := h.ok(cmdDeliverySettings("example", &metadatapb.DeliverySettings{DedupWindowSeconds: 600, SieveMaxScripts: 3})).GetDeliverySettings()
	if got.GetSubaddressDelimiter() != "+" || got.GetDedupWindowSeconds() != 600 || got.GetSieveMaxScripts() != 3 || got.GetSieveMaxScriptBytes() != 65536 {
		t.Fatalf("effective settings: %v", got)
	}
}

// TestServiceDelivery: the delivery RPCs over gRPC on a Raft group: writes are commands,
// reads see them at once.
func TestServiceDelivery(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	settings := must(s.client.GetDeliverySettings(s.ctx(), &metadatapb.GetDeliverySettingsRequest{Tenant: "example"}))
	if settings.GetSubaddressDelimiter() != "+" || settings.GetSieveMaxScripts() != defaultSieveMaxScripts {
		t.Fatalf("default settings: %v", settings)
	}
	_, err := s.client.GetDeliverySettings(s.ctx(), &metadatapb.GetDeliverySettingsRequest{Tenant: "ghost"})
	wantCode(t, err, codes.NotFound)
	_, err = s.client.SetDeliverySettings(s.ctx(), &metadatapb.SetDeliverySettingsRequest{RequestId: s.reqID(), Tenant: "example", Settings: &metadatapb.DeliverySettings{SpamAction: "burn"}})
	wantCode(t, err, codes.InvalidArgument)
	must(s.client.SetDeliverySettings(s.ctx(), &metadatapb.SetDeliverySettingsRequest{RequestId: s.reqID(), Tenant: "example", Settings: &metadatapb.DeliverySettings{SubaddressDelimiter: proto.String("-")}}))

	must(s.client.AddAlias(s.ctx(), &metadatapb.AddAliasRequest{RequestId: s.reqID(), Address: "postmaster@example.org", Targets: []string{alice}}))
	r := must(s.client.ResolveRecipient(s.ctx(), &metadatapb.ResolveRecipientRequest{Address: "postmaster-dmarc@example.org"}))
	if r.GetAccount() != alice || r.GetVia() != viaAlias || r.GetDetail() != "dmarc" || r.GetSettings().GetSubaddressDelimiter() != "-" {
		t.Fatalf("resolve: %v", r)
	}
	_, err = s.client.ResolveRecipient(s.ctx(), &metadatapb.ResolveRecipientRequest{Address: "nobody@example.org"})
	wantCode(t, err, codes.NotFound)
	list := must(s.client.ListAliases(s.ctx(), &metadatapb.ListAliasesRequest{Tenant: "example"}))
	if len(list.GetAliases()) != 1 {
		t.Fatalf("aliases: %v", list)
	}
	_, err = s.client.ListAliases(s.ctx(), &metadatapb.ListAliasesRequest{Tenant: "example", Domain: "example.org"})
	wantCode(t, err, codes.InvalidArgument)
	// An MTA's retry over a new connection is a new request with the same dedup key.
	inbox := s.mailbox("INBOX").GetId()
	var answers []*metadatapb.AppendResponse
	for range 2 {
		answers = append(answers, must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{
			RequestId: s.reqID(), Account: alice, MailboxId: inbox, Messages: newMessages(1, "lmtp"), DedupKey: []byte("mta-retry"),
		})))
	}
	if answers[0].GetDuplicate() || !answers[1].GetDuplicate() || answers[1].GetUids()[0] != answers[0].GetUids()[0] || s.mailbox("INBOX").GetMessages() != 1 {
		t.Fatalf("append and its retry: %v, %v", answers[0], answers[1])
	}
	must(s.client.DeleteAlias(s.ctx(), &metadatapb.DeleteAliasRequest{RequestId: s.reqID(), Address: "postmaster@example.org"}))
	_, err = s.client.ResolveRecipient(s.ctx(), &metadatapb.ResolveRecipientRequest{Address: "postmaster@example.org"})
	wantCode(t, err, codes.NotFound)
}
