package searchindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestCandidatesSuperset: on random texts, the candidates of every needle hold every
// message whose text contains it, through chunked postings, the point-lookup path,
// tombstones and a reopen of the store.
func TestCandidatesSuperset(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "c", "É", "Ж", "会", " "}
	texts := map[uint32]string{}
	ctx := context.Background()
	const account, mailbox = "u@example.org", 7
	uid := uint32(0)
	for batch := range 5 {
		b := x.NewBatch()
		for range 40 + batch*30 {
			uid++
			var sb strings.Builder
			for range 5 + r.IntN(40) {
				sb.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			texts[uid] = sb.String()
			d := NewDoc()
			d.Add(ScopeBody, []byte(texts[uid]))
			if err := b.Add(account, mailbox, uid, d); err != nil {
				t.Fatal(err)
			}
		}
		commitBatch(t, b, account, mailbox, uid)
	}
	x = removeEveryAndReopen(t, x, dir, account, mailbox, 3, 7, uid, func(dead uint32) { delete(texts, dead) })
	defer x.Close()
	for range 300 {
		var sb strings.Builder
		for range 1 + r.IntN(5) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		needle := sb.String()
		if !Indexable(needle) {
			continue
		}
		res, err := x.Candidates(ctx, account, mailbox, Query{Needle: needle, Scopes: []Scope{ScopeBody}})
		if err != nil {
			t.Fatal(err)
		}
		if res.LastUID != uid {
			t.Fatalf("LastUID = %d, want %d", res.LastUID, uid)
		}
		for u, text := range texts {
			if strings.Contains(text, needle) && !slices.Contains(res.UIDs, u) {
				t.Fatalf("needle %q: UID %d (%q) not a candidate: %v", needle, u, text, res.UIDs)
			}
		}
		for _, u := range res.UIDs {
			if _, live := texts[u]; !live {
				t.Fatalf("needle %q: expunged UID %d is a candidate", needle, u)
			}
		}
		if other, err := x.Candidates(ctx, account, mailbox, Query{Needle: needle, Scopes: []Scope{ScopeSubject}}); err != nil || len(other.UIDs) != 0 {
			t.Fatalf("needle %q in the subject scope = %v, %v; want none", needle, other, err)
		}
	}
	if _, err := x.Candidates(ctx, account, mailbox+1, Query{Needle: "abc", Scopes: []Scope{ScopeBody}}); err != ErrNotIndexed {
		t.Fatalf("unindexed mailbox: %v, want ErrNotIndexed", err)
	}
}

// TestFuzzyScores: a misspelt needle finds the message with most of its trigrams, scored
// by their share (RFC 6203 4: 1 to 100).
// removeEveryAndReopen removes every step-th message of the mailbox from first to last in
// one batch (forget is told of each), closes x and returns the index reopened from dir.
func removeEveryAndReopen(t *testing.T, x *Index, dir, account string, mailbox uint64, first, step, last uint32, forget func(uint32)) *Index {
	t.Helper()
	b := x.NewBatch()
	for dead := first; dead <= last; dead += step {
		if err := b.Remove(account, mailbox, dead); err != nil {
			t.Fatal(err)
		}
		forget(dead)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestFuzzyScores(t *testing.T) {
	x, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	b := x.NewBatch()
	// In UID order, as Batch.Add asks.
	for uid, text := range []string{1: "QUARTERLY REPORT", 2: "BUDGET REVIEW", 3: "QUARTERLY"} {
		if uid == 0 {
			continue
		}
		d := NewDoc()
		d.Add(ScopeSubject, []byte(text))
		if err := b.Add("a", 1, uint32(uid), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetState("a", 1, MailboxState{LastUID: 3}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	res, err := x.Fuzzy(context.Background(), "a", 1, Query{Needle: "QUARTERLY REPROT", Scopes: []Scope{ScopeSubject}})
	if err != nil {
		t.Fatal(err)
	}
	// The needle's 11 trigrams inside its words: QUARTERLY's 7 and REP of REPROT's 4 are
	// in 1 (72); 3 holds 7 (63), less than two thirds.
	if got := fmt.Sprint(res.UIDs, res.Scores); got != "[1] [72]" {
		t.Fatalf("fuzzy QUARTERLY REPROT = %s, want [1] [72]", got)
	}
	// No trigram inside a word: the word candidates, to verify.
	res, err = x.Fuzzy(context.Background(), "a", 1, Query{Needle: "Y R", Scopes: []Scope{ScopeSubject}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.UIDs, res.Scores, res.Verify); got != "[1] [100] [1]" {
		t.Fatalf("fuzzy Y R = %s, want [1] [100] [1]", got)
	}
}

// TestLayoutChange: a store written with another layout (an older binary's trigram
// postings, no layout key) is emptied at open, so no mailbox answers from it.
func TestLayoutChange(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := x.NewBatch()
	d := NewDoc()
	d.Add(ScopeBody, []byte("hello world"))
	if err := b.Add("a", 1, 1, d); err != nil {
		t.Fatal(err)
	}
	if err := b.SetState("a", 1, MailboxState{UIDValidity: 1, LastUID: 1, Docs: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	reopen := func() {
		t.Helper()
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		if x, err = Open(dir); err != nil {
			t.Fatal(err)
		}
	}
	reopen()
	if _, ok, err := x.State("a", 1); !ok || err != nil {
		t.Fatalf("state after a reopen with the same layout: %v, %v", ok, err)
	}
	if err := x.db.Delete(layoutKey, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	reopen()
	defer x.Close()
	if _, ok, err := x.State("a", 1); ok || err != nil {
		t.Fatalf("state after a reopen of an older layout: %v, %v; want none", ok, err)
	}
	if _, err := x.Candidates(context.Background(), "a", 1, Query{Needle: "hello", Scopes: []Scope{ScopeBody}}); err != ErrNotIndexed {
		t.Fatalf("candidates from an older layout: %v, want ErrNotIndexed", err)
	}
}

// FuzzPostingChunk: a damaged posting chunk is an error or a list of UIDs, never a panic.
func FuzzPostingChunk(f *testing.F) {
	f.Add([]byte{1, 1, 5})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, chunk []byte) {
		r := &reader{ctx: context.Background(), dead: map[uint32]bool{2: true}}
		uids, err := r.appendChunk(nil, chunk)
		if err == nil && len(uids) > len(chunk) {
			t.Fatalf("%d UIDs from %d bytes", len(uids), len(chunk))
		}
	})
}
