package metadata

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The listing column: per mailbox and UID, what the SELECT listing (ListMessages, listing.go)
// sends of a message, its MODSEQ and flags, kept apart from the message's record, so that
// a cold SELECT of a large mailbox reads a few thousand small values instead of a million
// records. With the records, a 1,000,000-message listing read ~125 MB of Pebble blocks
// (a blob key, dates, size, thread per message) that no longer fit the block cache, so
// each listing read, allocated and decompressed them all again: most of a cold SELECT's
// CPU (docs/benchmarks.md, branch coldsel21). The column holds ~13 bytes a message.
//
// Layout: chunks as the sort-key column's (sortcolumn.go): one value per run of
// sortChunkUIDs UIDs (listingChunkKey), holding the records of the messages of that run in
// UID order, a record being the UID as a varint, then the entry preceded by its length as
// a varint; the entry is the MODSEQ as a varint, then the message's flags fields exactly
// as its MessageIndex encodes them (tag, length and flag each, in order: what
// indexModseqFlags reads off a record, so the listing's flag-set dictionary treats both
// alike). A command collects its edits per chunk (cmdCtx.columnEdits) and rewrites each
// chunk it touched once, in finish: addMessage adds an entry (APPEND, import, COPY,
// MOVE, the INBOX rename), a flag change replaces it (StoreFlags), removeMessage removes
// it (EXPUNGE, MOVE) and destroyMailbox removes the whole column.
//
// The column is kept only for a mailbox whose record says listing_column, set when the
// mailbox is created; then it has an entry for exactly the messages the mailbox holds,
// with their MODSEQ and shared flags (a user's private \Seen is applied at listing, as for
// the records). A mailbox stored before the column keeps listing_column false, has no
// chunks, and is listed from its records. Nothing migrates it at load or restore: the
// FSM's state must stay a function of the log (package doc, Determinism). A replica of the
// previous version applying the same log writes no chunks but carries the field along (as
// an unknown field of the record), so once upgraded its column would lack the messages it
// added in between and its listings would miss them: upgrade the replicas of a group
// together, as for the sort-key column.

// listingChunkKey is the key of a mailbox's chunk number chunk of the listing column.
func listingChunkKey(mailbox uint64, chunk uint32) []byte {
	return mailboxUIDKey(prefixListingChunk, mailbox, chunk)
}

// listingEntry is the column entry of a message with idx's MODSEQ and flags.
func listingEntry(idx *metadatapb.MessageIndex) []byte {
	n := protowire.SizeVarint(idx.GetModseq())
	for _, f := range idx.GetFlags() {
		n += 2 + protowire.SizeBytes(len(f))
	}
	b := protowire.AppendVarint(make([]byte, 0, n), idx.GetModseq())
	for _, f := range idx.GetFlags() {
		b = protowire.AppendTag(b, indexFlagsField, protowire.BytesType)
		b = protowire.AppendString(b, f)
	}
	return b
}

// putListing sets the listing entry of mailbox's uid to idx's MODSEQ and flags, if the
// mailbox keeps the column: a new message's or a changed one's.
func (c *cmdCtx) putListing(ms *mailboxState, uid uint32, idx *metadatapb.MessageIndex) {
	if !ms.rec.GetListingColumn() {
		return
	}
	c.columnEdit(listingChunkKey(ms.box().GetId(), uid/sortChunkUIDs)).add(uid, listingEntry(idx))
}

// dropListing removes the listing entry of a message of ms being removed.
func (c *cmdCtx) dropListing(ms *mailboxState, uid uint32) {
	if !ms.rec.GetListingColumn() {
		return
	}
	e := c.columnEdit(listingChunkKey(ms.box().GetId(), uid/sortChunkUIDs))
	e.removes = append(e.removes, uid)
}

// listingFromColumn is messageList's scan over the listing column (mailbox keeps it): the
// messages above afterUID, at most limit when limit > 0 (More set when more remain), with
// their MODSEQs, and each one's flag set looked up in dict, its index appended to indexes.
func (v *view) listingFromColumn(resp *metadatapb.ListMessagesResponse, mailbox uint64, afterUID, limit uint32, dict *flagSetDict, indexes []uint32) ([]uint32, error) {
	// The flags of the message before (a copy: the iterator's value is gone at its next
	// step) and their set: neighbours mostly share their flags.
	var lastRaw []byte
	var lastSet uint32
	haveLast := false
	upper := mailboxPrefixEnd(prefixListingChunk, mailbox)
	err := scan(v.r, listingChunkKey(mailbox, (afterUID+1)/sortChunkUIDs), upper, func(k, val []byte) (bool, error) {
		for len(val) > 0 {
			uid, rec, rest, ok := nextColumnRecord(val)
			if !ok {
				return false, fmt.Errorf("listing chunk %x does not take apart", k)
			}
			val = rest
			if uid <= afterUID {
				continue
			}
			if limit > 0 && len(resp.Uids) == int(limit) {
				resp.More = true
				return false, nil
			}
			_, n := protowire.ConsumeVarint(rec)
			entry, _ := protowire.ConsumeBytes(rec[n:]) // whole: nextColumnRecord
			modseq, m := protowire.ConsumeVarint(entry)
			if m < 0 {
				return false, fmt.Errorf("listing entry of UID %d does not take apart", uid)
			}
			raw := entry[m:]
			if !haveLast || !bytes.Equal(raw, lastRaw) {
				set, err := dict.lookup(raw)
				if err != nil {
					return false, fmt.Errorf("listing entry of UID %d: %w", uid, err)
				}
				lastRaw, lastSet, haveLast = append(lastRaw[:0], raw...), set, true
			}
			resp.Uids = append(resp.Uids, uid)
			resp.Modseqs = append(resp.Modseqs, modseq)
			indexes = append(indexes, lastSet)
		}
		return true, nil
	})
	return indexes, err
}
