package metadata

import (
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// concatMerger is the FSM store's merger: Pebble's default (pebble.DefaultMerger, named
// "pebble.concatenate": a key's value is its base value followed by its merge operands,
// oldest first), with the same name and the same results, so that a store it wrote opens
// and reads the same under a build with the default merger and the other way round
// (Pebble refuses a store whose merger has another name). The FSM writes merge operands
// for the records it appends to a column chunk (columnbatch.go).
//
// It differs only in cost. Reads and compactions hand a merger a key's operands newest
// first (MergeOlder), and the default prepends each to what it holds in a new buffer:
// O(n²) bytes copied and n allocations for n operands, and a chunk that one mailbox's
// appends reach once per Raft batch gathers about a hundred operands in a memtable
// before a flush folds them. This one copies each operand once into a buffer and joins
// them in order in Finish.
var concatMerger = &pebble.Merger{
	Name: pebble.DefaultMerger.Name,
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := &concatValueMerger{}
		m.add(value)
		return m, nil
	},
}

// concatValueMerger holds the operands of one key in buf, in the order received, and
// their ends; older tells in which order they came (Pebble keeps to one for a merge).
type concatValueMerger struct {
	buf   []byte
	ends  []int
	older bool
}

func (m *concatValueMerger) add(value []byte) {
	m.buf = append(m.buf, value...)
	m.ends = append(m.ends, len(m.buf))
}

// MergeNewer appends value, newer than all so far.
func (m *concatValueMerger) MergeNewer(value []byte) error {
	m.add(value)
	return nil
}

// MergeOlder takes value, older than all so far, to go before them.
func (m *concatValueMerger) MergeOlder(value []byte) error {
	m.older = true
	m.add(value)
	return nil
}

// Finish returns the operands joined, oldest first.
func (m *concatValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	if !m.older {
		return m.buf, nil, nil
	}
	out := make([]byte, 0, len(m.buf))
	for i := len(m.ends) - 1; i >= 0; i-- {
		start := 0
		if i > 0 {
			start = m.ends[i-1]
		}
		out = append(out, m.buf[start:m.ends[i]]...)
	}
	return out, nil, nil
}
