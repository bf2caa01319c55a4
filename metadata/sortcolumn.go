package metadata

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The sort-key column: per mailbox and UID, what SORT and THREAD order a message by (RFC
// 5256, RFC 5957), kept apart from the message's structure under its own prefix, so that
// the first SORT or THREAD of a mailbox reads it in one ordered scan of a few large values
// (ReadSortColumn) instead of picking the keys out of every stored structure
// (FetchMessages sort_keys_only).
//
// A message's entry is an encoded SortColumnEntry: the internal date and size from the
// message's index, then the structure's sort_keys field copied as it is (the FSM never
// decodes a structure, rawstructure.go, and takes apart only the Message-ID and references
// of the keys), then the numbers of those ids in the mailbox's Message-ID dictionary
// (messagenumbers.go). The column has an
// entry for a message exactly when the message exists and its stored structure has
// sort_keys of at most maxSortColumnKeys bytes, and the entry is then sortColumnEntry of the two; addMessage writes it
// (APPEND, import, COPY, MOVE, the INBOX rename), removeMessage (EXPUNGE, MOVE) and
// destroyMailbox (DELETE, an account's or tenant's deletion) remove it. A rename keeps the
// mailbox id, so the column.
//
// Layout. The entries are stored in chunks (sortChunkKey): one value per run of
// sortChunkUIDs UIDs (chunk number uid / sortChunkUIDs), holding the records of the
// messages of that run in UID order, a record being the UID as a varint, then the entry
// preceded by its length as a varint. So a 1,000,000-message mailbox is about 8,000 values
// rather than 1,000,000 keys (a Pebble step per key was most of what a first SORT cost,
// docs/benchmarks.md), and the service sends the chunks as they are (records in
// SortColumnChunk). A command collects its additions and removals per chunk
// (cmdCtx.columnEdits) and, once it has succeeded, hands them to the batch, which writes
// each chunk its commands touched once (columnbatch.go): an APPEND of one message edits
// the last chunk (at most sortChunkUIDs entries, about 20 KiB), and the 64 APPENDs of a
// batch into one mailbox write it once between them, not 64 times; an EXPUNGE of many
// messages edits each of their chunks once.
//
// Before the chunks, each entry had a key of its own (sortColumnKey, prefix 'C'). Those
// entries are still read (ReadSortColumn merges them with the chunks in UID order) and
// removed with their message; no command writes one any more, and nothing migrates them
// at load or restore: the FSM's state must stay a function of the log (package doc,
// Determinism). Replicas of two versions applying the same log therefore store the column
// differently: a replica of the previous version keeps per-message entries and does not
// read the chunks (a frontend reading from it reads the keys of the messages appended
// through a new leader from their records, which answers the same, more slowly), and a
// snapshot of a new replica restored on an old one lacks the column for those messages in
// the same way. Upgrade the replicas of a group together.
//
// Messages stored before the column was kept have no entry, and neither do those whose
// structure has no sort_keys (stored before the frontend extracted them). The metadata
// service cannot derive the keys of a structure without them (the frontend's parser does,
// frontend/message.SortKeys), so the frontend reads the keys of the UIDs the column lacks
// the old way (frontend/imap sort.go), which costs what SORT cost before only for those
// old messages.

// sortColumnChunkBytes bounds the records of one SortColumnChunk; each chunk is read from
// its own consistent view, released before it is sent.
const sortColumnChunkBytes = 512 << 10

// sortChunkUIDs is the run of UIDs one stored chunk covers: a chunk of 128 messages' keys
// is about 20 KiB, what an APPEND of one message rewrites.
const sortChunkUIDs = 128

var (
	sortColumnDateField = fieldNumber(&metadatapb.SortColumnEntry{}, "internal_date_unix")
	sortColumnSizeField = fieldNumber(&metadatapb.SortColumnEntry{}, "size")
	sortColumnKeysField = fieldNumber(&metadatapb.SortColumnEntry{}, "keys")
	keysSentField       = fieldNumber(&metadatapb.SortKeys{}, "sent_unix")
)

func sortColumnKey(mailbox uint64, uid uint32) []byte {
	return mailboxUIDKey(prefixSortColumn, mailbox, uid)
}

// structureSortKeys returns the bytes of a stored structure's sort_keys field, ok false if
// it has none (or the encoding does not take apart).
func structureSortKeys(structure []byte) (keys []byte, ok bool) {
	for off := 0; off < len(structure); {
		num, typ, n := protowire.ConsumeField(structure[off:])
		if n < 0 {
			return nil, false
		}
		if num == structureSortKeysField && typ == protowire.BytesType {
			_, _, tagLen := protowire.ConsumeTag(structure[off:])
			keys, _ = protowire.ConsumeBytes(structure[off+tagLen:])
			return keys, true
		}
		off += n
	}
	return nil, false
}

// sortColumnEntry is the canonical encoding of SortColumnEntry{internalDate, size, keys}
// (as Go's deterministic marshal writes it, so that it decodes as one).
func sortColumnEntry(internalDate int64, size uint64, keys []byte) []byte {
	b := make([]byte, 0, 48+len(keys))
	if internalDate != 0 {
		b = protowire.AppendTag(b, sortColumnDateField, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(internalDate))
	}
	if size != 0 {
		b = protowire.AppendTag(b, sortColumnSizeField, protowire.VarintType)
		b = protowire.AppendVarint(b, size)
	}
	b = protowire.AppendTag(b, sortColumnKeysField, protowire.BytesType)
	return protowire.AppendBytes(b, keys)
}

// sortChunkKey is the key of a mailbox's chunk number chunk of the column.
func sortChunkKey(mailbox uint64, chunk uint32) []byte {
	return mailboxUIDKey(prefixSortChunk, mailbox, chunk)
}

// appendColumnRecord appends the record of uid with entry to recs.
func appendColumnRecord(recs []byte, uid uint32, entry []byte) []byte {
	recs = protowire.AppendVarint(recs, uint64(uid))
	return protowire.AppendBytes(recs, entry)
}

// nextColumnRecord splits the first record off recs: its UID, the record (UID and entry)
// and the rest; ok false if recs does not start with a whole record.
func nextColumnRecord(recs []byte) (uid uint32, rec, rest []byte, ok bool) {
	v, n := protowire.ConsumeVarint(recs)
	if n < 0 || v > maxUID {
		return 0, nil, nil, false
	}
	_, m := protowire.ConsumeBytes(recs[n:])
	if m < 0 {
		return 0, nil, nil, false
	}
	return uint32(v), recs[:n+m], recs[n+m:], true
}

// columnEdit is what a command adds to and removes from one chunk of a column: the
// sort-key column's or the listing column's (listingcolumn.go), which store their chunks
// alike.
type columnEdit struct {
	key     []byte
	adds    []byte   // records, UIDs ascending unless unsorted
	removes []uint32 // UIDs, of the chunk and of its dates projection if it has one
	lastAdd uint32   // the UID of the last record of adds
	// unsorted: a record was added at or below lastAdd (a listing entry replaced twice in
	// one command); writeColumns sorts the records, the last of a UID winning.
	unsorted bool
	// For a chunk of the sort-key column (sortColumnEdit), the chunks of its dates and
	// subject projections (sortdates.go, subjectrecords.go) of the same UIDs, and their
	// records to add, UIDs ascending; nil for a chunk of the listing column.
	datesKey    []byte
	dateAdds    []byte
	subjectsKey []byte
	subjectAdds []byte
}

// add appends the record of uid with entry to the edit's additions.
func (e *columnEdit) add(uid uint32, entry []byte) {
	if len(e.adds) > 0 && uid <= e.lastAdd {
		e.unsorted = true
	}
	e.adds = appendColumnRecord(e.adds, uid, entry)
	e.lastAdd = max(e.lastAdd, uid)
}

// sortedAdds returns the edit's additions in UID order, one record per UID (the last
// added).
func (e *columnEdit) sortedAdds() []byte {
	if !e.unsorted {
		return e.adds
	}
	type record struct {
		uid uint32
		rec []byte
	}
	var recs []record
	for rest := e.adds; len(rest) > 0; {
		uid, rec, next, _ := nextColumnRecord(rest)
		recs = append(recs, record{uid, rec})
		rest = next
	}
	slices.SortStableFunc(recs, func(a, b record) int { return cmp.Compare(a.uid, b.uid) })
	out := make([]byte, 0, len(e.adds))
	for i, r := range recs {
		if i+1 < len(recs) && recs[i+1].uid == r.uid {
			continue
		}
		out = append(out, r.rec...)
	}
	return out
}

// linearEdits is how many chunk edits a command looks through one by one before it
// indexes them by key (cmdCtx.editIndex).
const linearEdits = 8

// columnEdit returns the command's edit of the chunk stored under key.
func (c *cmdCtx) columnEdit(key []byte) *columnEdit {
	if c.editIndex != nil {
		if e := c.editIndex[string(key)]; e != nil {
			return e
		}
	} else {
		for _, e := range c.columnEdits {
			if bytes.Equal(e.key, key) {
				return e
			}
		}
	}
	var e *columnEdit
	if c.editsUsed < len(c.editsBuf) {
		e = &c.editsBuf[c.editsUsed]
		c.editsUsed++
		*e = columnEdit{key: key}
	} else {
		e = &columnEdit{key: key}
	}
	if c.columnEdits == nil {
		c.columnEdits = c.editPtrs[:0]
	}
	c.columnEdits = append(c.columnEdits, e)
	switch {
	case c.editIndex != nil:
		c.editIndex[string(key)] = e
	case len(c.columnEdits) > linearEdits:
		c.editIndex = make(map[string]*columnEdit, 2*len(c.columnEdits))
		for _, e := range c.columnEdits {
			c.editIndex[string(e.key)] = e
		}
	}
	return e
}

// sortColumnEdit returns the command's edit of the sort-key column's chunk that holds
// mailbox's uid, with its chunks of the dates and subject projections.
func (c *cmdCtx) sortColumnEdit(mailbox uint64, uid uint32) *columnEdit {
	e := c.columnEdit(sortChunkKey(mailbox, uid/sortChunkUIDs))
	if e.datesKey == nil {
		e.datesKey = sortDatesKey(mailbox, uid/sortChunkUIDs)
		e.subjectsKey = subjectRecordsKey(mailbox, uid/sortChunkUIDs)
	}
	return e
}

// maxSortColumnKeys bounds the sort keys a column entry holds. The frontend's keys are far
// smaller (256 bytes a field, 64 references: under 20 KiB), but another client of the
// service may send up to a request's size per message, and 128 such entries in one chunk
// would make a value every APPEND into the run copies, too large for one ReadSortColumn
// message or a snapshot field (maxSnapshotField). A message with larger keys has no entry;
// the frontend reads its keys from its record. It depends only on the command, so every
// replica stores the same.
const maxSortColumnKeys = 32 << 10

// putSortColumn adds the column entry of a message being added with idx and structure, if
// the structure has sort keys of at most maxSortColumnKeys bytes, its record in the
// dates projection (sortdates.go), its record in the subject projection
// (subjectrecords.go) and its entry in the thread-keys projection (threadkeys.go), each if
// the command writes it (writesDates, writesSubjectRecords, writesThreadKeys).
// The entry carries the numbers of its Message-ID and references (messagenumbers.go) and,
// if the command writes it (writesSubjectNumbers), of its base subject (subjectnumbers.go).
func (c *cmdCtx) putSortColumn(ms *mailboxState, uid uint32, idx *metadatapb.MessageIndex, structure []byte) error {
	keys, ok := structureSortKeys(structure)
	if !ok || len(keys) > maxSortColumnKeys {
		return nil
	}
	entry, err := c.appendThreadNumbers(ms, sortColumnEntry(idx.GetInternalDateUnix(), idx.GetSize(), keys), keys)
	if err != nil {
		return err
	}
	if c.writesSubjectNumbers(ms, uid) {
		if entry, err = c.appendSubjectNumber(ms, entry, keys); err != nil {
			return err
		}
	}
	e := c.sortColumnEdit(ms.box().GetId(), uid)
	e.add(uid, entry)
	if c.writesDates(ms, uid) {
		internalDate := idx.GetInternalDateUnix()
		e.dateAdds = appendDateRecord(e.dateAdds, uid, sortDate(internalDate, keys), internalDate, idx.GetSize())
	}
	if c.writesSubjectRecords(ms, uid) {
		e.subjectAdds = subjectRecordOfEntry(e.subjectAdds, uid, entry)
	}
	if c.writesThreadKeys(ms, uid) {
		c.putThreadKeys(ms.box().GetId(), uid, entry)
	}
	return nil
}

// dropSortColumn removes the column entry of a message being removed: its own key if it
// was stored before the chunks, else from its chunk; and its record in the dates and
// subject projections (which a backfill gives entries of either layout, sortdates.go,
// subjectrecords.go) and in the thread-keys projection (threadkeys.go, likewise).
func (c *cmdCtx) dropSortColumn(mailbox uint64, uid uint32) error {
	key := sortColumnKey(mailbox, uid)
	if _, found, err := c.tx.get(key); err != nil {
		return err
	} else if found {
		c.tx.mustDelete(key)
	}
	e := c.sortColumnEdit(mailbox, uid)
	e.removes = append(e.removes, uid)
	c.dropThreadKeys(mailbox, uid)
	return nil
}

// destroySortColumn removes the whole column of a mailbox being destroyed: every key of
// its chunks, of its dates, subject and thread-keys projections, of its Message-ID and subject
// dictionaries and of the entries
// stored before the chunks, whatever they hold (a record without a message, left by a
// replica of the previous version, or a chunk that does not take apart), by range
// deletions when the command succeeds (txn.dropRange: O(1) writes for a mailbox of a
// million messages), and drops the command's pending edits of its chunks (and so of
// their dates and subject chunks).
func (c *cmdCtx) destroySortColumn(mailbox uint64) {
	c.destroyChunks(prefixSortChunk, mailbox)
	c.destroyChunks(prefixThreadKeys, mailbox)
	for _, prefix := range []byte{prefixSortDates, prefixSubjectRecords, prefixMessageNumber, prefixSubjectNumber, prefixSortColumn} {
		c.tx.dropRange(mailboxPrefix(prefix, mailbox), mailboxPrefixEnd(prefix, mailbox))
	}
}

// destroyChunks removes every chunk of a column (prefix) of a mailbox being destroyed, by
// a range deletion when the command succeeds, and drops the command's pending edits of
// them.
func (c *cmdCtx) destroyChunks(prefix byte, mailbox uint64) {
	chunks := mailboxPrefix(prefix, mailbox)
	c.columnEdits = slices.DeleteFunc(c.columnEdits, func(e *columnEdit) bool {
		if !bytes.HasPrefix(e.key, chunks) {
			return false
		}
		delete(c.editIndex, string(e.key))
		return true
	})
	c.tx.dropRange(chunks, mailboxPrefixEnd(prefix, mailbox))
}

// writeColumns hands the command's edit of each chunk of the sort-key and listing
// columns it touched, a sort-key chunk's with its chunks of the dates and subject
// projections, to the
// batch (txn.editChunk), in key order, once the command has succeeded: the batch writes
// each chunk once (columnbatch.go). An edit whose records are all of UIDs the command
// allocated (at or above the first, mailboxState.firstNewUID) adds above every record
// of the chunk, which holds none of a UID at or above the mailbox's UIDNEXT of before the
// command: the batch may append them without reading the chunk.
func (c *cmdCtx) writeColumns() error {
	slices.SortFunc(c.columnEdits, func(a, b *columnEdit) int { return bytes.Compare(a.key, b.key) })
	for _, e := range c.columnEdits {
		slices.Sort(e.removes)
		var firstNew uint32
		if ms := c.mailboxes[binary.BigEndian.Uint64(e.key[1:9])]; ms != nil {
			firstNew = ms.firstNewUID
		}
		above := func(first uint32) bool { return firstNew != 0 && first >= firstNew }
		if e.datesKey != nil {
			if err := c.tx.editChunk(e.datesKey, sortDateRecordLen, e.dateAdds, e.removes, len(e.dateAdds) >= sortDateRecordLen && above(dateRecordUID(e.dateAdds))); err != nil {
				return err
			}
			if err := c.tx.editChunk(e.subjectsKey, subjectRecordLen, e.subjectAdds, e.removes, len(e.subjectAdds) >= subjectRecordLen && above(dateRecordUID(e.subjectAdds))); err != nil {
				return err
			}
		}
		adds := e.sortedAdds()
		first, _, _, ok := nextColumnRecord(adds)
		if err := c.tx.editChunk(e.key, 0, adds, e.removes, ok && above(first)); err != nil {
			return err
		}
	}
	return nil
}

// editColumnChunk returns a new chunk value: old's records and those of adds (UIDs
// ascending) merged by UID, an added UID replacing old's record, without the records of
// removes. The column is derived data, so a stored chunk that does not take apart does
// not fail the command (which could then never remove the mailbox): old's records are
// kept up to the first that does not, the rest is dropped. The frontend reads the keys of
// the messages the column lacks from their records. Deterministic: every replica holds
// the same old bytes.
func editColumnChunk(old, adds []byte, removes []uint32) []byte {
	slices.Sort(removes)
	out := make([]byte, 0, len(old)+len(adds))
	keep := func(uid uint32, rec []byte) {
		if _, removed := slices.BinarySearch(removes, uid); !removed {
			out = append(out, rec...)
		}
	}
	addUID, addRec, addRest, addOK := nextColumnRecord(adds)
	for len(old) > 0 {
		uid, rec, rest, ok := nextColumnRecord(old)
		if !ok {
			break
		}
		old = rest
		replaced := false
		for addOK && addUID <= uid {
			replaced = replaced || addUID == uid
			keep(addUID, addRec)
			addUID, addRec, addRest, addOK = nextColumnRecord(addRest)
		}
		if !replaced {
			keep(uid, rec)
		}
	}
	for addOK {
		keep(addUID, addRec)
		addUID, addRec, addRest, addOK = nextColumnRecord(addRest)
	}
	return out
}

// sortColumnRecords reads the column of mailbox above afterUID as records in UID order
// (see Layout above), up to about maxBytes (full: the previous read reached that): the
// chunks' records merged with the per-message entries stored before the chunks. more
// reports that records may follow the last one returned, whose UID is last.
func (v *view) sortColumnRecords(mailbox uint64, afterUID uint32, maxBytes int, full bool) (recs []byte, last uint32, more bool, err error) {
	if afterUID == maxUID {
		return nil, 0, false, nil
	}
	recs, last, more, err = v.chunkRecords(prefixSortChunk, mailbox, afterUID, maxBytes, full)
	if err != nil {
		return nil, 0, false, err
	}
	// The entries stored before the chunks, up to the chunks' last UID if they stopped.
	upper := mailboxPrefixEnd(prefixSortColumn, mailbox)
	if more {
		upper = sortColumnKey(mailbox, last+1)
	}
	var old []byte
	var oldLast uint32
	oldMore := false
	err = scan(v.r, sortColumnKey(mailbox, afterUID+1), upper, func(k, val []byte) (bool, error) {
		oldLast = uidFromKey(k)
		old = appendColumnRecord(old, oldLast, val)
		oldMore = len(old) >= maxBytes && oldLast < maxUID
		return !oldMore, nil
	})
	if err != nil || len(old) == 0 {
		return recs, last, more, err
	}
	merged := editColumnChunk(recs, old, nil)
	if !oldMore {
		return merged, max(last, oldLast), more, nil
	}
	// The old entries stopped first: the chunks' records above their last wait for the
	// next read.
	for off := 0; off < len(merged); {
		uid, rec, _, _ := nextColumnRecord(merged[off:])
		if uid > oldLast {
			merged = merged[:off]
			break
		}
		off += len(rec)
	}
	return merged, oldLast, true, nil
}

// chunkRecords reads the chunks under prefix (the sort-key column's, or its thread-keys
// projection's) of mailbox above afterUID as records in UID order, up to about maxBytes
// (full: the previous read reached that); more reports that records may follow the last
// one returned, whose UID is last.
func (v *view) chunkRecords(prefix byte, mailbox uint64, afterUID uint32, maxBytes int, full bool) (recs []byte, last uint32, more bool, err error) {
	if afterUID == maxUID {
		return nil, 0, false, nil
	}
	// The reads after a full one get room for a whole read up front: grown by doubling,
	// the records were copied about twice over, while a small read (the few messages
	// appended since the last) stays small.
	if full {
		recs = make([]byte, 0, maxBytes+maxBytes/8)
	}
	err = scan(v.r, mailboxUIDKey(prefix, mailbox, (afterUID+1)/sortChunkUIDs), mailboxPrefixEnd(prefix, mailbox), func(_, val []byte) (bool, error) {
		start := -1
		for off := 0; off < len(val); {
			uid, rec, _, ok := nextColumnRecord(val[off:])
			if !ok {
				// A chunk that does not take apart: its records up to there
				// (editColumnChunk); the frontend reads the rest from the records.
				val = val[:off]
				break
			}
			if uid > afterUID && start < 0 {
				start = off
			}
			if start >= 0 {
				last = uid
			}
			off += len(rec)
		}
		if start >= 0 {
			recs = append(recs, val[start:]...)
		}
		more = len(recs) >= maxBytes && last < maxUID
		return !more, nil
	})
	return recs, last, more, err
}

// ReadSortColumn streams the sort-key column of a mailbox above after_uid in UID order
// (sortcolumn.go), as records if the request asks for them, else as uids and entries, or
// its dates projection with dates_only (sortdates.go), or its subject projection with
// subject_records (subjectrecords.go), or its thread-keys projection with
// thread_keys (threadkeys.go), or its subject dictionary's order with subject_order
// (subjectnumbers.go); it needs r (RFC 4314 4), checked
// once on the first view. Each chunk is read from its own
// consistent view after the read barrier, released before it is sent.
func (s *Service) ReadSortColumn(req *metadatapb.ReadSortColumnRequest, stream grpc.ServerStreamingServer[metadatapb.SortColumnChunk]) error {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return err
	}
	v, err := s.read(stream.Context())
	if err != nil {
		return err
	}
	rec, _, err := v.access(user, normalizeOwner(req.GetAccount()), req.GetMailboxId(), "", rightRead)
	v.close()
	if err != nil {
		return readStatus(err)
	}
	if req.GetDatesOnly() {
		return s.sendSortDates(req.GetMailboxId(), req.GetAfterUid(), rec.GetDatesComplete(), stream)
	}
	if req.GetSubjectRecords() {
		return s.sendSubjectRecords(req.GetMailboxId(), req.GetAfterUid(), rec, stream)
	}
	if req.GetSubjectOrder() {
		return s.sendSubjectOrder(req.GetMailboxId(), stream)
	}
	if req.GetThreadKeys() {
		return s.sendThreadKeys(req.GetMailboxId(), req.GetAfterUid(), rec.GetThreadKeysComplete(), stream)
	}
	after, full := req.GetAfterUid(), false
	for {
		v := s.fsm.view()
		recs, last, more, err := v.sortColumnRecords(req.GetMailboxId(), after, sortColumnChunkBytes, full)
		v.close()
		if err != nil {
			return storageStatus(err)
		}
		if len(recs) > 0 {
			chunk := &metadatapb.SortColumnChunk{Records: recs}
			if !req.GetRecords() {
				chunk = columnEntries(recs)
			}
			if err := stream.Send(chunk); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after, full = last, true
	}
}

// columnEntries is the chunk of records as uids and entries, for a frontend that does not
// ask for records.
func columnEntries(recs []byte) *metadatapb.SortColumnChunk {
	chunk := &metadatapb.SortColumnChunk{Entries: make([]byte, 0, len(recs))}
	for len(recs) > 0 {
		uid, rec, rest, _ := nextColumnRecord(recs)
		_, n := protowire.ConsumeVarint(rec)
		chunk.Uids = append(chunk.Uids, uid)
		chunk.Entries = append(chunk.Entries, rec[n:]...)
		recs = rest
	}
	return chunk
}
