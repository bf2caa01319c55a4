package searchindex

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// Candidates once read the mailbox state from the live store and the postings from a
// snapshot taken after it. A drop of the mailbox (the tombstone rebuild, UIDVALIDITY
// change, Rebuild) committed between the two answers "no candidate up to LastUID" from
// empty postings: every message is left out.
func TestCandidatesStateFromTheirSnapshot(t *testing.T) {
	x, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const account, mailbox = "u@example.org", 7
	fill := func() {
		b := x.NewBatch()
		for uid := uint32(1); uid <= 20; uid++ {
			d := NewDoc()
			d.Add(ScopeBody, []byte("hello zebrafish world"))
			if err := b.Add(account, mailbox, uid, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.SetState(account, mailbox, MailboxState{UIDValidity: 1, LastUID: 20, Docs: 20}); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	fill()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			// What sync does for a rebuild: drop, then state from 0, then index again.
			b := x.NewBatch()
			if err := b.DropMailbox(account, mailbox); err != nil {
				t.Error(err)
				return
			}
			if err := b.Commit(); err != nil {
				t.Error(err)
				return
			}
			b = x.NewBatch()
			if err := b.SetState(account, mailbox, MailboxState{UIDValidity: 1}); err != nil {
				t.Error(err)
				return
			}
			if err := b.Commit(); err != nil {
				t.Error(err)
				return
			}
			fill()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	bad := 0
	n := 0
	for time.Now().Before(deadline) && bad == 0 {
		n++
		res, err := x.Candidates(context.Background(), account, mailbox, Query{Needle: "zebrafish", Scopes: []Scope{ScopeBody}})
		if err == ErrNotIndexed {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.LastUID >= 1 && !slices.Contains(res.UIDs, 1) && !(res.Exact && slices.Contains(res.Verify, 1)) {
			bad++
			t.Errorf("after %d queries: LastUID %d but UID 1 (holds the needle) not a candidate: %+v", n, res.LastUID, res)
		}
	}
	stop.Store(true)
	<-done
	t.Logf("%d queries", n)
}
