package searchindex_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/searchindex"
)

// The digests TestIndexGolden wants, computed with main 286753a's code (before the
// batch writes of idx28).
const (
	goldenStoreDigest   = "18aae3c5d6e0b6208e75f61607bdeef01da2adf1782567fda89065f8386d995f"
	goldenAnswersDigest = "a9ff27e65583504dc4b4371e92faf1989a6f71f7fcefd5f5b6c39968a0f2f6ee"
)

// goldenMailbox is a mailbox TestIndexGolden fills, and the sizes of its batches (taken
// in turn).
type goldenMailbox struct {
	account string
	id      uint64
	raws    [][]byte
	batches []int
}

// TestIndexGolden indexes three corpora (compare-append's messages, larger ones, the
// adversarial MIME ones) into three mailboxes of two accounts as the indexer does (one
// doc reused, batches of many sizes, some committed with the mailbox's dictionary cached
// by a query before them and some without, skipped and expunged messages, a mailbox
// dropped and indexed again), and asks many queries between the batches and at the end.
// Every key and value of the store, and every answer, must be those main 286753a's code
// gave: the batch writes were made cheaper (issue 14), not different.
func TestIndexGolden(t *testing.T) {
	mailboxes := []goldenMailbox{
		{"a@example.com", 1, benchMessages(bench.Corpus{Seed: 1, MaxSize: 65536}, 512), []int{1, 7, 128, 3, 300, 40}},
		{"a@example.com", 2, adversarialMessages(300), []int{2, 64, 1, 150, 11}},
		{"b@example.com", 5, benchMessages(bench.Corpus{Seed: 2, MaxSize: 1 << 20}, 48), []int{5, 1, 20}},
	}
	x, recent, blobs, doc := openIndexing(t, 1<<30, 1<<30)
	answers := sha256.New()
	needles := goldenNeedles(t, mailboxes)

	index := func(m goldenMailbox, round int) {
		st := searchindex.MailboxState{UIDValidity: 1}
		if prev, ok, err := x.State(m.account, m.id); err != nil {
			t.Fatal(err)
		} else if ok {
			st = prev
		}
		for at, k := 0, 0; at < len(m.raws); k++ {
			n := min(m.batches[k%len(m.batches)], len(m.raws)-at)
			if k%2 == 1 {
				// The dictionary cached before the commit (vocab.go prepare's known path).
				goldenAsk(t, x, m, needles[:8], answers)
			}
			b := x.NewBatch()
			for _, raw := range m.raws[at : at+n] {
				st.LastUID++
				uid := st.LastUID
				if (uid+uint32(round))%37 == 0 {
					if err := b.Skip(m.account, m.id, uid); err != nil {
						t.Fatal(err)
					}
					continue
				}
				rec := keptRecord(t, recent, uid, raw)
				if err := searchindex.ExtractInto(t.Context(), doc, blobs, rec); err != nil {
					t.Fatal(err)
				}
				if err := b.Add(m.account, m.id, uid, doc); err != nil {
					t.Fatal(err)
				}
			}
			st.Docs += uint32(n)
			if k%3 == 2 {
				// Expunge a few indexed messages.
				for uid := st.LastUID - uint32(n) + 1; uid <= st.LastUID; uid += 5 {
					if err := b.Remove(m.account, m.id, uid); err != nil {
						t.Fatal(err)
					}
					st.Dead++
				}
			}
			if err := b.SetState(m.account, m.id, st); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			at += n
		}
	}
	for _, m := range mailboxes {
		index(m, 0)
	}
	for _, m := range mailboxes {
		goldenAsk(t, x, m, needles, answers)
	}
	// Dropped and indexed again (with other UIDs), while the other mailboxes stay.
	b := x.NewBatch()
	if err := b.DropMailbox(mailboxes[0].account, mailboxes[0].id); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	index(mailboxes[0], 1)
	index(mailboxes[2], 1) // a second round into a mailbox with a state
	for _, m := range mailboxes {
		goldenAsk(t, x, m, needles, answers)
	}

	store, err := searchindex.StoreDigest(x)
	if err != nil {
		t.Fatal(err)
	}
	if store != goldenStoreDigest {
		t.Errorf("store digest %s, want %s (main 286753a's)", store, goldenStoreDigest)
	}
	if got := hex.EncodeToString(answers.Sum(nil)); got != goldenAnswersDigest {
		t.Errorf("answers digest %s, want %s (main 286753a's)", got, goldenAnswersDigest)
	}
}

// openIndexing opens an index in a temporary directory and returns it with what indexing
// into it takes: bodies handed over in memory as the ingest path does (a RecentBodies of
// budget bytes, perBody at most each, and the blobs reading through it) and a doc.
func openIndexing(tb testing.TB, budget, perBody int64) (*searchindex.Index, *searchindex.RecentBodies, searchindex.Blobs, *searchindex.Doc) {
	x, err := searchindex.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { x.Close() })
	recent := searchindex.NewRecentBodies(budget, perBody)
	return x, recent, recent.Over(nil), searchindex.NewDoc()
}

// keptRecord parses raw into the record of message uid and hands its body to recent, as
// an APPEND does.
func keptRecord(tb testing.TB, recent *searchindex.RecentBodies, uid uint32, raw []byte) *metadatapb.MessageRecord {
	st, err := message.Parse(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("message %d: %v", uid, err)
	}
	key := blobstore.Key("acme", sha256.Sum256(raw))
	recent.Keep(key, bytes.NewReader(raw), int64(len(raw)))
	return &metadatapb.MessageRecord{Uid: uid, BlobKey: key, Size: uint64(len(raw)), Structure: st}
}

// goldenNeedles returns fixed needles and, from every 50th message of each mailbox, some
// of its words and pieces of them (folded, as SEARCH gives them).
func goldenNeedles(t *testing.T, mailboxes []goldenMailbox) []string {
	needles := []string{"the", "e", "ello wor", "a b", "word", "ß", "ss", "re:", "subject:", "example.com", "@", "=",
		"xyxy", "会議", "ing ", " the", "message-id:", "http", "σ", "-", "x y z", "from: ", "content-type:"}
	recent := searchindex.NewRecentBodies(1<<30, 1<<30)
	blobs := recent.Over(nil)
	doc := searchindex.NewDoc()
	for _, m := range mailboxes {
		for i := 0; i < len(m.raws); i += 50 {
			if err := searchindex.ExtractInto(t.Context(), doc, blobs, keptRecord(t, recent, 1, m.raws[i])); err != nil {
				t.Fatal(err)
			}
			words, _ := searchindex.DocWords(doc)
			for j := 0; j < len(words); j += 53 {
				w := words[j][1:]
				needles = append(needles, w)
				if len(w) > 3 {
					needles = append(needles, w[1:len(w)-1])
				}
				if j+1 < len(words) {
					needles = append(needles, w[len(w)/2:]+" "+words[j+1][1:])
				}
			}
		}
	}
	return needles
}

// goldenScopes are the scope sets goldenAsk asks each needle in.
var goldenScopes = [][]searchindex.Scope{
	{searchindex.ScopeBody}, {searchindex.ScopeBody, searchindex.ScopeText}, {searchindex.ScopeSubject},
	{searchindex.ScopeFrom}, {searchindex.ScopeTo}, {searchindex.ScopeCc}, {searchindex.ScopeBcc}, {searchindex.ScopeOther},
}

// goldenAsk asks every needle of an indexable kind in m in every scope set
// (Candidates, and Fuzzy for every fifth) and writes the answers to h.
func goldenAsk(t *testing.T, x *searchindex.Index, m goldenMailbox, needles []string, h interface{ Write([]byte) (int, error) }) {
	for i, needle := range needles {
		if !searchindex.Indexable(needle) {
			continue
		}
		for _, scopes := range goldenScopes {
			q := searchindex.Query{Needle: needle, Scopes: scopes}
			res, err := x.Candidates(t.Context(), m.account, m.id, q)
			if err != nil {
				t.Fatalf("%q in %v of %s %d: %v", needle, scopes, m.account, m.id, err)
			}
			fmt.Fprintf(h, "%s %d %q %v: %v last %d exact %v verify %v\n", m.account, m.id, needle, scopes, res.UIDs, res.LastUID, res.Exact, res.Verify)
			if i%5 == 0 {
				res, err := x.Fuzzy(t.Context(), m.account, m.id, q)
				if err != nil {
					t.Fatalf("fuzzy %q in %v of %s %d: %v", needle, scopes, m.account, m.id, err)
				}
				fmt.Fprintf(h, "fuzzy %v %v verify %v\n", res.UIDs, res.Scores, res.Verify)
			}
		}
	}
}
