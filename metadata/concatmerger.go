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
// before a flush folds them. This one writes the operands into one buffer from its end
// towards its start (MergeOlder) or from its start on (MergeNewer), doubling it when
// full, and Finish returns the bytes written.
var concatMerger = &pebble.Merger{
	Name: pebble.DefaultMerger.Name,
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		const room = 512 // for a few older operands before the buffer doubles
		m := &concatValueMerger{buf: make([]byte, room+len(value)), start: room}
		copy(m.buf[room:], value)
		return m, nil
	},
}

// concatValueMerger holds the operands of one key joined, oldest first, in
// buf[start:].
type concatValueMerger struct {
	buf   []byte
	start int
}

// MergeNewer appends value, newer than all so far.
func (m *concatValueMerger) MergeNewer(value []byte) error {
	m.buf = append(m.buf, value...)
	return nil
}

// MergeOlder puts value, older than all so far, before them.
func (m *concatValueMerger) MergeOlder(value []byte) error {
	if m.start < len(value) {
		held := len(m.buf) - m.start
		room := max(held, len(value)) * 2
		buf := make([]byte, room+held)
		copy(buf[room:], m.buf[m.start:])
		m.buf, m.start = buf, room
	}
	m.start -= len(value)
	copy(m.buf[m.start:], value)
	return nil
}

// Finish returns the operands joined, oldest first.
func (m *concatValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	return m.buf[m.start:], nil, nil
}
