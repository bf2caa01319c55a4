package searchindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestConcurrentDropKeepsDictionaryKeys (review of idxcut20): prepare decides that a
// scope's dictionary is known (busy[s] == 1, entry at started-1) before the batch is
// written, but nothing keeps another commit of the stripe from landing between that
// check and b.b.Commit. A drop of the mailbox committed in that window deletes the
// dictionary key of a word the first batch then skips (it was in the cached entry),
// while that batch's postings and state land after the drop: the word has postings and
// no dictionary key, and Candidates leaves the message out.
func TestConcurrentDropKeepsDictionaryKeys(t *testing.T) {
	const account = "r@example.org"
	const m = uint64(1)
	// n: a mailbox of another stripe whose many words keep batch A between prepare and
	// its Pebble commit long enough for the drop to land.
	n := uint64(2)
	for stripeOf(account, n) == stripeOf(account, m) {
		n++
	}
	ctx := context.Background()
	for attempt := range 5 {
		x, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d := NewDoc()
		d.Add(ScopeBody, []byte("foo"))
		b := x.NewBatch()
		if err := b.Add(account, m, 1, d); err != nil {
			t.Fatal(err)
		}
		commitBatch(t, b, account, m, 1)
		// A query caches M's BODY dictionary {foo} at the stripe's current generation.
		if _, err := x.Candidates(ctx, account, m, Query{Needle: "foo", Scopes: []Scope{ScopeBody}}); err != nil {
			t.Fatal(err)
		}
		// Batch A: foo in M at UID 2 (its key skipped: the cached entry holds it), and
		// 200,000 words in N.
		a := x.NewBatch()
		d = NewDoc()
		d.Add(ScopeBody, []byte("foo"))
		if err := a.Add(account, m, 2, d); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for i := range 200000 {
			fmt.Fprintf(&sb, "n%d ", i)
		}
		d = NewDoc()
		d.Add(ScopeBody, []byte(sb.String()))
		if err := a.Add(account, n, 1, d); err != nil {
			t.Fatal(err)
		}
		if err := a.SetState(account, m, MailboxState{UIDValidity: 1, LastUID: 2, Docs: 1}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.Commit() }()
		// Wait until A has started on M's stripe (prepare runs right after), then drop M.
		s := stripeOf(account, m)
		for {
			x.vocab.mu.Lock()
			busy := x.vocab.busy[s]
			x.vocab.mu.Unlock()
			if busy == 1 {
				break
			}
			time.Sleep(10 * time.Microsecond)
		}
		time.Sleep(2 * time.Millisecond)
		drop := x.NewBatch()
		if err := drop.DropMailbox(account, m); err != nil {
			t.Fatal(err)
		}
		if err := drop.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Either the drop came after A (commits one at a time: M is not indexed, and the
		// frontend scans it), or A's state of M (LastUID 2) and its posting of foo at UID 2
		// came after the drop: then UID 2 holds foo and must be a candidate.
		res, err := x.Candidates(ctx, account, m, Query{Needle: "foo", Scopes: []Scope{ScopeBody}})
		if errors.Is(err, ErrNotIndexed) {
			x.Close()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		dict, _, _, err := x.loadDictionary(vocabKey{account, m, ScopeBody})
		if err != nil {
			t.Fatal(err)
		}
		x.Close()
		if res.LastUID == 2 && !slices.Contains(res.UIDs, 2) {
			t.Fatalf("attempt %d: UID 2 holds foo, state LastUID %d, but foo answered %v (dictionary of M's BODY %q): a concurrent drop made the batch skip a key the store lacks",
				attempt, res.LastUID, res.UIDs, dict)
		}
	}
}
