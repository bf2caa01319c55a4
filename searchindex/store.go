package searchindex

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

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

// Index is the trigram index of one node (doc.go).
type Index struct {
	db *pebble.DB

	// spare holds posting blocks of committed batches for the next ones (at most
	// keptBlocks): a batch's postings take megabytes, and fresh memory for them every
	// batch cost more in page faults and zeroing than filling it.
	mu    sync.Mutex
	spare [][]uint64

	// vocab caches the word dictionaries queries read (vocab.go).
	vocab vocabCache
}

// postingBlock is the size of the blocks a batch's postings are kept in (512 KiB), and
// keptBlocks how many an Index keeps between batches (32 MiB).
const (
	postingBlock = 1 << 16
	keptBlocks   = 64
)

// block returns an empty posting block, a spare one when there is one.
func (x *Index) block() []uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if n := len(x.spare); n > 0 {
		b := x.spare[n-1]
		x.spare = x.spare[:n-1]
		return b[:0]
	}
	return make([]uint64, 0, postingBlock)
}

// release keeps blocks for later batches, up to keptBlocks.
func (x *Index) release(blocks [][]uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, b := range blocks {
		if len(x.spare) < keptBlocks {
			x.spare = append(x.spare, b)
		}
	}
}

// postingList is a list of postings (gram<<32 | uid) in blocks of postingBlock: growing it
// never copies what it holds.
type postingList struct {
	blocks [][]uint64
	n      int
}

func (l *postingList) add(x *Index, v uint64) {
	if l.n%postingBlock == 0 {
		l.blocks = append(l.blocks, x.block())
	}
	last := &l.blocks[len(l.blocks)-1]
	*last = append(*last, v)
	l.n++
}

func (l *postingList) at(i int) uint64 { return l.blocks[i/postingBlock][i%postingBlock] }

func (l *postingList) set(i int, v uint64) { l.blocks[i/postingBlock][i%postingBlock] = v }

// sortByGram sorts l by gram, stably (the UIDs of a gram stay ascending): a
// least-significant-digit radix sort on the gram's two 16-bit halves, linear in the
// postings where a comparison sort of millions of them cost more than building them. It
// scatters through a second list of blocks, which it releases to x.
func (l *postingList) sortByGram(x *Index) {
	if l.n <= postingBlock {
		if l.n > 0 {
			slices.Sort(l.blocks[0]) // gram then uid: the same order
		}
		return
	}
	tmp := postingList{}
	for range l.blocks {
		b := x.block()
		tmp.blocks = append(tmp.blocks, b[:cap(b)])
	}
	tmp.n = l.n
	src, dst := l, &tmp
	var count [1 << 16]int
	for _, shift := range [2]uint{32, 48} {
		clear(count[:])
		for j, b := range src.blocks {
			for _, v := range b[:min(postingBlock, src.n-j*postingBlock)] {
				count[uint16(v>>shift)]++
			}
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for i := range src.n {
			v := src.at(i)
			d := uint16(v >> shift)
			dst.set(count[d], v)
			count[d]++
		}
		src, dst = dst, src
	}
	// Two passes: the sorted postings are back in l.
	x.release(tmp.blocks)
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
	return &Index{db: db}, nil
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
	kindState   = 'm'
	kindPosting = 'p'
	kindDoc     = 'd'
	kindSkipped = 'u'
	kindDead    = 'x'
	kindVocab   = 'v'
	kindWord    = 'w'
	kindLong    = 'l'
)

var allKinds = []byte{kindState, kindPosting, kindDoc, kindSkipped, kindDead, kindVocab, kindWord, kindLong}

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

// gram packs a scope and a trigram into one posting suffix.
type gram uint32

func makeGram(s Scope, t []byte) gram {
	return gram(uint32(s)<<24 | uint32(t[0])<<16 | uint32(t[1])<<8 | uint32(t[2]))
}

func postingPrefix(account string, mailbox uint64, g gram) []byte {
	return binary.BigEndian.AppendUint32(mailboxKey(kindPosting, account, mailbox), uint32(g))
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
// added to a batch are written as one chunk per trigram and per word: the key ends with
// the chunk's first UID and the value lists the chunk's UIDs (delta varints), so indexing
// a batch of messages writes about one key per distinct trigram and word of the batch
// rather than one per message and trigram.
type Batch struct {
	x       *Index
	b       *pebble.Batch
	pending map[mailboxRef]*pendingPostings
}

// pendingPostings are the postings a batch adds to one mailbox.
type pendingPostings struct {
	// grams holds one gram<<32 | uid per distinct trigram of each message, in the order
	// added (ascending UIDs); Commit sorts them by trigram, keeping that order. A flat
	// list costs an append per posting where a map of lists cost a lookup and a growing
	// list (a third of the indexer's CPU in the profile of docs/benchmarks.md "Search
	// index on by default").
	grams postingList
	words map[string][]uint32 // scope byte + word
	long  [ScopeBcc + 1][]uint32
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
// doc.go "Durability").
func (b *Batch) Commit() error {
	defer b.b.Close()
	var key, chunk []byte
	var uids []uint32
	for ref, p := range b.pending {
		base := mailboxKey(kindPosting, ref.account, ref.mailbox)
		// Sorted keys: the memtable's inserts find their place faster in key order.
		p.grams.sortByGram(b.x)
		defer b.x.release(p.grams.blocks)
		for i := 0; i < p.grams.n; {
			g := p.grams.at(i) >> 32
			uids = uids[:0]
			for ; i < p.grams.n && p.grams.at(i)>>32 == g; i++ {
				uids = append(uids, uint32(p.grams.at(i)))
			}
			key = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(append(key[:0], base...), uint32(g)), uids[0])
			chunk = appendChunk(chunk[:0], uids)
			if err := b.b.Set(key, chunk, nil); err != nil {
				return err
			}
		}
		vocab := mailboxKey(kindVocab, ref.account, ref.mailbox)
		wbase := mailboxKey(kindWord, ref.account, ref.mailbox)
		for w, uids := range p.words {
			key = append(append(key[:0], vocab...), w...)
			if err := b.b.Set(key, nil, nil); err != nil {
				return err
			}
			key = binary.BigEndian.AppendUint32(append(append(append(key[:0], wbase...), w...), 0), uids[0])
			chunk = appendChunk(chunk[:0], uids)
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
	// The cached dictionaries of the mailboxes this batch adds words to are stale from
	// now until the commit is over (vocab.go).
	var stripes []int
	for ref, p := range b.pending {
		if len(p.words) > 0 {
			stripes = append(stripes, stripeOf(ref.account, ref.mailbox))
		}
	}
	b.x.vocab.commitStarting(stripes)
	defer b.x.vocab.commitDone(stripes)
	return b.b.Commit(pebble.NoSync)
}

// SetState records a mailbox's state.
func (b *Batch) SetState(account string, mailbox uint64, st MailboxState) error {
	return b.b.Set(mailboxKey(kindState, account, mailbox), st.encode(), nil)
}

// Add indexes message uid with the postings of d. The messages added to one mailbox must
// come in ascending UID order, above every UID indexed before.
func (b *Batch) Add(account string, mailbox uint64, uid uint32, d *Doc) error {
	if b.pending == nil {
		b.pending = map[mailboxRef]*pendingPostings{}
	}
	ref := mailboxRef{account, mailbox}
	p := b.pending[ref]
	if p == nil {
		p = &pendingPostings{words: map[string][]uint32{}}
		b.pending[ref] = p
	}
	for _, g := range d.grams.list {
		p.grams.add(b.x, uint64(g)<<32|uint64(uid))
	}
	for w := range d.words {
		p.words[w] = append(p.words[w], uid)
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
	// Scores are, for a fuzzy query, each candidate's share of the needle's trigrams in
	// percent (1 to 100), parallel to UIDs.
	Scores []uint32
	// Exact says the UIDs not in Verify hold the needle for certain (the word dictionary
	// proved it, doc.go "Exact answers"); Verify, a subset of UIDs, are candidates only.
	Exact  bool
	Verify []uint32
}

// trigrams returns the distinct trigrams of needle.
func trigrams(needle string) [][]byte {
	var out [][]byte
	seen := map[string]bool{}
	for i := 0; i+3 <= len(needle); i++ {
		t := needle[i : i+3]
		if !seen[t] {
			seen[t] = true
			out = append(out, []byte(t))
		}
	}
	return out
}

// Indexable reports whether the index can narrow a search for needle (folded): it needs
// one trigram.
func Indexable(needle string) bool { return len(needle) >= 3 }

// Candidates returns the messages of a mailbox that may hold q's needle: a superset of
// those that do (doc.go). ErrNotIndexed when the mailbox has no state; the needle must be
// Indexable unless it is Exact in every scope of q.
func (x *Index) Candidates(ctx context.Context, account string, mailbox uint64, q Query) (*Result, error) {
	exact := len(q.Scopes) > 0
	for _, s := range q.Scopes {
		exact = exact && Exact(q.Needle, s)
	}
	if !exact && !Indexable(q.Needle) {
		return nil, fmt.Errorf("search index: needle %q too short", q.Needle)
	}
	// The cached dictionaries may serve this snapshot only if no commit adding words to
	// the mailbox started around it (vocab.go).
	stripe := stripeOf(account, mailbox)
	gen, quiet := x.vocab.stamp(stripe)
	// The state from the snapshot the postings are read from: a mailbox dropped (and
	// being indexed again) in between would otherwise answer its old LastUID with no
	// postings, every message up to it a non-match (found in review).
	snap := x.db.NewSnapshot()
	defer snap.Close()
	if again, ok := x.vocab.stamp(stripe); !ok || again != gen {
		quiet = false
	}
	st, ok, err := stateIn(snap, account, mailbox)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotIndexed
	}
	r := &reader{ctx: ctx, snap: snap, account: account, mailbox: mailbox}
	if quiet {
		r.vocab, r.vocabGen = &x.vocab, gen
	}
	if err := r.loadDead(); err != nil {
		return nil, err
	}
	if exact {
		// The word dictionary first, whatever the needle's trigrams would give: its
		// answer needs no verification (doc.go "Exact answers").
		res, ok, err := r.exact(q, st.LastUID)
		if err != nil {
			return nil, err
		}
		if ok {
			res.LastUID = st.LastUID
			return res, nil
		}
		if !Indexable(q.Needle) {
			return nil, ErrNotIndexed
		}
	}
	union, err := r.trigramCandidates(q)
	if err != nil {
		return nil, err
	}
	skipped, err := r.skipped()
	if err != nil {
		return nil, err
	}
	return &Result{UIDs: merge(union, skipped), LastUID: st.LastUID}, nil
}

// trigramCandidates returns the UIDs holding every trigram of q's needle in one of its
// scopes.
func (r *reader) trigramCandidates(q Query) ([]uint32, error) {
	var union []uint32
	var err error
	for _, s := range q.Scopes {
		var cand []uint32
		for k, t := range trigrams(q.Needle) {
			if k > 0 && len(cand) == 0 {
				break
			}
			if k > 0 && len(cand) <= 256 {
				cand, err = r.keep(makeGram(s, t), cand)
			} else {
				var list []uint32
				list, err = r.posting(makeGram(s, t))
				if k == 0 {
					cand = list
				} else {
					cand = intersect(cand, list)
				}
			}
			if err != nil {
				return nil, err
			}
		}
		union = merge(union, cand)
	}
	return union, nil
}

// Fuzzy returns the messages of a mailbox holding at least two thirds of the trigrams of
// q's needle in one of its scopes, with their share of them as a relevancy score in
// percent (RFC 6203 4: 1 to 100, higher is better), plus the skipped messages with score
// 100 (they are verified exactly).
func (x *Index) Fuzzy(ctx context.Context, account string, mailbox uint64, q Query) (*Result, error) {
	// The state from the snapshot the postings are read from: a mailbox dropped (and
	// being indexed again) in between would otherwise answer its old LastUID with no
	// postings, every message up to it a non-match (found in review).
	snap := x.db.NewSnapshot()
	defer snap.Close()
	st, ok, err := stateIn(snap, account, mailbox)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotIndexed
	}
	r := &reader{ctx: ctx, snap: snap, account: account, mailbox: mailbox}
	if err := r.loadDead(); err != nil {
		return nil, err
	}
	grams := trigrams(q.Needle)
	best := map[uint32]int{}
	for _, s := range q.Scopes {
		hits := map[uint32]int{}
		for _, t := range grams {
			list, err := r.posting(makeGram(s, t))
			if err != nil {
				return nil, err
			}
			for _, uid := range list {
				hits[uid]++
			}
		}
		for uid, n := range hits {
			best[uid] = max(best[uid], n)
		}
	}
	res := &Result{LastUID: st.LastUID}
	need := (2*len(grams) + 2) / 3
	for uid, n := range best {
		if n >= need {
			res.UIDs = append(res.UIDs, uid)
		}
	}
	skipped, err := r.skipped()
	if err != nil {
		return nil, err
	}
	slices.Sort(res.UIDs)
	res.UIDs = merge(res.UIDs, skipped)
	for _, uid := range res.UIDs {
		score := uint32(100)
		if n, ok := best[uid]; ok && len(grams) > 0 {
			score = uint32(max(1, 100*n/len(grams)))
		}
		res.Scores = append(res.Scores, score)
	}
	return res, nil
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

// posting returns the UIDs of one posting list, ascending, without the expunged ones.
func (r *reader) posting(g gram) ([]uint32, error) {
	return r.chunks(postingPrefix(r.account, r.mailbox, g), nil)
}

// maxVocabScan bounds the dictionary words one exact query reads from the store; a
// mailbox with more answers from its trigrams (candidates, verified by the caller).
const maxVocabScan = 8 << 20

// maxExactWords bounds the dictionary words holding the needle an exact answer reads the
// postings of (one seek each); past it the query answers with trigram candidates.
const maxExactWords = 1 << 15

// exact answers q, whose every scope is Exact for its needle, from the word dictionary:
// the union of the postings of the words holding the needle (exact matches), plus the
// messages with a word longer than MaxWord in a scope and those not indexed (Verify). ok
// is false when the dictionary is too large to read (maxVocabScan) or too many of its
// words hold the needle (maxExactWords). last is the mailbox's last indexed UID: the
// union is a bit set over the UIDs up to it, which costs a bit per message where merging
// sorted lists cost a sort of every posting of a common word's variants.
func (r *reader) exact(q Query, last uint32) (res *Result, ok bool, err error) {
	needle := []byte(q.Needle)
	set := newUIDBits(last)
	var verify []uint32
	matched := 0
	for _, s := range q.Scopes {
		dict, ok, err := r.dictionary(s)
		if err != nil || !ok {
			return nil, false, err
		}
		words := append(mailboxKey(kindWord, r.account, r.mailbox), byte(s))
		// One iterator over the scope's word postings, sought word by word, in key
		// order: a new iterator per word costs more than the postings of a rare word.
		wit, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: words, UpperBound: prefixEnd(words)})
		if err != nil {
			return nil, false, err
		}
		var p []byte
		forEachHolding(dict, needle, func(w []byte) bool {
			if matched++; matched > maxExactWords {
				return false
			}
			p = append(append(append(p[:0], words...), w...), 0)
			for ok := wit.SeekGE(p); ok && bytes.HasPrefix(wit.Key(), p); ok = wit.Next() {
				if err = r.addChunk(&set, wit.Value()); err != nil {
					return false
				}
			}
			return true
		})
		if cerr := wit.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, false, err
		}
		if matched > maxExactWords {
			// Reading this many posting lists costs more than verifying trigram
			// candidates (the caller falls back to them).
			return nil, false, nil
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
	return &Result{UIDs: set.uids(), Exact: true, Verify: verify}, true, nil
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
		r.vocab.put(key, r.vocabGen, dict)
	}
	return dict, true, nil
}

// addChunk adds the UIDs of a posting chunk to set (the expunged ones too: the caller
// removes them).
func (r *reader) addChunk(set *uidBits, chunk []byte) error {
	if err := r.tick(); err != nil {
		return err
	}
	uid := uint32(0)
	for len(chunk) > 0 {
		delta, n := binary.Uvarint(chunk)
		if n <= 0 {
			return fmt.Errorf("search index: bad posting chunk of %q %d", r.account, r.mailbox)
		}
		chunk = chunk[n:]
		uid += uint32(delta)
		set.add(uid)
	}
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

// keep returns the UIDs of cand that are in posting list g, reading only the chunks that
// may hold them.
func (r *reader) keep(g gram, cand []uint32) ([]uint32, error) {
	p := postingPrefix(r.account, r.mailbox, g)
	it, err := r.snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out, chunk []uint32
	for _, uid := range cand {
		if len(chunk) == 0 || uid < chunk[0] || uid > chunk[len(chunk)-1] {
			chunk = chunk[:0]
			if it.SeekLT(binary.BigEndian.AppendUint32(slices.Clip(p), uid+1)) {
				if chunk, err = r.appendChunk(chunk, it.Value()); err != nil {
					return nil, err
				}
			}
		}
		if _, found := slices.BinarySearch(chunk, uid); found {
			out = append(out, uid)
		}
	}
	return out, it.Error()
}

// intersect returns the UIDs in both ascending lists.
func intersect(a, b []uint32) []uint32 {
	var out []uint32
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
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
