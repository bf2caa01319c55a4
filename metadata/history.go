package metadata

import (
	"fmt"
	"slices"
	"time"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The change history of a mailbox and how long it is kept.
//
// Two records let a client that was away catch up in O(changes) (RFC 7162): the journal
// ('J', one entry per command and MODSEQ with all its changes), which the change feed
// (Watch) replays from a cursor, and the tombstones ('X', one per expunged UID, keyed by the
// MODSEQ of the expunge), which answer VANISHED (EARLIER). Both would grow with every change
// forever, so each write command that changes a mailbox also drops, from that mailbox, the
// journal entries older than journalRetention and the tombstones older than
// tombstoneRetention (in log time, so every replica drops the same ones: metadata/doc.go
// "Determinism"), at most historyPruneBatch of each, and raises the mailbox's
// journal_floor / vanished_floor to the highest MODSEQ it dropped. Above its floor each
// record is complete.
//
// What clients see when they are older than a floor:
//   - A change feed whose cursor is below journal_floor cannot be replayed: Watch ends with
//     OutOfRange and the frontend ends the session with BYE [UNAVAILABLE] (a session would
//     have to sit in the mailbox without a working feed for journalRetention first).
//   - ListVanished below vanished_floor answers complete=false with the tombstones it has;
//     the frontend then reports every UID the client may know and the mailbox no longer has
//     as VANISHED (EARLIER), narrowed with the client's message sequence match data (RFC
//     7162 3.2.5.2). It never reports a UID as present that is gone.
//
// The tombstones outlive the journal: they are small (one key per expunged message) and
// expunges are what a resync cannot guess, while flag changes it can (FETCH CHANGEDSINCE
// reads the messages' own MODSEQs, which are never dropped).
const (
	journalRetention   = 30 * 24 * time.Hour
	tombstoneRetention = 180 * 24 * time.Hour
	historyPruneBatch  = 64
)

// pruneHistory drops the mailbox's history older than the retention (see above).
func (c *cmdCtx) pruneHistory(ms *mailboxState) error {
	box := ms.box()
	id := box.GetId()
	memo := c.tx.memo.historyOf(id)
	if err := c.pruneJournal(ms, &memo.journal); err != nil {
		return err
	}
	return c.pruneTombstones(ms, &memo.tombstones)
}

// pruneJournal drops up to historyPruneBatch journal entries older than journalRetention,
// unless known drops that the scan would find none (prunememo.go).
func (c *cmdCtx) pruneJournal(ms *mailboxState, known *firstEntry) error {
	box := ms.box()
	id := box.GetId()
	cutoff := c.now - int64(journalRetention)
	floor := box.GetJournalFloor()
	if known.nothingBefore(floor, cutoff) {
		return nil
	}
	var old [][]byte
	first := int64(noEntry)
	err := scan(c.tx, journalKey(id, floor+1), mailboxPrefixEnd(prefixJournal, id), func(k, v []byte) (bool, error) {
		ts, err := journalTimestamp(v)
		if err != nil {
			return false, fmt.Errorf("decode journal entry %d of mailbox %d: %w", modseqFromJournalKey(k), id, err)
		}
		if ts >= cutoff {
			first = ts
			return false, nil
		}
		old = append(old, append([]byte(nil), k...))
		floor = modseqFromJournalKey(k)
		return len(old) < historyPruneBatch, nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		c.tx.mustDelete(k)
	}
	if floor > box.GetJournalFloor() {
		box.JournalFloor = floor
		ms.dirty = true
	}
	if len(old) < historyPruneBatch {
		known.learn(floor, first)
	}
	return nil
}

// pruneTombstones drops up to historyPruneBatch tombstones older than tombstoneRetention,
// unless known drops that the scan would find none (prunememo.go).
func (c *cmdCtx) pruneTombstones(ms *mailboxState, known *firstEntry) error {
	box := ms.box()
	id := box.GetId()
	// Tombstones of one MODSEQ may be dropped over several commands, so the scan starts at
	// the floor itself: what is left there is older than the retention too.
	cutoff := c.now - int64(tombstoneRetention)
	floor := box.GetVanishedFloor()
	if known.nothingBefore(floor, cutoff) {
		return nil
	}
	var old [][]byte
	first := int64(noEntry)
	err := scan(c.tx, tombstoneKey(id, floor, 0), mailboxPrefixEnd(prefixTombstone, id), func(k, v []byte) (bool, error) {
		if ts := int64(decodeUint64(v)); ts >= cutoff {
			first = ts
			return false, nil
		}
		old = append(old, append([]byte(nil), k...))
		floor = modseqFromTombstoneKey(k)
		return len(old) < historyPruneBatch, nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		c.tx.mustDelete(k)
	}
	if floor > box.GetVanishedFloor() {
		box.VanishedFloor = floor
		ms.dirty = true
	}
	if len(old) < historyPruneBatch {
		known.learn(floor, first)
	}
	return nil
}

// journalTimestamp returns the timestamp_unix_nano of a stored ChangeBatch, picked off
// the wire encoding without decoding its changes (every write command reads the oldest
// entry of its mailbox's journal for pruneHistory). Like proto.Unmarshal, the last
// occurrence of the field wins.
func journalTimestamp(v []byte) (int64, error) {
	ts, err := lastVarint(v, journalTimestampField)
	return int64(ts), err
}

// journalTimestampField is ChangeBatch's timestamp_unix_nano.
var journalTimestampField = (&metadatapb.ChangeBatch{}).ProtoReflect().Descriptor().Fields().ByName("timestamp_unix_nano").Number()

// vanished returns the UIDs in ranges expunged after modseq, ascending, from the tombstones
// (RFC 7162 3.2.5.1, 3.2.6): those after modseq are exactly the expunges since, so the cost
// is O(expunges since), whatever the mailbox's size. complete is false when modseq is below
// the mailbox's vanished_floor, so some of those expunges were forgotten.
func (v *view) vanished(box *metadatapb.Mailbox, modseq uint64, ranges [][2]uint32) (uids []uint32, complete bool, err error) {
	id := box.GetId()
	err = scan(v.r, tombstoneKey(id, modseq+1, 0), mailboxPrefixEnd(prefixTombstone, id), func(k, _ []byte) (bool, error) {
		if uid := uidFromTombstoneKey(k); inRanges(ranges, uid) {
			uids = append(uids, uid)
		}
		return true, nil
	})
	slices.Sort(uids)
	return slices.Compact(uids), modseq >= box.GetVanishedFloor(), err
}
