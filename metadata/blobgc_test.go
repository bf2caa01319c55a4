package metadata

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdMark(grace time.Duration, limit uint32) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_MarkBlobsDeleting{MarkBlobsDeleting: &metadatapb.MarkBlobsDeletingRequest{GraceNanos: int64(grace), Limit: limit}}}
}

func cmdForget(keys ...string) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_ForgetBlobs{ForgetBlobs: &metadatapb.ForgetBlobsRequest{Keys: keys}}}
}

func cmdAppendEpoch(account string, mailbox uint64, epoch uint64, blob string) *metadatapb.Command {
	cmd := cmdAppend(account, mailbox, blob)
	cmd.GetAppend().BlobEpoch = epoch
	return cmd
}

// orphanAll marks every message of the mailbox \Deleted and expunges it.
func (h *harness) orphanAll(mailbox uint64) {
	h.t.Helper()
	h.ok(cmdStore(alice, mailbox, metadatapb.FlagOp_FLAG_OP_ADD, []*metadatapb.UidRange{uidRange(1, 0)}, `\Deleted`))
	h.ok(cmdExpunge(alice, mailbox))
}

// TestBlobCollectionLifecycle walks a blob through orphan, deleting and forgotten, with the
// appends that race it: refused while deleting, refused with a stale epoch after the forget,
// accepted with the current epoch.
func TestBlobCollectionLifecycle(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	res := h.ok(cmdAppend(alice, inbox, "blob-1", "blob-2"))
	if e := res.GetAppend().GetBlobEpoch(); e != 0 {
		t.Fatalf("blob epoch of a fresh store = %d", e)
	}
	h.orphanAll(inbox)

	if keys := h.ok(cmdMark(time.Hour, 0)).GetBlobs().GetKeys(); len(keys) != 0 {
		t.Fatalf("marked %q within the grace period", keys)
	}
	h.now = h.now.Add(time.Hour)
	marked := h.ok(cmdMark(time.Hour, 1)).GetBlobs().GetKeys()
	if !slices.Equal(marked, []string{"blob-1"}) {
		t.Fatalf("marked %q with limit 1, want [blob-1]", marked)
	}
	// An unfinished mark is returned again, first, with the next orphans.
	marked = h.ok(cmdMark(time.Hour, 0)).GetBlobs().GetKeys()
	if !slices.Equal(marked, []string{"blob-1", "blob-2"}) {
		t.Fatalf("second pass returned %q, want [blob-1 blob-2]", marked)
	}

	// A dedup append of a deleting blob is refused with its reason and the epoch.
	r := h.apply(cmdAppend(alice, inbox, "blob-1"))
	if codes.Code(r.GetCode()) != codes.FailedPrecondition || r.GetReason() != ReasonBlobDeleting {
		t.Fatalf("append of a deleting blob: %v %q %s", codes.Code(r.GetCode()), r.GetReason(), r.GetMessage())
	}
	if h.blobRefs("blob-1") != 0 {
		t.Fatal("the refused append took a reference")
	}

	forgot := h.ok(cmdForget("blob-1", "blob-2", "blob-never")).GetBlobs()
	if !slices.Equal(forgot.GetKeys(), []string{"blob-1", "blob-2"}) || forgot.GetBlobEpoch() != 1 {
		t.Fatalf("forget returned %q epoch %d", forgot.GetKeys(), forgot.GetBlobEpoch())
	}
	if again := h.ok(cmdForget("blob-1")).GetBlobs(); len(again.GetKeys()) != 0 || again.GetBlobEpoch() != 1 {
		t.Fatalf("second forget returned %q epoch %d", again.GetKeys(), again.GetBlobEpoch())
	}

	// The body may have been stored before the forget with epoch 0: refused.
	r = h.apply(cmdAppendEpoch(alice, inbox, 0, "blob-1"))
	if codes.Code(r.GetCode()) != codes.FailedPrecondition || r.GetReason() != ReasonBlobEpochStale || r.GetBlobEpoch() != 1 {
		t.Fatalf("append with a stale epoch: %v %q epoch %d", codes.Code(r.GetCode()), r.GetReason(), r.GetBlobEpoch())
	}
	res = h.ok(cmdAppendEpoch(alice, inbox, 1, "blob-1"))
	if h.blobRefs("blob-1") != 1 || res.GetAppend().GetBlobEpoch() != 1 {
		t.Fatalf("after the append: refs %d, epoch %d", h.blobRefs("blob-1"), res.GetAppend().GetBlobEpoch())
	}
	// A referenced blob needs no epoch: its body is stored by the invariant.
	h.ok(cmdAppendEpoch(alice, inbox, 0, "blob-1"))
	if keys := h.ok(cmdMark(0, 0)).GetBlobs().GetKeys(); len(keys) != 0 {
		t.Fatalf("marked referenced blobs %q", keys)
	}
}

// TestBlobRevivedBeforeMark: an orphan appended again before the collector marks it is never
// marked.
func TestBlobRevivedBeforeMark(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "blob-r"))
	h.orphanAll(inbox)
	h.ok(cmdAppend(alice, inbox, "blob-r"))
	h.now = h.now.Add(2 * time.Hour)
	if keys := h.ok(cmdMark(time.Hour, 0)).GetBlobs().GetKeys(); len(keys) != 0 {
		t.Fatalf("marked revived blob: %q", keys)
	}
	if h.blobRefs("blob-r") != 1 {
		t.Fatalf("refs = %d, want 1", h.blobRefs("blob-r"))
	}
	// The same log applied as one batch gives the same state (determinism).
	replay := newHarness(t)
	replay.f.ApplyBatch(h.log)
	if string(replay.digest()) != string(h.digest()) {
		t.Fatal("replaying the log as one batch gives another state")
	}
}

func cmdHold(id string, ttl time.Duration) *metadatapb.Command {
	return &metadatapb.Command{Op: &metadatapb.Command_HoldBlobs{HoldBlobs: &metadatapb.HoldBlobsRequest{HoldId: id, TtlNanos: int64(ttl)}}}
}

// TestBlobHolds: a backup's hold keeps every blob orphaned since it was set (the bodies its
// snapshot may reference) and lets older orphans go; a renewal keeps its start; release
// and expiry end it.
func TestBlobHolds(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	h.ok(cmdAppend(alice, inbox, "blob-old"))
	h.orphanAll(inbox)
	h.now = h.now.Add(time.Minute)
	since := h.ok(cmdHold("b1", 10*time.Minute)).GetBlobHold().GetSinceUnixNano()
	if since != h.now.UnixNano() {
		t.Fatalf("hold since %d, want the command's time %d", since, h.now.UnixNano())
	}
	h.ok(cmdAppend(alice, inbox, "blob-new"))
	h.now = h.now.Add(time.Minute)
	h.orphanAll(inbox)
	h.now = h.now.Add(time.Minute)
	if got := h.ok(cmdHold("b1", 10*time.Minute)).GetBlobHold().GetSinceUnixNano(); got != since {
		t.Fatalf("renewed hold since %d, want %d", got, since)
	}
	if keys := h.ok(cmdMark(time.Nanosecond, 0)).GetBlobs().GetKeys(); !slices.Equal(keys, []string{"blob-old"}) {
		t.Fatalf("marked %q under the hold, want only the blob orphaned before it", keys)
	}
	h.ok(cmdForget("blob-old"))
	h.ok(cmdHold("b1", 0))
	if keys := h.ok(cmdMark(time.Nanosecond, 0)).GetBlobs().GetKeys(); !slices.Equal(keys, []string{"blob-new"}) {
		t.Fatalf("marked %q after the release, want [blob-new]", keys)
	}

	// An expired hold holds nothing.
	h.ok(cmdForget("blob-new"))
	h.ok(cmdHold("b2", time.Minute))
	h.ok(cmdAppendEpoch(alice, inbox, 2, "blob-late"))
	h.orphanAll(inbox)
	if keys := h.ok(cmdMark(time.Nanosecond, 0)).GetBlobs().GetKeys(); len(keys) != 0 {
		t.Fatalf("marked %q under hold b2", keys)
	}
	h.now = h.now.Add(2 * time.Minute)
	if keys := h.ok(cmdMark(time.Nanosecond, 0)).GetBlobs().GetKeys(); !slices.Equal(keys, []string{"blob-late"}) {
		t.Fatalf("marked %q after hold b2 expired, want [blob-late]", keys)
	}
	if r := h.apply(cmdHold("", time.Minute)); codes.Code(r.GetCode()) != codes.InvalidArgument {
		t.Fatalf("hold without an id: %v", codes.Code(r.GetCode()))
	}
}
