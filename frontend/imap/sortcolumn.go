package imap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// columnMinMissing is how many messages' keys a SORT or THREAD must lack before it reads
// the mailbox's sort-key column (ReadSortColumn: every message above what was read
// before, in one ordered scan) rather than the records of just those messages
// (FetchMessages): the column costs a scan of the whole mailbox, worth it only when many
// keys are missing. It is fetchBatch, or a test's value (SetSortColumnMin).
var columnMinMissing atomic.Int64

func init() { columnMinMissing.Store(fetchBatch) }

// fillFromColumn reads the sort-key column of the selected mailbox above what cache holds
// of box, into cache, up to the deadline, for a command that orders by need: only the
// column's dates projection (metadata/sortdates.go) when need is none and box holds no
// more than that. Messages the column lacks (stored before it was kept) stay missing, for
// sortEntries to read.
func (c *conn) fillFromColumn(cache *sortKeyCache, box sortBoxKey, need sortFields, deadline time.Time) error {
	err := c.readColumn(cache, box, need, deadline)
	if errors.Is(err, errColumnRestart) {
		// An entry without Message-ID numbers emptied the box, which now holds strings
		// and refuses none: read from the start once more.
		err = c.readColumn(cache, box, need, deadline)
	}
	if errors.Is(err, errColumnEvicted) || errors.Is(err, errColumnRestart) || errors.Is(err, errColumnFields) {
		// Another mailbox's fill evicted this one (or emptied it again): what is missing
		// is read from the records (fillSortKeys), and the next command reads the column
		// again.
		return nil
	}
	return err
}

// readColumn is fillFromColumn's read of the column, once.
func (c *conn) readColumn(cache *sortKeyCache, box sortBoxKey, need sortFields, deadline time.Time) error {
	s := c.sel
	after, _ := cache.columnRead(box)
	// One stream reads the whole column, so its deadline is the command's, not a call's;
	// a retry goes on after the last UID received.
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	// The box the chunks go to (sortKeyCache.appendColumn): the one there now, if any, so
	// that a read with no chunk (nothing after columnUpTo) still notes the view's UIDs read.
	filling := cache.current(box)
	// The dates projection (28 bytes a message) for a SORT by ARRIVAL, DATE or SIZE into
	// a box that holds no more; a service that does not know dates_only sends the column.
	datesOnly := need&^fieldDates == 0 && (filling == nil || filling.fields&^fieldDates == 0)
	// The subject projection (8 bytes a message) for a SORT by SUBJECT alone into a box
	// that holds no more and would take the subjects as numbers; a service that does not
	// know subject_records sends what it would without (the thread-keys projection below).
	subjectRecords := !datesOnly && need == subjectField && !cache.stringIDs &&
		(filling == nil || (filling.fields&^subjectField == 0 && filling.cols.subjMode != threadIDsStrings))
	// The thread-keys projection for a SORT by SUBJECT or a THREAD into a box that holds
	// no more and would take THREAD's ids and the subjects as numbers (its entries have no
	// Message-ID strings, or no subject, when numbered); a service that does not know
	// thread_keys sends the column.
	threadKeys := !datesOnly && need&^threadKeyFields == 0 && !cache.stringIDs &&
		(filling == nil || (filling.fields&^threadKeyFields == 0 && filling.cols.idMode != threadIDsStrings && filling.cols.subjMode != threadIDsStrings))
	warned := false
	request := func() *metadatapb.ReadSortColumnRequest {
		return &metadatapb.ReadSortColumnRequest{
			Account: s.owner, MailboxId: s.mailboxID, AfterUid: after, User: c.accountName(), Records: true,
			DatesOnly: datesOnly, ThreadKeys: threadKeys, SubjectRecords: subjectRecords,
		}
	}
	err := c.streamSortColumn(ctx, deadline, request, func(chunk *metadatapb.SortColumnChunk) error {
		// A service that does not know records answers with uids and entries.
		last, ok := chunkLastUID(chunk)
		if !ok {
			// A chunk whose records do not take apart: its messages' keys are read
			// from their records (fillSortKeys), so the answer stays right; said once.
			if n := chunkBytes(chunk); !warned && n > 0 {
				warned = true
				c.log.Warn("sort column: skipping a chunk that does not parse; reading those messages' records",
					"owner", s.owner, "mailbox", s.name, "mailbox_id", s.mailboxID, "bytes", n)
			}
			return nil
		}
		var err error
		filling, err = cache.appendChunk(box, filling, last, s.msgs.len(), chunk)
		if err != nil {
			return err
		}
		after = last
		if time.Now().After(deadline) {
			return errSortDeadline
		}
		return nil
	})
	if errors.Is(err, errSortDeadline) || ctx.Err() != nil {
		return no(imapresp.CodeLimit, "Ordering took longer than "+c.srv.limits.SortTimeout.String())
	}
	if errors.Is(err, errColumnEvicted) || errors.Is(err, errColumnRestart) || errors.Is(err, errColumnFields) {
		return err
	}
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, "read sort keys")
	}
	if n := s.msgs.len(); n > 0 && filling != nil {
		cache.columnUpTo(box, filling, s.msgs.uid(n-1)) // the view's UIDs have been read
	}
	return nil
}

var errSortDeadline = errors.New("sort deadline passed")

// streamSortColumn calls ReadSortColumn with request() and gives each chunk it streams to
// each, retried (a new request() each time) within the deadline, the stream's deadline
// being the command's.
func (c *conn) streamSortColumn(ctx context.Context, deadline time.Time, request func() *metadatapb.ReadSortColumnRequest, each func(*metadatapb.SortColumnChunk) error) error {
	policy := metadataRetry
	policy.Budget, policy.CallTimeout = time.Until(deadline), time.Until(deadline)
	return policy.Do(ctx, func(ctx context.Context) error {
		stream, err := c.srv.cfg.Metadata.ReadSortColumn(ctx, request())
		if err != nil {
			return err
		}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := each(chunk); err != nil {
				return err
			}
		}
	})
}

// errNoSubjectOrder is readSubjectOrder's answer when the service sent no subject order
// (a build from before the subject dictionary answers with the column).
var errNoSubjectOrder = errors.New("sort column: the service sent no subject order")

// subjectOrderReads counts the subject orders read, so that the tests see which path a
// SORT took (export_test.go).
var subjectOrderReads atomic.Int64

// readSubjectOrder reads the selected mailbox's subject dictionary in the octet order of
// its subjects (ReadSortColumn subject_order, metadata/subjectnumbers.go), up to the
// deadline: the numbers, each once.
func (c *conn) readSubjectOrder(deadline time.Time) ([]uint32, error) {
	s := c.sel
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	var order []uint32
	request := func() *metadatapb.ReadSortColumnRequest {
		order = order[:0] // a retry reads the whole order again, from one view
		return &metadatapb.ReadSortColumnRequest{Account: s.owner, MailboxId: s.mailboxID, User: c.accountName(), SubjectOrder: true}
	}
	err := c.streamSortColumn(ctx, deadline, request, func(chunk *metadatapb.SortColumnChunk) error {
		if len(chunk.GetSubjectOrder()) == 0 && chunkBytes(chunk) > 0 {
			return errNoSubjectOrder
		}
		order = append(order, chunk.GetSubjectOrder()...)
		return nil
	})
	switch {
	case errors.Is(err, errNoSubjectOrder):
		return nil, err
	case ctx.Err() != nil:
		return nil, no(imapresp.CodeLimit, "Ordering took longer than "+c.srv.limits.SortTimeout.String())
	case err != nil:
		return nil, rpcStatus(err, imapresp.CodeNonExistent, "read subject order")
	}
	subjectOrderReads.Add(1)
	return order, nil
}

// chunkBytes is the length of a chunk's column data, whichever form it has.
func chunkBytes(chunk *metadatapb.SortColumnChunk) int {
	return len(chunk.GetRecords()) + len(chunk.GetEntries()) + len(chunk.GetDates()) + len(chunk.GetThreadRecords()) + len(chunk.GetSubjectRecords())
}

// appendChunk adds a chunk of box's sort-key column, whichever form it has (dates,
// subject records, thread-keys records, records, or uids and entries), to the cache
// (appendDecoded).
func (c *sortKeyCache) appendChunk(box sortBoxKey, filling *sortBox, upTo uint32, expect int, chunk *metadatapb.SortColumnChunk) (*sortBox, error) {
	holds := allFields
	switch {
	case len(chunk.GetDates()) > 0:
		holds = fieldDates
	case len(chunk.GetSubjectRecords()) > 0:
		holds = subjectField
	case len(chunk.GetThreadRecords()) > 0:
		holds = threadKeyFields
	}
	return c.appendDecoded(box, filling, upTo, expect, holds, func(add func(uint32, *sortEntry) error) error {
		switch {
		case len(chunk.GetDates()) > 0:
			return decodeDateRecords(chunk.GetDates(), add)
		case len(chunk.GetSubjectRecords()) > 0:
			return decodeSubjectRecords(chunk.GetSubjectRecords(), add)
		case len(chunk.GetThreadRecords()) > 0:
			threadKeyRecordsRead.Add(1)
			return decodeColumnRecords(chunk.GetThreadRecords(), true, add)
		case len(chunk.GetRecords()) > 0:
			return decodeColumnRecords(chunk.GetRecords(), false, add)
		}
		return decodeColumnChunk(chunk, add)
	})
}

// threadKeyRecordsRead counts the chunks read from the column's thread-keys projection,
// so that the tests see which path a SORT or THREAD took (export_test.go).
var threadKeyRecordsRead atomic.Int64

// Field numbers of SortColumnEntry and SortKeys (proto/metadata.proto).
var (
	columnDateField    = protoField(&metadatapb.SortColumnEntry{}, "internal_date_unix")
	columnSizeField    = protoField(&metadatapb.SortColumnEntry{}, "size")
	columnKeysField    = protoField(&metadatapb.SortColumnEntry{}, "keys")
	columnNumberField  = protoField(&metadatapb.SortColumnEntry{}, "message_number")
	columnRefNumsField = protoField(&metadatapb.SortColumnEntry{}, "reference_numbers")
	columnSubjNumField = protoField(&metadatapb.SortColumnEntry{}, "subject_number")
	keysSentField      = protoField(&metadatapb.SortKeys{}, "sent_unix")
	keysSubjectField   = protoField(&metadatapb.SortKeys{}, "subject")
	keysFromField      = protoField(&metadatapb.SortKeys{}, "from")
	keysToField        = protoField(&metadatapb.SortKeys{}, "to")
	keysCcField        = protoField(&metadatapb.SortKeys{}, "cc")
	keysDispFromField  = protoField(&metadatapb.SortKeys{}, "display_from")
	keysDispToField    = protoField(&metadatapb.SortKeys{}, "display_to")
	keysMessageIDField = protoField(&metadatapb.SortKeys{}, "message_id")
	keysRefsField      = protoField(&metadatapb.SortKeys{}, "references")
	keysReplyField     = protoField(&metadatapb.SortKeys{}, "reply")
)

func protoField(m interface {
	ProtoReflect() protoreflect.Message
}, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// decodeColumnChunk decodes a SortColumnChunk's entries, giving each to add with its UID.
// It decodes the wire format itself, into one entry reused for every message whose strings
// are substrings of the chunk's bytes, so that a message costs no allocation: add interns
// what it keeps (sortColumns.appendEntry) and keeps no string it is given, so the bytes are
// read in place, never copied (nothing writes a received chunk).
func decodeColumnChunk(chunk *metadatapb.SortColumnChunk, add func(uid uint32, e *sortEntry) error) error {
	var text string
	if len(chunk.GetEntries()) > 0 {
		text = unsafe.String(&chunk.Entries[0], len(chunk.Entries))
	}
	var buf entryBuffers
	var e sortEntry
	off := 0
	for _, uid := range chunk.GetUids() {
		n, l := protowire.ConsumeVarint(chunk.Entries[off:])
		if l < 0 || uint64(len(text)-off-l) < n {
			return fmt.Errorf("sort column: bad entry length at UID %d", uid)
		}
		start := off + l
		off = start + int(n)
		if err := decodeColumnEntry(text[start:off], false, &e, &buf); err != nil {
			return fmt.Errorf("sort column: UID %d: %w", uid, err)
		}
		if err := add(uid, &e); err != nil {
			return err
		}
	}
	if off != len(text) {
		return errors.New("sort column: entries beyond the UIDs")
	}
	return nil
}

// chunkLastUID returns the last UID of a chunk, ok false if it has none.
func chunkLastUID(chunk *metadatapb.SortColumnChunk) (last uint32, ok bool) {
	if uids := chunk.GetUids(); len(uids) > 0 {
		return uids[len(uids)-1], true
	}
	if dates := chunk.GetDates(); len(dates) > 0 {
		if len(dates)%dateRecordLen != 0 {
			return 0, false
		}
		return binary.LittleEndian.Uint32(dates[len(dates)-dateRecordLen:]), true
	}
	if recs := chunk.GetSubjectRecords(); len(recs) > 0 {
		if len(recs)%metadatapb.SubjectRecordLen != 0 {
			return 0, false
		}
		return binary.LittleEndian.Uint32(recs[len(recs)-metadatapb.SubjectRecordLen:]), true
	}
	records := chunk.GetRecords()
	if len(records) == 0 {
		records = chunk.GetThreadRecords()
	}
	r := wireReader{s: bytesString(records)}
	for r.more() {
		uid, err := r.varint()
		if err != nil || uid > math.MaxUint32 {
			return 0, false
		}
		if _, err := r.bytes(); err != nil {
			return 0, false
		}
		last, ok = uint32(uid), true
	}
	return last, ok
}

// bytesString is b as a string sharing its bytes: nothing writes a received chunk.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// decodeColumnRecords decodes a SortColumnChunk's records (per message its UID, then its
// entry with its length, metadata/sortcolumn.go), or with projected its thread_records
// (the same, the entries of the thread-keys projection, metadata/threadkeys.go), as
// decodeColumnChunk does its uids and entries, giving each to add.
func decodeColumnRecords(records []byte, projected bool, add func(uid uint32, e *sortEntry) error) error {
	r := wireReader{s: bytesString(records)}
	var buf entryBuffers
	var e sortEntry
	for r.more() {
		uid, err := r.varint()
		if err != nil || uid > math.MaxUint32 {
			return errors.New("sort column: bad record UID")
		}
		entry, err := r.bytes()
		if err != nil {
			return fmt.Errorf("sort column: bad entry length at UID %d", uid)
		}
		if err := decodeColumnEntry(entry, projected, &e, &buf); err != nil {
			return fmt.Errorf("sort column: UID %d: %w", uid, err)
		}
		if err := add(uint32(uid), &e); err != nil {
			return err
		}
	}
	return nil
}

// dateRecordLen is the length of a record of SortColumnChunk.dates: UID (4 bytes), the
// date SORT DATE orders by (8), internal date (8), size (8), little-endian.
const dateRecordLen = 28

// dateRecordsRead counts the messages read from the column's dates projection, so that
// the tests see which path a SORT took (export_test.go).
var dateRecordsRead atomic.Int64

// decodeDateRecords decodes a SortColumnChunk's dates (the column's dates projection,
// metadata/sortdates.go), giving each message's UID, dates and size to add, its other
// keys empty.
func decodeDateRecords(dates []byte, add func(uid uint32, e *sortEntry) error) error {
	if len(dates)%dateRecordLen != 0 {
		return errors.New("sort column: dates of a partial record")
	}
	dateRecordsRead.Add(int64(len(dates) / dateRecordLen))
	var e sortEntry
	for off := 0; off < len(dates); off += dateRecordLen {
		rec := dates[off : off+dateRecordLen]
		e = sortEntry{msg: sortthread.Message{
			Date:    int64(binary.LittleEndian.Uint64(rec[4:])), // the sent date, else the internal date (RFC 5256 2.2)
			Arrival: int64(binary.LittleEndian.Uint64(rec[12:])),
			Size:    binary.LittleEndian.Uint64(rec[20:]),
		}}
		if err := add(binary.LittleEndian.Uint32(rec), &e); err != nil {
			return err
		}
	}
	return nil
}

// subjectRecordsRead counts the messages read from the column's subject projection, so
// that the tests see which path a SORT took (export_test.go).
var subjectRecordsRead atomic.Int64

// decodeSubjectRecords decodes a SortColumnChunk's subject_records (the column's subject
// projection, metadata/subjectrecords.go), giving each message's UID and subject number to
// add, its other keys empty. A record without a number (metadatapb.UnnumberedSubject)
// stands for a subject only the strings give: errThreadStrings, so that the mailbox is
// read again with strings (appendDecoded, restartWithStrings).
func decodeSubjectRecords(recs []byte, add func(uid uint32, e *sortEntry) error) error {
	if len(recs)%metadatapb.SubjectRecordLen != 0 {
		return errors.New("sort column: subject records of a partial record")
	}
	subjectRecordsRead.Add(int64(len(recs) / metadatapb.SubjectRecordLen))
	var e sortEntry
	for off := 0; off < len(recs); off += metadatapb.SubjectRecordLen {
		n := binary.LittleEndian.Uint32(recs[off+4:])
		if n == metadatapb.UnnumberedSubject {
			return errThreadStrings
		}
		e = sortEntry{subjectNumbered: true, subjectNumber: n, subjectStripped: true}
		if err := add(binary.LittleEndian.Uint32(recs[off:]), &e); err != nil {
			return err
		}
	}
	return nil
}

// wireReader walks a protobuf encoding held in a string, returning string fields as
// substrings of it.
type wireReader struct {
	s   string
	off int
}

var errWire = errors.New("malformed entry")

func (r *wireReader) more() bool { return r.off < len(r.s) }

func (r *wireReader) varint() (uint64, error) {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if r.off >= len(r.s) {
			return 0, errWire
		}
		b := r.s[r.off]
		r.off++
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, errWire
}

func (r *wireReader) tag() (protowire.Number, protowire.Type, error) {
	v, err := r.varint()
	if err != nil || v>>3 == 0 {
		return 0, 0, errWire
	}
	return protowire.Number(v >> 3), protowire.Type(v & 7), nil
}

func (r *wireReader) bytes() (string, error) {
	n, err := r.varint()
	if err != nil || uint64(len(r.s)-r.off) < n {
		return "", errWire
	}
	v := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

// skip passes over a field of wire type typ (an unknown field).
func (r *wireReader) skip(typ protowire.Type) error {
	var err error
	switch typ {
	case protowire.VarintType:
		_, err = r.varint()
	case protowire.BytesType:
		_, err = r.bytes()
	case protowire.Fixed32Type, protowire.Fixed64Type:
		n := 4
		if typ == protowire.Fixed64Type {
			n = 8
		}
		if len(r.s)-r.off < n {
			return errWire
		}
		r.off += n
	default:
		return errWire
	}
	return err
}

// entryBuffers are decodeColumnEntry's slices, reused from one entry to the next.
type entryBuffers struct {
	refs []string
	nums []uint32
}

// decodeColumnEntry decodes an encoded SortColumnEntry into e as sortEntryOf would build it
// from the decoded message, and its Message-ID numbers (metadata/messagenumbers.go); e's
// references and numbers are buf's, valid until the next entry is decoded into it. With
// projected, s is an entry of the thread-keys projection (metadata/threadkeys.go): when
// numbered it has the numbers of its Message-ID and references but not their strings
// (e.stripped), and with a subject number not the subject (e.subjectStripped,
// metadata/subjectnumbers.go).
func decodeColumnEntry(s string, projected bool, e *sortEntry, buf *entryBuffers) error {
	*e = sortEntry{}
	buf.refs, buf.nums = buf.refs[:0], buf.nums[:0]
	r := wireReader{s: s}
	var keys string
	for r.more() {
		num, typ, err := r.tag()
		if err != nil {
			return err
		}
		switch {
		case num == columnDateField && typ == protowire.VarintType:
			v, err := r.varint()
			if err != nil {
				return err
			}
			e.msg.Arrival = int64(v)
		case num == columnSizeField && typ == protowire.VarintType:
			if e.msg.Size, err = r.varint(); err != nil {
				return err
			}
		case num == columnKeysField && typ == protowire.BytesType:
			if keys, err = r.bytes(); err != nil {
				return err
			}
		case num == columnNumberField && typ == protowire.VarintType:
			v, err := r.varint()
			if err != nil || v > math.MaxUint32 {
				return errWire
			}
			e.numbered, e.messageNumber = true, uint32(v)
		case num == columnSubjNumField && typ == protowire.VarintType:
			v, err := r.varint()
			if err != nil || v > math.MaxUint32 {
				return errWire
			}
			e.subjectNumbered, e.subjectNumber = true, uint32(v)
		case num == columnRefNumsField && typ == protowire.BytesType:
			packed, err := r.bytes()
			if err != nil {
				return err
			}
			for p := (wireReader{s: packed}); p.more(); {
				v, err := p.varint()
				if err != nil || v > math.MaxUint32 {
					return errWire
				}
				buf.nums = append(buf.nums, uint32(v))
			}
		default:
			if err := r.skip(typ); err != nil {
				return err
			}
		}
	}
	e.msg.Date = e.msg.Arrival
	r = wireReader{s: keys}
	for r.more() {
		num, typ, err := r.tag()
		if err != nil {
			return err
		}
		if typ == protowire.VarintType && (num == keysSentField || num == keysReplyField) {
			v, err := r.varint()
			if err != nil {
				return err
			}
			if num == keysSentField {
				e.msg.Date = int64(v) // RFC 5256 2.2; else the internal date
			} else {
				e.reply = v != 0
			}
			continue
		}
		var field *string
		switch num {
		case keysSubjectField:
			field = &e.msg.Subject
		case keysFromField:
			field = &e.msg.From
		case keysToField:
			field = &e.msg.To
		case keysCcField:
			field = &e.msg.Cc
		case keysDispFromField:
			field = &e.msg.DisplayFrom
		case keysDispToField:
			field = &e.msg.DisplayTo
		case keysMessageIDField:
			field = &e.msg.MessageID
		}
		switch {
		case typ != protowire.BytesType || (field == nil && num != keysRefsField):
			if err := r.skip(typ); err != nil {
				return err
			}
		case field != nil:
			if *field, err = r.bytes(); err != nil {
				return err
			}
		default:
			v, err := r.bytes()
			if err != nil {
				return err
			}
			buf.refs = append(buf.refs, v)
		}
	}
	if len(buf.refs) > 0 {
		e.msg.References = buf.refs[:len(buf.refs):len(buf.refs)]
	}
	if projected && e.numbered {
		// The numbers stand for the strings the projection left out.
		e.stripped = true
		if len(buf.refs) > 0 || e.msg.MessageID != "" {
			return errWire // a numbered projection entry has no Message-ID strings
		}
	} else if e.numbered && len(buf.nums) != len(buf.refs) {
		// Numbers that do not match the references: the strings are used instead.
		e.numbered, e.messageNumber = false, 0
	}
	if e.numbered && len(buf.nums) > 0 {
		e.refNumbers = buf.nums
	}
	if projected && e.subjectNumbered {
		// The number stands for the subject the projection left out.
		e.subjectStripped = true
		if e.msg.Subject != "" {
			return errWire // a subject-numbered projection entry has no subject
		}
	}
	return nil
}

// sortEntryOf is a message's sort entry from its internal date, size and stored keys.
func sortEntryOf(internalDate int64, size uint64, keys *metadatapb.SortKeys) sortEntry {
	e := sortEntry{reply: keys.GetReply(), msg: sortthread.Message{
		Arrival: internalDate, Date: internalDate,
		Size: size, Subject: keys.GetSubject(), From: keys.GetFrom(), To: keys.GetTo(),
		Cc: keys.GetCc(), DisplayFrom: keys.GetDisplayFrom(), DisplayTo: keys.GetDisplayTo(),
		MessageID: keys.GetMessageId(), References: keys.GetReferences(),
	}}
	if keys.SentUnix != nil {
		e.msg.Date = keys.GetSentUnix() // RFC 5256 2.2; else the internal date
	}
	return e
}
