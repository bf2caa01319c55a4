package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// pruneMemo is what the prunes of one batch found, so that the commands after the first
// skip a scan whose outcome is already known (issue 14: the scans of pruneDedup,
// pruneMarks and pruneHistory, each opening a Pebble iterator, were a third of the CPU of
// applying a batch of one-message Appends, and almost always found nothing).
//
// A memo only ever lets a prune skip a scan that would have found nothing to drop and so
// written nothing: the store after a batch is the same whether a command scanned or was
// told by the memo, so replicas that group the log into different batches still agree
// (doc.go "Determinism"). Every write of the batch goes through the txn, which shows it to
// the memo (track) before anything can read the memo again; a write that could make a
// memo wrong forgets or lowers it, rollbacks included (they write through mustSet and
// mustDelete). A committed batch hands its memo to the next (txn.carry, as its read
// cache): the dedup and mark prunes learn the time of the oldest record not yet due, so
// that the batches of one Append each skip their scan until it is due, and every record a
// batch writes narrows the memo to end before its expiry; the history memo keeps the
// stamp of each mailbox's first journal entry and tombstone, which a later batch's log
// time passes only once they are old enough to prune (issue 14, append21: the first
// command of every batch on a mailbox scanned its history). The store's every write goes
// through a txn, so what a memo says of it stays true from batch to batch. A batch that
// does not commit hands nothing on, and a restored snapshot starts a new store generation
// without it.
type pruneMemo struct {
	dedup, marks expiryMemo
	// history is per mailbox id (history.go).
	history map[uint64]*historyMemo
}

// expiryMemo records that an expiry index (prefix, 8-byte big-endian time, rest) holds no
// key with a time in [floor, upTo], in the uint64 order the prune scans use.
type expiryMemo struct {
	known       bool
	floor, upTo uint64
}

// empty reports whether a prune from floor up to now would find nothing.
func (m *expiryMemo) empty(floor, now int64) bool {
	return m.known && uint64(floor) >= m.floor && uint64(now) <= m.upTo
}

// learnBefore records that the index holds nothing in [floor, next) (next 0: nothing from
// floor on, as far as uint64 reaches).
func (m *expiryMemo) learnBefore(floor int64, next uint64) {
	upTo := uint64(math.MaxUint64)
	if next != 0 {
		upTo = next - 1
	}
	*m = expiryMemo{known: true, floor: uint64(floor), upTo: upTo}
}

// set narrows the memo to end before key's time if that falls in its range, and forgets
// it if nothing is left.
func (m *expiryMemo) set(key []byte) {
	if !m.known {
		return
	}
	if len(key) < 9 {
		m.known = false
		return
	}
	if t := binary.BigEndian.Uint64(key[1:9]); t >= m.floor && t <= m.upTo {
		m.upTo = t - 1
		m.known = t > m.floor
	}
}

// historyMemo bounds the log time of the first journal entry and the first tombstone that
// a mailbox's pruneHistory would look at.
type historyMemo struct {
	journal, tombstones firstEntry
}

// firstEntry records that the first entry of a mailbox's journal (or tombstones) at the
// scan start of floor is stamped at or after ts (math.MaxInt64: there is none). Inserting
// an entry lowers ts to the entry's stamp if it is earlier (the first entry is then the
// old one or the new one); deleting one forgets the memo.
type firstEntry struct {
	known bool
	floor uint64
	ts    int64
}

// nothingBefore reports whether a prune of the entries stamped before cutoff, scanning
// from floor, would find nothing.
func (e *firstEntry) nothingBefore(floor uint64, cutoff int64) bool {
	return e.known && e.floor == floor && cutoff <= e.ts
}

func (e *firstEntry) learn(floor uint64, ts int64) {
	*e = firstEntry{known: true, floor: floor, ts: ts}
}

func (e *firstEntry) set(ts int64, ok bool) {
	if !ok {
		e.known = false
	}
	e.ts = min(e.ts, ts)
}

// noEntry is firstEntry.ts when a scan found no entry.
const noEntry = math.MaxInt64

// historyOf returns the memo of a mailbox, creating it.
func (p *pruneMemo) historyOf(mailbox uint64) *historyMemo {
	if m := p.history[mailbox]; m != nil {
		return m
	}
	if p.history == nil {
		p.history = make(map[uint64]*historyMemo)
	}
	m := &historyMemo{}
	p.history[mailbox] = m
	return m
}

// track shows the memo a write of key: a set of value (found) or a delete.
func (p *pruneMemo) track(key, value []byte, found bool) {
	if len(key) == 0 {
		return
	}
	switch key[0] {
	case prefixDedupAge:
		if found {
			p.dedup.set(key)
		}
	case prefixMarkAge:
		if found {
			p.marks.set(key)
		}
	case prefixJournal, prefixTombstone:
		if len(key) < 9 || len(p.history) == 0 {
			return
		}
		m := p.history[binary.BigEndian.Uint64(key[1:9])]
		if m == nil {
			return
		}
		e := &m.journal
		if key[0] == prefixTombstone {
			e = &m.tombstones
		}
		if !found {
			e.known = false
			return
		}
		if key[0] == prefixJournal {
			ts, err := journalTimestamp(value)
			e.set(ts, err == nil)
		} else {
			e.set(int64(decodeUint64(value)), len(value) == 8)
		}
	}
}

// pruneExpired is pruneDedup's and pruneMarks': it gives drop up to batch keys of the age
// index under prefix (the expiry, then account NUL key) whose expiry is at or before now
// (the retry horizon), scanning from the floor stored under floorKey, the expiry of the
// last key the prune before took, so that deleted keys below it are never iterated again;
// then it stores the new floor and teaches memo what it found. what names the prune in
// errors.
func pruneExpired(tx *txn, what string, prefix byte, floorKey []byte, memo *expiryMemo, now int64, batch int, drop func(ageKey []byte, account string, key []byte, expires int64) error) error {
	v, _, err := tx.get(floorKey)
	if err != nil {
		return err
	}
	floor := int64(decodeUint64(v))
	if floor > now || memo.empty(floor, now) {
		// Nothing expired since an earlier command of the batch looked.
		return nil
	}
	lower := binary.BigEndian.AppendUint64(append(make([]byte, 0, 9), prefix), uint64(floor))
	upper := []byte{prefix + 1}
	var expired [][]byte
	var next uint64 // the expiry of the first key not yet due (0: none)
	err = scan(tx, lower, upper, func(k, _ []byte) (bool, error) {
		if len(k) >= 9 {
			if t := binary.BigEndian.Uint64(k[1:9]); t > uint64(now) {
				next = t
				return false, nil
			}
		}
		expired = append(expired, append([]byte(nil), k...))
		return len(expired) < batch, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(expired) == 0 {
		memo.learnBefore(floor, next)
		return nil
	}
	for _, k := range expired {
		account, key, found := bytes.Cut(k[9:], []byte{0})
		if !found {
			return fmt.Errorf("%s: malformed key %x", what, k)
		}
		if err := drop(k, string(account), key, int64(binary.BigEndian.Uint64(k[1:9]))); err != nil {
			return err
		}
	}
	last := int64(binary.BigEndian.Uint64(expired[len(expired)-1][1:9]))
	tx.mustSet(floorKey, encodeUint64(uint64(last)))
	if len(expired) < batch {
		memo.learnBefore(floor, next)
	}
	return nil
}
