package searchindex

import (
	"bytes"
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-mail/strata/frontend/message/mailtext"
)

// TestAdversarialDifferential: raw texts with every separator byte (NUL, tab, VT, FF,
// CR, LF, space), non-ASCII white space, long words, multi-byte folding cases and invalid
// UTF-8, indexed as Extract does (mailtext.FoldChunks, AddChunk) and as Add does; every
// needle (random substrings of the folded texts, with separators at the ends, doubled, or
// only separators) gets a superset from Candidates, an exact answer when Exact, and every
// holder in Fuzzy's UIDs.
func TestAdversarialDifferential(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { x.Close() }()
	r := rand.New(rand.NewPCG(19, 1919))
	alphabet := []string{"a", "B", "c", "ß", "ẞ", "İ", "ı", "i", "σ", "ς", "Σ", "e\u0301", "\u0301", "\xff", "\xc3", "\xe2\x82",
		"\x00", "\t", "\v", "\f", "\r", "\n", " ", "  ", "\r\n", "\u00a0", "\u2003", "\u0085", "ſ", "K", "k", "ǅ", "-", ".",
	}
	const account, mailbox = "rev@example.org", 19
	folded := map[uint32]map[Scope]string{}
	uid := uint32(0)
	d := NewDoc()
	for batch := range 3 {
		b := x.NewBatch()
		for range 60 {
			uid++
			folded[uid] = map[Scope]string{}
			d.Reset()
			for _, s := range []Scope{ScopeBody, ScopeSubject} {
				var sb strings.Builder
				for range 3 + r.IntN(80) {
					if r.IntN(30) == 0 {
						sb.WriteString(strings.Repeat("xy", MaxWord/2-2+r.IntN(4)))
					}
					sb.WriteString(alphabet[r.IntN(len(alphabet))])
				}
				raw := sb.String()
				folded[uid][s] = mailtext.Fold(raw)
				if s == ScopeBody {
					if err := mailtext.FoldChunks(strings.NewReader(raw), 0, func(c []byte) bool { d.AddChunk(s, c, 0); return true }); err != nil {
						t.Fatal(err)
					}
					d.EndText()
				} else {
					d.Add(s, []byte(mailtext.Fold(raw)))
				}
			}
			if err := b.Add(account, mailbox, uid, d); err != nil {
				t.Fatal(err)
			}
		}
		commitBatch(t, b, account, mailbox, uid)
		_ = batch
	}
	ctx := context.Background()
	seps := []string{" ", "\t", "\r\n", "  ", "\x00", "\n"}
	var needles []string
	for len(needles) < 1500 {
		text := folded[uint32(1+r.IntN(int(uid)))][[]Scope{ScopeBody, ScopeSubject}[r.IntN(2)]]
		if text == "" {
			continue
		}
		at := r.IntN(len(text))
		n := text[at:min(len(text), at+1+r.IntN(12))]
		switch r.IntN(6) {
		case 0:
			n = seps[r.IntN(len(seps))] + n
		case 1:
			n += seps[r.IntN(len(seps))]
		case 2:
			n = strings.Replace(n, " ", "  ", 1)
		}
		needles = append(needles, n)
	}
	for _, needle := range needles {
		if !Indexable(needle) {
			continue
		}
		for _, scopes := range [][]Scope{{ScopeBody}, {ScopeSubject}, {ScopeBody, ScopeSubject}} {
			var want []uint32
			for u := uint32(1); u <= uid; u++ {
				if slices.ContainsFunc(scopes, func(s Scope) bool { return strings.Contains(folded[u][s], needle) }) {
					want = append(want, u)
				}
			}
			res, err := x.Candidates(ctx, account, mailbox, Query{Needle: needle, Scopes: scopes})
			if err != nil {
				t.Fatalf("%q: %v", needle, err)
			}
			for _, u := range want {
				if !slices.Contains(res.UIDs, u) {
					t.Errorf("Candidates(%q, %v) leaves out UID %d: %q", needle, scopes, u, folded[u])
				}
			}
			if res.Exact {
				for _, u := range res.UIDs {
					if !slices.Contains(want, u) && !slices.Contains(res.Verify, u) {
						t.Errorf("exact Candidates(%q, %v) proves UID %d, which does not hold it: %q", needle, scopes, u, folded[u])
					}
				}
			}
			fz, err := x.Fuzzy(ctx, account, mailbox, Query{Needle: needle, Scopes: scopes})
			if err != nil {
				t.Fatalf("fuzzy %q: %v", needle, err)
			}
			for _, u := range want {
				if !slices.Contains(fz.UIDs, u) {
					t.Errorf("Fuzzy(%q, %v) leaves out UID %d, which holds it", needle, scopes, u)
				}
			}
			if len(fz.Scores) != len(fz.UIDs) {
				t.Fatalf("fuzzy scores %d for %d uids", len(fz.Scores), len(fz.UIDs))
			}
		}
	}
	_ = bytes.Contains
}

// TestLongBodyWordsAcrossChunks: a body of several FoldChunks windows (64 KiB) with words cut by
// every window end, multi-byte runes and long words, read as Extract reads it, has the
// very words (and long-word marks) of the whole folded text added at once.
func TestLongBodyWordsAcrossChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 77))
	parts := []string{"ab", "ß", "会議", "ς", " ", "\r\n", "\t", strings.Repeat("q", MaxWord), strings.Repeat("w", MaxWord+1), "\xff", "Ǆ"}
	for round := range 20 {
		var sb strings.Builder
		for sb.Len() < 3*65536+r.IntN(5000) {
			sb.WriteString(parts[r.IntN(len(parts))])
		}
		raw := sb.String()
		chunked, whole := NewDoc(), NewDoc()
		if err := mailtext.FoldChunks(strings.NewReader(raw), 0, func(c []byte) bool { chunked.AddChunk(ScopeBody, c, 0); return true }); err != nil {
			t.Fatal(err)
		}
		chunked.EndText()
		whole.Add(ScopeBody, []byte(mailtext.Fold(raw)))
		if len(chunked.words) != len(whole.words) || chunked.long != whole.long {
			t.Fatalf("round %d: %d words (long %b) chunked, %d whole (long %b)", round, len(chunked.words), chunked.long, len(whole.words), whole.long)
		}
		chunkedWords, _ := DocWords(chunked)
		wholeWords, _ := DocWords(whole)
		for _, w := range wholeWords {
			if !slices.Contains(chunkedWords, w) {
				t.Fatalf("round %d: word %q missing when chunked", round, w)
			}
		}
	}
}

// TestCacheUnderConcurrentCommits: while a writer commits one new word per batch
// (several mailboxes, so stripes are shared or not) and drops/re-adds a mailbox now and
// then, readers that started after a commit returned always see its word (exact answer),
// whatever the cached dictionaries hold.
func TestCacheUnderConcurrentCommits(t *testing.T) {
	x, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const account = "race@example.org"
	const mailboxes = 3
	var committed [mailboxes]atomicUID
	done := make(chan struct{})
	go func() {
		defer close(done)
		for uid := uint32(1); uid <= 300; uid++ {
			mb := uint64(uid % mailboxes)
			b := x.NewBatch()
			d := NewDoc()
			d.Add(ScopeBody, []byte("COMMON W"+itoa(uid)+"X"))
			if err := b.Add(account, mb, uid, d); err != nil {
				t.Error(err)
				return
			}
			if err := b.SetState(account, mb, MailboxState{UIDValidity: 1, LastUID: uid}); err != nil {
				t.Error(err)
				return
			}
			if err := b.Commit(); err != nil {
				t.Error(err)
				return
			}
			committed[mb].store(uid)
		}
	}()
	r := rand.New(rand.NewPCG(1, 9))
	for {
		select {
		case <-done:
			return
		default:
		}
		mb := uint64(r.IntN(mailboxes))
		uid := committed[mb].load()
		if uid == 0 {
			continue
		}
		for _, needle := range []string{"W" + itoa(uid) + "X", "COMMON W" + itoa(uid)} {
			res, err := x.Candidates(context.Background(), account, mb, Query{Needle: needle, Scopes: []Scope{ScopeBody}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(res.UIDs, uid) && res.LastUID >= uid {
				t.Fatalf("%q in mailbox %d after its commit: %v (last %d)", needle, mb, res.UIDs, res.LastUID)
			}
		}
	}
}

type atomicUID struct{ v atomic.Uint32 }

func (a *atomicUID) store(u uint32) { a.v.Store(u) }
func (a *atomicUID) load() uint32   { return a.v.Load() }

func itoa(u uint32) string { return strconv.FormatUint(uint64(u), 10) }

// TestSparseHighUIDsBoundedMemory: a mailbox of two messages with UIDs kept from a migration
// (ImportMessages uids, up to 2^32-1). An exact query sizes its bit set by LastUID
// (newUIDBits), and a word-candidates query grows one per piece to the highest UID: half
// a GiB per query for two messages.
func TestSparseHighUIDsBoundedMemory(t *testing.T) {
	x, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const account, mailbox = "hi@example.org", 1
	b := x.NewBatch()
	for _, uid := range []uint32{4_000_000_000, 4_294_967_295} {
		d := NewDoc()
		d.Add(ScopeBody, []byte("HELLO WORLD"))
		if err := b.Add(account, mailbox, uid, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetState(account, mailbox, MailboxState{UIDValidity: 1, LastUID: 4_294_967_295}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{"ELL", "LO WO"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, err := x.Candidates(context.Background(), account, mailbox, Query{Needle: needle, Scopes: []Scope{ScopeBody}})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib > 64 {
			t.Errorf("%q: %d MiB allocated for a 2-message answer %v", needle, mib, res.UIDs)
		}
	}
}
