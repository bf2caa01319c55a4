// Package sortthread orders messages for SORT (RFC 5256 3, RFC 5957) and groups them into
// threads for THREAD (RFC 5256 4, and REFS of draft-ietf-morg-inthread as Dovecot
// implements it). It works on keys extracted once at ingest (proto SortKeys,
// frontend/message.SortKeys) and does no I/O.
//
// Invariants:
//   - Every result is a permutation (SORT) or a forest (THREAD) of exactly the messages
//     given, each once, whatever the keys hold: duplicate Message-IDs, reference loops and
//     self-references never drop, repeat or loop over a message.
//   - Equal keys are ordered by sequence number, i.e. by the order the messages are given
//     in (RFC 5256 3: "the messages are ... in order by sequence number").
//   - Work is O(n log n) in the messages and their references; memory is linear in them.
package sortthread

import (
	"cmp"
	"slices"
	"strings"
)

// Message is what a message is sorted and threaded by. Strings are in the i;unicode-casemap
// form (RFC 5051), compared as octets.
type Message struct {
	Seq                    uint32 // sequence number; the messages are given in its order
	Arrival                int64  // internal date, unix seconds
	Date                   int64  // sent date (RFC 5256 2.2), the internal date when the message has none
	Size                   uint64
	Subject                string // base subject (RFC 5256 2.1)
	From, To, Cc           string
	DisplayFrom, DisplayTo string
	MessageID              string
	References             []string // root first
	Relevancy              uint32   // RFC 6203 4: the SEARCH relevancy, 1 to 100
}

// Key is one sort criterion (RFC 5256 3, RFC 5957).
type Key int

// The sort keys.
const (
	Arrival Key = iota
	Cc
	Date
	From
	Size
	Subject
	To
	DisplayFrom
	DisplayTo
	Relevancy // RFC 6203 4
)

// Criterion is a sort key, possibly reversed (RFC 5256 3 REVERSE).
type Criterion struct {
	Key     Key
	Reverse bool
}

// KeyByName maps the sort-key atoms (upper case) to keys.
var KeyByName = map[string]Key{
	"ARRIVAL": Arrival, "CC": Cc, "DATE": Date, "FROM": From, "SIZE": Size,
	"SUBJECT": Subject, "TO": To, "DISPLAYFROM": DisplayFrom, "DISPLAYTO": DisplayTo,
	"RELEVANCY": Relevancy,
}

// Sort orders msgs (given in sequence order) by criteria, in place (RFC 5256 3): each
// criterion breaks the ties of those before it, REVERSE reverses only the criterion it
// precedes, and messages equal under all of them stay in sequence order. The order is total
// (the sequence number decides last), so an unstable sort gives the one answer.
//
// Each criterion is first turned into one integer per message: a string key into the rank
// of the message's value among the key's distinct values (a mailbox has far fewer distinct
// subjects or senders than messages), so that no string is compared in the sort itself.
// With one criterion whose values span less than 2^32, a message's value and position are
// packed into one uint64 and the sort compares plain integers.
func Sort(msgs []*Message, criteria []Criterion) {
	if len(msgs) < 2 || len(criteria) == 0 {
		return
	}
	cols := make([][]int64, len(criteria))
	for k, c := range criteria {
		cols[k] = criterionValues(msgs, c)
	}
	order := make([]*Message, len(msgs))
	if len(cols) == 1 && sortPacked(cols[0], msgs, order) {
		copy(msgs, order)
		return
	}
	idx := make([]int32, len(msgs))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		for _, col := range cols {
			if col[a] != col[b] {
				return cmp.Compare(col[a], col[b])
			}
		}
		return cmp.Compare(a, b) // sequence order: msgs are given in it
	})
	for i, j := range idx {
		order[i] = msgs[j]
	}
	copy(msgs, order)
}

// criterionValues returns each message's value under c, reversed ones negated.
func criterionValues(msgs []*Message, c Criterion) []int64 {
	var col []int64
	if value := stringKey(c.Key); value != nil {
		col = stringRanks(msgs, value)
	} else {
		col = make([]int64, len(msgs))
		for i, m := range msgs {
			col[i] = numberKey(m, c.Key)
		}
	}
	if c.Reverse {
		for i := range col {
			col[i] = -col[i]
		}
	}
	return col
}

// sortPacked sorts msgs by col, then position, into order, when col's values span less
// than 2^32 (and there are fewer than 2^32 messages): value above position in a uint64. It
// reports whether it did.
func sortPacked(col []int64, msgs, order []*Message) bool {
	lo, hi := slices.Min(col), slices.Max(col)
	if hi-lo < 0 || uint64(hi-lo) >= 1<<32 || uint64(len(msgs)) >= 1<<32 {
		return false
	}
	packed := make([]uint64, len(col))
	for i, v := range col {
		packed[i] = uint64(v-lo)<<32 | uint64(i)
	}
	slices.Sort(packed)
	for i, p := range packed {
		order[i] = msgs[uint32(p)]
	}
	return true
}

// Compare orders a and b as Sort does (RFC 5256 3): by each criterion in turn, REVERSE
// reversing only its own, then by Seq. With it a caller keeps a sorted list current one
// message at a time (the SORT contexts of RFC 5267 4.3) instead of sorting it again; Seq
// then need only be in sequence order, a UID serves.
func Compare(a, b *Message, criteria []Criterion) int {
	for _, c := range criteria {
		var r int
		if value := stringKey(c.Key); value != nil {
			r = strings.Compare(value(a), value(b))
		} else {
			r = cmp.Compare(numberKey(a, c.Key), numberKey(b, c.Key))
		}
		if c.Reverse {
			r = -r
		}
		if r != 0 {
			return r
		}
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// numberKey returns the value of a key that is not a string, in ascending order.
func numberKey(m *Message, k Key) int64 {
	switch k {
	case Arrival:
		return m.Arrival
	case Date:
		return m.Date
	case Size:
		return int64(min(m.Size, 1<<62))
	case Relevancy:
		// RFC 6203 4: the most relevant first (as Dovecot's index-sort.c orders it),
		// unlike the other number keys; REVERSE puts the least first.
		return -int64(m.Relevancy)
	}
	return 0
}

// stringKey returns the accessor of a string key, nil for the others.
func stringKey(k Key) func(*Message) string {
	switch k {
	case Cc:
		return func(m *Message) string { return m.Cc }
	case From:
		return func(m *Message) string { return m.From }
	case Subject:
		return func(m *Message) string { return m.Subject }
	case To:
		return func(m *Message) string { return m.To }
	case DisplayFrom:
		return func(m *Message) string { return m.DisplayFrom }
	case DisplayTo:
		return func(m *Message) string { return m.DisplayTo }
	}
	return nil
}

// stringRanks returns each message's rank, in octet order, among the distinct values of a
// string key: one map lookup per message, then a sort of the distinct values alone.
func stringRanks(msgs []*Message, value func(*Message) string) []int64 {
	ids := make(map[string]int32)
	var distinct []string
	col := make([]int64, len(msgs))
	for i, m := range msgs {
		v := value(m)
		id, ok := ids[v]
		if !ok {
			id = int32(len(distinct))
			ids[v] = id
			distinct = append(distinct, v)
		}
		col[i] = int64(id)
	}
	byValue := make([]int32, len(distinct))
	for i := range byValue {
		byValue[i] = int32(i)
	}
	slices.SortFunc(byValue, func(a, b int32) int { return cmp.Compare(distinct[a], distinct[b]) })
	rank := make([]int64, len(distinct))
	for r, id := range byValue {
		rank[id] = int64(r)
	}
	for i, id := range col {
		col[i] = rank[id]
	}
	return col
}
