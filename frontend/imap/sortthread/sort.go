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
}

func compareKey(k Key, a, b *Message) int {
	switch k {
	case Arrival:
		return cmp.Compare(a.Arrival, b.Arrival)
	case Cc:
		return strings.Compare(a.Cc, b.Cc)
	case Date:
		return cmp.Compare(a.Date, b.Date)
	case From:
		return strings.Compare(a.From, b.From)
	case Size:
		return cmp.Compare(a.Size, b.Size)
	case Subject:
		return strings.Compare(a.Subject, b.Subject)
	case To:
		return strings.Compare(a.To, b.To)
	case DisplayFrom:
		return strings.Compare(a.DisplayFrom, b.DisplayFrom)
	case DisplayTo:
		return strings.Compare(a.DisplayTo, b.DisplayTo)
	}
	return 0
}

// Sort orders msgs (given in sequence order) by criteria, in place (RFC 5256 3): each
// criterion breaks the ties of those before it, REVERSE reverses only the criterion it
// precedes, and messages equal under all of them stay in sequence order. The order is total
// (the sequence number decides last), so an unstable sort gives the one answer. The sequence
// number is not reversed by a REVERSE: RFC 5256 3 orders remaining ties by sequence number.
func Sort(msgs []*Message, criteria []Criterion) {
	slices.SortFunc(msgs, func(a, b *Message) int {
		for _, c := range criteria {
			if r := compareKey(c.Key, a, b); r != 0 {
				if c.Reverse {
					return -r
				}
				return r
			}
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}
