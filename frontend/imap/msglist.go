package imap

import (
	"encoding/binary"
	"slices"
)

// msgList is a mailbox's messages in ascending UID order, in columns (issue 14): message i
// (sequence number i+1) has the UID uids[i], the MODSEQ modseqs[i] and the flags
// sets.list[refs[i]]. The messages of a mailbox share a few distinct flag sets, so a
// message costs 16 bytes and no pointer for the garbage collector to follow, a listing
// page's flag-set dictionary (ListMessages) maps onto it without a string per message, and
// FETCH FLAGS renders each set once.
//
// Copy on write: share returns a list that reads the same arrays, and marks both shared.
// A shared list copies its arrays before it changes a message in place (its flags, a
// removal, an insertion). Appends need no copy: the list shared from keeps the arrays'
// spare capacity and appends in place, past the length that any list shared from it reads,
// while a list shared to has arrays clipped to their length, so that its appends move to
// arrays of its own. The shared view of a mailbox (mailview.go) thus gives a joining
// session its messages in O(1), and goes on appending new ones without a copy.
//
// Only one goroutine uses a list at a time (the view's under its lock, a session's on the
// connection's goroutine); lists that share arrays only read what both hold.
type msgList struct {
	uids    []uint32
	modseqs []uint64
	refs    []uint32 // an index into sets.list per message
	sets    flagSets
	shared  bool // the arrays may be read by another list
}

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
func (l *msgList) len() int { return len(l.uids) }

// flags returns the flags of message i; the slice is shared and must not be changed.
func (l *msgList) flags(i int) []string { return l.sets.list[l.refs[i]] }

// search returns the index of uid, or where it would be inserted and false.
func (l *msgList) search(uid uint32) (int, bool) { return slices.BinarySearch(l.uids, uid) }

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
	if n := len(l.uids); n > 0 {
		return l.uids[n-1]
	}
	return 0
}

// share returns a list that reads l's messages; both are then shared (copy on write).
func (l *msgList) share() msgList {
	l.shared = true
	return msgList{
		uids:    slices.Clip(l.uids),
		modseqs: slices.Clip(l.modseqs),
		refs:    slices.Clip(l.refs),
		sets:    flagSets{list: slices.Clip(l.sets.list), live: l.sets.live},
		shared:  true,
	}
}

// own gives l arrays of its own before a change in place, with room for extra more
// messages.
func (l *msgList) own(extra int) {
	if !l.shared {
		return
	}
	n := len(l.uids) + extra
	l.uids = append(make([]uint32, 0, n), l.uids...)
	l.modseqs = append(make([]uint64, 0, n), l.modseqs...)
	l.refs = append(make([]uint32, 0, n), l.refs...)
	l.sets.list = slices.Clone(l.sets.list)
	l.shared = false
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
	l.uids = append(l.uids, uid)
	l.modseqs = append(l.modseqs, modseq)
	l.refs = append(l.refs, ref)
}

// insert adds a message at index i (search's answer for uid).
func (l *msgList) insert(i int, uid uint32, modseq uint64, flags []string) {
	if i == len(l.uids) {
		l.append(uid, modseq, flags)
		return
	}
	l.own(1)
	ref := l.intern(flags)
	l.uids = slices.Insert(l.uids, i, uid)
	l.modseqs = slices.Insert(l.modseqs, i, modseq)
	l.refs = slices.Insert(l.refs, i, ref)
}

// setFlags gives message i new flags and MODSEQ.
func (l *msgList) setFlags(i int, flags []string, modseq uint64) {
	l.own(0)
	l.refs[i] = l.intern(flags)
	l.modseqs[i] = modseq
}

// remove removes the messages at the ascending indexes idx, in one pass.
func (l *msgList) remove(idx []int) {
	if len(idx) == 0 {
		return
	}
	l.own(0)
	kept, next := idx[0], 0
	for i := idx[0]; i < len(l.uids); i++ {
		if next < len(idx) && idx[next] == i {
			next++
			continue
		}
		l.uids[kept], l.modseqs[kept], l.refs[kept] = l.uids[i], l.modseqs[i], l.refs[i]
		kept++
	}
	l.uids, l.modseqs, l.refs = l.uids[:kept], l.modseqs[:kept], l.refs[:kept]
}

// compactSets drops the flag sets no message uses once there are many of them, so that a
// long-lived list whose messages keep changing flags holds O(messages) sets at most, and
// renumbers the rest. It changes the list in place; sets shared to other lists stay as
// they are.
func (l *msgList) compactSets() {
	if len(l.sets.list) < 2*l.sets.live+minSetsToCompact {
		return
	}
	l.own(0)
	const unused = ^uint32(0)
	renumber := make([]uint32, len(l.sets.list))
	for i := range renumber {
		renumber[i] = unused
	}
	var list [][]string
	for i, ref := range l.refs {
		if renumber[ref] == unused {
			renumber[ref] = uint32(len(list))
			list = append(list, l.sets.list[ref])
		}
		l.refs[i] = renumber[ref]
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
