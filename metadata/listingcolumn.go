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
// alike). A command collects its edits per chunk (cmdCtx.columnEdits), which the batch
// writes once per chunk (columnbatch.go): addMessage adds an entry (APPEND, import, COPY,
// MOVE, the INBOX rename), a flag change replaces it (StoreFlags), removeMessage removes
// it (EXPUNGE, MOVE) and destroyMailbox removes the whole column.
//
// The column is kept only for a mailbox whose record says listing_column, set when the
// mailbox is created by a command of FeatureListingColumn (featurelevel.go: the group's
// level stamped on it, so never while a replica of an older build applies the log); then
// it has an entry for exactly the messages the mailbox holds,
// with their MODSEQ and shared flags (a user's private \Seen is applied at listing, as for
// the records). A mailbox stored before the column has listing_column false and is listed
// from its records. Nothing migrates it at load or restore: the FSM's state must stay a
// function of the log (package doc, Determinism). The background backfill does, through
// the log (NumberMessagesCommand, numberfill.go, after the numbers and the dates):
//
//   - A command writes the entries of the records above listed_through_uid, in UID order,
//     at most max_entries of them, each built from the stored record as putListing builds
//     it from the index; the record then holds the last UID written. The command that
//     finds no record above it sets listing_column (and listed_through_uid back to 0).
//   - Meanwhile the column holds exactly the entries of the messages at or below
//     listed_through_uid: APPEND, STORE, EXPUNGE, COPY and MOVE keep the entry of a UID at
//     or below it (listsUID), and write nothing above it, where the next command reads
//     the record as it then is. A chunk the fill point cuts holds entries below it only;
//     the entries the fill adds later merge into it by UID (editColumnChunk), so none is
//     missed or written twice. An APPEND takes UIDNEXT, above every record, so it is
//     always the fill's to write until listing_column.
//   - Everything comes from the store and the command, so every replica writes the same;
//     a command applied twice resumes where the last stopped.
//
// A replica of a build from before the column writes no chunks, and carries the field
// along (as an unknown field of the record) without keeping the column. So while one is
// in the group its level, stamped on every command, keeps the others from marking a new
// mailbox listing_column, and the backfill waits (featurelevel.go); the mailboxes created
// meanwhile are filled once every member has the level.

// listingChunkKey is the key of a mailbox's chunk number chunk of the listing column.
func listingChunkKey(mailbox uint64, chunk uint32) []byte {
	return mailboxUIDKey(prefixListingChunk, mailbox, chunk)
}

// maxListingFlags bounds the flags fields an entry of the listing column holds. A message
// may carry any number of keywords (each STORE adds up to a command's worth), and a chunk
// holds sortChunkUIDs entries that every write in its range rewrites whole, so without a
// bound one chunk could grow past what a write should cost and past what a snapshot field
// may hold (snapshot.go readN). An entry whose flags are longer holds the MODSEQ 0 alone
// (no stored message has MODSEQ 0: RFC 7162 3.1.1 mod-sequences are positive), and a
// listing reads that message's MODSEQ and flags from its record.
const maxListingFlags = 1024

// listingEntry is the column entry of a message with idx's MODSEQ and flags.
func listingEntry(idx *metadatapb.MessageIndex) []byte {
	n := 0
	for _, f := range idx.GetFlags() {
		n += 2 + protowire.SizeBytes(len(f))
	}
	if n > maxListingFlags {
		return protowire.AppendVarint(nil, 0)
	}
	b := protowire.AppendVarint(make([]byte, 0, n+protowire.SizeVarint(idx.GetModseq())), idx.GetModseq())
	for _, f := range idx.GetFlags() {
		b = protowire.AppendTag(b, indexFlagsField, protowire.BytesType)
		b = protowire.AppendString(b, f)
	}
	return b
}

// listingEntryOf is the column entry of a message of modseq whose encoded flags fields are
// flags (as indexModseqFlags reads them off a record).
func listingEntryOf(modseq uint64, flags []byte) []byte {
	if len(flags) > maxListingFlags {
		return protowire.AppendVarint(nil, 0)
	}
	return append(protowire.AppendVarint(make([]byte, 0, 10+len(flags)), modseq), flags...)
}

// listsUID reports whether the listing column of a mailbox with rec keeps the entry of
// uid: every one once listing_column, else those the backfill wrote (listed_through_uid).
func listsUID(rec *metadatapb.MailboxRecord, uid uint32) bool {
	return rec.GetListingColumn() || uid <= rec.GetListedThroughUid()
}

// putListing sets the listing entry of mailbox's uid to idx's MODSEQ and flags, if the
// mailbox keeps it (listsUID): a new message's or a changed one's.
func (c *cmdCtx) putListing(ms *mailboxState, uid uint32, idx *metadatapb.MessageIndex) {
	if !c.writesListing(ms, uid) {
		return
	}
	c.columnEdit(listingChunkKey(ms.box().GetId(), uid/sortChunkUIDs)).add(uid, listingEntry(idx))
}

// dropListing removes the listing entry of a message of ms being removed.
func (c *cmdCtx) dropListing(ms *mailboxState, uid uint32) {
	if !c.writesListing(ms, uid) {
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
			if modseq == 0 { // flags over maxListingFlags: in the record
				val, found, err := getRaw(v.r, messageKey(mailbox, uid))
				if err != nil || !found {
					return false, fmt.Errorf("listing entry of UID %d: record (found %v): %v", uid, found, err)
				}
				if modseq, raw, err = indexModseqFlags(val, nil); err != nil {
					return false, fmt.Errorf("record of UID %d: %w", uid, err)
				}
			}
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

// fillListing writes the listing entries of ms's records above listed_through_uid, at
// most limit of them (NumberMessagesCommand, numberfill.go), and sets listing_column when
// it finds no record above the last; it returns whether it did.
func (c *cmdCtx) fillListing(ms *mailboxState, limit int) (bool, error) {
	mailbox := ms.box().GetId()
	var raw []byte
	return c.fillStage(ms, c.walkRecords, &ms.rec.ListedThroughUid, &ms.rec.ListingColumn, limit, func(uid uint32, val []byte) error {
		modseq, flags, err := indexModseqFlags(val, raw[:0])
		if err != nil {
			return fmt.Errorf("record of UID %d: %w", uid, err)
		}
		raw = flags
		c.columnEdit(listingChunkKey(mailbox, uid/sortChunkUIDs)).add(uid, listingEntryOf(modseq, flags))
		return nil
	})
}
