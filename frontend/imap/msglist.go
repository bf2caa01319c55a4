package imap

import (
	"encoding/binary"
	"iter"
	"slices"
	"sync/atomic"
)

// msgList is a mailbox's messages in ascending UID order, in columns (issue 14): message i
// (sequence number i+1) has a UID, a MODSEQ and the flags sets.list[ref]. The messages of a
// mailbox share a few distinct flag sets, so a message costs 16 bytes and no pointer for the
// garbage collector to follow, a listing page's flag-set dictionary (ListMessages) maps onto
// it without a string per message, and FETCH FLAGS renders each set once.
//
// The columns are cut into chunks of at most chunkSize messages, in a spine that records each
// chunk's first index and first UID: search is a binary search over the chunks' first UIDs,
// then within one chunk, and message i is found in O(1) while every chunk but the last is
// full (a loaded view), else by a binary search over the chunks' first indexes.
//
// Copy on write, by chunk: share returns a list that reads the same chunks and spine, and
// gives both lists a new generation. A list changes in place only the chunks of its own
// generation (those it made or copied since its last share); before it changes another
// (flags, a removal, an insertion, an append to a shared last chunk) it copies that chunk
// alone, and the spine (a pointer, an index and a UID per chunk) before its first change
// after a share. The shared view of a mailbox (mailview.go) thus gives a joining session its
// messages in O(1), a change costs the view and each session that applies it the chunks it
// touches, and a session that takes the view's list again once it holds what the view holds
// (selected.rejoin) keeps only the chunks that differ, whatever the mailbox's size.
//
// A chunk's content names its UIDs and MODSEQs: a chunk gets a new one with each change
// of them, and a copy that changes only flag set indexes (a compaction, compactSets) keeps
// it, so that two lists that compacted their sets, or one that did and one that did not,
// still know which of their chunks hold the same messages without reading them
// (sameMessages; issue 14: after a compaction a rejoin compared every message under the
// view's lock).
//
// Only one goroutine uses a list at a time (the view's under its lock, a session's on the
// connection's goroutine); lists that share a chunk or a spine only read it.
type msgList struct {
	chunks []*msgChunk // none empty
	starts []int       // the index of each chunk's first message
	firsts []uint32    // the UID of each chunk's first message
	n      int         // the number of messages
	// gen is the list's generation: a chunk of another generation may be read by
	// another list, and is copied before a change.
	gen uint64
	// spineShared is set when another list may read chunks, starts and firsts.
	spineShared bool
	sets        flagSets
}

// msgChunk is a run of consecutive messages of a msgList (or, from msgList.runs, a part of
// one): uids[j], modseqs[j] and refs[j] are one message's.
type msgChunk struct {
	uids    []uint32
	modseqs []uint64
	refs    []uint32 // an index into sets.list per message
	gen     uint64   // the generation of the list that may change it in place
	// content names uids and modseqs as they are: two chunks with the same content hold
	// the same messages with the same MODSEQs (their refs may differ).
	content uint64
}

// chunkSize is the most messages a chunk holds: a change copies at most 64 KiB of a chunk
// shared with another list, and the spine of a 1,000,000-message list has 245 chunks.
const chunkSize = 4096

// listGens numbers the generations of msgLists (msgList.gen); 0 is the zero list's.
var listGens atomic.Uint64

// chunkContents numbers the contents of chunks (msgChunk.content).
var chunkContents atomic.Uint64

// flagSets are the distinct flag sets of a msgList, each with an index that never changes
// until a compaction (which only the list's owner does, on arrays it owns).
type flagSets struct {
	list [][]string // append-only while shared; an entry never changes
	// index finds a set by its flags (joinFlags); nil until this list first interns, as
	// a list shared to builds its own.
	index map[string]uint32
	// live is how many sets were in use at the last compaction (or at the load).
	live int
	key  []byte // intern's scratch key
}

// minSetsToCompact is how many sets beyond twice the live ones a list keeps before it drops
// those no message uses: a compaction reads every message, so it runs at most once per this
// many new sets.
const minSetsToCompact = 1024

// len returns the number of messages.
func (l *msgList) len() int { return l.n }

// chunkOf returns the index of the chunk that holds message i.
func (l *msgList) chunkOf(i int) int {
	// Every chunk holds at most chunkSize messages, so chunk i/chunkSize starts at or
	// before i: it holds i while the chunks before it are full, the next one after a few
	// removals, and a binary search over the chunks from there finds it in any case.
	k := i / chunkSize
	for range 2 {
		if k >= len(l.starts) || i-l.starts[k] < len(l.chunks[k].uids) {
			return k
		}
		k++
	}
	j, found := slices.BinarySearch(l.starts[k:], i)
	if !found {
		j--
	}
	return k + j
}

// locate returns the chunk that holds message i and i's index in it.
func (l *msgList) locate(i int) (*msgChunk, int) {
	k := l.chunkOf(i)
	return l.chunks[k], i - l.starts[k]
}

// uid returns the UID of message i.
func (l *msgList) uid(i int) uint32 {
	c, j := l.locate(i)
	return c.uids[j]
}

// modseq returns the MODSEQ of message i.
func (l *msgList) modseq(i int) uint64 {
	c, j := l.locate(i)
	return c.modseqs[j]
}

// flags returns the flags of message i; the slice is shared and must not be changed.
func (l *msgList) flags(i int) []string {
	c, j := l.locate(i)
	return l.sets.list[c.refs[j]]
}

// search returns the index of uid, or where it would be inserted and false.
func (l *msgList) search(uid uint32) (int, bool) {
	k, found := slices.BinarySearch(l.firsts, uid)
	if found {
		return l.starts[k], true
	}
	if k == 0 {
		return 0, false
	}
	k--
	j, found := slices.BinarySearch(l.chunks[k].uids, uid)
	return l.starts[k] + j, found
}

// modseqAbove returns a filter of message indexes: whether message i has a MODSEQ above
// modseq. It keeps the chunk it read last, so that ascending indexes (a FETCH CHANGEDSINCE
// over a sequence set) cost a slice read each.
func (l *msgList) modseqAbove(modseq uint64) func(i int) bool {
	var modseqs []uint64 // of the chunk read last, whose first message is at
	at := 0
	return func(i int) bool {
		if j := i - at; j >= 0 && j < len(modseqs) {
			return modseqs[j] > modseq
		}
		k := l.chunkOf(i)
		modseqs, at = l.chunks[k].modseqs, l.starts[k]
		return modseqs[i-at] > modseq
	}
}

// runs yields the messages from index from up to index to (exclusive) as the parts of the
// chunks that hold them, each with the index of its first message, so that a loop over a
// run's columns reads them as a loop over one slice would. A run must not be changed.
func (l *msgList) runs(from, to int) iter.Seq2[int, msgChunk] {
	return func(yield func(int, msgChunk) bool) {
		from, to = max(from, 0), min(to, l.n)
		if from >= to {
			return
		}
		for k := l.chunkOf(from); k < len(l.chunks) && l.starts[k] < to; k++ {
			c := l.chunks[k]
			a, b := max(from-l.starts[k], 0), min(to-l.starts[k], len(c.uids))
			if !yield(l.starts[k]+a, msgChunk{uids: c.uids[a:b], modseqs: c.modseqs[a:b], refs: c.refs[a:b]}) {
				return
			}
		}
	}
}

// uids yields the index and UID of every message from index from on, ascending.
func (l *msgList) uids(from int) iter.Seq2[int, uint32] {
	return func(yield func(int, uint32) bool) {
		for at, r := range l.runs(from, l.n) {
			for j, uid := range r.uids {
				if !yield(at+j, uid) {
					return
				}
			}
		}
	}
}

// indexesOf returns the indexes of the messages with UIDs among uids (in any order, UIDs
// the list lacks ignored), ascending and each once: what remove takes.
func (l *msgList) indexesOf(uids []uint32) []int {
	idx := make([]int, 0, len(uids))
	for _, uid := range uids {
		if i, found := l.search(uid); found {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// last returns the highest UID, or 0 for an empty list.
func (l *msgList) last() uint32 {
	if len(l.chunks) == 0 {
		return 0
	}
	c := l.chunks[len(l.chunks)-1]
	return c.uids[len(c.uids)-1]
}

// share returns a list that reads l's chunks and spine; both are then of new generations,
// so that either copies a chunk before it changes it (copy on write).
func (l *msgList) share() msgList {
	l.gen, l.spineShared = listGens.Add(1), true
	return msgList{
		chunks: slices.Clip(l.chunks), starts: slices.Clip(l.starts), firsts: slices.Clip(l.firsts), n: l.n,
		gen: listGens.Add(1), spineShared: true,
		sets: flagSets{list: slices.Clip(l.sets.list), live: l.sets.live},
	}
}

// sharedChunks returns how many of l's chunks o holds at the same place.
func (l *msgList) sharedChunks(o *msgList) int {
	n := 0
	for k, c := range l.chunks {
		if k < len(o.chunks) && o.chunks[k] == c && o.starts[k] == l.starts[k] {
			n++
		}
	}
	return n
}

// sameMessages reports whether o holds l's messages with l's MODSEQs, and how many of
// l's messages it compared one by one: those of the chunks that o does not hold at the
// same place with the same content (msgChunk.content), so none after a compaction of
// either list's flag sets alone.
func (l *msgList) sameMessages(o *msgList) (same bool, compared int) {
	if l.n != o.n {
		return false, 0
	}
	for k, c := range l.chunks {
		start := l.starts[k]
		if k < len(o.chunks) && o.chunks[k].content == c.content && o.starts[k] == start {
			continue
		}
		compared += len(c.uids)
		for at, r := range o.runs(start, start+len(c.uids)) {
			a, b := at-start, at-start+len(r.uids)
			if !slices.Equal(c.uids[a:b], r.uids) || !slices.Equal(c.modseqs[a:b], r.modseqs) {
				return false, compared
			}
		}
	}
	return true, compared
}

// ownSpine gives l a spine of its own before it changes it.
func (l *msgList) ownSpine() {
	if l.spineShared {
		l.chunks, l.starts, l.firsts = slices.Clone(l.chunks), slices.Clone(l.starts), slices.Clone(l.firsts)
		l.spineShared = false
	}
}

// owned returns c when l may change it, else a copy of l's generation with room for extra
// more messages, with c's content: a caller that changes UIDs or MODSEQs gives it a new
// one (changed).
func (l *msgList) owned(c *msgChunk, extra int) *msgChunk {
	if c.gen == l.gen {
		return c
	}
	n := len(c.uids) + extra
	return &msgChunk{
		uids:    append(make([]uint32, 0, n), c.uids...),
		modseqs: append(make([]uint64, 0, n), c.modseqs...),
		refs:    append(make([]uint32, 0, n), c.refs...),
		gen:     l.gen,
		content: c.content,
	}
}

// changed returns c, owned, with a new content: its UIDs or MODSEQs are about to change.
func changed(c *msgChunk) *msgChunk {
	c.content = chunkContents.Add(1)
	return c
}

// ownChunk returns chunk k, copied first unless l may change it (owned), for a change of
// its UIDs or MODSEQs (changed).
func (l *msgList) ownChunk(k, extra int) *msgChunk {
	l.ownSpine()
	c := changed(l.owned(l.chunks[k], extra))
	l.chunks[k] = c
	return c
}

// lastChunk returns the last chunk, ready for appends: a new one when the last is full.
func (l *msgList) lastChunk(first uint32, extra int) *msgChunk {
	l.ownSpine()
	if k := len(l.chunks) - 1; k >= 0 && len(l.chunks[k].uids) < chunkSize {
		return l.ownChunk(k, extra)
	}
	n := min(extra, chunkSize)
	c := &msgChunk{uids: make([]uint32, 0, n), modseqs: make([]uint64, 0, n), refs: make([]uint32, 0, n), gen: l.gen, content: chunkContents.Add(1)}
	l.chunks, l.starts, l.firsts = append(l.chunks, c), append(l.starts, l.n), append(l.firsts, first)
	return c
}

// intern returns the index of the set flags, adding it when it is new. The list keeps
// flags: the caller must not change it afterwards.
func (l *msgList) intern(flags []string) uint32 {
	s := &l.sets
	if s.index == nil {
		s.index = make(map[string]uint32, len(s.list))
		for i, set := range s.list {
			s.key = appendFlagsKey(s.key[:0], set)
			s.index[string(s.key)] = uint32(i)
		}
	}
	s.key = appendFlagsKey(s.key[:0], flags)
	if i, found := s.index[string(s.key)]; found {
		return i
	}
	i := uint32(len(s.list))
	s.list = append(s.list, flags)
	s.index[string(s.key)] = i
	return i
}

// append adds a message above every UID in the list.
func (l *msgList) append(uid uint32, modseq uint64, flags []string) {
	ref := l.intern(flags)
	c := l.lastChunk(uid, 1)
	c.uids, c.modseqs, c.refs = append(c.uids, uid), append(c.modseqs, modseq), append(c.refs, ref)
	l.n++
}

// appendAll adds messages above every UID in the list, message k with the UID uids[k], the
// MODSEQ modseqs[k] and the flag set refs[k] (intern's answer).
func (l *msgList) appendAll(uids []uint32, modseqs []uint64, refs []uint32) {
	for len(uids) > 0 {
		c := l.lastChunk(uids[0], len(uids))
		m := min(chunkSize-len(c.uids), len(uids))
		c.uids, c.modseqs, c.refs = append(c.uids, uids[:m]...), append(c.modseqs, modseqs[:m]...), append(c.refs, refs[:m]...)
		l.n += m
		uids, modseqs, refs = uids[m:], modseqs[m:], refs[m:]
	}
}

// insert adds a message at index i (search's answer for uid).
func (l *msgList) insert(i int, uid uint32, modseq uint64, flags []string) {
	if i == l.n {
		l.append(uid, modseq, flags)
		return
	}
	ref := l.intern(flags)
	k := l.chunkOf(i)
	c := l.ownChunk(k, 1)
	j := i - l.starts[k]
	c.uids, c.modseqs, c.refs = slices.Insert(c.uids, j, uid), slices.Insert(c.modseqs, j, modseq), slices.Insert(c.refs, j, ref)
	if j == 0 {
		l.firsts[k] = uid
	}
	for m := k + 1; m < len(l.starts); m++ {
		l.starts[m]++
	}
	l.n++
	if h := len(c.uids) / 2; len(c.uids) > chunkSize {
		tail := &msgChunk{uids: slices.Clone(c.uids[h:]), modseqs: slices.Clone(c.modseqs[h:]), refs: slices.Clone(c.refs[h:]), gen: l.gen, content: chunkContents.Add(1)}
		c.uids, c.modseqs, c.refs = c.uids[:h], c.modseqs[:h], c.refs[:h]
		l.chunks = slices.Insert(l.chunks, k+1, tail)
		l.starts = slices.Insert(l.starts, k+1, l.starts[k]+h)
		l.firsts = slices.Insert(l.firsts, k+1, tail.uids[0])
	}
}

// setFlags gives message i new flags and MODSEQ.
func (l *msgList) setFlags(i int, flags []string, modseq uint64) {
	ref := l.intern(flags)
	k := l.chunkOf(i)
	c := l.ownChunk(k, 0)
	j := i - l.starts[k]
	c.refs[j], c.modseqs[j] = ref, modseq
}

// remove removes the messages at the ascending indexes idx, in one pass over the chunks
// that hold them.
func (l *msgList) remove(idx []int) {
	if len(idx) == 0 {
		return
	}
	for len(idx) > 0 {
		// The starts stay as they were until the spine is rebuilt, so that chunkOf
		// finds the messages of the chunks not yet visited.
		k := l.chunkOf(idx[0])
		start := l.starts[k]
		end := start + len(l.chunks[k].uids)
		m := 1
		for m < len(idx) && idx[m] < end {
			m++
		}
		c := l.ownChunk(k, 0)
		kept, next := idx[0]-start, 0
		for j := kept; j < len(c.uids); j++ {
			if next < m && idx[next]-start == j {
				next++
				continue
			}
			c.uids[kept], c.modseqs[kept], c.refs[kept] = c.uids[j], c.modseqs[j], c.refs[j]
			kept++
		}
		c.uids, c.modseqs, c.refs = c.uids[:kept], c.modseqs[:kept], c.refs[:kept]
		idx = idx[m:]
	}
	l.rebuildSpine()
}

// rebuildSpine drops empty chunks, merges a chunk into the one before when the two hold
// at most half a chunk together (so that removals leave no trail of tiny chunks), and
// numbers the chunks' first indexes and UIDs again.
func (l *msgList) rebuildSpine() {
	l.ownSpine()
	kept := l.chunks[:0]
	for _, c := range l.chunks {
		if len(c.uids) == 0 {
			continue
		}
		if p := len(kept) - 1; p >= 0 && len(kept[p].uids)+len(c.uids) <= chunkSize/2 {
			prev := changed(l.owned(kept[p], len(c.uids)))
			prev.uids, prev.modseqs, prev.refs = append(prev.uids, c.uids...), append(prev.modseqs, c.modseqs...), append(prev.refs, c.refs...)
			kept[p] = prev
			continue
		}
		kept = append(kept, c)
	}
	clear(l.chunks[len(kept):])
	l.chunks, l.starts, l.firsts, l.n = kept, l.starts[:0], l.firsts[:0], 0
	for _, c := range kept {
		l.starts, l.firsts = append(l.starts, l.n), append(l.firsts, c.uids[0])
		l.n += len(c.uids)
	}
}

// compactSets drops the flag sets no message uses once there are many of them, so that a
// long-lived list whose messages keep changing flags holds O(messages) sets at most, and
// renumbers the rest. It changes (so copies) every chunk's refs, and no chunk's content,
// so that lists that share no chunk afterwards still see which hold the same messages
// (sameMessages); sets shared to other lists stay as they are.
func (l *msgList) compactSets() {
	if len(l.sets.list) < 2*l.sets.live+minSetsToCompact {
		return
	}
	const unused = ^uint32(0)
	renumber := make([]uint32, len(l.sets.list))
	for i := range renumber {
		renumber[i] = unused
	}
	var list [][]string
	l.ownSpine()
	for k := range l.chunks {
		c := l.owned(l.chunks[k], 0)
		l.chunks[k] = c
		for j, ref := range c.refs {
			if renumber[ref] == unused {
				renumber[ref] = uint32(len(list))
				list = append(list, l.sets.list[ref])
			}
			c.refs[j] = renumber[ref]
		}
	}
	l.sets = flagSets{list: list, live: len(list)}
}

// appendFlagsKey appends the name of a flag set as a map key: each flag preceded by its
// length, so that no two sets share a name.
func appendFlagsKey(b []byte, flags []string) []byte {
	for _, f := range flags {
		b = append(binary.AppendUvarint(b, uint64(len(f))), f...)
	}
	return b
}
