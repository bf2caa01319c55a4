package searchindex

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// commitBatch commits b with the state of a mailbox of UIDVALIDITY 1 indexed up to
// lastUID.
func commitBatch(t testing.TB, b *Batch, account string, mailbox uint64, lastUID uint32) {
	t.Helper()
	if err := b.SetState(account, mailbox, MailboxState{UIDValidity: 1, LastUID: lastUID}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// dictWords writes words as a dictionary (vocabEntry.words).
func dictWords(words ...string) []byte {
	var b []byte
	for _, w := range words {
		b = append(append(b, w...), 0)
	}
	return b
}

func TestMergeWords(t *testing.T) {
	for _, c := range []struct {
		dict, added, want, fresh []string
	}{
		{nil, []string{"a", "b"}, []string{"a", "b"}, []string{"a", "b"}},
		{[]string{"b", "d"}, nil, []string{"b", "d"}, nil},
		{[]string{"b", "d"}, []string{"a", "c", "e"}, []string{"a", "b", "c", "d", "e"}, []string{"a", "c", "e"}},
		{[]string{"b", "d"}, []string{"b", "d"}, []string{"b", "d"}, nil},
		{[]string{"ab", "abc", "b"}, []string{"a", "abc", "abd", "ba"}, []string{"a", "ab", "abc", "abd", "b", "ba"}, []string{"a", "abd", "ba"}},
	} {
		var added [][]byte
		for _, w := range c.added {
			added = append(added, []byte(w))
		}
		dict := dictWords(c.dict...)
		before := slices.Clone(dict)
		got, n, fresh := mergeWords(dict, len(c.dict), added)
		if want := dictWords(c.want...); !bytes.Equal(got, want) || n != len(c.want) {
			t.Errorf("mergeWords(%q, %q) = %q, %d; want %q, %d", c.dict, c.added, got, n, want, len(c.want))
		}
		var freshWords []string
		for _, w := range fresh {
			freshWords = append(freshWords, string(w))
		}
		if !slices.Equal(freshWords, c.fresh) {
			t.Errorf("mergeWords(%q, %q) found new words %q; want %q", c.dict, c.added, freshWords, c.fresh)
		}
		if !bytes.Equal(dict, before) {
			t.Errorf("mergeWords(%q, %q) changed the dictionary it was given", c.dict, c.added)
		}
	}
}

// TestCachedDictionaryMergesCommits: a busy mailbox's cached dictionary is brought up to
// date by each batch that adds words to it instead of being dropped, and after any number
// of batches it holds exactly the words the store's dictionary holds; a query between two
// batches sees the words of the first at once.
func TestCachedDictionaryMergesCommits(t *testing.T) {
	x, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const account, mailbox = "m@example.org", 3
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return fmt.Sprintf("w%d", rng.IntN(400)) }
	holders := map[string][]uint32{} // word -> UIDs
	uid := uint32(0)
	for round := range 30 {
		b := x.NewBatch()
		for range 1 + rng.IntN(4) {
			uid++
			d := NewDoc()
			var text []string
			for range 1 + rng.IntN(6) {
				w := word()
				text = append(text, w)
				if l := holders[w]; len(l) == 0 || l[len(l)-1] != uid {
					holders[w] = append(l, uid)
				}
			}
			d.Add(ScopeBody, []byte(strings.Join(text, " ")))
			d.Add(ScopeSubject, []byte(text[0]))
			if err := b.Add(account, mailbox, uid, d); err != nil {
				t.Fatal(err)
			}
		}
		commitBatch(t, b, account, mailbox, uid)
		// The entry read by the first query (round 0) is carried from batch to batch.
		key := vocabKey{account, mailbox, ScopeBody}
		gen, quiet := x.vocab.stamp(stripeOf(account, mailbox))
		x.vocab.mu.Lock()
		e := x.vocab.entries[key]
		x.vocab.mu.Unlock()
		if round > 0 && (e == nil || !quiet || e.gen != gen) {
			t.Fatalf("round %d: the cached dictionary was dropped, not merged (entry %v, stripe generation %d)", round, e != nil, gen)
		}
		if e != nil {
			r, _, err := x.read(ctx, account, mailbox, "w")
			if err != nil {
				t.Fatal(err)
			}
			r.vocab = nil // straight from the store
			stored, _, err := r.dictionary(ScopeBody)
			r.snap.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.words, stored) || e.n != bytes.Count(stored, []byte{0}) {
				t.Fatalf("round %d: cached dictionary %q (%d words), the store's %q", round, e.words, e.n, stored)
			}
		}
		w := word()
		res, err := x.Candidates(ctx, account, mailbox, Query{Needle: w, Scopes: []Scope{ScopeBody}})
		if err != nil {
			t.Fatal(err)
		}
		var want []uint32
		for h, uids := range holders {
			// "w12" is inside "w123": the union of every word holding the needle.
			if strings.Contains(h, w) {
				want = append(want, uids...)
			}
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(res.UIDs, want) && !(len(want) == 0 && len(res.UIDs) == 0) {
			t.Fatalf("round %d: %q answered %v, want %v", round, w, res.UIDs, want)
		}
	}
}

// TestDictionaryKeysSkippedOnlyWhenHeld: batches that skip the dictionary keys of words
// the dictionary holds (a dictionary read by the writer for a large batch, or cached by a
// query) leave the store's dictionary exactly the union of the words indexed, also after
// the mailbox is dropped and indexed again while its dictionary was cached.
func TestDictionaryKeysSkippedOnlyWhenHeld(t *testing.T) {
	x, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const account, mailbox = "k@example.org", 5
	ctx := context.Background()
	want := map[string]bool{}
	uid := uint32(0)
	index := func(words int, from int) {
		t.Helper()
		b := x.NewBatch()
		for i := range words {
			uid++
			w := fmt.Sprintf("k%d", from+i)
			want[w] = true
			d := NewDoc()
			d.Add(ScopeBody, []byte(w))
			if err := b.Add(account, mailbox, uid, d); err != nil {
				t.Fatal(err)
			}
		}
		commitBatch(t, b, account, mailbox, uid)
	}
	check := func(step string) {
		t.Helper()
		got, _, ok, err := x.loadDictionary(vocabKey{account, mailbox, ScopeBody})
		if err != nil || !ok {
			t.Fatal(err, ok)
		}
		var words []string
		for w := range want {
			words = append(words, w)
		}
		slices.Sort(words)
		if wantDict := dictWords(words...); !bytes.Equal(got, wantDict) {
			t.Fatalf("%s: the store's dictionary has %d words, want %d", step, bytes.Count(got, []byte{0}), len(words))
		}
	}
	index(loadMinWords, 0) // read by the writer: nothing cached yet
	index(loadMinWords, loadMinWords/2)
	check("large batches")
	index(3, 10) // held words only
	index(3, 5000)
	check("small batches after")
	x.vocab.mu.Lock()
	cached := x.vocab.entries[vocabKey{account, mailbox, ScopeBody}] != nil
	x.vocab.mu.Unlock()
	if !cached {
		t.Fatal("the writer kept no dictionary of a busy scope")
	}
	if _, err := x.Candidates(ctx, account, mailbox, Query{Needle: "k1", Scopes: []Scope{ScopeBody}}); err != nil {
		t.Fatal(err)
	}
	b := x.NewBatch()
	if err := b.DropMailbox(account, mailbox); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	clear(want)
	index(4, 0) // words the dropped dictionary held, written again
	check("after a drop")
	b = x.NewBatch()
	if err := b.DropAccount(account); err != nil {
		t.Fatal(err)
	}
	d := NewDoc()
	d.Add(ScopeBody, []byte("k1 k2"))
	uid++
	if err := b.Add(account, mailbox, uid, d); err != nil {
		t.Fatal(err)
	}
	commitBatch(t, b, account, mailbox, uid)
	want = map[string]bool{"k1": true, "k2": true}
	check("dropped and indexed in one batch")
}
