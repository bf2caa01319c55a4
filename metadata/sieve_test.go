package metadata

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdPutSieve(account, tenant, name, content, phase string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_PutSieveScript{PutSieveScript: &metadatapb.PutSieveScriptRequest{Account: account, Tenant: tenant, Name: name, Content: []byte(content), Phase: phase}}}
}

func cmdDeleteSieve(account, tenant, name string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_DeleteSieveScript{DeleteSieveScript: &metadatapb.DeleteSieveScriptRequest{Account: account, Tenant: tenant, Name: name}}}
}

func cmdRenameSieve(account, name, newName string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_RenameSieveScript{RenameSieveScript: &metadatapb.RenameSieveScriptRequest{Account: account, Name: name, NewName: newName}}}
}

func cmdActivateSieve(account, name string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_SetActiveSieveScript{SetActiveSieveScript: &metadatapb.SetActiveSieveScriptRequest{Account: account, Name: name}}}
}

func (h *harness) failsWithReason(code codes.Code, reason string, cmd *metadatapb.Command) {
	h.t.Helper()
	r := h.apply(cmd)
	if codes.Code(r.GetCode()) != code || r.GetReason() != reason {
		h.t.Fatalf("command %v: %v %q (%s), want %v %q", cmd.GetOp(), codes.Code(r.GetCode()), r.GetReason(), r.GetMessage(), code, reason)
	}
}

// TestSieveNames: RFC 5804 1.6.
func TestSieveNames(t *testing.T) {
	for _, good := range []string{"a", "vacation rules", "Überweisung", strings.Repeat("é", 256), "tab-less\u00a0name"} {
		if err := checkSieveName(good); err != nil {
			t.Errorf("name %q refused: %v", good, err)
		}
	}
	for _, bad := range []string{"", "a\x00b", "line\nbreak", "del\x7f", "c1\u0085", "ls\u2028", "ps\u2029", "\xff\xfe", "e\u0301" /* not NFC */, strings.Repeat("x", 513)} {
		if err := checkSieveName(bad); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

// TestSieveScripts: put, replace, list, activate, rename, delete of an account's scripts
// with the RFC 5804 rules, and the tenant's limits.
func TestSieveScripts(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdDeliverySettings("example", &metadatapb.DeliverySettings{SieveMaxScripts: 2, SieveMaxScriptBytes: 100}))
	s := h.ok(cmdPutSieve("Alice@example.org", "", "main", `keep;`, "")).GetSieveScript()
	if s.GetAccount() != alice || s.GetTenant() != "example" || s.GetSize() != 5 || s.GetActive() || len(s.GetContent()) != 0 {
		t.Fatalf("put: %v", s)
	}
	h.ok(cmdPutSieve(alice, "", "spam", `discard;`, ""))
	h.failsWithReason(codes.ResourceExhausted, metadatapb.SieveMaxScriptsReason, cmdPutSieve(alice, "", "third", `keep;`, ""))
	h.failsWithReason(codes.ResourceExhausted, metadatapb.SieveMaxSizeReason, cmdPutSieve(alice, "", "main", strings.Repeat("#", 101), ""))
	h.fails(codes.InvalidArgument, cmdPutSieve(alice, "", "main", `keep;`, "before"))
	h.fails(codes.InvalidArgument, cmdPutSieve(alice, "", "bad\nname", `keep;`, ""))
	h.fails(codes.InvalidArgument, cmdPutSieve(alice, "example", "main", `keep;`, ""))
	h.fails(codes.NotFound, cmdPutSieve("ghost@example.org", "", "main", `keep;`, ""))
	h.fails(codes.InvalidArgument, cmdPutSieve("", "", "main", `keep;`, ""))

	h.fails(codes.NotFound, cmdActivateSieve(alice, "nope"))
	if r := h.ok(cmdActivateSieve(alice, "main")).GetSetActiveSieveScript(); r.GetActive() != "main" {
		t.Fatalf("activate: %v", r)
	}
	// Replacing the active script keeps it active (RFC 5804 2.6).
	if s := h.ok(cmdPutSieve(alice, "", "main", `fileinto "x";`, "")).GetSieveScript(); !s.GetActive() || s.GetSize() != 13 {
		t.Fatalf("replaced active script: %v", s)
	}
	h.failsWithReason(codes.FailedPrecondition, metadatapb.SieveActiveReason, cmdDeleteSieve(alice, "", "main"))
	h.fails(codes.AlreadyExists, cmdRenameSieve(alice, "main", "spam"))
	h.fails(codes.NotFound, cmdRenameSieve(alice, "nope", "other"))
	h.fails(codes.InvalidArgument, cmdRenameSieve(alice, "main", ""))
	// The active script stays active under its new name (RFC 5804 2.11.1).
	if s := h.ok(cmdRenameSieve(alice, "main", "rules")).GetSieveScript(); !s.GetActive() || s.GetName() != "rules" {
		t.Fatalf("renamed active script: %v", s)
	}
	v := h.f.view()
	list, err := sieveScripts(v.r, alice, false)
	act, err2 := v.activeSieveScripts(alice)
	v.close()
	if err != nil || err2 != nil || len(list) != 2 || list[0].GetName() != "rules" || !list[0].GetActive() || list[1].GetActive() || list[0].GetContent() != nil {
		t.Fatalf("list: %v (%v)", list, err)
	}
	if act.GetScript().GetName() != "rules" || string(act.GetScript().GetContent()) != `fileinto "x";` {
		t.Fatalf("active: %v", act)
	}
	h.ok(cmdDeleteSieve(alice, "", "spam"))
	h.fails(codes.NotFound, cmdDeleteSieve(alice, "", "spam"))
	// SETACTIVE "" deactivates (RFC 5804 2.8); then the script can go.
	h.ok(cmdActivateSieve(alice, ""))
	h.ok(cmdDeleteSieve(alice, "", "rules"))
	if n := h.keysWith(prefixSieve) + h.keysWith(prefixSieveActive); n != 0 {
		t.Fatalf("%d sieve keys left", n)
	}
}

// TestGlobalSieveScripts: a tenant's global scripts with their phases come with the
// account's active script; scripts go with their account and tenant, and travel in
// snapshots.
func TestGlobalSieveScripts(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdPutSieve("", "example", "zz-after", `keep;`, "after"))
	h.ok(cmdPutSieve("", "example", "a-before", `if true { keep; }`, "before"))
	h.ok(cmdPutSieve("", "example", "b-before", `stop;`, "before"))
	h.ok(cmdPutSieve("", "example", "lib", `keep;`, ""))
	h.fails(codes.InvalidArgument, cmdPutSieve("", "example", "x", `keep;`, "during"))
	h.fails(codes.NotFound, cmdPutSieve("", "ghost", "x", `keep;`, ""))
	h.fails(codes.InvalidArgument, cmdActivateSieve("", "lib"))

	v := h.f.view()
	act, err := v.activeSieveScripts(alice)
	v.close()
	if err != nil || act.GetScript() != nil || len(act.GetBefore()) != 2 || act.GetBefore()[0].GetName() != "a-before" || len(act.GetAfter()) != 1 || string(act.GetBefore()[1].GetContent()) != "stop;" || act.GetTenant() != "example" {
		t.Fatalf("delivery scripts without an active one: %v, %v", act, err)
	}
	h.ok(cmdPutSieve(alice, "", "mine", `keep;`, ""))
	h.ok(cmdActivateSieve(alice, "mine"))

	dst := newHarness(t)
	restoreSnapshot(t, h.f, dst.f)
	v = dst.f.view()
	act, err = v.activeSieveScripts(alice)
	v.close()
	if err != nil || act.GetScript().GetName() != "mine" || len(act.GetBefore()) != 2 {
		t.Fatalf("restored: %v, %v", act, err)
	}

	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: alice}}})
	if n := h.keysWith(append([]byte{prefixSieve}, alice...)...) + h.keysWith(prefixSieveActive); n != 0 {
		t.Fatalf("%d sieve keys of a deleted account", n)
	}
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "example"}}})
	if n := h.keysWith(prefixSieve); n != 0 {
		t.Fatalf("%d sieve keys of a deleted tenant", n)
	}
}

// TestServiceSieve: the Sieve RPCs over gRPC; refusals carry their ErrorInfo reason.
func TestServiceSieve(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	must(s.client.PutSieveScript(s.ctx(), &metadatapb.PutSieveScriptRequest{RequestId: s.reqID(), Account: alice, Name: "main", Content: []byte("keep;\r\n")}))
	must(s.client.SetActiveSieveScript(s.ctx(), &metadatapb.SetActiveSieveScriptRequest{RequestId: s.reqID(), Account: alice, Name: "main"}))
	got := must(s.client.GetSieveScript(s.ctx(), &metadatapb.GetSieveScriptRequest{Account: alice, Name: "main"}))
	if !bytes.Equal(got.GetContent(), []byte("keep;\r\n")) || !got.GetActive() {
		t.Fatalf("get: %v", got)
	}
	_, err := s.client.GetSieveScript(s.ctx(), &metadatapb.GetSieveScriptRequest{Account: alice, Name: "nope"})
	wantCode(t, err, codes.NotFound)
	list := must(s.client.ListSieveScripts(s.ctx(), &metadatapb.ListSieveScriptsRequest{Account: alice}))
	if len(list.GetScripts()) != 1 || list.GetMaxScripts() != defaultSieveMaxScripts || list.GetMaxScriptBytes() != defaultSieveMaxScriptBytes {
		t.Fatalf("list: %v", list)
	}
	_, err = s.client.DeleteSieveScript(s.ctx(), &metadatapb.DeleteSieveScriptRequest{RequestId: s.reqID(), Account: alice, Name: "main"})
	wantCode(t, err, codes.FailedPrecondition)
	if reason := errorReason(err); reason != metadatapb.SieveActiveReason {
		t.Fatalf("delete of the active script: reason %q", reason)
	}
	must(s.client.RenameSieveScript(s.ctx(), &metadatapb.RenameSieveScriptRequest{RequestId: s.reqID(), Account: alice, Name: "main", NewName: "renamed"}))
	act := must(s.client.GetActiveSieveScript(s.ctx(), &metadatapb.GetActiveSieveScriptRequest{Account: alice}))
	if act.GetScript().GetName() != "renamed" {
		t.Fatalf("active after rename: %v", act)
	}
	_, err = s.client.GetActiveSieveScript(s.ctx(), &metadatapb.GetActiveSieveScriptRequest{Account: "ghost@example.org"})
	wantCode(t, err, codes.NotFound)
}

// errorReason is the ErrorInfo reason of a gRPC error; "" without one.
func errorReason(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, isInfo := d.(*errdetails.ErrorInfo); isInfo {
			return info.GetReason()
		}
	}
	return ""
}
