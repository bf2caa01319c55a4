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
// (the sequence number decides last), so an unstable sort gives the one answer. A string key
// is first turned into each message's rank among the key's distinct values, so that the
// sort compares integers (a mailbox has far fewer distinct subjects or senders than
// messages).
func Sort(msgs []*Message, criteria []Criterion) {
	type item struct {
		m     *Message
		ranks []int64 // per criterion, reversed ones negated
	}
	items := make([]item, len(msgs))
	flat := make([]int64, len(msgs)*len(criteria))
	for i, m := range msgs {
		items[i] = item{m: m, ranks: flat[i*len(criteria) : (i+1)*len(criteria)]}
	}
	for k, c := range criteria {
		value := stringKey(c.Key)
		var rankOf map[string]int64
		if value != nil {
			rankOf = stringRanks(msgs, value)
		}
		for i, m := range msgs {
			var r int64
			if value != nil {
				r = rankOf[value(m)]
			} else {
				r = numberKey(m, c.Key)
			}
			if c.Reverse {
				r = -r
			}
			items[i].ranks[k] = r
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		if r := slices.Compare(a.ranks, b.ranks); r != 0 {
			return r
		}
		return cmp.Compare(a.m.Seq, b.m.Seq)
	})
	for i := range items {
		msgs[i] = items[i].m
	}
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

// stringRanks maps each distinct value of a string key among msgs to its rank in octet
// order.
func stringRanks(msgs []*Message, value func(*Message) string) map[string]int64 {
	rank := make(map[string]int64)
	for _, m := range msgs {
		rank[value(m)] = 0
	}
	distinct := make([]string, 0, len(rank))
	for v := range rank {
		distinct = append(distinct, v)
	}
	slices.Sort(distinct)
	for i, v := range distinct {
		rank[v] = int64(i)
	}
	return rank
}
