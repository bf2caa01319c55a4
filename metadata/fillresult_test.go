package metadata

import (
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestFillResultAtLevel3: a NumberMessagesCommand stamped 3 (as a leader of the
// level-3 build proposes it during the rolling upgrade) that finishes the listing of a
// mailbox created at level 2. Its result goes into the RequestRecord ('Q', digested). The
// level-3 build (0b4203a^1) stores complete=true; this build must store the same.
func TestFillResultAtLevel3(t *testing.T) {
	h := newHarness(t)
	l2, l3 := uint32(2), uint32(3)
	st := func(cmd *metadatapb.Command, l *uint32) *metadatapb.Command { cmd.FeatureLevel = l; return cmd }
	h.ok(st(cmdTenant("example", "Example.ORG"), &l2))
	h.ok(st(cmdAccount("Alice@Example.org"), &l2))
	h.ok(st(cmdCreateMailbox(alice, "A"), &l2))
	id := h.mailbox(alice, "A").GetId()
	h.ok(st(cmdAppendThread(alice, id, []string{"m1@x", ""}, []string{"m2@x", "m1@x"}), &l2))
	res := h.apply(st(cmdNumberMessages(alice, id, 100), &l3))
	if !res.GetNumberMessages().GetComplete() {
		t.Errorf("level-3 fill that completes the listing: result %v, a level-3 build stores complete:true (RequestRecord differs, digest diverges)", res.GetNumberMessages())
	}
}
