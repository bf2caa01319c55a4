package metadata

import (
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
	"google.golang.org/protobuf/proto"
)

// TestRequestIDRetryAcrossRestartAndRestore: a retried request is answered from its record
// whether the FSM recorded it since open, opened the store after it, or restored a
// snapshot that holds it; a shortcut that keeps request IDs in memory (append26 measured
// one) must pass it.
func TestRequestIDRetryAcrossRestartAndRestore(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	retry := func(id, blob string) *metadatapb.CommandResult {
		cmd := cmdAppend(alice, inbox, blob)
		cmd.RequestId = id
		return h.ok(cmd)
	}
	r1 := retry("first", "blob-1")
	if r := retry("first", "blob-1"); !proto.Equal(r, r1) {
		t.Fatalf("retry in the same run: %v, want %v", r, r1)
	}
	h.reopen()
	if r := retry("first", "blob-1"); !proto.Equal(r, r1) {
		t.Fatalf("retry after a restart: %v, want %v", r, r1)
	}
	r2 := retry("second", "blob-2")
	restoreSnapshot(t, h.f, h.f)
	if r := retry("second", "blob-2"); !proto.Equal(r, r2) {
		t.Fatalf("retry after a restore: %v, want %v", r, r2)
	}
	if box := h.mustMailbox(alice, "INBOX"); box.GetMessages() != 2 {
		t.Fatalf("retried appends applied again: %d messages, want 2", box.GetMessages())
	}
}
