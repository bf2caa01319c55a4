package metadata

import (
	"encoding/binary"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The Message-ID dictionary of a mailbox: the FSM numbers every distinct Message-ID that the
// sort keys of the mailbox's messages name (their own and their references', RFC 5256 4),
// densely from 1 per mailbox, and the column entry carries the numbers beside the strings
// (SortColumnEntry.message_number, reference_numbers). THREAD REFERENCES then links
// messages by number, with no string map on the frontend (docs/benchmarks.md: interning a
// million Message-IDs was most of a first THREAD's cost).
//
// Numbers are given in the apply, in the command that adds the message (putSortColumn), in
// the order of its ids (Message-ID, then the references in their order): the dictionary is
// FSM state ('I' keys, keys.go) and the ids come from the log, so every replica gives the
// same numbers. Ids compare as octet strings, exactly as the frontend's interning compares
// them, so two messages share a number exactly when they share the string; "" (none) is 0
// and takes no number. MailboxRecord.last_message_number is the last number given.
//
// An expunge leaves the dictionary as it is: a number stays given to its Message-ID (a later
// message with the same id or referring to it gets the same number), so numbers are dense
// over the ids the mailbox ever had, not over those it has now. The dictionary goes with
// the mailbox (destroySortColumn). A rename keeps the mailbox id, and so its dictionary.
//
// Entries without numbers: those stored before the dictionary, those of the 'C' layout,
// those with an id longer than maxNumberedID bytes (which would make a long key), those
// naming an id the dictionary has no number for once it gave maxMessageNumber numbers, and
// the messages the column lacks; the frontend compares the strings of those
// (frontend/imap sortcache.go), so the answers are the same either way.
//
// The dictionary is bounded by maxMessageNumber, not trimmed: an expunge that empties a
// mailbox keeps it. Dropping it would now cost O(1) writes (txn.dropRange, as a DELETE
// does), but not keep THREAD's answers: a session that has not yet been told of the
// expunge (RFC 9051 7.5.1: no EXPUNGE during FETCH, STORE, SEARCH) still sees the expunged
// messages, with their numbers, beside messages appended since; restarting the numbers at
// 1 would link unrelated ids, and numbering on from last_message_number would leave an old
// and a new message with one Message-ID unlinked. Either way a reset is a change of what an
// existing command writes, to be gated by a feature level (featurelevel.go).

// maxNumberedID bounds the ids the dictionary holds: an entry naming a longer one is not
// numbered. The frontend's ids are at most 256 bytes (frontend/message.SortKeys).
const maxNumberedID = 1024

// maxMessageNumber is the last number a mailbox's dictionary gives: an entry naming an id
// without a number then is left unnumbered. It bounds the dictionary's keys, keeps
// last_message_number from wrapping past 2^32-1 (to 0, the number of no id, then to numbers
// other ids have), and is a constant of the apply, so every replica stops at the same
// entry. A variable only so that tests reach it.
var maxMessageNumber uint32 = 1 << 30

var (
	sortKeysMessageIDField  = fieldNumber(&metadatapb.SortKeys{}, "message_id")
	sortKeysReferencesField = fieldNumber(&metadatapb.SortKeys{}, "references")
	sortColumnNumberField   = fieldNumber(&metadatapb.SortColumnEntry{}, "message_number")
	sortColumnRefsField     = fieldNumber(&metadatapb.SortColumnEntry{}, "reference_numbers")
)

// messageNumberKey is the dictionary's key of id in mailbox.
func messageNumberKey(k []byte, mailbox uint64, id []byte) []byte {
	k = append(k, prefixMessageNumber)
	k = binary.BigEndian.AppendUint64(k, mailbox)
	return append(k, id...)
}

// threadIDs returns the Message-ID and references of encoded SortKeys, as subslices of
// keys; ok false if keys does not take apart or an id is longer than maxNumberedID.
func threadIDs(keys []byte, refs [][]byte) (id []byte, _ [][]byte, ok bool) {
	for off := 0; off < len(keys); {
		num, typ, n := protowire.ConsumeTag(keys[off:])
		if n < 0 {
			return nil, refs, false
		}
		off += n
		if typ == protowire.BytesType && (num == sortKeysMessageIDField || num == sortKeysReferencesField) {
			v, m := protowire.ConsumeBytes(keys[off:])
			if m < 0 || len(v) > maxNumberedID {
				return nil, refs, false
			}
			off += m
			if num == sortKeysMessageIDField {
				id = v // the last one, as a decoder takes it
			} else {
				refs = append(refs, v)
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, keys[off:])
		if m < 0 {
			return nil, refs, false
		}
		off += m
	}
	return id, refs, true
}

// messageNumber returns the number of id in ms's dictionary, giving it the next number if
// it has none; 0 for "". ok is false when id has none and the dictionary gave
// maxMessageNumber numbers.
func (c *cmdCtx) messageNumber(ms *mailboxState, id []byte) (n uint32, ok bool, _ error) {
	if len(id) == 0 {
		return 0, true, nil
	}
	return c.dictionaryNumber(ms, messageNumberKey(c.tx.alloc(9+len(id)), ms.box().GetId(), id), &ms.rec.LastMessageNumber, maxMessageNumber)
}

// dictionaryNumber returns the number key holds in one of ms's dictionaries (the
// Message-ID one, or the subject one, subjectnumbers.go), giving it the next number after
// *last if it has none; ok is false when it has none and *last reached bound.
func (c *cmdCtx) dictionaryNumber(ms *mailboxState, key []byte, last *uint32, bound uint32) (n uint32, ok bool, _ error) {
	v, found, err := c.tx.get(key)
	if err != nil {
		return 0, false, err
	}
	if found && len(v) == 4 {
		return binary.BigEndian.Uint32(v), true, nil
	}
	if *last >= bound {
		return 0, false, nil
	}
	*last++
	ms.dirty = true
	n = *last
	c.tx.mustSet(key, binary.BigEndian.AppendUint32(c.tx.alloc(4), n))
	return n, true, nil
}

// appendThreadNumbers appends to entry the numbers of the Message-ID and references of
// keys (SortColumnEntry fields message_number and reference_numbers), given from ms's
// dictionary; entry is returned as it was if keys names an id the dictionary does not hold
// or cannot number (maxMessageNumber).
func (c *cmdCtx) appendThreadNumbers(ms *mailboxState, entry, keys []byte) ([]byte, error) {
	id, refs, ok := threadIDs(keys, c.refsBuf[:0])
	c.refsBuf = refs[:0]
	if !ok {
		return entry, nil
	}
	n, ok, err := c.messageNumber(ms, id)
	if err != nil || !ok {
		return entry, err
	}
	packed := c.numbersBuf[:0]
	for _, r := range refs {
		rn, ok, err := c.messageNumber(ms, r)
		if err != nil || !ok {
			return entry, err
		}
		packed = protowire.AppendVarint(packed, uint64(rn))
	}
	c.numbersBuf = packed[:0]
	entry = protowire.AppendTag(entry, sortColumnNumberField, protowire.VarintType)
	entry = protowire.AppendVarint(entry, uint64(n))
	if len(refs) == 0 {
		return entry, nil
	}
	entry = protowire.AppendTag(entry, sortColumnRefsField, protowire.BytesType)
	return protowire.AppendBytes(entry, packed), nil
}
