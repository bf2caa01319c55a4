package metadata

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Private \Seen (proto/metadata.proto, "access control": each team member has their own
// read state in a shared mailbox). In a mailbox the user does not own, \Seen is the
// user's own: every response gives the user the stored (shared) flags with \Seen replaced
// by the user's record, and Mailbox.unseen counts the messages without it. The shared
// \Seen stays the owner's (nobody's in a tenant-shared mailbox, where only admin calls set
// it).
//
//   - A record holds the user's \Seen of one message and the MODSEQ of its last change,
//     also once cleared: the user's MODSEQ of a message is the larger of the shared one
//     and the record's, so it never goes back (RFC 7162 3.1.1).
//   - A change of a private \Seen takes the command's MODSEQ in the mailbox (HIGHESTMODSEQ
//     grows for everyone, which RFC 7162 allows) and, unless the same command changed the
//     message's shared flags, journals a FLAGS change with the user's whole flags and
//     Change.user set, which only that user's Watch streams receive. Watch gives each user
//     the shared changes with \Seen replaced by the user's current record, so the last
//     change a session receives for a message is always its state.
//   - Records go with their message (expunge, also by MOVE), their mailbox, and their user
//     (account deletion); per mailbox and user a counter of the records that say seen
//     makes Mailbox.unseen a lookup.

// privateSeen is one record: the user's \Seen of a message and the MODSEQ that set it.
type privateSeen struct {
	modseq uint64
	seen   bool
}

func (p privateSeen) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 9), p.modseq)
	if p.seen {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodePrivateSeen(b []byte) (privateSeen, error) {
	if len(b) != 9 {
		return privateSeen{}, fmt.Errorf("private \\Seen record of %d bytes", len(b))
	}
	return privateSeen{modseq: binary.BigEndian.Uint64(b), seen: b[8] == 1}, nil
}

// isPrivate reports whether user's \Seen in owner's mailboxes is its own: user is neither
// the owner nor an admin call.
func isPrivate(user, owner string) bool { return !isOwner(user, owner) }

// withSeen returns flags (canonical) with \Seen set or cleared.
func withSeen(flags []string, seen bool) []string {
	if hasFlag(flags, flagSeen) == seen {
		return flags
	}
	if seen {
		// \Seen comes first in canonical order (canonicalFlags).
		return append([]string{flagSeen}, flags...)
	}
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == flagSeen })
}

// privateView returns the flags and MODSEQ user sees for a message whose shared state is
// flags and modseq, given its record (zero when there is none).
func privateView(flags []string, modseq uint64, rec privateSeen) ([]string, uint64) {
	return withSeen(flags, rec.seen), max(modseq, rec.modseq)
}

// scanPrivateSeen calls fn for user's records in the mailbox with a UID in [first, last],
// in UID order, until fn returns false.
func scanPrivateSeen(r reader, mailbox uint64, user string, first, last uint32, fn func(uid uint32, rec privateSeen) bool) error {
	prefix := privateSeenPrefix(mailbox, user)
	upper := prefixEnd(prefix)
	if last < maxUID {
		upper = privateSeenKey(mailbox, user, last+1)
	}
	return scan(r, privateSeenKey(mailbox, user, first), upper, func(k, v []byte) (bool, error) {
		rec, err := decodePrivateSeen(v)
		if err != nil {
			return false, fmt.Errorf("decode %q: %w", k, err)
		}
		return fn(binary.BigEndian.Uint32(k[len(prefix):]), rec), nil
	})
}

// privateSeenIn returns user's records for the UIDs in ranges; the map is only looked up.
func privateSeenIn(r reader, mailbox uint64, user string, ranges [][2]uint32) (map[uint32]privateSeen, error) {
	out := map[uint32]privateSeen{}
	for _, rg := range ranges {
		err := scanPrivateSeen(r, mailbox, user, rg[0], rg[1], func(uid uint32, rec privateSeen) bool {
			out[uid] = rec
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// seenCount returns how many of user's records in the mailbox say seen.
func seenCount(r reader, user string, mailbox uint64) (uint64, error) {
	v, _, err := getRaw(r, seenCountKey(user, mailbox))
	return decodeUint64(v), err
}

// privateSeenCursor walks a user's records of one mailbox alongside its messages, both in
// UID order.
type privateSeenCursor struct {
	uids    []uint32
	records []privateSeen
	next    int
}

// load reads the user's records with a UID in [first, last].
func (c *privateSeenCursor) load(r reader, mailbox uint64, user string, first, last uint32) error {
	return scanPrivateSeen(r, mailbox, user, first, last, func(uid uint32, rec privateSeen) bool {
		c.uids = append(c.uids, uid)
		c.records = append(c.records, rec)
		return true
	})
}

// at returns the record of uid (zero, not seen, when there is none); uids must be asked
// for in ascending order.
func (c *privateSeenCursor) at(uid uint32) privateSeen {
	for c.next < len(c.uids) && c.uids[c.next] < uid {
		c.next++
	}
	if c.next < len(c.uids) && c.uids[c.next] == uid {
		return c.records[c.next]
	}
	return privateSeen{}
}

// applyPrivateSeen gives records of one mailbox, in UID order, user's view of \Seen.
func applyPrivateSeen(r reader, mailbox uint64, user string, records []*metadatapb.MessageRecord) error {
	if len(records) == 0 {
		return nil
	}
	var seen privateSeenCursor
	if err := seen.load(r, mailbox, user, records[0].GetUid(), records[len(records)-1].GetUid()); err != nil {
		return err
	}
	for _, rec := range records {
		rec.Flags, rec.Modseq = privateView(rec.GetFlags(), rec.GetModseq(), seen.at(rec.GetUid()))
	}
	return nil
}

// setPrivateSeen sets user's \Seen of message uid to seen at the command's MODSEQ.
func (c *cmdCtx) setPrivateSeen(ms *mailboxState, user string, uid uint32, seen bool) error {
	id := ms.box().GetId()
	key := privateSeenKey(id, user, uid)
	prior, found, err := getRaw(c.tx, key)
	if err != nil {
		return err
	}
	var was privateSeen
	if found {
		if was, err = decodePrivateSeen(prior); err != nil {
			return err
		}
	}
	c.tx.mustSet(key, privateSeen{modseq: c.bump(ms), seen: seen}.encode())
	if !found && ms.readersLoaded {
		if i, listed := slices.BinarySearch(ms.readers, user); !listed {
			ms.readers = slices.Insert(ms.readers, i, user)
		}
	}
	if was.seen == seen && found {
		return nil
	}
	count, err := seenCount(c.tx, user, id)
	if err != nil {
		return err
	}
	switch {
	case seen:
		count++
	case was.seen:
		count--
	}
	c.tx.mustSet(seenCountKey(user, id), encodeUint64(count))
	return nil
}

// readers returns the users with private \Seen records in the mailbox, sorted. It visits
// one key per user, seeking past the rest of each user's records.
func (c *cmdCtx) readers(ms *mailboxState) ([]string, error) {
	if ms.readersLoaded {
		return ms.readers, nil
	}
	prefix := mailboxPrefix(prefixPrivateSeen, ms.box().GetId())
	it, err := c.tx.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("new iterator: %w", err)
	}
	var users []string
	for valid := it.First(); valid; {
		rest := it.Key()[len(prefix):]
		end := slices.Index(rest, 0)
		if end < 0 {
			it.Close()
			return nil, fmt.Errorf("malformed private \\Seen key %q", it.Key())
		}
		user := string(rest[:end])
		users = append(users, user)
		// The next user's records start after user+"\x01": emails have no control bytes.
		valid = it.SeekGE(append(append(slices.Clone(prefix), user...), 1))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("iterate private \\Seen records: %w", err)
	}
	ms.readers, ms.readersLoaded = users, true
	return users, nil
}

// dropPrivateSeen removes every user's record of an expunged message.
func (c *cmdCtx) dropPrivateSeen(ms *mailboxState, uid uint32) error {
	users, err := c.readers(ms)
	if err != nil {
		return err
	}
	id := ms.box().GetId()
	for _, user := range users {
		key := privateSeenKey(id, user, uid)
		v, found, err := getRaw(c.tx, key)
		if err != nil || !found {
			if err != nil {
				return err
			}
			continue
		}
		rec, err := decodePrivateSeen(v)
		if err != nil {
			return err
		}
		c.tx.mustDelete(key)
		if rec.seen {
			count, err := seenCount(c.tx, user, id)
			if err != nil {
				return err
			}
			c.tx.mustSet(seenCountKey(user, id), encodeUint64(addDelta(count, -1)))
		}
	}
	return nil
}

// destroyPrivateSeen removes all records of a deleted mailbox and its readers' counters.
func (c *cmdCtx) destroyPrivateSeen(ms *mailboxState) error {
	users, err := c.readers(ms)
	if err != nil {
		return err
	}
	id := ms.box().GetId()
	for _, user := range users {
		if err := c.deleteRange(privateSeenPrefix(id, user)); err != nil {
			return err
		}
		c.tx.mustDelete(seenCountKey(user, id))
	}
	ms.readers = nil
	return nil
}

// forgetReader removes a deleted account's records from every mailbox it read.
func (c *cmdCtx) forgetReader(user string) error {
	prefix := seenCountPrefix(user)
	var mailboxes []uint64
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		mailboxes = append(mailboxes, binary.BigEndian.Uint64(k[len(prefix):]))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, id := range mailboxes {
		if err := c.deleteRange(privateSeenPrefix(id, user)); err != nil {
			return err
		}
		c.tx.mustDelete(seenCountKey(user, id))
		if ms, loaded := c.mailboxes[id]; loaded && ms.readersLoaded {
			ms.readers = slices.DeleteFunc(ms.readers, func(u string) bool { return u == user })
		}
	}
	return nil
}

// deleteRange deletes every key with prefix, through the undo log.
func (c *cmdCtx) deleteRange(prefix []byte) error {
	var keys [][]byte
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		keys = append(keys, slices.Clone(k))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		c.tx.mustDelete(k)
	}
	return nil
}

// changesFor turns journal entries into what the user of a Watch stream sees: changes of
// another user's private \Seen are left out, and in another owner's mailbox the user's own
// \Seen replaces the shared one in APPEND and FLAGS changes. A batch left without changes
// still carries its MODSEQ, so the stream's cursor moves on.
func (v *view) changesFor(w *watchState, entries []*metadatapb.ChangeBatch) error {
	private := isPrivate(w.user, w.owner)
	for _, e := range entries {
		kept := e.Changes[:0]
		for _, c := range e.GetChanges() {
			if c.GetUser() != "" && (!private || c.GetUser() != w.user) {
				continue
			}
			kind := c.GetKind()
			if private && c.GetUser() == "" && (kind == metadatapb.ChangeKind_CHANGE_KIND_APPEND || kind == metadatapb.ChangeKind_CHANGE_KIND_FLAGS) {
				v, found, err := getRaw(v.r, privateSeenKey(w.mailbox, w.user, c.GetUid()))
				if err != nil {
					return err
				}
				var rec privateSeen
				if found {
					if rec, err = decodePrivateSeen(v); err != nil {
						return err
					}
				}
				c.Flags = withSeen(c.GetFlags(), rec.seen)
			}
			kept = append(kept, c)
		}
		e.Changes = kept
	}
	return nil
}
