package metadata

import (
	"encoding/binary"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The subject projection of the sort-key column (issue 17): per mailbox and UID, the
// number of the message's base subject in the mailbox's subject dictionary
// (subjectnumbers.go), in records of fixed width, so that the first SORT (SUBJECT) of a
// large mailbox reads and decodes 8 bytes a message instead of its thread-keys entry
// (threadkeys.go: dates, Message-ID and reference numbers it does not need, about 43
// bytes; docs/benchmarks.md, "1,000,000 messages end to end after the subject numbers").
//
// A record is, little-endian: the UID (4 bytes), then the subject number of its column
// entry (SortColumnEntry.subject_number: 0 for no subject), or
// metadatapb.UnnumberedSubject for an entry without one (a mailbox not yet numbered, a
// subject longer than maxNumberedSubject, past maxSubjectNumber, keys that do not take
// apart), whose subject only the column's strings give: the frontend then reads those.
// The dictionary never gives UnnumberedSubject (maxSubjectNumber is below it).
//
// Layout and upkeep exactly as the dates projection's (sortdates.go): chunks of the same
// chunk numbers (uid / sortChunkUIDs, subjectRecordsKey) beside the column's, records in
// UID order, edited through the command's edit of the column's chunk (columnEdit
// subjectAdds; its removes are the column's) and written once per batch
// (columnbatch.go); putSortColumn adds a message's record with its entry, dropSortColumn
// removes it, destroySortColumn drops every chunk, rewriteEntry writes it again with a
// renumbered entry. Everything comes from the column entry, so every replica writes the
// same and the digest covers the chunks as any other key.
//
// A mailbox has a record exactly for the messages that have a column entry, each
// subjectRecordOfEntry of that entry, once MailboxRecord.subject_records_complete is
// set: at creation by a command of FeatureSubjectRecords (newMailbox), or by the
// NumberMessagesCommand that walks the column of a mailbox stored before (numberfill.go:
// after the subject numbers, subject_recorded_through_uid its cursor) and reaches its
// end. Until then ReadSortColumn derives the records it is asked for from the thread-keys
// projection if the mailbox is complete in it (subjectRecordsFromThreadKeys: its entries
// carry the same subject numbers), else from the whole column (subjectRecordsFromColumn),
// so the answer is the same either way, only slower.

// subjectRecordLen is the length of one record of the subject projection.
const subjectRecordLen = metadatapb.SubjectRecordLen

// subjectRecordsKey is the key of a mailbox's chunk number chunk of the subject projection.
func subjectRecordsKey(mailbox uint64, chunk uint32) []byte {
	return mailboxUIDKey(prefixSubjectRecords, mailbox, chunk)
}

// entrySubjectNumber returns the subject number of an encoded SortColumnEntry,
// metadatapb.UnnumberedSubject if it has none; ok false if it does not take apart.
func entrySubjectNumber(entry []byte) (n uint32, ok bool) {
	n = metadatapb.UnnumberedSubject
	for off := 0; off < len(entry); {
		num, typ, l := protowire.ConsumeTag(entry[off:])
		if l < 0 {
			return 0, false
		}
		off += l
		m := protowire.ConsumeFieldValue(num, typ, entry[off:])
		if m < 0 {
			return 0, false
		}
		if num == sortColumnSubjectNumberField && typ == protowire.VarintType {
			if v, _ := protowire.ConsumeVarint(entry[off:]); v < metadatapb.UnnumberedSubject {
				n = uint32(v) // the last one wins, as in a decode
			}
		}
		off += m
	}
	return n, true
}

// subjectRecordOfEntry appends the record of uid with its column entry to recs; nothing
// if the entry does not take apart.
func subjectRecordOfEntry(recs []byte, uid uint32, entry []byte) []byte {
	n, ok := entrySubjectNumber(entry)
	if !ok {
		return recs
	}
	recs = binary.LittleEndian.AppendUint32(recs, uid)
	return binary.LittleEndian.AppendUint32(recs, n)
}

// subjectRecordOfColumnRecord is subjectRecordOfEntry of a column record (UID, then
// entry).
func subjectRecordOfColumnRecord(recs, rec []byte) []byte {
	uid, n := protowire.ConsumeVarint(rec)
	if n < 0 || uid > maxUID {
		return recs
	}
	entry, m := protowire.ConsumeBytes(rec[n:])
	if m < 0 {
		return recs
	}
	return subjectRecordOfEntry(recs, uint32(uid), entry)
}

// putSubjectRecord adds the record of mailbox's uid with its column entry to the
// command's edit of its chunk (putSortColumn, rewriteEntry, the fill).
func (c *cmdCtx) putSubjectRecord(mailbox uint64, uid uint32, entry []byte) {
	e := c.sortColumnEdit(mailbox, uid)
	e.subjectAdds = subjectRecordOfEntry(e.subjectAdds, uid, entry)
}

// fillSubjectRecords gives the column entries of ms above subject_recorded_through_uid
// their records in the subject projection, at most limit entries (NumberMessagesCommand,
// numberfill.go), and sets subject_records_complete when it reaches the column's end; it
// returns whether it did.
func (c *cmdCtx) fillSubjectRecords(ms *mailboxState, limit int) (bool, error) {
	mailbox := ms.box().GetId()
	return c.fillStage(ms, c.walkColumn, &ms.rec.SubjectRecordedThroughUid, &ms.rec.SubjectRecordsComplete, limit, func(uid uint32, rec []byte) error {
		e := c.sortColumnEdit(mailbox, uid)
		e.subjectAdds = subjectRecordOfColumnRecord(e.subjectAdds, rec)
		return nil
	})
}

// subjectRecords reads the subject projection of mailbox above afterUID, up to about
// maxBytes, as sortDateRecords reads the dates projection.
func (v *view) subjectRecords(mailbox uint64, afterUID uint32, maxBytes int) (recs []byte, last uint32, more bool, err error) {
	return v.fixedRecords(prefixSubjectRecords, subjectRecordLen, mailbox, afterUID, maxBytes)
}

// subjectRecordsFromColumn is subjectRecords for a mailbox without
// subject_records_complete: the records derived from the column's entries (both layouts).
func (v *view) subjectRecordsFromColumn(mailbox uint64, afterUID uint32, maxBytes int) (recs []byte, last uint32, more bool, err error) {
	return v.fixedRecordsFromColumn(mailbox, afterUID, maxBytes, (*view).sortColumnRecords, subjectRecordOfColumnRecord)
}

// subjectRecordsFromThreadKeys is subjectRecordsFromColumn for a mailbox with
// thread_keys_complete: the records derived from its thread-keys entries, which carry the
// column entries' subject numbers (threadkeys.go) in a quarter of their bytes.
func (v *view) subjectRecordsFromThreadKeys(mailbox uint64, afterUID uint32, maxBytes int) (recs []byte, last uint32, more bool, err error) {
	return v.fixedRecordsFromColumn(mailbox, afterUID, maxBytes, (*view).threadKeysRecords, subjectRecordOfColumnRecord)
}

// sendSubjectRecords streams the subject projection of mailbox above after (ReadSortColumn
// with subject_records): from its chunks if complete (rec), else derived from its
// thread-keys projection if that is complete, else from the column.
func (s *Service) sendSubjectRecords(mailbox uint64, after uint32, rec *metadatapb.MailboxRecord, stream grpc.ServerStreamingServer[metadatapb.SortColumnChunk]) error {
	read := (*view).subjectRecordsFromColumn
	switch {
	case rec.GetSubjectRecordsComplete():
		read = (*view).subjectRecords
	case rec.GetThreadKeysComplete():
		read = (*view).subjectRecordsFromThreadKeys
	}
	return s.sendFixedRecords(mailbox, after, read, func(recs []byte) *metadatapb.SortColumnChunk {
		return &metadatapb.SortColumnChunk{SubjectRecords: recs}
	}, stream)
}
