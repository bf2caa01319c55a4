package metadata

import (
	"encoding/binary"
	"slices"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The dates projection of the sort-key column (issue 17): per mailbox and UID, the three
// numbers SORT by ARRIVAL, DATE and SIZE orders by (RFC 5256 3), packed in records of
// fixed width, so that the first such SORT of a large mailbox reads and decodes 28 bytes a
// message instead of the whole column entry (about 180: subjects, addresses, Message-IDs).
//
// A record is, little-endian: the UID (4 bytes), the date SORT DATE orders by (8: the sent
// date of the entry's keys, else the internal date, RFC 5256 2.2), the internal date (8)
// and the size (8). Records are stored in chunks beside the column's (sortDatesKey, the same
// chunk number uid / sortChunkUIDs), in UID order, and edited with the column: putSortColumn
// adds a message's record with its entry (same command, same transaction), dropSortColumn
// removes it, destroySortColumn drops every chunk, writeColumns hands the edits of
// the chunks a command touched to the batch, which writes each once (columnbatch.go). Everything comes from the command and the stored bytes, so every
// replica writes the same and the digest covers the chunks as any other key.
//
// A mailbox has a record exactly for the messages that have a column entry once
// MailboxRecord.dates_complete is set: at creation by a command of FeatureSortDates
// (newMailbox; below that level, the level of a group with a replica of a build from before
// the projection, no command writes the records of a mailbox not yet complete in it:
// writesDates, featurelevel.go), or by the
// NumberMessagesCommand that walks the column of a mailbox stored before the projection
// (numberfill.go: after the numbers, the same background task at the same duty cycle,
// dated_through_uid its cursor) and reaches its end. Until then ReadSortColumn derives the
// records it is asked for from the whole column (sortDatesFromColumn), so the answer is
// the same either way, only slower.

// sortDateRecordLen is the length of one record of the dates projection.
const sortDateRecordLen = 28

// sortDatesKey is the key of a mailbox's chunk number chunk of the dates projection.
func sortDatesKey(mailbox uint64, chunk uint32) []byte {
	return mailboxUIDKey(prefixSortDates, mailbox, chunk)
}

// appendDateRecord appends the record of uid to recs.
func appendDateRecord(recs []byte, uid uint32, date, arrival int64, size uint64) []byte {
	recs = binary.LittleEndian.AppendUint32(recs, uid)
	recs = binary.LittleEndian.AppendUint64(recs, uint64(date))
	recs = binary.LittleEndian.AppendUint64(recs, uint64(arrival))
	return binary.LittleEndian.AppendUint64(recs, size)
}

// dateRecordUID is the UID of the record at the start of rec (of the dates or the subject
// projection).
func dateRecordUID(rec []byte) uint32 { return binary.LittleEndian.Uint32(rec) }

// keysSentDate returns the sent_unix of encoded SortKeys, ok false if it has none (the
// Date field was missing or did not parse) or the keys do not take apart.
func keysSentDate(keys []byte) (sent int64, ok bool) {
	for off := 0; off < len(keys); {
		num, typ, n := protowire.ConsumeTag(keys[off:])
		if n < 0 {
			return 0, false
		}
		off += n
		if num == keysSentField && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(keys[off:])
			if m < 0 {
				return 0, false
			}
			sent, ok = int64(v), true // the last one wins, as in a decode
			off += m
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, keys[off:])
		if m < 0 {
			return 0, false
		}
		off += m
	}
	return sent, ok
}

// sortDate is the date SORT DATE orders a message by: its sent date, else its internal
// date (RFC 5256 2.2).
func sortDate(internalDate int64, keys []byte) int64 {
	if sent, ok := keysSentDate(keys); ok {
		return sent
	}
	return internalDate
}

// dateRecordOfEntry appends the record of uid with its column entry (an encoded
// SortColumnEntry) to recs; ok false, nothing appended, if the entry does not take apart.
func dateRecordOfEntry(recs []byte, uid uint32, entry []byte) ([]byte, bool) {
	var internalDate int64
	var size uint64
	var keys []byte
	for off := 0; off < len(entry); {
		num, typ, n := protowire.ConsumeTag(entry[off:])
		if n < 0 {
			return recs, false
		}
		off += n
		m := protowire.ConsumeFieldValue(num, typ, entry[off:])
		if m < 0 {
			return recs, false
		}
		switch {
		case num == sortColumnDateField && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(entry[off:])
			internalDate = int64(v)
		case num == sortColumnSizeField && typ == protowire.VarintType:
			size, _ = protowire.ConsumeVarint(entry[off:])
		case num == sortColumnKeysField && typ == protowire.BytesType:
			keys, _ = protowire.ConsumeBytes(entry[off:])
		}
		off += m
	}
	return appendDateRecord(recs, uid, sortDate(internalDate, keys), internalDate, size), true
}

// dateRecordOfColumnRecord is dateRecordOfEntry of a column record (UID, then entry).
func dateRecordOfColumnRecord(recs, rec []byte) ([]byte, bool) {
	uid, n := protowire.ConsumeVarint(rec)
	if n < 0 || uid > maxUID {
		return recs, false
	}
	entry, m := protowire.ConsumeBytes(rec[n:])
	if m < 0 {
		return recs, false
	}
	return dateRecordOfEntry(recs, uint32(uid), entry)
}

// editFixedChunk is editColumnChunk for a chunk of records of width bytes each starting
// with their UID (4 bytes, little-endian: the dates and subject projections, sortdates.go,
// subjectrecords.go): old's records and those of adds (UIDs ascending) merged by UID, an
// added UID replacing old's record, without the records of removes (sorted). A trailing
// part shorter than a record is dropped. Deterministic.
func editFixedChunk(old, adds []byte, removes []uint32, width int) []byte {
	old = old[:len(old)/width*width]
	adds = adds[:len(adds)/width*width]
	out := make([]byte, 0, len(old)+len(adds))
	keep := func(rec []byte) {
		if _, removed := slices.BinarySearch(removes, dateRecordUID(rec)); !removed {
			out = append(out, rec...)
		}
	}
	for len(old) > 0 || len(adds) > 0 {
		switch {
		case len(old) == 0 || (len(adds) > 0 && dateRecordUID(adds) <= dateRecordUID(old)):
			if len(old) > 0 && dateRecordUID(adds) == dateRecordUID(old) {
				old = old[width:]
			}
			keep(adds[:width])
			adds = adds[width:]
		default:
			keep(old[:width])
			old = old[width:]
		}
	}
	return out
}

// fillDates gives the column entries of ms above dated_through_uid their records in the
// dates projection, at most limit entries (NumberMessagesCommand, numberfill.go), and sets
// dates_complete when it reaches the column's end; it returns whether it did.
func (c *cmdCtx) fillDates(ms *mailboxState, limit int) (bool, error) {
	mailbox := ms.box().GetId()
	return c.fillStage(ms, c.walkColumn, &ms.rec.DatedThroughUid, &ms.rec.DatesComplete, limit, func(uid uint32, rec []byte) error {
		e := c.sortColumnEdit(mailbox, uid)
		e.dateAdds, _ = dateRecordOfColumnRecord(e.dateAdds, rec)
		return nil
	})
}

// sortDateRecords reads the dates projection of mailbox above afterUID, up to about
// maxBytes, as sortColumnRecords reads the column: records in UID order, the UID of the
// last, and whether more may follow.
func (v *view) sortDateRecords(mailbox uint64, afterUID uint32, maxBytes int) (recs []byte, last uint32, more bool, err error) {
	return v.fixedRecords(prefixSortDates, sortDateRecordLen, mailbox, afterUID, maxBytes)
}

// fixedRecords reads the chunks under prefix of records of width bytes (editFixedChunk)
// of mailbox above afterUID, up to about maxBytes: records in UID order, the UID of the
// last, and whether more may follow.
func (v *view) fixedRecords(prefix byte, width int, mailbox uint64, afterUID uint32, maxBytes int) (recs []byte, last uint32, more bool, err error) {
	if afterUID == maxUID {
		return nil, 0, false, nil
	}
	err = scan(v.r, mailboxUIDKey(prefix, mailbox, (afterUID+1)/sortChunkUIDs), mailboxPrefixEnd(prefix, mailbox), func(_, val []byte) (bool, error) {
		n := len(val) / width
		start := sort.Search(n, func(i int) bool { return dateRecordUID(val[i*width:]) > afterUID })
		if start < n {
			if recs == nil {
				recs = make([]byte, 0, maxBytes+maxBytes/8)
			}
			recs = append(recs, val[start*width:n*width]...)
			last = dateRecordUID(recs[len(recs)-width:])
		}
		more = len(recs) >= maxBytes && last < maxUID
		return !more, nil
	})
	return recs, last, more, err
}

// sortDatesFromColumn is sortDateRecords for a mailbox without dates_complete: the
// records derived from the column's entries (both layouts).
func (v *view) sortDatesFromColumn(mailbox uint64, afterUID uint32, maxBytes int) (recs []byte, last uint32, more bool, err error) {
	return v.fixedRecordsFromColumn(mailbox, afterUID, maxBytes, (*view).sortColumnRecords, func(recs, rec []byte) []byte {
		recs, _ = dateRecordOfColumnRecord(recs, rec)
		return recs
	})
}

// fixedRecordsFromColumn is fixedRecords of a projection derived from the entries that
// column reads (the column's, both layouts, or those of its thread-keys projection):
// record appends the record of one.
func (v *view) fixedRecordsFromColumn(mailbox uint64, afterUID uint32, maxBytes int, column func(v *view, mailbox uint64, afterUID uint32, maxBytes int, full bool) ([]byte, uint32, bool, error), record func(recs, rec []byte) []byte) (recs []byte, last uint32, more bool, err error) {
	col, last, more, err := column(v, mailbox, afterUID, maxBytes, false)
	if err != nil {
		return nil, 0, false, err
	}
	for len(col) > 0 {
		_, rec, rest, ok := nextColumnRecord(col)
		if !ok {
			break
		}
		recs = record(recs, rec)
		col = rest
	}
	return recs, last, more, nil
}

// sendSortDates streams the dates projection of mailbox above after (ReadSortColumn with
// dates_only): from its chunks if complete, else derived from the column.
func (s *Service) sendSortDates(mailbox uint64, after uint32, complete bool, stream grpc.ServerStreamingServer[metadatapb.SortColumnChunk]) error {
	read := (*view).sortDatesFromColumn
	if complete {
		read = (*view).sortDateRecords
	}
	return s.sendFixedRecords(mailbox, after, read, func(recs []byte) *metadatapb.SortColumnChunk {
		return &metadatapb.SortColumnChunk{Dates: recs}
	}, stream)
}

// sendFixedRecords streams the records read reads of mailbox above after, each run as the
// chunk of chunk. Each message of the stream is read from its own consistent view,
// released before it is sent.
func (s *Service) sendFixedRecords(mailbox uint64, after uint32, read func(*view, uint64, uint32, int) ([]byte, uint32, bool, error), chunk func([]byte) *metadatapb.SortColumnChunk, stream grpc.ServerStreamingServer[metadatapb.SortColumnChunk]) error {
	for {
		v := s.fsm.view()
		recs, last, more, err := read(v, mailbox, after, sortColumnChunkBytes)
		v.close()
		if err != nil {
			return storageStatus(err)
		}
		if len(recs) > 0 {
			if err := stream.Send(chunk(recs)); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after = last
	}
}
