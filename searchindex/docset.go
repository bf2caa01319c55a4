package searchindex

import (
	"encoding/binary"
	"math/bits"

	"github.com/strata-mail/strata/frontend/message/mailtext"
)

// MaxWord is the longest word (a maximal run of non-separator bytes of folded text) the
// word dictionary keeps; a message with a longer word in a scope is listed as such, and
// every answer counts it as a candidate to verify (doc.go: "Exact answers").
const MaxWord = 48

// Exact reports whether the index can answer a search for needle (folded) in scope s
// exactly from its word dictionary: the needle holds no separator
// (mailtext.IsWordSeparator), so every occurrence lies inside one word, and the scope
// holds only the text of the keys that read it (ScopeOther mixes the fields of every
// other name).
func Exact(needle string, s Scope) bool {
	return s >= ScopeBody && s <= ScopeBcc && mailtext.InOneWord(needle)
}

// Doc is the set of postings of one message under construction: its distinct words per
// scope, and the scopes holding a word longer than MaxWord. Reset makes it ready for the
// next message without freeing its memory.
//
// The words it has seen stay interned across Resets (seen): a word the doc met in an
// earlier message costs one map lookup and no allocation, and the message's distinct
// words are a list (words), not a map to clear, which is what an indexer adding message
// after message with one doc spends most of its time on.
type Doc struct {
	words []*seenWord          // the message's distinct words (key: scope byte + word)
	seen  map[string]*seenWord // every word met since the doc was made (or seen last grew too large)
	// recent is a direct-mapped cache of seen in front of it, by a hash of the word: text
	// repeats its common words, and most words are found here without a map lookup (a
	// third of the extraction's CPU). Whatever the words, a miss costs one map lookup.
	recent *[recentWords]*seenWord
	msg    uint32 // counts Resets: the message a seenWord was last added for
	long   uint16 // 1<<scope for every scope with a word longer than MaxWord

	word      []byte // the word being read by AddChunk, with its scope byte first
	wordScope Scope
	folded    []byte                 // a header field's folded text (addField)
	content   mailtext.SegmentReader // decodes the body's parts (ExtractInto)
}

// seenWord is an interned word and the message (Doc.msg) it was last added for.
type seenWord struct {
	key string
	msg uint32
	// batch and slot are where Batch.Add last put the word's UIDs: the batch's
	// pendingPostings.id, the word's index in its list. Numbers, not pointers, so that a
	// doc does not keep a committed batch's postings alive.
	batch uint64
	slot  int32
}

// maxSeen bounds the interned words a doc keeps from message to message.
const maxSeen = 1 << 16

// recentWords is the size of Doc.recent.
const (
	recentBits  = 12
	recentWords = 1 << recentBits
)

// NewDoc returns an empty doc.
func NewDoc() *Doc {
	return &Doc{seen: map[string]*seenWord{}, recent: new([recentWords]*seenWord), msg: 1}
}

// Reset empties d.
func (d *Doc) Reset() {
	if len(d.seen) > maxSeen || cap(d.words) > maxSeen {
		// Huge messages grew the interned words: do not keep them for the next one.
		d.seen, d.words = map[string]*seenWord{}, nil
		clear(d.recent[:]) // it holds no word seen does not
	}
	d.msg++
	if d.msg == 0 {
		// Wrapped around: a word last added 2^32 messages ago would look added already.
		clear(d.seen)
		clear(d.recent[:])
		d.msg = 1
	}
	d.words = d.words[:0]
	d.long = 0
	d.word = d.word[:0]
}

// Add adds a whole text (one header field, one value) of folded UTF-8 under scope: its
// words.
func (d *Doc) Add(s Scope, text []byte) {
	d.EndText()
	d.addWords(s, text)
	d.EndText()
}

// AddChunk adds a piece of a longer text (mailtext.FoldChunks): its first overlap bytes
// repeat the end of the piece before and are skipped; a word cut by the end of a chunk
// goes on in the next one. EndText ends the text.
func (d *Doc) AddChunk(s Scope, chunk []byte, overlap int) {
	d.addWords(s, chunk[min(overlap, len(chunk)):])
}

// addWords splits text into words, carrying an unfinished last word to the next call.
func (d *Doc) addWords(s Scope, text []byte) {
	if len(d.word) == 0 || d.wordScope != s {
		d.EndText()
		d.wordScope = s
	}
	// A run of word bytes is appended at once (up to MaxWord+2 bytes: enough to tell a
	// long word), not byte by byte.
	for i := 0; i < len(text); {
		if mailtext.IsWordSeparator(text[i]) {
			d.endWord()
			i++
			continue
		}
		j := i + 1
		for j < len(text) && !mailtext.IsWordSeparator(text[j]) {
			j++
		}
		if len(d.word) == 0 {
			d.word = append(d.word, byte(s))
		}
		if room := MaxWord + 2 - len(d.word); room > 0 {
			d.word = append(d.word, text[i:min(j, i+room)]...)
		}
		i = j
	}
}

// addWordsTwice adds the words of a whole text under scopes a and b, splitting it once.
func (d *Doc) addWordsTwice(a, b Scope, text []byte) {
	d.EndText()
	for i := 0; i < len(text); {
		if mailtext.IsWordSeparator(text[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(text) && !mailtext.IsWordSeparator(text[j]) {
			j++
		}
		// Up to MaxWord+1 bytes after the scope byte: enough to tell a long word (endWord).
		w := text[i:min(j, i+MaxWord+1)]
		d.word = append(append(d.word[:0], byte(a)), w...)
		d.endWord()
		d.word = append(append(d.word[:0], byte(b)), w...)
		d.endWord()
		i = j
	}
}

// EndText ends the text AddChunk was adding.
func (d *Doc) EndText() { d.endWord() }

func (d *Doc) endWord() {
	switch {
	case len(d.word) == 0:
		return
	case len(d.word) > MaxWord+1:
		d.long |= 1 << d.word[0]
	default:
		slot := &d.recent[recentSlot(d.word)]
		w := *slot
		if w == nil || w.key != string(d.word) {
			w = d.seen[string(d.word)]
			if w == nil {
				w = &seenWord{key: string(d.word)}
				d.seen[w.key] = w
			}
			*slot = w
		}
		if w.msg != d.msg {
			w.msg = d.msg
			d.words = append(d.words, w)
		}
	}
	d.word = d.word[:0]
}

// recentSlot is the slot of Doc.recent for word (a scope byte and at least one more): a
// hash of its length and up to 16 of its bytes (the first and last 8), a multiply's top
// bits, cheaper than a byte loop. Words it mixes up only miss the cache.
func recentSlot(word []byte) uint64 {
	n := len(word)
	var x uint64
	switch {
	case n >= 8:
		x = binary.LittleEndian.Uint64(word) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(word[n-8:]), 29)
	case n >= 4:
		x = uint64(binary.LittleEndian.Uint32(word)) | uint64(binary.LittleEndian.Uint32(word[n-4:]))<<32
	default:
		x = uint64(word[0]) | uint64(word[n/2])<<8 | uint64(word[n-1])<<16
	}
	return ((x ^ uint64(n)<<58) * 0x9e3779b97f4a7c15) >> (64 - recentBits)
}

// Words is the number of distinct words of the doc.
func (d *Doc) Words() int { return len(d.words) }
