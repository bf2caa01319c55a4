package metadata

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

func cmdDedupAppend(account string, mailbox uint64, key string, windowSeconds uint32, blob string) *metadatapb.Command {
	cmd := cmdAppend(account, mailbox, blob)
	cmd.GetAppend().DedupKey = []byte(key)
	cmd.GetAppend().DedupWindowSeconds = windowSeconds
	return cmd
}

// TestDedupWindow: a retry with the same key within the window appends nothing and
// answers the earlier append; after the window, or with another key, it appends; a
// refused append remembers nothing.
func TestDedupWindow(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	first := h.ok(cmdDedupAppend(alice, inbox, "k1", 3600, "blob-a")).GetAppend()
	if first.GetDuplicate() || !slices.Equal(first.GetUids(), []uint32{1}) {
		t.Fatalf("first append: %v", first)
	}
	h.now = h.now.Add(59 * time.Minute)
	dup := h.ok(cmdDedupAppend(alice, inbox, "k1", 3600, "blob-a")).GetAppend()
	if !dup.GetDuplicate() || !slices.Equal(dup.GetUids(), []uint32{1}) || dup.GetModseq() != first.GetModseq() || dup.GetUidValidity() != first.GetUidValidity() || dup.GetMailboxId() != inbox {
		t.Fatalf("retry: %v, want the first append %v", dup, first)
	}
	if box := h.mustMailbox(alice, "INBOX"); box.GetMessages() != 1 || box.GetUidNext() != 2 {
		t.Fatalf("after the retry: %d messages, uidnext %d", box.GetMessages(), box.GetUidNext())
	}
	h.wantUsage(quotaAccount, alice, 1, 4400)
	if n := h.blobRefs("blob-a"); n != 1 {
		t.Fatalf("blob refs after the retry = %d", n)
	}
	// Into another mailbox, the key is the account's: still the earlier append.
	if dup := h.ok(cmdDedupAppend(alice, h.mustMailbox(alice, "Archive").GetId(), "k1", 3600, "blob-a")).GetAppend(); !dup.GetDuplicate() || dup.GetMailboxId() != inbox {
		t.Fatalf("retry into Archive: %v", dup)
	}
	if other := h.ok(cmdDedupAppend(alice, inbox, "k2", 0, "blob-a")).GetAppend(); other.GetDuplicate() || other.GetUids()[0] != 2 {
		t.Fatalf("another key: %v", other)
	}
	// Once the retry horizon is past the window the key is forgotten: the same key appends
	// again.
	h.now = h.now.Add(2 * time.Minute)
	h.horizonNow()
	again := h.ok(cmdDedupAppend(alice, inbox, "k1", 60, "blob-a")).GetAppend()
	if again.GetDuplicate() || again.GetUids()[0] != 3 {
		t.Fatalf("after the window: %v", again)
	}
	if dup := h.ok(cmdDedupAppend(alice, inbox, "k1", 60, "blob-a")).GetAppend(); !dup.GetDuplicate() || dup.GetUids()[0] != 3 {
		t.Fatalf("retry of the new append: %v", dup)
	}

	// A refused append remembers nothing.
	zero := uint64(0)
	h.ok(cmdSetQuota(alice, "", nil, &zero))
	h.fails(codes.ResourceExhausted, cmdDedupAppend(alice, inbox, "k3", 0, "blob-b"))
	h.ok(cmdSetQuota(alice, "", nil, nil))
	if r := h.ok(cmdDedupAppend(alice, inbox, "k3", 0, "blob-b")).GetAppend(); r.GetDuplicate() {
		t.Fatalf("append after a refused one was taken for a duplicate: %v", r)
	}

	h.fails(codes.InvalidArgument, cmdDedupAppend(alice, inbox, string(bytes.Repeat([]byte{'k'}, 129)), 0, "blob-a"))
	h.fails(codes.InvalidArgument, cmdDedupAppend(alice, inbox, "k4", 31*86400, "blob-a"))
	// Duplicates answered from the log alone are the same on every replica.
	replay := newHarness(t)
	replay.f.ApplyBatch(h.log)
	if !bytes.Equal(replay.digest(), h.digest()) {
		t.Fatal("replayed log has another digest")
	}
}

// TestDedupPruning: expired records go, at most dedupPruneBatch per command, oldest first;
// those not expired stay; a deleted account takes its records.
func TestDedupPruning(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	const n = 100
	for i := range n {
		h.ok(cmdDedupAppend(alice, inbox, fmt.Sprintf("key-%03d", i), 3600, "blob-a"))
	}
	h.ok(cmdDedupAppend(alice, inbox, "long", 86400, "blob-a"))
	if d, e := h.keysWith(prefixDedup), h.keysWith(prefixDedupAge); d != n+1 || e != n+1 {
		t.Fatalf("records %d, by expiry %d; want %d", d, e, n+1)
	}
	h.now = h.now.Add(2 * time.Hour)
	h.horizonNow()
	h.ok(cmdCreateMailbox(alice, "One"))
	if d, e := h.keysWith(prefixDedup), h.keysWith(prefixDedupAge); d != n+1-dedupPruneBatch || e != d {
		t.Fatalf("after one command: records %d, by expiry %d; want %d", d, e, n+1-dedupPruneBatch)
	}
	// Oldest first: the first keys went.
	v := h.f.view()
	_, gone, _ := getRaw(v.r, dedupKey(alice, []byte("key-000")))
	_, kept, _ := getRaw(v.r, dedupKey(alice, []byte("key-099")))
	v.close()
	if gone || !kept {
		t.Fatalf("pruned out of order: key-000 present %v, key-099 present %v", gone, kept)
	}
	h.ok(cmdCreateMailbox(alice, "Two"))
	if d := h.keysWith(prefixDedup); d != 1 {
		t.Fatalf("after two commands: %d records, want the unexpired one", d)
	}
	if dup := h.ok(cmdDedupAppend(alice, inbox, "long", 86400, "blob-a")).GetAppend(); !dup.GetDuplicate() {
		t.Fatalf("unexpired key forgotten: %v", dup)
	}
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAccount{DeleteAccount: &metadatapb.DeleteAccountRequest{Email: alice}}})
	if d, e := h.keysWith(prefixDedup), h.keysWith(prefixDedupAge); d+e != 0 {
		t.Fatalf("deleted account left %d records, %d by expiry", d, e)
	}
}

// TestDedupSurvivesSnapshot: the records travel in a snapshot, and a restored replica
// answers a retry as a duplicate.
func TestDedupSurvivesSnapshot(t *testing.T) {
	src := withAccount(t)
	inbox := src.mustMailbox(alice, "INBOX").GetId()
	src.ok(cmdDedupAppend(alice, inbox, "k1", 3600, "blob-a"))
	dst := newHarness(t)
	restoreSnapshot(t, src.f, dst.f)
	if !bytes.Equal(src.digest(), dst.digest()) {
		t.Fatal("restored state differs")
	}
	dst.index, dst.now = src.index, src.now
	if dup := dst.ok(cmdDedupAppend(alice, inbox, "k1", 3600, "blob-a")).GetAppend(); !dup.GetDuplicate() || dup.GetUids()[0] != 1 {
		t.Fatalf("retry on the restored replica: %v", dup)
	}
}
