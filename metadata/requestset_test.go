package metadata

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-mail/strata/proto/metadatapb"
	"google.golang.org/protobuf/proto"
)

// heldRequestIDs counts the request IDs (the 'Q' keys) h's store holds.
func heldRequestIDs(h *harness) int {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	n := 0
	err := scan(v.r, []byte{prefixRequest}, []byte{prefixRequest + 1}, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// checkRequestSet fails unless the FSM's in-memory request set holds exactly the IDs of
// its store (requestset.go).
func checkRequestSet(h *harness) {
	h.t.Helper()
	g := h.f.acquire()
	defer g.release()
	if got, want := g.requests.len(), heldRequestIDs(h); got != want {
		h.t.Fatalf("request set holds %d IDs, the store %d", got, want)
	}
}

// TestRequestSetRetries: a retried request is answered from its record whether the FSM
// recorded it since open, opened the store after it (the set is loaded from the store),
// or restored a snapshot that holds it; the set follows the store through prunes.
func TestRequestSetRetries(t *testing.T) {
	h := withAccount(t)
	inbox := h.mustMailbox(alice, "INBOX").GetId()
	retry := func(id, blob string) *metadatapb.CommandResult {
		cmd := cmdAppend(alice, inbox, blob)
		cmd.RequestId = id
		return h.ok(cmd)
	}
	r1 := retry("first", "blob-1")
	checkRequestSet(h)
	if r := retry("first", "blob-1"); !proto.Equal(r, r1) {
		t.Fatalf("retry in the same run: %v, want %v", r, r1)
	}
	h.reopen()
	checkRequestSet(h)
	if r := retry("first", "blob-1"); !proto.Equal(r, r1) {
		t.Fatalf("retry after a restart: %v, want %v", r, r1)
	}
	r2 := retry("second", "blob-2")
	restoreSnapshot(t, h.f, h.f)
	checkRequestSet(h)
	if r := retry("second", "blob-2"); !proto.Equal(r, r2) {
		t.Fatalf("retry after a restore: %v, want %v", r, r2)
	}
	if box := h.mustMailbox(alice, "INBOX"); box.GetMessages() != 2 {
		t.Fatalf("retried appends applied again: %d messages, want 2", box.GetMessages())
	}
	// Pruned IDs leave the set with the store, and a new one after the prune is held.
	h.now = h.now.Add(requestRetention + time.Minute)
	h.horizonNow()
	h.ok(cmdCreateMailbox(alice, "After"))
	checkRequestSet(h)
	h.reopen()
	checkRequestSet(h)
}

// BenchmarkLoadRequestSet: what opening a store costs per request ID it holds (the scan
// that builds the in-memory set), with 200,000 IDs of 32 hex digits as the frontends make.
func BenchmarkLoadRequestSet(b *testing.B) {
	db, err := pebble.Open(b.TempDir(), pebbleOptions(testLogger(b)))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const ids = 200_000
	batch := db.NewBatch()
	for i := range ids {
		id := fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15)
		if err := batch.Set(requestKey(id), []byte("record"), nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := loadRequestSet(db)
		if err != nil {
			b.Fatal(err)
		}
		if s.len() != ids {
			b.Fatalf("%d IDs, want %d", s.len(), ids)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/ids, "ns/id")
}
