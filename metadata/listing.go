package metadata

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The SELECT listing (ListMessages). A cold SELECT of a large mailbox lists every message's
// UID, MODSEQ and flags, so this path reads only those two fields off each stored
// MessageIndex (not the blob key, dates and sizes a proto.Unmarshal would decode and
// allocate), and gives each distinct flag set one entry in a dictionary (issue 14): a
// mailbox's messages share a handful of flag sets, so a page costs O(distinct sets)
// allocations, not O(messages).

// Field numbers of MessageIndex that the listing reads.
var (
	indexModseqField    = indexField("modseq")
	indexFlagsField     = indexField("flags")
	indexSourceUIDField = indexField("source_uid")
)

func indexField(name protoreflect.Name) protowire.Number {
	return (&metadatapb.MessageIndex{}).ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// listingQuery is what a SELECT listing lists (messageList).
type listingQuery struct {
	owner, user     string
	afterUID, limit uint32
	// dictionary: the flags go in FlagSets and FlagSetIndexes, otherwise one FlagSet per
	// message in Flags (the form of ListMessagesRequest without flag_set_dictionary).
	dictionary bool
	// sourceUIDs: each message's source UID too (ListMessagesRequest.source_uids).
	sourceUIDs bool
	// column: the mailbox keeps the listing column (MailboxRecord.listing_column,
	// listingcolumn.go), which is read instead of the records unless sourceUIDs asks
	// for what only the records hold.
	column bool
}

// messageList is the SELECT view of a mailbox of q.owner as q.user sees it: with its
// private \Seen in another owner's mailbox (privateseen.go). It lists the messages above
// q.afterUID, at most q.limit of them when q.limit > 0 (with More set when messages
// remain).
func (v *view) messageList(mailbox *metadatapb.Mailbox, q listingQuery) (*metadatapb.ListMessagesResponse, error) {
	owner, user, afterUID, limit, dictionary, sourceUIDs := q.owner, q.user, q.afterUID, q.limit, q.dictionary, q.sourceUIDs
	resp := &metadatapb.ListMessagesResponse{Mailbox: mailbox}
	if afterUID == maxUID {
		return resp, nil
	}
	size := int(mailbox.GetMessages())
	if limit > 0 {
		size = min(size, int(limit))
	}
	resp.Uids = make([]uint32, 0, size)
	resp.Modseqs = make([]uint64, 0, size)
	indexes := make([]uint32, 0, size)
	var dict flagSetDict
	var err error
	if q.column && !sourceUIDs {
		indexes, err = v.listingFromColumn(resp, mailbox.GetId(), afterUID, limit, &dict, indexes)
	} else {
		indexes, err = v.listingFromRecords(resp, mailbox.GetId(), afterUID, limit, &dict, indexes, sourceUIDs)
	}
	if err != nil {
		return nil, err
	}

	if isPrivate(user, owner) && len(resp.Uids) > 0 {
		var seen privateSeenCursor
		if err := seen.load(v.r, mailbox.GetId(), user, resp.Uids[0], resp.Uids[len(resp.Uids)-1]); err != nil {
			return nil, err
		}
		// The same shared flag set with the same private \Seen is the same set for the
		// user: the user's dictionary has one entry per (set, seen) pair in use.
		var users flagSetDict
		private := map[[2]uint32]uint32{}
		for i, uid := range resp.Uids {
			rec := seen.at(uid)
			key := [2]uint32{indexes[i], 0}
			if rec.seen {
				key[1] = 1
			}
			set, found := private[key]
			if !found {
				flags, _ := privateView(dict.sets[key[0]].GetFlags(), 0, rec)
				set = users.add(flags)
				private[key] = set
			}
			indexes[i] = set
			resp.Modseqs[i] = max(resp.Modseqs[i], rec.modseq)
		}
		dict = users
	}
	if dictionary {
		resp.FlagSets, resp.FlagSetIndexes = dict.sets, indexes
		return resp, nil
	}
	resp.Flags = make([]*metadatapb.FlagSet, len(indexes))
	for i, set := range indexes {
		resp.Flags[i] = dict.sets[set]
	}
	return resp, nil
}

// listingFromRecords is messageList's scan over the stored records: the messages of
// mailbox above afterUID, at most limit when limit > 0 (More set when more remain), with
// their MODSEQs (and source UIDs with sourceUIDs), and each one's flag set looked up in
// dict, its index appended to indexes.
func (v *view) listingFromRecords(resp *metadatapb.ListMessagesResponse, mailbox uint64, afterUID, limit uint32, dict *flagSetDict, indexes []uint32, sourceUIDs bool) ([]uint32, error) {
	var raw []byte // the encoded flags fields of one message, reused
	upper := mailboxPrefixEnd(prefixMessage, mailbox)
	err := scan(v.r, messageKey(mailbox, afterUID+1), upper, func(k, val []byte) (bool, error) {
		if limit > 0 && len(resp.Uids) == int(limit) {
			resp.More = true
			return false, nil
		}
		modseq, flagFields, err := indexModseqFlags(val, raw[:0])
		if err != nil {
			return false, fmt.Errorf("decode message %x: %w", k, err)
		}
		raw = flagFields
		set, err := dict.lookup(flagFields)
		if err != nil {
			return false, fmt.Errorf("decode message %x: %w", k, err)
		}
		if sourceUIDs {
			source, err := indexSourceUID(val)
			if err != nil {
				return false, fmt.Errorf("decode message %x: %w", k, err)
			}
			resp.SourceUids = append(resp.SourceUids, source)
		}
		resp.Uids = append(resp.Uids, uidFromKey(k))
		resp.Modseqs = append(resp.Modseqs, modseq)
		indexes = append(indexes, set)
		return true, nil
	})
	return indexes, err
}

// indexModseqFlags reads the MODSEQ and the flags of an encoded MessageIndex: it returns
// the MODSEQ and raw with the encoded flags fields (tag, length and value each) appended in
// their order, which names the flag set exactly. Other fields are skipped; a field repeated
// counts as proto.Unmarshal would take it (the last MODSEQ, every flag).
func indexModseqFlags(b, raw []byte) (uint64, []byte, error) {
	var modseq uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return 0, nil, protowire.ParseError(m)
		}
		switch {
		case num == indexModseqField && typ == protowire.VarintType:
			modseq, _ = protowire.ConsumeVarint(b[n:])
		case num == indexFlagsField && typ == protowire.BytesType:
			raw = append(raw, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return modseq, raw, nil
}

// indexSourceUID reads the source UID of an encoded MessageIndex (0: none).
func indexSourceUID(b []byte) (uint32, error) {
	source, err := lastVarint(b, indexSourceUIDField)
	return uint32(source), err
}

// lastVarint reads the varint field num of an encoded message off the wire, without
// decoding the rest; like proto.Unmarshal, the last occurrence wins (0: none).
func lastVarint(b []byte, num protowire.Number) (uint64, error) {
	var value uint64
	for len(b) > 0 {
		n, typ, m := protowire.ConsumeTag(b)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		b = b[m:]
		if n == num && typ == protowire.VarintType {
			x, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, protowire.ParseError(m)
			}
			value, b = x, b[m:]
			continue
		}
		m = protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return value, nil
}

// flagSetDict is the flag-set dictionary of one listing: each distinct set once, found by
// its encoded flags fields.
type flagSetDict struct {
	sets    []*metadatapb.FlagSet
	byField map[string]uint32 // encoded flags fields (indexModseqFlags) -> index in sets
	byFlags map[string]uint32 // joinFlags of the flags -> index in sets (add)
}

// lookup returns the index of the set whose encoded flags fields are raw, adding it when it
// is new.
func (d *flagSetDict) lookup(raw []byte) (uint32, error) {
	if i, found := d.byField[string(raw)]; found {
		return i, nil
	}
	var flags []string
	for b := raw; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != indexFlagsField || typ != protowire.BytesType {
			return 0, fmt.Errorf("flags field %x does not take apart", b)
		}
		value, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		if !utf8.Valid(value) {
			return 0, fmt.Errorf("flag %q is not valid UTF-8", value)
		}
		flags = append(flags, string(value))
		b = b[n+m:]
	}
	i := d.add(flags)
	if d.byField == nil {
		d.byField = map[string]uint32{}
	}
	d.byField[string(raw)] = i
	return i, nil
}

// add returns the index of the set flags, adding it when it is new.
func (d *flagSetDict) add(flags []string) uint32 {
	key := joinFlags(flags)
	if i, found := d.byFlags[key]; found {
		return i
	}
	if d.byFlags == nil {
		d.byFlags = map[string]uint32{}
	}
	i := uint32(len(d.sets))
	d.sets = append(d.sets, &metadatapb.FlagSet{Flags: flags})
	d.byFlags[key] = i
	return i
}

// joinFlags names a flag set as a map key: each flag preceded by its length, so that no two
// sets share a name.
func joinFlags(flags []string) string {
	n := 0
	for _, f := range flags {
		n += len(f) + binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	for _, f := range flags {
		b = append(binary.AppendUvarint(b, uint64(len(f))), f...)
	}
	return string(b)
}
