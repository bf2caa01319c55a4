package imap

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
)

// threadEntries returns n entries with Message-IDs and references drawn from a small pool
// (duplicates, empty ones, references to ids no message has, loops), numbered as the
// metadata FSM's Message-ID dictionary numbers them (metadata/messagenumbers.go): in the
// order the ids come, "" as 0.
func threadEntries(n int, seed uint64) []sortEntry {
	rng := rand.New(rand.NewPCG(seed, 3))
	dict := map[string]uint32{"": 0}
	number := func(id string) uint32 {
		if _, ok := dict[id]; !ok {
			dict[id] = uint32(len(dict))
		}
		return dict[id]
	}
	id := func() string {
		if rng.IntN(10) == 0 {
			return ""
		}
		return fmt.Sprintf("%d@x", rng.IntN(n))
	}
	out := make([]sortEntry, n)
	for i := range out {
		e := sortEntry{numbered: true, reply: rng.IntN(2) == 0, msg: sortthread.Message{
			Date: int64(rng.IntN(50)), Subject: []string{"", "a", "b", "c"}[rng.IntN(4)], MessageID: id()}}
		e.messageNumber = number(e.msg.MessageID)
		for range rng.IntN(4) {
			r := id()
			e.msg.References = append(e.msg.References, r)
			e.refNumbers = append(e.refNumbers, number(r))
		}
		out[i] = e
	}
	return out
}

// threadAnswer is THREAD alg over every row of box in c, as the response writes it.
func threadAnswer(c *sortKeyCache, box sortBoxKey, uids []uint32, alg sortthread.Algorithm) string {
	keys, rows := c.snapshot(box, uids)
	var ranked sortFields // as cmdThread: ranks only for ORDEREDSUBJECT
	if alg == sortthread.OrderedSubject {
		ranked = textField(sortthread.Subject)
	}
	roots := keys.columns(rows, ranked).Thread(alg)
	return string(sortthread.AppendThreads(nil, roots, func(p int32) uint32 { return uids[p] }))
}

// TestThreadByNumbersMatchesStrings: THREAD over the dictionary's numbers answers what it
// answers over the interned strings, and a message with only strings in a mailbox held with
// numbers turns it to strings: appendColumn empties the box and asks for the column again
// (errColumnRestart), put keeps only what it adds; both then answer as strings do.
func TestThreadByNumbersMatchesStrings(t *testing.T) {
	box := sortBoxKey{owner: "u", mailboxID: 1, uidValidity: 1}
	entries := threadEntries(3000, 1)
	uids := make([]uint32, len(entries))
	for k := range uids {
		uids[k] = uint32(2*k + 1)
	}
	column := func(from, to int) func(add func(uint32, *sortEntry) error) error {
		return func(add func(uint32, *sortEntry) error) error {
			for k := from; k < to; k++ {
				if err := add(uids[k], &entries[k]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	byNumbers := newCommandSortCache(fieldThread, false)
	if _, err := byNumbers.appendColumn(box, nil, uids[len(uids)-1], len(uids), column(0, len(uids))); err != nil {
		t.Fatal(err)
	}
	byStrings := newCommandSortCache(fieldThread, true)
	if _, err := byStrings.appendColumn(box, nil, uids[len(uids)-1], len(uids), column(0, len(uids))); err != nil {
		t.Fatal(err)
	}
	if keys, _ := byNumbers.snapshot(box, nil); keys.idMode != threadIDsNumbers || len(keys.sortColumns.ids.values) != 1 {
		t.Fatalf("numbered entries held as mode %d with %d strings", keys.idMode, len(keys.sortColumns.ids.values))
	}
	for _, alg := range []sortthread.Algorithm{sortthread.References, sortthread.Refs, sortthread.OrderedSubject} {
		if n, s := threadAnswer(byNumbers, box, uids, alg), threadAnswer(byStrings, box, uids, alg); n != s {
			t.Fatalf("algorithm %d: by numbers %.200s, by strings %.200s", alg, n, s)
		}
	}

	// The column's later entries have only strings (stored before the dictionary).
	half := len(uids) / 2
	mixed := slices.Clone(entries)
	for k := half; k < len(mixed); k++ {
		mixed[k].numbered, mixed[k].messageNumber, mixed[k].refNumbers = false, 0, nil
	}
	entries = mixed
	c := newSortKeyCache(1 << 20)
	filling, err := c.appendColumn(box, nil, uids[half-1], len(uids), column(0, half))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.appendColumn(box, filling, uids[len(uids)-1], len(uids), column(half, len(uids)))
	if upTo, _ := c.columnRead(box); !errors.Is(err, errColumnRestart) || upTo != 0 || c.entries != 0 {
		t.Fatalf("entries without numbers after numbered ones: %v, column read to %d, %d entries", err, upTo, c.entries)
	}
	if _, err := c.appendColumn(box, nil, uids[len(uids)-1], len(uids), column(0, len(uids))); err != nil {
		t.Fatalf("read again: %v", err)
	}
	for _, alg := range []sortthread.Algorithm{sortthread.References, sortthread.Refs} {
		if got, want := threadAnswer(c, box, uids, alg), threadAnswer(byStrings, box, uids, alg); got != want {
			t.Fatalf("algorithm %d after the restart: %.200s, want %.200s", alg, got, want)
		}
	}

	// Records of messages above the UID the column was read up to: the column has their
	// numbers (readColumnIfMissing reads it), so they are left out and the box keeps its
	// numbers and rows.
	c = newSortKeyCache(1 << 20)
	if _, err := c.appendColumn(box, nil, uids[half-1], len(uids), column(0, half)); err != nil {
		t.Fatal(err)
	}
	c.put(box, uids[half:], entries[half:])
	if keys, rows := c.snapshot(box, uids); keys.idMode != threadIDsNumbers || rows[0] != 0 || rows[half] != -1 {
		t.Fatalf("after records above the column's read point: mode %d, first row %d, row of the first record %d", keys.idMode, rows[0], rows[half])
	}

	// Records of messages the column lacks (at or below its read point): genuinely
	// without numbers, the box turns to strings.
	c = newSortKeyCache(1 << 20)
	if _, err := c.appendColumn(box, nil, uids[len(uids)-1], len(uids), column(0, half)); err != nil {
		t.Fatal(err)
	}
	c.put(box, uids[half:], entries[half:])
	if keys, rows := c.snapshot(box, uids); keys.idMode != threadIDsStrings || rows[0] != -1 || rows[half] < 0 {
		t.Fatalf("after records the column lacks: mode %d, first row %d, row of the first record %d", keys.idMode, rows[0], rows[half])
	}
}
