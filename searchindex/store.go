package searchindex

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-mail/strata/frontend/message/mailtext"
)

// Scope says which search keys read a piece of text (RFC 9051 6.4.4); the values are
// those of metadatapb.SearchScope.
type Scope uint8

const (
	ScopeBody    Scope = iota + 1 // BODY and TEXT: text parts, encapsulated message headers
	ScopeText                     // TEXT only: top-level fields as "Name: value", MIME part headers
	ScopeSubject                  // SUBJECT, HEADER Subject
	ScopeFrom                     // FROM, HEADER From
	ScopeTo                       // TO, HEADER To
	ScopeCc                       // CC, HEADER Cc
	ScopeBcc                      // BCC, HEADER Bcc
	ScopeOther                    // HEADER of any other field
)

// HeaderScope returns the scope of the values of header field name.
func HeaderScope(name string) Scope { return Scope(mailtext.HeaderScope(name)) }

// Index is the word index of one node (doc.go).
type Index struct {
	db *pebble.DB

	// vocab caches the word dictionaries queries read (vocab.go).
	vocab vocabCache

	// commitMu makes batch commits one at a time. A commit skips the dictionary keys of
	// words its prepare found in the mailbox's dictionary (vocab.go); a drop committed
	// between that finding and the write would remove a key the batch then never writes,
	// leaving postings no dictionary word leads to (a SEARCH missing the message; review
	// of idxcut20). The indexer commits one batch at a time anyway, so this costs nothing.
	commitMu sync.Mutex
}

// Open opens (or creates) the index in dir.
func Open(dir string) (*Index, error) {
	// Larger memtables than the default: indexing writes many small keys in bursts, and
	// fewer flushes mean fewer compactions competing with the mail path for the CPU.
	// No WAL: the index is derived data whose mailbox states are committed with the
	// postings they cover, so after a crash it holds a prefix of its batches (those in
	// flushed memtables) and the indexer catches up from the states (doc.go "Durability").
	db, err := pebble.Open(dir, &pebble.Options{MemTableSize: 32 << 20, L0CompactionThreshold: 8, DisableWAL: true, Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	}
	if err := checkLayout(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	}
	return &Index{db: db}, nil
}

// layoutVersion is the version of the key layout (doc.go "Layout"). 2: words only, the
// trigram postings of version 1 (which had no layout key) are gone. 3: the long-word
// postings of ScopeOther, which version 2 never wrote (its batches kept long words of
// scopes up to ScopeBcc only), so a store of version 2 is built again.
const layoutVersion = 3

// layoutKey holds the layout version of the store.
var layoutKey = []byte{kindLayout}

// checkLayout empties a store written with another layout (an older binary's), so that
// the indexer builds it again (every mailbox then has no state: the frontend scans until
// it is indexed, doc.go "Superset"), and records the current version. Without a WAL the
// emptying becomes durable with the first flush; a crash before it leaves the old store,
// emptied again at the next open.
func checkLayout(db *pebble.DB) error {
	v, closer, err := db.Get(layoutKey)
	switch {
	case err == nil:
		version, n := binary.Uvarint(v)
		closer.Close()
		if n > 0 && version == layoutVersion {
			return nil
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	b := db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
		return err
	}
	if err := b.Set(layoutKey, binary.AppendUvarint(nil, layoutVersion), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	return db.Flush()
}

// quietLogger drops Pebble's informational lines (a WAL-less store reports finding no
// WAL at every open) and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

// Close flushes the memtables (there is no WAL to replay them from) and closes the store.
func (x *Index) Close() error {
	ferr := x.db.Flush()
	if err := x.db.Close(); err != nil {
		return err
	}
	return ferr
}

// Flush writes the memtables to disk (for Size; Close flushes too).
func (x *Index) Flush() error { return x.db.Flush() }

// Size returns the bytes the store takes on disk.
func (x *Index) Size() uint64 { return x.db.Metrics().DiskSpaceUsage() }

// key prefixes
const (
	kindLayout  = 'L'
	kindState   = 'm'
	kindDoc     = 'd'
	kindSkipped = 'u'
	kindDead    = 'x'
	kindVocab   = 'v'
	kindWord    = 'w'
	kindLong    = 'l'
)

var allKinds = []byte{kindState, kindDoc, kindSkipped, kindDead, kindVocab, kindWord, kindLong}

// mailboxKey is kind, the account (2-byte length, bytes) and the mailbox id.
func mailboxKey(kind byte, account string, mailbox uint64) []byte {
	k := make([]byte, 0, 1+2+len(account)+8+8)
	k = append(k, kind)
	k = binary.BigEndian.AppendUint16(k, uint16(len(account)))
	k = append(k, account...)
	return binary.BigEndian.AppendUint64(k, mailbox)
}

func accountPrefix(kind byte, account string) []byte {
	k := []byte{kind}
	k = binary.BigEndian.AppendUint16(k, uint16(len(account)))
	return append(k, account...)
}

func uidKey(kind byte, account string, mailbox uint64, uid uint32) []byte {
	return binary.BigEndian.AppendUint32(mailboxKey(kind, account, mailbox), uid)
}

// prefixEnd returns the first key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// MailboxState is what the index holds of one mailbox.
type MailboxState struct {
	UIDValidity uint32
	// LastUID is the highest UID indexed: messages above it are not in the index yet.
	LastUID uint32
	// ModSeq is the HIGHESTMODSEQ the mailbox's expunges are applied up to.
	ModSeq uint64
	// Docs counts the messages indexed, Dead those of them expunged since (tombstones,
	// filtered out of every answer until the mailbox is reindexed).
	Docs, Dead uint32
}

func (s MailboxState) encode() []byte {
	b := binary.BigEndian.AppendUint32(nil, s.UIDValidity)
	b = binary.BigEndian.AppendUint32(b, s.LastUID)
	b = binary.BigEndian.AppendUint64(b, s.ModSeq)
	b = binary.BigEndian.AppendUint32(b, s.Docs)
	return binary.BigEndian.AppendUint32(b, s.Dead)
}

// State returns the state of a mailbox; ok is false when the index holds none (never
// indexed, dropped, or being rebuilt from scratch).
func (x *Index) State(account string, mailbox uint64) (st MailboxState, ok bool, err error) {
	return stateIn(x.db, account, mailbox)
}

// stateIn is State read from r: the index itself, or a snapshot of it whose postings a
// query reads (Candidates, Fuzzy), so that the state and the postings are of one moment.
func stateIn(r pebble.Reader, account string, mailbox uint64) (st MailboxState, ok bool, err error) {
	v, closer, err := r.Get(mailboxKey(kindState, account, mailbox))
	if errors.Is(err, pebble.ErrNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	defer closer.Close()
	if len(v) != 24 {
		return st, false, fmt.Errorf("search index: bad mailbox state of %q %d", account, mailbox)
	}
	return MailboxState{UIDValidity: binary.BigEndian.Uint32(v), LastUID: binary.BigEndian.Uint32(v[4:]), ModSeq: binary.BigEndian.Uint64(v[8:]),
		Docs: binary.BigEndian.Uint32(v[16:]), Dead: binary.BigEndian.Uint32(v[20:])}, true, nil
}

// Batch collects changes to the index, committed together. Postings of the messages
// added to a batch are written as one chunk per word: the key ends with the chunk's first
// UID and the value lists the chunk's UIDs (delta varints), so indexing a batch of
// messages writes about one key per distinct word of the batch rather than one per
// message and word.
type Batch struct {
	x       *Index
	b       *pebble.Batch
	pending map[mailboxRef]*pendingPostings
	// dropped lists the vocab stripes of the mailboxes the batch drops (every stripe for
	// an account): their cached dictionaries must not be trusted or merged (Commit).
	dropped []int
}

// pendingPostings are the postings a batch adds to one mailbox.
type pendingPostings struct {
	// words are the distinct words (scope byte first) and their UIDs, slot holds the index
	// of each in words. A doc's word remembers its slot (seenWord.batch, slot), so a word
	// the doc gave this batch before costs Add no map lookup.
	words []wordPostings
	slot  map[string]int32
	id    uint64                   // tells this batch's slots from others' (seenWord.batch)
	long  [ScopeOther + 1][]uint32 // every scope: a long word in HEADER of another field (a Message-ID) too
	// inOrder says words are sorted by word (sorted, at the commit): slot and the slots
	// the docs' words keep no longer say where a word is.
	inOrder bool
}

// pendingIDs numbers the pendingPostings of every batch, from 1 (seenWord.batch).
var pendingIDs atomic.Uint64

// wordPostings is a word of a batch (scope byte first) and the UIDs holding it.
type wordPostings struct {
	word string
	uids []uint32
}

// sorted returns p's words and their UIDs in word order: by scope, then in the order of
// their dictionary and posting keys.
func (p *pendingPostings) sorted() []wordPostings {
	if !p.inOrder {
		slices.SortFunc(p.words, func(a, b wordPostings) int { return strings.Compare(a.word, b.word) })
		p.inOrder = true
	}
	return p.words
}

// NewBatch starts a batch.
func (x *Index) NewBatch() *Batch { return &Batch{x: x, b: x.db.NewBatch()} }

// appendChunk encodes ascending uids as delta varints.
func appendChunk(chunk []byte, uids []uint32) []byte {
	prev := uint32(0)
	for _, uid := range uids {
		chunk = binary.AppendUvarint(chunk, uint64(uid-prev))
		prev = uid
	}
	return chunk
}

// Commit writes the batch (without fsync, and without a WAL: the index is derived data,
// and a lost tail is caught up from the change feed since the state committed with it,
// doc.go "Durability"). A word's dictionary key is written only when the mailbox's
// dictionary of its scope may not hold it: where the dictionary is known (vocab.go
// prepare), only the words it lacks are written.
func (b *Batch) Commit() error {
	b.x.commitMu.Lock()
	defer b.x.commitMu.Unlock()
	defer b.b.Close()
	// The cached dictionaries of the mailboxes this batch adds words to or drops are stale
	// from now until the commit is over, when the words are merged in (vocab.go).
	stripes := b.dropped
	for ref, p := range b.pending {
		if len(p.words) > 0 {
			stripes = append(stripes, stripeOf(ref.account, ref.mailbox))
		}
	}
	started := b.x.vocab.commitStarting(stripes)
	var merges []vocabMerge
	if b.dropped == nil {
		var err error
		if merges, err = b.x.vocab.prepare(started, b.pending, b.x.loadDictionary); err != nil {
			b.x.vocab.commitDone(started, nil)
			return err
		}
	}
	fresh := make(map[vocabKey][][]byte, len(merges))
	for _, m := range merges {
		fresh[m.key] = m.fresh
	}
	err := b.writePostings(fresh)
	if err == nil {
		err = b.b.Commit(pebble.NoSync)
	}
	if err != nil {
		// What the batch wrote is unknown: its stripes' entries stay stale.
		merges = nil
	}
	b.x.vocab.commitDone(started, merges)
	return err
}

// writePostings sets the batch's dictionary keys and posting chunks: in a scope whose
// dictionary is known (fresh holds the words it lacked, vocab.go prepare) the keys of
// the words it lacked, in any other scope those of every word of the batch.
//
// Each mailbox's dictionary keys and then its posting keys are set in key order (the
// words sorted once, pendingPostings.sorted), not in the order of a map: Pebble inserts
// a batch's keys into its memtable's skiplist one after the other, and a key that
// follows the one before is found from where that one went (arenaskl.Inserter's splice)
// rather than searched for from the top of a list of millions of keys, with the nodes
// the last search touched still in the CPU's cache. The keys and values are the same
// whatever their order in the batch (each is set once; TestIndexGolden).
func (b *Batch) writePostings(fresh map[vocabKey][][]byte) error {
	refs := slices.SortedFunc(maps.Keys(b.pending), func(a, b mailboxRef) int {
		return cmp.Or(strings.Compare(a.account, b.account), cmp.Compare(a.mailbox, b.mailbox))
	})
	var key, chunk []byte
	for _, ref := range refs {
		p := b.pending[ref]
		words := p.sorted()
		vocab := mailboxKey(kindVocab, ref.account, ref.mailbox)
		for i := 0; i < len(words); {
			// words[i:j] are those of one scope (the scope byte leads each word).
			s := words[i].word[0]
			j := i + 1
			for j < len(words) && words[j].word[0] == s {
				j++
			}
			if lacked, known := fresh[vocabKey{ref.account, ref.mailbox, Scope(s)}]; known {
				for _, w := range lacked {
					key = append(append(append(key[:0], vocab...), s), w...)
					if err := b.b.Set(key, nil, nil); err != nil {
						return err
					}
				}
			} else {
				for _, w := range words[i:j] {
					key = append(append(key[:0], vocab...), w.word...)
					if err := b.b.Set(key, nil, nil); err != nil {
						return err
					}
				}
			}
			i = j
		}
		wbase := mailboxKey(kindWord, ref.account, ref.mailbox)
		for _, w := range words {
			key = binary.BigEndian.AppendUint32(append(append(append(key[:0], wbase...), w.word...), 0), w.uids[0])
			chunk = appendChunk(chunk[:0], w.uids)
			if err := b.b.Set(key, chunk, nil); err != nil {
				return err
			}
		}
		for s, uids := range p.long {
			if len(uids) == 0 {
				continue
			}
			key = binary.BigEndian.AppendUint32(append(mailboxKey(kindLong, ref.account, ref.mailbox), byte(s)), uids[0])
			if err := b.b.Set(key, appendChunk(nil, uids), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadDictionary reads the dictionary of k from the store (vocabEntry form); ok is false
// when it has more than maxVocabScan words.
func (x *Index) loadDictionary(k vocabKey) (dict []byte, n int, ok bool, err error) {
	vocab := append(mailboxKey(kindVocab, k.account, k.mailbox), byte(k.scope))
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: vocab, UpperBound: prefixEnd(vocab)})
	if err != nil {
		return nil, 0, false, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if n++; n > maxVocabScan {
			return nil, 0, false, nil
		}
		dict = append(append(dict, it.Key()[len(vocab):]...), 0)
	}
	return dict, n, true, it.Error()
}

// SetState records a mailbox's state.
func (b *Batch) SetState(account string, mailbox uint64, st MailboxState) error {
	return b.b.Set(mailboxKey(kindState, account, mailbox), st.encode(), nil)
}

// Add indexes message uid with the postings of d. The messages added to one mailbox must
// come in ascending UID order, above every UID indexed before. Add notes in d's words
// where their UIDs went (seenWord.slot): like extracting into d, it must not run while
// another goroutine uses d.
func (b *Batch) Add(account string, mailbox uint64, uid uint32, d *Doc) error {
	if b.pending == nil {
		b.pending = map[mailboxRef]*pendingPostings{}
	}
	ref := mailboxRef{account, mailbox}
	p := b.pending[ref]
	if p == nil {
		p = &pendingPostings{slot: map[string]int32{}, id: pendingIDs.Add(1)}
		b.pending[ref] = p
	}
	if p.inOrder {
		// Sorted since the last Add (never, from a Commit, which ends the batch): the slots
		// are made again, under a new id that no doc's word holds.
		p.id, p.inOrder = pendingIDs.Add(1), false
		for i, w := range p.words {
			p.slot[w.word] = int32(i)
		}
	}
	for _, w := range d.words {
		if w.batch != p.id {
			slot, ok := p.slot[w.key]
			if !ok {
				slot = int32(len(p.words))
				p.words = append(p.words, wordPostings{word: w.key})
				p.slot[w.key] = slot
			}
			w.batch, w.slot = p.id, slot
		}
		p.words[w.slot].uids = append(p.words[w.slot].uids, uid)
	}
	for s := range p.long {
		if d.long&(1<<s) != 0 {
			p.long[s] = append(p.long[s], uid)
		}
	}
	return b.b.Set(uidKey(kindDoc, account, mailbox, uid), nil, nil)
}

// Skip records that message uid could not be indexed: it is always a candidate.
func (b *Batch) Skip(account string, mailbox uint64, uid uint32) error {
	return b.b.Set(uidKey(kindSkipped, account, mailbox, uid), nil, nil)
}

// Remove records that message uid was expunged: a tombstone that answers filter out
// (its postings stay until the mailbox is reindexed, Indexer.sync).
func (b *Batch) Remove(account string, mailbox uint64, uid uint32) error {
	if err := b.b.Delete(uidKey(kindSkipped, account, mailbox, uid), nil); err != nil {
		return err
	}
	if err := b.b.Delete(uidKey(kindDoc, account, mailbox, uid), nil); err != nil {
		return err
	}
	return b.b.Set(uidKey(kindDead, account, mailbox, uid), nil, nil)
}

// DropMailbox removes everything the index holds of a mailbox.
func (b *Batch) DropMailbox(account string, mailbox uint64) error {
	b.dropped = append(b.dropped, stripeOf(account, mailbox))
	for _, kind := range allKinds {
		p := mailboxKey(kind, account, mailbox)
		if err := b.b.DeleteRange(p, prefixEnd(p), nil); err != nil {
			return err
		}
	}
	return nil
}

// DropAccount removes everything the index holds of an account.
func (b *Batch) DropAccount(account string) error {
	for s := range vocabStripes {
		b.dropped = append(b.dropped, s)
	}
	for _, kind := range allKinds {
		p := accountPrefix(kind, account)
		if err := b.b.DeleteRange(p, prefixEnd(p), nil); err != nil {
			return err
		}
	}
	return nil
}

// Mailboxes returns the ids of the mailboxes of account the index holds a state for.
func (x *Index) Mailboxes(account string) ([]uint64, error) {
	p := accountPrefix(kindState, account)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ids []uint64
	for it.First(); it.Valid(); it.Next() {
		if k := it.Key(); len(k) == len(p)+8 {
			ids = append(ids, binary.BigEndian.Uint64(k[len(p):]))
		}
	}
	return ids, it.Error()
}

// ErrNotIndexed says the index holds no state of the mailbox: the caller scans.
var ErrNotIndexed = errors.New("search index: mailbox not indexed")

// checkEvery is how many postings a query reads between looks at its context.
const checkEvery = 4096

// Query is one text criterion: the folded needle and the scopes whose text it reads (a
// message matches when it holds the needle in any of them).
type Query struct {
	Needle string
	Scopes []Scope
}

// Result holds the candidates of a query.
type Result struct {
	// UIDs are the candidates at or below LastUID, ascending; every UID above LastUID is a
	// candidate too.
	UIDs    []uint32
	LastUID uint32
	// Scores are, for a fuzzy query, each candidate's share of the needle's in-word
	// trigrams in percent (1 to 100), parallel to UIDs.
	Scores []uint32
	// Exact says the UIDs not in Verify hold the needle for certain (the word dictionary
	// proved it, doc.go "Exact answers"); Verify, a subset of UIDs, are candidates only
	// (for a fuzzy query: listed with 100, they match only if they hold the needle).
	Exact  bool
	Verify []uint32
	// set holds the candidates instead of UIDs for the service (candidates): a set of
	// most of a mailbox goes to SearchTextResult.uid_bitmap from its containers, never
	// as a list.
	set uidBits
}

// Indexable reports whether the index can narrow a search for needle (folded): it needs
// a byte other than a word separator (mailtext.IsWordSeparator), which some word must
// hold.
func Indexable(needle string) bool {
	for i := 0; i < len(needle); i++ {
		if !mailtext.IsWordSeparator(needle[i]) {
			return true
		}
	}
	return false
}

// Candidates returns the messages of a mailbox that may hold q's needle: a superset of
// those that do (doc.go), exact when every scope is Exact for the needle. ErrNotIndexed
// when the mailbox has no state; the needle must be Indexable.
func (x *Index) Candidates(ctx context.Context, account string, mailbox uint64, q Query) (*Result, error) {
	res, err := x.candidates(ctx, account, mailbox, q)
	if err == nil && res.UIDs == nil {
		res.UIDs, res.set = res.set.uids(), uidBits{}
	}
	return res, err
}

// candidates is Candidates, its exact answer in Result.set rather than UIDs.
func (x *Index) candidates(ctx context.Context, account string, mailbox uint64, q Query) (*Result, error) {
	r, st, err := x.read(ctx, account, mailbox, q.Needle)
	if err != nil {
		return nil, err
	}
	defer r.snap.Close()
	exact := len(q.Scopes) > 0
	for _, s := range q.Scopes {
		exact = exact && Exact(q.Needle, s)
	}
	if exact {
		res, ok, err := r.exact(q)
		if err != nil {
			return nil, err
		}
		if ok {
			res.LastUID = st.LastUID
			return res, nil
		}
	}
	var cand []uint32
	for _, s := range q.Scopes {
		uids, err := r.wordCandidates(q.Needle, s)
		if err != nil {
			return nil, err
		}
		cand = merge(cand, uids)
	}
	skipped, err := r.skipped()
	if err != nil {
		return nil, err
	}
	return &Result{UIDs: merge(cand, skipped), LastUID: st.LastUID}, nil
}

// read returns a reader of a snapshot of the index (the caller closes r.snap) and the
// mailbox's state in it, for a query of needle, which must be Indexable; ErrNotIndexed
// when the mailbox has no state. The reader may use the cached dictionaries only if no
// commit adding words to the mailbox started around the snapshot (vocab.go).
func (x *Index) read(ctx context.Context, account string, mailbox uint64, needle string) (r *reader, st MailboxState, err error) {
	if !Indexable(needle) {
		return nil, st, fmt.Errorf("search index: needle %q holds no word", needle)
	}
	stripe := stripeOf(account, mailbox)
	gen, quiet := x.vocab.stamp(stripe)
	// The state from the snapshot the postings are read from: a mailbox dropped (and
	// being indexed again) in between would otherwise answer its old LastUID with no
	// postings, every message up to it a non-match (found in review).
	snap := x.db.NewSnapshot()
	if again, ok := x.vocab.stamp(stripe); !ok || again != gen {
		quiet = false
	}
	r = &reader{ctx: ctx, snap: snap, account: account, mailbox: mailbox}
	if quiet {
		r.vocab, r.vocabGen = &x.vocab, gen
	}
	st, ok, err := stateIn(snap, account, mailbox)
	if err == nil && !ok {
		err = ErrNotIndexed
	}
	if err == nil {
		err = r.loadDead()
	}
	if err != nil {
		snap.Close()
		return nil, st, err
	}
	return r, st, nil
}

// wordPieces splits a folded needle at its separator bytes: "ello wor" is "ello", "wor".
// In a text holding the needle, the first piece ends a word (or is empty), each middle
// piece is a whole word (or empty: two separators in a row), and the last begins a word
// (or is empty); a needle without separators is one piece, inside a word.
func wordPieces(needle string) []string {
	var pieces []string
	start := 0
	for i := 0; i < len(needle); i++ {
		if mailtext.IsWordSeparator(needle[i]) {
			pieces = append(pieces, needle[start:i])
			start = i + 1
		}
	}
	return append(pieces, needle[start:])
}

// wordCandidates returns the messages that may hold needle in scope s, from the word
// dictionary (doc.go "Candidates from words"): those holding, for every non-empty piece
// of the needle (wordPieces), a word the piece may lie in at its place, plus those with
// a word longer than MaxWord in the scope. Every message when the dictionary is larger
// than maxVocabScan.
func (r *reader) wordCandidates(needle string, s Scope) ([]uint32, error) {
	pieces := wordPieces(needle)
	last := len(pieces) - 1
	// The pieces as bytes once, not converted again for every word of the dictionary.
	bp := make([][]byte, len(pieces))
	for k, p := range pieces {
		bp[k] = []byte(p)
	}
	match := func(k int, w []byte) bool {
		p := bp[k]
		switch {
		case len(p) == 0:
			return false
		case last == 0:
			return bytes.Contains(w, p)
		case k == 0:
			return bytes.HasSuffix(w, p)
		case k == last:
			return bytes.HasPrefix(w, p)
		default:
			return bytes.Equal(w, p)
		}
	}
	// One bit set per piece: the union of the postings of its words.
	sets := make([]uidBits, len(pieces))
	var holding []byte
	if last == 0 {
		holding = []byte(needle)
	}
	ok, err := r.eachWord(s, holding, func(w []byte) bool {
		for k := range pieces {
			if match(k, w) {
				return true
			}
		}
		return false
	}, func(w, chunk []byte) error {
		for k := range pieces {
			if match(k, w) {
				if err := r.addChunk(&sets[k], chunk); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return r.uids(mailboxKey(kindDoc, r.account, r.mailbox))
	}
	var cand uidBits
	first := true
	for k, p := range pieces {
		if p == "" {
			continue
		}
		if first {
			cand, first = sets[k], false
		} else {
			cand.and(sets[k])
		}
	}
	for uid := range r.dead {
		cand.remove(uid)
	}
	long, err := r.chunks(append(mailboxKey(kindLong, r.account, r.mailbox), byte(s)), nil)
	if err != nil {
		return nil, err
	}
	return merge(cand.uids(), long), nil
}

// eachWord reads the word dictionary of scope s (the cached one when it may serve,
// reader.dictionary): fn gets the posting chunks (reader.addChunk, appendChunk) of every
// word that holds holding (every word when it is empty) and that want accepts, in key
// order. ok is false when the dictionary holds more than maxVocabScan words (nothing is
// read then).
func (r *reader) eachWord(s Scope, holding []byte, want func(w []byte) bool, fn func(w, chunk []byte) error) (ok bool, err error) {
	dict, ok, err := r.dictionary(s)
	if err != nil || !ok {
		return false, err
	}
	words := append(mailboxKey(kindWord, r.account, r.mailbox), byte(s))
	// One iterator over the scope's word postings, sought word by word, in key order: a
	// new iterator per word costs more than the postings of a rare word.
	wit, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: words, UpperBound: prefixEnd(words)})
	if err != nil {
		return false, err
	}
	var p []byte
	// One bytes.Index pass over the dictionary finds the words holding the needle.
	forEachHolding(dict, holding, func(w []byte) bool {
		if !want(w) {
			return true
		}
		p = append(append(append(p[:0], words...), w...), 0)
		for ok := wit.SeekGE(p); ok && bytes.HasPrefix(wit.Key(), p); ok = wit.Next() {
			if err = fn(w, wit.Value()); err != nil {
				return false
			}
		}
		return true
	})
	if err == nil {
		err = wit.Error()
	}
	if cerr := wit.Close(); err == nil {
		err = cerr
	}
	return err == nil, err
}

// maxFuzzyGrams is how many distinct trigrams of a needle Fuzzy scores by (one bit each).
const maxFuzzyGrams = 64

// fuzzyGrams returns the distinct trigrams of needle that hold no word separator, at most
// maxFuzzyGrams: those a message holding the needle holds inside its words.
func fuzzyGrams(needle string) map[string]uint64 {
	grams := map[string]uint64{}
	for i := 0; i+3 <= len(needle) && len(grams) < maxFuzzyGrams; i++ {
		t := needle[i : i+3]
		if _, dup := grams[t]; !dup && mailtext.InOneWord(t) {
			grams[t] = 1 << len(grams)
		}
	}
	return grams
}

// Fuzzy returns the messages of a mailbox whose words in one of q's scopes hold at least
// two thirds of the trigrams of q's needle that lie inside its words (fuzzyGrams), with
// their share of them as a relevancy score in percent (RFC 6203 4: 1 to 100, higher is
// better); a message holding the needle holds them all (100). The messages the
// dictionary cannot speak for (a word longer than MaxWord in the scope, not indexed) are
// listed with 100 and in Verify (they match only if they hold the needle), and so are the
// word candidates of a needle without such a trigram ("a b").
func (x *Index) Fuzzy(ctx context.Context, account string, mailbox uint64, q Query) (*Result, error) {
	r, st, err := x.read(ctx, account, mailbox, q.Needle)
	if err != nil {
		return nil, err
	}
	defer r.snap.Close()
	grams := fuzzyGrams(q.Needle)
	best := map[uint32]int{}
	var sure []uint32 // listed with 100 unless they score
	for _, s := range q.Scopes {
		if len(grams) == 0 {
			cand, err := r.wordCandidates(q.Needle, s)
			if err != nil {
				return nil, err
			}
			sure = merge(sure, cand)
			continue
		}
		hits := map[uint32]uint64{}
		var uids []uint32
		ok, err := r.eachWord(s, nil, func(w []byte) bool { return wordGrams(w, grams) != 0 }, func(w, chunk []byte) error {
			m := wordGrams(w, grams)
			var err error
			if uids, err = r.appendChunk(uids[:0], chunk); err != nil {
				return err
			}
			for _, uid := range uids {
				hits[uid] |= m
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrNotIndexed
		}
		for uid, m := range hits {
			best[uid] = max(best[uid], bits.OnesCount64(m))
		}
		long, err := r.chunks(append(mailboxKey(kindLong, r.account, r.mailbox), byte(s)), nil)
		if err != nil {
			return nil, err
		}
		sure = merge(sure, long)
	}
	skipped, err := r.skipped()
	if err != nil {
		return nil, err
	}
	sure = merge(sure, skipped)
	res := &Result{LastUID: st.LastUID}
	need := (2*len(grams) + 2) / 3
	for uid, n := range best {
		if n >= need {
			res.UIDs = append(res.UIDs, uid)
		}
	}
	slices.Sort(res.UIDs)
	res.UIDs = merge(res.UIDs, sure)
	for _, uid := range res.UIDs {
		score := uint32(100)
		if n := best[uid]; n >= need && len(grams) > 0 {
			score = uint32(max(1, 100*n/len(grams)))
		} else {
			res.Verify = append(res.Verify, uid)
		}
		res.Scores = append(res.Scores, score)
	}
	return res, nil
}

// wordGrams returns the bits (fuzzyGrams) of the needle's trigrams that word w holds.
func wordGrams(w []byte, grams map[string]uint64) uint64 {
	var m uint64
	for i := 0; i+3 <= len(w); i++ {
		m |= grams[string(w[i:i+3])]
	}
	return m
}

// reader reads postings from one snapshot.
type reader struct {
	ctx     context.Context
	snap    *pebble.Snapshot
	account string
	mailbox uint64
	seen    int
	dead    map[uint32]bool
	// vocab, when set, may serve and keep the dictionaries of this snapshot: they were
	// read at generation vocabGen of the mailbox's stripe (vocab.go).
	vocab    *vocabCache
	vocabGen uint64
	chunkBuf []uint32 // addChunk's decoded UIDs, reused from chunk to chunk
}

func (r *reader) tick() error {
	r.seen++
	if r.seen%checkEvery == 0 {
		return r.ctx.Err()
	}
	return nil
}

// loadDead reads the mailbox's tombstones.
func (r *reader) loadDead() error {
	dead, err := r.uids(mailboxKey(kindDead, r.account, r.mailbox))
	if err != nil {
		return err
	}
	r.dead = make(map[uint32]bool, len(dead))
	for _, uid := range dead {
		r.dead[uid] = true
	}
	return nil
}

// maxVocabScan bounds the dictionary words one query reads; a mailbox with more answers
// every message as a candidate (verified by the caller).
const maxVocabScan = 8 << 20

// exact answers q, whose every scope is Exact for its needle, from the word dictionary:
// the union of the postings of the words holding the needle (exact matches), plus the
// messages with a word longer than MaxWord in a scope and those not indexed (Verify). ok
// is false when the dictionary is too large to read (maxVocabScan). The union is a
// roaring bitmap (uidBits): about a bit per message for a common word, where merging
// sorted lists cost a sort of every posting of its variants, and memory in step with the
// postings for sparse UIDs.
func (r *reader) exact(q Query) (res *Result, ok bool, err error) {
	needle := []byte(q.Needle)
	var set uidBits
	var verify []uint32
	for _, s := range q.Scopes {
		ok, err := r.eachWord(s, needle, func([]byte) bool { return true }, func(_, chunk []byte) error {
			return r.addChunk(&set, chunk)
		})
		if err != nil || !ok {
			return nil, false, err
		}
		if verify, err = r.chunks(append(mailboxKey(kindLong, r.account, r.mailbox), byte(s)), verify); err != nil {
			return nil, false, err
		}
	}
	skipped, err := r.skipped()
	if err != nil {
		return nil, false, err
	}
	slices.Sort(verify)
	verify = merge(slices.Compact(verify), skipped)
	for uid := range r.dead {
		set.remove(uid)
	}
	for _, uid := range verify {
		set.add(uid)
	}
	return &Result{Exact: true, Verify: verify, set: set}, true, nil
}

// dictionary returns the words of scope s, each followed by a NUL (vocabEntry), from the
// cache when it may serve this reader's snapshot; ok is false when the scope has more
// than maxVocabScan words.
func (r *reader) dictionary(s Scope) (dict []byte, ok bool, err error) {
	key := vocabKey{r.account, r.mailbox, s}
	if r.vocab != nil {
		if dict := r.vocab.get(key, r.vocabGen); dict != nil {
			return dict, true, nil
		}
	}
	vocab := append(mailboxKey(kindVocab, r.account, r.mailbox), byte(s))
	it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: vocab, UpperBound: prefixEnd(vocab)})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n > maxVocabScan {
			return nil, false, nil
		}
		if n%checkEvery == 0 {
			if err := r.ctx.Err(); err != nil {
				return nil, false, err
			}
		}
		dict = append(append(dict, it.Key()[len(vocab):]...), 0)
	}
	if err := it.Error(); err != nil {
		return nil, false, err
	}
	if r.vocab != nil {
		r.vocab.put(key, r.vocabGen, dict, n)
	}
	return dict, true, nil
}

// addChunk adds the UIDs of a posting chunk to set (the expunged ones too: the caller
// removes them).
func (r *reader) addChunk(set *uidBits, chunk []byte) error {
	if err := r.tick(); err != nil {
		return err
	}
	// Decoded into a buffer and added at once: roaring's AddMany finds a container once
	// for a run of UIDs in it, where Add looks it up for each.
	buf := r.chunkBuf[:0]
	uid := uint32(0)
	for len(chunk) > 0 {
		delta, n := binary.Uvarint(chunk)
		if n <= 0 {
			return fmt.Errorf("search index: bad posting chunk of %q %d", r.account, r.mailbox)
		}
		chunk = chunk[n:]
		uid += uint32(delta)
		buf = append(buf, uid)
	}
	set.addMany(buf)
	r.chunkBuf = buf
	return nil
}

// chunks appends the live UIDs of the posting chunks under prefix p to out.
func (r *reader) chunks(p []byte, out []uint32) ([]uint32, error) {
	it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if out, err = r.appendChunk(out, it.Value()); err != nil {
			return nil, err
		}
	}
	return out, it.Error()
}

// appendChunk appends the live UIDs of a posting chunk to out.
func (r *reader) appendChunk(out []uint32, chunk []byte) ([]uint32, error) {
	uid := uint32(0)
	for len(chunk) > 0 {
		if err := r.tick(); err != nil {
			return nil, err
		}
		delta, n := binary.Uvarint(chunk)
		if n <= 0 {
			return nil, fmt.Errorf("search index: bad posting chunk of %q %d", r.account, r.mailbox)
		}
		chunk = chunk[n:]
		uid += uint32(delta)
		if len(r.dead) == 0 || !r.dead[uid] {
			out = append(out, uid)
		}
	}
	return out, nil
}

func (r *reader) skipped() ([]uint32, error) {
	return r.uids(mailboxKey(kindSkipped, r.account, r.mailbox))
}

// uids returns the UIDs that end the keys under prefix p.
func (r *reader) uids(p []byte) ([]uint32, error) {
	it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []uint32
	for it.First(); it.Valid(); it.Next() {
		if err := r.tick(); err != nil {
			return nil, err
		}
		if k := it.Key(); len(k) == len(p)+4 {
			out = append(out, binary.BigEndian.Uint32(k[len(p):]))
		}
	}
	return out, it.Error()
}

// merge returns the UIDs in either ascending list, ascending.
func merge(a, b []uint32) []uint32 {
	out := make([]uint32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// docs returns the UIDs of a mailbox the index holds docs or skip marks of, ascending.
func (x *Index) docs(account string, mailbox uint64) ([]uint32, error) {
	snap := x.db.NewSnapshot()
	defer snap.Close()
	r := &reader{ctx: context.Background(), snap: snap, account: account, mailbox: mailbox}
	held, err := r.uids(mailboxKey(kindDoc, account, mailbox))
	if err != nil {
		return nil, err
	}
	skipped, err := r.skipped()
	if err != nil {
		return nil, err
	}
	return merge(held, skipped), nil
}

// Accounts returns the accounts the index holds a mailbox state of.
func (x *Index) Accounts() ([]string, error) {
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindState}, UpperBound: []byte{kindState + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < 3 || len(k) < 3+int(binary.BigEndian.Uint16(k[1:])) {
			return nil, fmt.Errorf("search index: bad state key %q", k)
		}
		account := string(k[3 : 3+int(binary.BigEndian.Uint16(k[1:]))])
		out = append(out, account)
		ok = it.SeekGE(prefixEnd(accountPrefix(kindState, account)))
	}
	return out, it.Error()
}
