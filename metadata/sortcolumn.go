package metadata

import (
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The sort-key column: per mailbox and UID, what SORT and THREAD order a message by (RFC
// 5256, RFC 5957), kept apart from the message's structure under its own prefix
// (sortColumnKey), so that the first SORT or THREAD of a mailbox reads it in one ordered
// scan of small values (ReadSortColumn) instead of picking the keys out of every stored
// structure (FetchMessages sort_keys_only).
//
// A value is an encoded SortColumnEntry: the internal date and size from the message's
// index, then the structure's sort_keys field copied as it is (the FSM never decodes a
// structure, rawstructure.go, and does not here either). The column has an entry for a
// message exactly when the message exists and its stored structure has sort_keys, and the
// entry is then sortColumnEntry of the two; addMessage writes it (APPEND, import, COPY,
// MOVE, the INBOX rename), removeMessage (EXPUNGE, MOVE) and destroyMailbox (DELETE, an
// account's or tenant's deletion) delete it. A rename keeps the mailbox id, so the column.
//
// Messages stored before the column was kept have no entry, and neither do those whose
// structure has no sort_keys (stored before the frontend extracted them). There is no
// migration that fills the column at load or restore: the FSM's state must stay a function
// of the log (package doc, Determinism), so that replicas and snapshots agree whatever
// version loaded them, and the metadata service cannot derive the keys of a structure
// without them anyway (the frontend's parser does, frontend/message.SortKeys). Instead the
// frontend reads the keys of the UIDs the column lacks the old way (frontend/imap sort.go),
// which costs what SORT cost before only for those old messages.

// sortColumnChunkBytes bounds the entries of one SortColumnChunk; each chunk is read from
// its own consistent view, released before it is sent.
const sortColumnChunkBytes = 512 << 10

var (
	sortColumnDateField = fieldNumber(&metadatapb.SortColumnEntry{}, "internal_date_unix")
	sortColumnSizeField = fieldNumber(&metadatapb.SortColumnEntry{}, "size")
	sortColumnKeysField = fieldNumber(&metadatapb.SortColumnEntry{}, "keys")
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
	b := make([]byte, 0, 24+len(keys))
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

// putSortColumn writes the column entry of a message being added with idx and structure,
// if the structure has sort keys.
func (c *cmdCtx) putSortColumn(mailbox uint64, uid uint32, idx *metadatapb.MessageIndex, structure []byte) {
	keys, ok := structureSortKeys(structure)
	if !ok {
		return
	}
	c.tx.insert(sortColumnKey(mailbox, uid), sortColumnEntry(idx.GetInternalDateUnix(), idx.GetSize(), keys))
}

// sortColumn reads the column of mailbox above afterUID, up to about maxBytes of entries
// (full: the previous chunk reached that). more reports that entries may follow the last
// UID returned.
func (v *view) sortColumn(mailbox uint64, afterUID uint32, maxBytes int, full bool) (chunk *metadatapb.SortColumnChunk, more bool, err error) {
	chunk = &metadatapb.SortColumnChunk{}
	if afterUID == maxUID {
		return chunk, false, nil
	}
	// The chunks after a full one get room for a whole chunk up front: grown by doubling,
	// the entries were copied about twice over (most of this function's time at 1,000,000
	// messages), while a small read (the few messages appended since the last) stays small.
	var entries []byte
	if full {
		entries = make([]byte, 0, maxBytes+maxBytes/8)
	}
	err = scan(v.r, sortColumnKey(mailbox, afterUID+1), mailboxPrefixEnd(prefixSortColumn, mailbox), func(k, val []byte) (bool, error) {
		chunk.Uids = append(chunk.Uids, uidFromKey(k))
		entries = protowire.AppendBytes(entries, val)
		more = len(entries) >= maxBytes
		return !more, nil
	})
	chunk.Entries = entries
	return chunk, more, err
}

// ReadSortColumn streams the sort-key column of a mailbox above after_uid in UID order
// (sortcolumn.go); it needs r (RFC 4314 4), checked once on the first view. Each chunk is
// read from its own consistent view after the read barrier, released before it is sent.
func (s *Service) ReadSortColumn(req *metadatapb.ReadSortColumnRequest, stream grpc.ServerStreamingServer[metadatapb.SortColumnChunk]) error {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return err
	}
	v, err := s.read(stream.Context())
	if err != nil {
		return err
	}
	_, _, err = v.access(user, normalizeOwner(req.GetAccount()), req.GetMailboxId(), "", rightRead)
	v.close()
	if err != nil {
		return readStatus(err)
	}
	after, full := req.GetAfterUid(), false
	for {
		v := s.fsm.view()
		chunk, more, err := v.sortColumn(req.GetMailboxId(), after, sortColumnChunkBytes, full)
		v.close()
		if err != nil {
			return storageStatus(err)
		}
		if len(chunk.GetUids()) > 0 {
			if err := stream.Send(chunk); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after, full = chunk.Uids[len(chunk.Uids)-1], true
	}
}
