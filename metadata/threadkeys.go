package metadata

import (
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The thread-keys projection of the sort-key column (issue 17): per mailbox and UID, what
// SORT by SUBJECT and THREAD (RFC 5256 3, 4) order by and nothing else, so that the first
// such command of a large mailbox reads and decodes about a third of the column's bytes,
// and the frontend interns one string a message (the base subject) instead of six.
//
// An entry is the column entry (an encoded SortColumnEntry, sortcolumn.go) without what
// neither orders by: its internal date, size, Message-ID numbers and, of its keys, the sent
// date, base subject and reply flag, in the order the column entry holds them. The
// Message-ID and references strings are dropped when the entry has numbers
// (messagenumbers.go: THREAD links the numbers), and kept when it has none, so the
// frontend can still link it by strings; likewise the base subject when the entry has a
// subject number (subjectnumbers.go: SORT ranks and THREAD groups the numbers). The addresses and display names go. So a
// projection entry decodes as a SortColumnEntry, and the frontend's decoder reads both.
//
// Layout and upkeep as the dates projection's (sortdates.go), with the listing column's
// chunk format (records: the UID as a varint, the entry with its length): chunks of
// sortChunkUIDs UIDs under threadKeysChunkKey, edited through cmdCtx.columnEdits (written
// once per batch, columnbatch.go). putSortColumn adds a message's entry with its column
// entry (same command, same transaction), dropSortColumn removes it, destroySortColumn
// drops every chunk. Everything comes from the column entry, so every replica writes the
// same and the digest covers the chunks as any other key.
//
// A mailbox has an entry exactly for the messages that have a column entry, each the
// projection of that column entry, once MailboxRecord.thread_keys_complete is set: at
// creation (newMailbox), or by the NumberMessagesCommand that walks the column of a
// mailbox stored before the projection (numberfill.go: after the numbers, the dates and
// the listing, the same background task at the same duty cycle, thread_keyed_through_uid
// its cursor) and reaches its end. Until then ReadSortColumn derives the entries it is
// asked for from the whole column (threadKeysFromColumn), so the answer is the same either
// way, only slower. A column entry changes after its add only when the numbering gives it
// numbers (numberEntry, numberSubject), which rewrites its projection entry in the same
// command.

var (
	sortKeysSubjectField = fieldNumber(&metadatapb.SortKeys{}, "subject")
	sortKeysReplyField   = fieldNumber(&metadatapb.SortKeys{}, "reply")
)

// threadKeysChunkKey is the key of a mailbox's chunk number chunk of the thread-keys
// projection.
func threadKeysChunkKey(mailbox uint64, chunk uint32) []byte {
	return mailboxUIDKey(prefixThreadKeys, mailbox, chunk)
}

// threadKeysEntry returns the projection of an encoded SortColumnEntry, ok false if the
// entry does not take apart. Deterministic: the fields it keeps, in their order.
func threadKeysEntry(entry []byte) (out []byte, ok bool) {
	numbered, subjectNumbered := false, false
	for off := 0; off < len(entry); {
		num, typ, n := protowire.ConsumeField(entry[off:])
		if n < 0 {
			return nil, false
		}
		if num == sortColumnNumberField && typ == protowire.VarintType {
			numbered = true
		}
		if num == sortColumnSubjectNumberField && typ == protowire.VarintType {
			subjectNumbered = true
		}
		off += n
	}
	out = make([]byte, 0, 64)
	for off := 0; off < len(entry); {
		num, typ, n := protowire.ConsumeField(entry[off:])
		field := entry[off : off+n]
		off += n
		if num != sortColumnKeysField || typ != protowire.BytesType {
			out = append(out, field...) // dates, size, numbers: all the entry has besides
			continue
		}
		_, _, tagLen := protowire.ConsumeTag(field)
		keys, _ := protowire.ConsumeBytes(field[tagLen:])
		kept, ok := threadKeysOf(keys, numbered, subjectNumbered)
		if !ok {
			return nil, false
		}
		out = protowire.AppendTag(out, sortColumnKeysField, protowire.BytesType)
		out = protowire.AppendBytes(out, kept)
	}
	return out, true
}

// threadKeysOf returns the fields of encoded SortKeys that SORT SUBJECT and THREAD read:
// the sent date and reply flag, the base subject unless subjectNumbered, and the
// Message-ID and references unless numbered (their numbers stand for them); ok false if
// keys does not take apart.
func threadKeysOf(keys []byte, numbered, subjectNumbered bool) ([]byte, bool) {
	out := make([]byte, 0, len(keys)/2)
	for off := 0; off < len(keys); {
		num, _, n := protowire.ConsumeField(keys[off:])
		if n < 0 {
			return nil, false
		}
		switch num {
		case keysSentField, sortKeysReplyField:
			out = append(out, keys[off:off+n]...)
		case sortKeysSubjectField:
			if !subjectNumbered {
				out = append(out, keys[off:off+n]...)
			}
		case sortKeysMessageIDField, sortKeysReferencesField:
			if !numbered {
				out = append(out, keys[off:off+n]...)
			}
		}
		off += n
	}
	return out, true
}

// putThreadKeys adds the projection of the column entry of mailbox's uid to the command's
// edit of its chunk (putSortColumn, the fill).
func (c *cmdCtx) putThreadKeys(mailbox uint64, uid uint32, entry []byte) {
	if proj, ok := threadKeysEntry(entry); ok {
		c.columnEdit(threadKeysChunkKey(mailbox, uid/sortChunkUIDs)).add(uid, proj)
	}
}

// dropThreadKeys removes the projection entry of mailbox's uid (dropSortColumn).
func (c *cmdCtx) dropThreadKeys(mailbox uint64, uid uint32) {
	e := c.columnEdit(threadKeysChunkKey(mailbox, uid/sortChunkUIDs))
	e.removes = append(e.removes, uid)
}

// fillThreadKeys gives the column entries of ms above thread_keyed_through_uid their
// projection entries, at most limit entries (NumberMessagesCommand, numberfill.go), and
// sets thread_keys_complete when it reaches the column's end; it returns whether it did.
func (c *cmdCtx) fillThreadKeys(ms *mailboxState, limit int) (bool, error) {
	mailbox := ms.box().GetId()
	return c.fillStage(ms, c.walkColumn, &ms.rec.ThreadKeyedThroughUid, &ms.rec.ThreadKeysComplete, limit, func(uid uint32, rec []byte) error {
		_, n := protowire.ConsumeVarint(rec)
		if entry, m := protowire.ConsumeBytes(rec[n:]); m >= 0 {
			c.putThreadKeys(mailbox, uid, entry)
		}
		return nil
	})
}

// threadKeysFromColumn is chunkRecords of the projection for a mailbox without
// thread_keys_complete: the entries derived from the column's (both layouts).
func (v *view) threadKeysFromColumn(mailbox uint64, afterUID uint32, maxBytes int, full bool) (recs []byte, last uint32, more bool, err error) {
	col, last, more, err := v.sortColumnRecords(mailbox, afterUID, maxBytes, full)
	if err != nil {
		return nil, 0, false, err
	}
	recs = make([]byte, 0, len(col)/2)
	for len(col) > 0 {
		uid, rec, rest, ok := nextColumnRecord(col)
		if !ok {
			break
		}
		col = rest
		_, n := protowire.ConsumeVarint(rec)
		entry, _ := protowire.ConsumeBytes(rec[n:]) // whole: nextColumnRecord
		if proj, ok := threadKeysEntry(entry); ok {
			recs = appendColumnRecord(recs, uid, proj)
		}
	}
	return recs, last, more, nil
}

// threadKeysRecords reads the projection's chunks of mailbox above afterUID as
// sortColumnRecords reads the column's.
func (v *view) threadKeysRecords(mailbox uint64, afterUID uint32, maxBytes int, full bool) (recs []byte, last uint32, more bool, err error) {
	return v.chunkRecords(prefixThreadKeys, mailbox, afterUID, maxBytes, full)
}

// sendThreadKeys streams the thread-keys projection of mailbox above after (ReadSortColumn
// with thread_keys): from its chunks if complete, else derived from the column. Each
// message of the stream is read from its own consistent view, released before it is sent.
func (s *Service) sendThreadKeys(mailbox uint64, after uint32, complete bool, stream grpc.ServerStreamingServer[metadatapb.SortColumnChunk]) error {
	read := (*view).threadKeysFromColumn
	if complete {
		read = (*view).threadKeysRecords
	}
	full := false
	for {
		v := s.fsm.view()
		recs, last, more, err := read(v, mailbox, after, sortColumnChunkBytes, full)
		v.close()
		if err != nil {
			return storageStatus(err)
		}
		if len(recs) > 0 {
			if err := stream.Send(&metadatapb.SortColumnChunk{ThreadRecords: recs}); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after, full = last, true
	}
}
