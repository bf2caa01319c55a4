package searchindex

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// vocabCache keeps the word dictionaries of the scopes searched lately in memory (doc.go
// "Exact answers"): reading a dictionary of a million words from the store took longer
// than the rest of a query, and the dictionary only changes when a batch adds words.
//
// A cached dictionary is used only while it holds every word of the query's snapshot:
// Batch.Commit marks the mailboxes it adds words to (a stripe of them) before writing and
// after, and a query takes the cache's entry only if no commit of that stripe started
// between the entry's load and the query's snapshot (stripeOf, commitStarting). A commit
// that adds words to a mailbox merges them into its cached dictionaries as it ends
// (commitDone), so a busy mailbox's dictionary is not read from the store again after
// every indexing batch, and the commit writes the dictionary keys of the new words only
// (prepare). A batch that drops a mailbox (an account: every stripe) advances its
// stripe's generation too, and merges nothing. A cached dictionary may hold more words than the snapshot (a
// mailbox dropped since): their postings are not in the snapshot, so they add nothing.
type vocabCache struct {
	mu sync.Mutex
	// gen counts the commits started per stripe of mailboxes, busy those in progress.
	gen     [vocabStripes]uint64
	busy    [vocabStripes]int
	entries map[vocabKey]*vocabEntry
	size    int
}

// vocabStripes is how many stripes the mailboxes are hashed into: a commit to one
// mailbox makes the cached dictionaries of its stripe's other mailboxes be read again.
const vocabStripes = 1024

// maxVocabCache bounds the bytes of the cached dictionaries (each word with a separator).
const maxVocabCache = 256 << 20

type vocabKey struct {
	account string
	mailbox uint64
	scope   Scope
}

// vocabEntry is one scope's dictionary: its words in key order, each followed by a NUL
// (a word separator, so never inside a word, mailtext.IsWordSeparator), and the stripe
// generation it was read at (or brought up to date at, commitDone).
type vocabEntry struct {
	words []byte
	n     int // the number of words
	gen   uint64
}

var vocabSeed = maphash.MakeSeed()

func stripeOf(account string, mailbox uint64) int {
	var h maphash.Hash
	h.SetSeed(vocabSeed)
	h.WriteString(account)
	var b [8]byte
	for i := range b {
		b[i] = byte(mailbox >> (8 * i))
	}
	h.Write(b[:])
	return int(h.Sum64() % vocabStripes)
}

// commitStarting marks the stripes as being written (each once) and returns the
// generation each stands at now; commitDone ends that.
func (c *vocabCache) commitStarting(stripes []int) map[int]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	started := make(map[int]uint64, len(stripes))
	for _, s := range stripes {
		if _, ok := started[s]; ok {
			continue
		}
		c.gen[s]++
		c.busy[s]++
		started[s] = c.gen[s]
	}
	return started
}

// vocabMerge is a cached dictionary brought up to date with a commit's words (prepare):
// the entry it replaces, the merged words, and the words the store did not hold, which
// are the only dictionary keys the commit writes for that scope.
type vocabMerge struct {
	key   vocabKey
	old   *vocabEntry
	words []byte
	n     int
	fresh [][]byte
}

// prepare returns, for the mailboxes a starting commit adds words to (pending; started
// from commitStarting), the dictionaries known to hold exactly the store's words before
// the commit, merged with the commit's words. A dictionary qualifies when its cached entry
// was read at the generation just before this commit and no other commit of its stripe
// is in progress: then nothing has written the mailbox's dictionary since (drops bump the
// generation too, Batch.Commit). A scope without such an entry whose batch adds at least
// loadMinWords words is read from the store by load (the stripe is busy with this commit
// alone, so the store holds exactly the words of that generation), so that a busy
// mailbox's batches stop rewriting the dictionary keys of the words it holds. The merging
// runs outside c.mu: the stripes are busy meanwhile, so no query uses or replaces their
// entries.
func (c *vocabCache) prepare(started map[int]uint64, pending map[mailboxRef]*pendingPostings,
	load func(vocabKey) ([]byte, int, bool, error)) ([]vocabMerge, error) {
	var merges []vocabMerge
	added := map[mailboxRef]*[ScopeOther + 1][][]byte{}
	var absent []vocabKey
	c.mu.Lock()
	for ref, p := range pending {
		s := stripeOf(ref.account, ref.mailbox)
		if len(p.words) == 0 || c.gen[s] != started[s] || c.busy[s] != 1 {
			continue
		}
		for scope := range ScopeOther + 1 {
			key := vocabKey{ref.account, ref.mailbox, Scope(scope)}
			if e := c.entries[key]; e != nil && e.gen == started[s]-1 {
				merges = append(merges, vocabMerge{key: key, old: e})
			} else {
				absent = append(absent, key)
			}
		}
	}
	c.mu.Unlock()
	byScope := func(ref mailboxRef) *[ScopeOther + 1][][]byte {
		if added[ref] == nil {
			added[ref] = pending[ref].wordsByScope()
		}
		return added[ref]
	}
	counts := map[mailboxRef]*[ScopeOther + 1]int{} // words per scope, without sorting them
	for _, key := range absent {
		ref := mailboxRef{key.account, key.mailbox}
		if counts[ref] == nil {
			counts[ref] = new([ScopeOther + 1]int)
			for _, w := range pending[ref].words {
				if s := w.word[0]; int(s) < len(counts[ref]) {
					counts[ref][s]++
				}
			}
		}
		if counts[ref][key.scope] < loadMinWords {
			continue
		}
		words, n, ok, err := load(key)
		if err != nil {
			return nil, err
		}
		if ok {
			merges = append(merges, vocabMerge{key: key, old: &vocabEntry{words: words, n: n}})
		}
	}
	for i := range merges {
		m := &merges[i]
		m.words, m.n, m.fresh = mergeWords(m.old.words, m.old.n, byScope(mailboxRef{m.key.account, m.key.mailbox})[m.key.scope])
	}
	return merges, nil
}

// loadMinWords is how many words a batch adds to a scope without a cached dictionary
// before the commit reads that dictionary from the store (prepare): below it, writing
// every word's dictionary key again costs less than reading the dictionary.
const loadMinWords = 512

// commitDone ends the commit that started the stripes (commitStarting) and installs the
// dictionaries prepare merged (nil when the commit failed: its stripes' entries stay
// stale), each at the generation its stripe stands at once the commit is over, if no
// other commit started on its stripe meanwhile (then the merged words are the store's
// after this commit, whatever entry a query put meanwhile). Any other entry of those stripes stays
// stale and is read again when a query needs it.
func (c *vocabCache) commitDone(started map[int]uint64, merges []vocabMerge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[vocabKey]*vocabEntry{}
	}
	for _, m := range merges {
		s := stripeOf(m.key.account, m.key.mailbox)
		if c.gen[s] != started[s] || c.busy[s] != 1 {
			continue
		}
		if cur := c.entries[m.key]; cur != nil {
			c.size -= len(cur.words)
			delete(c.entries, m.key)
		}
		if m.n > maxVocabScan || c.size+len(m.words) > maxVocabCache {
			continue
		}
		c.size += len(m.words)
		c.entries[m.key] = &vocabEntry{words: m.words, n: m.n, gen: started[s] + 1}
	}
	for s := range started {
		c.gen[s]++
		c.busy[s]--
	}
}

// wordsByScope returns the words of p by scope, each scope's sorted (sliced from one
// buffer of them all).
func (p *pendingPostings) wordsByScope() *[ScopeOther + 1][][]byte {
	scopes := new([ScopeOther + 1][][]byte)
	words := p.sorted()
	size := 0
	for _, w := range words {
		size += len(w.word)
	}
	buf := make([]byte, 0, size)
	for _, w := range words {
		if s := w.word[0]; int(s) < len(scopes) {
			at := len(buf)
			buf = append(buf, w.word[1:]...)
			scopes[s] = append(scopes[s], buf[at:len(buf):len(buf)])
		}
	}
	return scopes
}

// mergeWords returns dict (vocabEntry.words, n words) with the sorted distinct words
// added, in order and each once, the number of its words and the added words dict did not
// hold. dict is not changed: a query may be reading it.
func mergeWords(dict []byte, n int, added [][]byte) ([]byte, int, [][]byte) {
	if len(added) == 0 {
		return dict, n, nil
	}
	var fresh [][]byte
	size := len(dict)
	for _, w := range added {
		size += len(w) + 1
	}
	out := make([]byte, 0, size)
	at := 0 // the start of the first word of dict not copied yet
	for _, w := range added {
		from, have := at, false
		for at < len(dict) {
			end := at + bytes.IndexByte(dict[at:], 0)
			c := bytes.Compare(dict[at:end], w)
			if c > 0 {
				break
			}
			at = end + 1
			if c == 0 {
				have = true
				break
			}
		}
		out = append(out, dict[from:at]...)
		if !have {
			out = append(append(out, w...), 0)
			n++
			fresh = append(fresh, w)
		}
	}
	return append(out, dict[at:]...), n, fresh
}

// stamp returns the stripe's generation, ok false while a commit to it is in progress.
func (c *vocabCache) stamp(stripe int) (gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen[stripe], c.busy[stripe] == 0
}

// get returns the cached dictionary of k if it was read at generation gen.
func (c *vocabCache) get(k vocabKey, gen uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil && e.gen == gen {
		return e.words
	}
	return nil
}

// put caches the dictionary of k read at generation gen, dropping other entries when the
// cache would grow past maxVocabCache.
func (c *vocabCache) put(k vocabKey, gen uint64, words []byte, n int) {
	if len(words) > maxVocabCache/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[vocabKey]*vocabEntry{}
	}
	if old := c.entries[k]; old != nil {
		c.size -= len(old.words)
		delete(c.entries, k)
	}
	for victim, e := range c.entries {
		if c.size+len(words) <= maxVocabCache {
			break
		}
		c.size -= len(e.words)
		delete(c.entries, victim)
	}
	c.entries[k] = &vocabEntry{words: words, n: n, gen: gen}
	c.size += len(words)
}

// forEachHolding calls f with every word of dict (vocabEntry.words) that holds needle,
// in order; f returns false to stop. One bytes.Index pass over the whole dictionary.
func forEachHolding(dict, needle []byte, f func(word []byte) bool) {
	for at := 0; at < len(dict); {
		i := bytes.Index(dict[at:], needle)
		if i < 0 {
			return
		}
		i += at
		// at is a word's start: the match's word starts after the last NUL before it.
		start := at + bytes.LastIndexByte(dict[at:i], 0) + 1
		end := i + bytes.IndexByte(dict[i:], 0)
		if !f(dict[start:end]) {
			return
		}
		at = end + 1
	}
}

// uidBits is a set of UIDs: a roaring bitmap (github.com/RoaringBitmap/roaring/v2, the
// compressed bitmap Lucene, Pilosa and Bleve use), whose containers hold a dense run of
// UIDs as bits and a sparse one as a sorted array, so that a set costs memory in step
// with the postings it holds, not with the highest UID: a flat bit set sized by the last
// UID cost half a GiB per query of a mailbox imported with UIDs near 2^32 (review
// index19 F2). The zero value is an empty set.
type uidBits struct{ b *roaring.Bitmap }

// add puts uid in the set.
func (s *uidBits) add(uid uint32) {
	if s.b == nil {
		s.b = roaring.New()
	}
	s.b.Add(uid)
}

// addMany puts uids (ascending) in the set.
func (s *uidBits) addMany(uids []uint32) {
	if s.b == nil {
		s.b = roaring.New()
	}
	s.b.AddMany(uids)
}

// cardinality is the number of members.
func (s uidBits) cardinality() int {
	if s.b == nil {
		return 0
	}
	return int(s.b.GetCardinality())
}

// bitmap returns the members as SearchTextResult.uid_bitmap (bit u%8 of byte u/8 set for
// member u), written from the roaring containers (a bitmap container's words copied
// whole), up to the byte of the largest member; nil for no member.
func (s uidBits) bitmap() []byte {
	if s.b == nil || s.b.IsEmpty() {
		return nil
	}
	last := s.b.Maximum()
	words := make([]uint64, s.b.DenseSize())
	s.b.WriteDenseTo(words)
	out := make([]byte, len(words)*8)
	for k, w := range words {
		binary.LittleEndian.PutUint64(out[k*8:], w)
	}
	return out[:last/8+1]
}

func (s uidBits) remove(uid uint32) {
	if s.b != nil {
		s.b.Remove(uid)
	}
}

// uids returns the members, ascending.
func (s uidBits) uids() []uint32 {
	if s.b == nil {
		return []uint32{}
	}
	return s.b.ToArray()
}

// and keeps in s only the members of o.
func (s *uidBits) and(o uidBits) {
	switch {
	case s.b == nil:
	case o.b == nil:
		s.b.Clear()
	default:
		s.b.And(o.b)
	}
}
