package searchindex

import "github.com/strata-mail/strata/frontend/message/mailtext"

// MaxWord is the longest word (a maximal run of non-separator bytes of folded text) the
// word dictionary keeps; a message with a longer word in a scope is listed as such, and
// exact answers count it as a candidate to verify (doc.go: "Exact answers").
const MaxWord = 48

// Exact reports whether the index can answer a search for needle (folded) in scope s
// exactly from its word dictionary: the needle holds no separator
// (mailtext.IsWordSeparator), so every occurrence lies inside one word, and the scope
// holds only the text of the keys that read it (ScopeOther mixes the fields of every
// other name).
func Exact(needle string, s Scope) bool {
	return s >= ScopeBody && s <= ScopeBcc && mailtext.InOneWord(needle)
}

// Doc is the set of postings of one message under construction: its distinct trigrams
// per scope, its distinct words per scope, and the scopes holding a word longer than
// MaxWord. Reset makes it ready for the next message without freeing its memory.
type Doc struct {
	grams gramSet
	words map[string]struct{} // scope byte + word
	long  uint16              // 1<<scope for every scope with a word longer than MaxWord

	word      []byte // the word being read by AddChunk, with its scope byte first
	wordScope Scope
}

// NewDoc returns an empty doc.
func NewDoc() *Doc { return &Doc{words: map[string]struct{}{}} }

// Reset empties d.
func (d *Doc) Reset() {
	d.grams.reset()
	clear(d.words)
	d.long = 0
	d.word = d.word[:0]
}

// Add adds a whole text (one header field, one value) of folded UTF-8 under scope:
// trigrams of bytes, as the needle's are, and its words.
func (d *Doc) Add(s Scope, text []byte) {
	d.addGrams(s, text)
	d.EndText()
	d.addWords(s, text)
	d.EndText()
}

// AddChunk adds a piece of a longer text (mailtext.FoldChunks): its first overlap bytes
// repeat the end of the piece before, for the trigrams across the boundary. EndText ends
// the text.
func (d *Doc) AddChunk(s Scope, chunk []byte, overlap int) {
	d.addGrams(s, chunk)
	d.addWords(s, chunk[min(overlap, len(chunk)):])
}

func (d *Doc) addGrams(s Scope, text []byte) {
	for i := 0; i+3 <= len(text); i++ {
		d.grams.add(makeGram(s, text[i:i+3]))
	}
}

// addWords splits text into words, carrying an unfinished last word to the next call.
func (d *Doc) addWords(s Scope, text []byte) {
	if len(d.word) == 0 || d.wordScope != s {
		d.EndText()
		d.wordScope = s
	}
	for _, b := range text {
		if mailtext.IsWordSeparator(b) {
			d.endWord()
			continue
		}
		if len(d.word) == 0 {
			d.word = append(d.word, byte(s))
		}
		if len(d.word) <= MaxWord+1 {
			d.word = append(d.word, b)
		}
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
		if _, ok := d.words[string(d.word)]; !ok {
			d.words[string(d.word)] = struct{}{}
		}
	}
	d.word = d.word[:0]
}

// Len is the number of distinct trigram postings of the doc.
func (d *Doc) Len() int { return len(d.grams.list) }

// Words is the number of distinct words of the doc.
func (d *Doc) Words() int { return len(d.words) }

// gramSet is a set of grams in an open-addressing table: adding a trigram costs a hash
// and a probe, not the sort and copy of a list with repeats, and reset costs the members.
type gramSet struct {
	slots []gram // 0 is empty: every gram has a scope >= 1 in its top byte
	list  []gram // members in the order added
}

func (s *gramSet) add(g gram) {
	if len(s.list)*2 >= len(s.slots) {
		s.grow()
	}
	mask := uint32(len(s.slots) - 1)
	for i := hashGram(g) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case g:
			return
		case 0:
			s.slots[i] = g
			s.list = append(s.list, g)
			return
		}
	}
}

func hashGram(g gram) uint32 {
	h := uint32(g) * 0x9E3779B1
	return h ^ h>>15
}

func (s *gramSet) grow() {
	n := max(1024, 2*len(s.slots))
	s.slots = make([]gram, n)
	mask := uint32(n - 1)
	for _, g := range s.list {
		i := hashGram(g) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = g
	}
}

func (s *gramSet) reset() {
	if len(s.slots) > 1<<18 {
		// A huge message grew the table: do not keep it for the next one.
		s.slots, s.list = nil, nil
		return
	}
	clear(s.slots)
	s.list = s.list[:0]
}
