package imap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

const (
	// fetchBatch is how many message records one FetchMessages call returns at most, so
	// that memory and each call's deadline are bounded whatever the set.
	fetchBatch = 256
	// maxPartHeader bounds a nested part's header read into memory for HEADER.FIELDS.
	maxPartHeader = 1 << 20
	// internalDateLayout is RFC 9051 9 date-time.
	internalDateLayout = "02-Jan-2006 15:04:05 -0700"
)

// cmdFetch: FETCH (RFC 9051 6.4.5) and UID FETCH (6.4.9), with EMAILID and THREADID (RFC
// 8474 5.3). ENVELOPE, BODYSTRUCTURE, the top-level header and the object ids come from
// metadata; body sections are ranged reads of the blob, streamed to the client.
func (c *conn) cmdFetch(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.FetchArgs)
	s := c.sel
	items := args.Items
	uidCmd := cmd.UID
	if args.Vanished && !c.qresync {
		return bad("", "VANISHED needs ENABLE QRESYNC") // RFC 7162 3.2.6
	}
	hasItem := func(attr imapwire.FetchAttr) bool {
		return slices.ContainsFunc(items, func(it imapwire.FetchItem) bool { return it.Attr == attr })
	}
	if uidCmd && !hasItem(imapwire.FetchUID) && !c.uidOnly {
		items = append([]imapwire.FetchItem{{Attr: imapwire.FetchUID}}, items...) // RFC 9051 6.4.9
	}
	if args.ChangedSince != 0 || hasItem(imapwire.FetchModSeq) {
		c.enableCondStore() // RFC 7162 3.1
	}
	if args.ChangedSince != 0 && !hasItem(imapwire.FetchModSeq) {
		// RFC 7162 3.1.4.1: CHANGEDSINCE answers as if MODSEQ were asked for.
		items = append(slices.Clip(items), imapwire.FetchItem{Attr: imapwire.FetchModSeq})
	}
	var changed func(i int) bool
	if args.ChangedSince != 0 {
		// RFC 7162 3.1.4.1: only the messages whose MODSEQ is above CHANGEDSINCE.
		changed = s.msgs.modseqAbove(args.ChangedSince)
	}
	idx, err := c.resolveWhere(args.Set, changed)
	if err != nil {
		return err
	}
	if uids, isUID := args.Set.(imap.UIDSet); args.Vanished && isUID {
		// RFC 7162 3.2.6: the UIDs of the set expunged since CHANGEDSINCE, before the
		// FETCH responses.
		if ranges := c.uidSetBounds(uids); len(ranges) > 0 {
			vanished, err := c.listVanished(ranges, args.ChangedSince, 1)
			if err != nil {
				return err
			}
			c.sendVanishedEarlier(vanished)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	return c.fetchMessages(idx, items, true)
}

// fetchMessages writes the FETCH responses of the messages at idx in the selected mailbox
// with items. With markSeen, a body section fetched without PEEK sets \Seen (RFC 9051
// 6.4.5); without it (the FETCH that follows a NOTIFY MessageNew, RFC 5465 5.2) nothing
// changes.
func (c *conn) fetchMessages(idx []int, items []imapwire.FetchItem, markSeen bool) error {
	s := c.sel
	needRecord, needStructure, setsSeen := false, false, false
	wantsFlags, wantsEnvelope, wantsPreview := false, false, false
	for _, it := range items {
		switch it.Attr {
		case imapwire.FetchFlags:
			wantsFlags = true
		case imapwire.FetchUID:
		case imapwire.FetchInternalDate, imapwire.FetchRFC822Size, imapwire.FetchSaveDate, imapwire.FetchEmailID, imapwire.FetchThreadID:
			needRecord = true
		case imapwire.FetchPreview: // RFC 8970: computed at ingest, stored with the structure
			needRecord, wantsPreview = true, true
		case imapwire.FetchEnvelope:
			needRecord, wantsEnvelope = true, true
		case imapwire.FetchBodyStructure, imapwire.FetchBody, imapwire.FetchRFC822Header:
			needRecord, needStructure = true, true
		case imapwire.FetchRFC822:
			needRecord, setsSeen = true, true
		case imapwire.FetchRFC822Text:
			needRecord, needStructure, setsSeen = true, true, true
		case imapwire.FetchBodySection:
			needRecord = true
			needStructure = needStructure || !wholeMessage(it.Section)
			setsSeen = setsSeen || !it.Section.Peek
		case imapwire.FetchBinarySection: // RFC 9051 6.4.5, RFC 3516 4.2
			needRecord, needStructure = true, true
			setsSeen = setsSeen || !it.Section.Peek
		case imapwire.FetchBinarySize:
			needRecord, needStructure = true, true
		}
	}
	// ENVELOPE alone needs only the envelope of the stored structure, PREVIEW only the
	// preview, both together both.
	parts := structureAll
	switch {
	case needStructure:
	case wantsEnvelope && wantsPreview:
		parts = structureEnvelope | structurePreview
	case wantsEnvelope:
		parts = structureEnvelope
	case wantsPreview:
		parts = structurePreview
	}
	needStructure = needStructure || wantsEnvelope || wantsPreview

	// RFC 9051 6.4.5: fetching a body section without PEEK sets \Seen, and the changed
	// flags go with the FETCH response. EXAMINE never changes flags (6.3.3), nor does a
	// session without the s right (RFC 4314 4).
	seenSet := map[uint32]bool{}
	if setsSeen && markSeen && !s.readOnly && s.rights.has('s') {
		var unseen []uint32
		for _, i := range idx {
			if !hasFlag(s.msgs.flags(i), string(imap.FlagSeen)) {
				unseen = append(unseen, s.msgs.uid(i))
			}
		}
		if len(unseen) > 0 {
			updated, _, err := c.storeFlags(unseen, metadatapb.FlagOp_FLAG_OP_ADD, []string{string(imap.FlagSeen)}, 0)
			if err != nil {
				return err
			}
			for _, uid := range updated {
				seenSet[uid] = true
			}
		}
	}

	// One buffer renders every response of the command (FETCH 1:* FLAGS of a large mailbox
	// is a million of them).
	buf := make([]byte, 0, 256)
	if !needRecord {
		for _, i := range idx {
			c.writeFetch(i, items, nil, len(seenSet) > 0 && seenSet[s.msgs.uid(i)] && !wantsFlags, &buf)
		}
		return nil
	}
	for start := 0; start < len(idx); start += fetchBatch {
		batch := idx[start:min(start+fetchBatch, len(idx))]
		uids := make([]uint32, len(batch))
		for k, i := range batch {
			uids[k] = s.msgs.uid(i)
		}
		records, err := c.fetchRecords(uids, needStructure, parts, nil)
		if err != nil {
			return err
		}
		for _, i := range batch {
			rec := records[s.msgs.uid(i)]
			if rec == nil {
				continue // expunged meanwhile; its EXPUNGE comes later (RFC 9051 7.5.1)
			}
			if err := c.writeFetch(i, items, rec, seenSet[s.msgs.uid(i)] && !wantsFlags, &buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// wholeMessage reports whether a section is BODY[] (or a partial of it), which needs no
// MIME structure.
func wholeMessage(s *imap.FetchItemBodySection) bool {
	return len(s.Part) == 0 && s.Specifier == imap.PartSpecifierNone
}

// structureParts says which fields of a record's MessageStructure fetchRecords asks for.
type structureParts int

const (
	structureAll      structureParts = 0         // all of it
	structureHeader   structureParts = 1 << iota // the header bytes only
	structureEnvelope                            // the envelope only
	structurePreview                             // the preview only (RFC 8970)
	structureSortKeys                            // the sort keys only (RFC 5256, sort.go)
)

// fetchRecords returns the stored records of uids in the selected mailbox, by UID, with the
// structure's parts when withStructure. With parts structureHeader and headerFields, the
// header holds at least the fields of those names. The records' flags and MODSEQs are not
// to be used (the session's view has them), and the records are not to be changed: they
// may be shared through the record cache.
//
// A message whose EXPUNGE waits in the session's feed (RFC 9051 7.5.1 holds it back during
// FETCH, STORE and SEARCH) has no record, as the metadata service would give none: its body
// may be collected an hour after the expunge (blobstore/gc), which a cached record would not
// know of.
func (c *conn) fetchRecords(uids []uint32, withStructure bool, parts structureParts, headerFields []string) (map[uint32]*metadatapb.MessageRecord, error) {
	s := c.sel
	records, err := c.fetchRecordsOf(s.owner, s.mailboxID, s.uidValidity, uids, withStructure, parts, headerFields)
	if err != nil || s.feed == nil {
		return records, err
	}
	for _, uid := range s.feed.pendingExpunges() {
		delete(records, uid)
	}
	return records, nil
}

// fetchRecordsOf is fetchRecords for a mailbox of owner with UIDVALIDITY uidValidity. In the
// session's own mailboxes, the records the frontend's record cache holds are taken from it
// and those fetched are put in it (recordcache.go), a header trimmed to headerFields under
// those names.
func (c *conn) fetchRecordsOf(owner string, mailboxID uint64, uidValidity uint32, uids []uint32, withStructure bool, parts structureParts, headerFields []string) (map[uint32]*metadatapb.MessageRecord, error) {
	records := make(map[uint32]*metadatapb.MessageRecord, len(uids))
	cache := c.srv.records
	if owner != c.accountName() {
		cache = nil // RFC 4314: another owner's mailbox is read under the rights in force
	}
	key := recordKey{owner: owner, mailboxID: mailboxID, uidValidity: uidValidity, parts: recordParts{withStructure: withStructure, structure: parts}}
	if withStructure && parts&structureHeader != 0 {
		key.parts.headerFields = headerFieldsKey(headerFields)
	}
	missing := uids
	if cache != nil {
		missing = nil
		for _, uid := range uids {
			key.uid = uid
			if rec := cache.get(key); rec != nil {
				records[uid] = rec
			} else {
				missing = append(missing, uid)
			}
		}
		if len(missing) == 0 {
			return records, nil
		}
	}
	atTestHook("fetch records")
	fetched := make(map[uint32]*metadatapb.MessageRecord, len(missing))
	err := c.withRetry(func(ctx context.Context) error {
		clear(fetched)
		stream, err := c.srv.cfg.Metadata.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{
			Account: owner, MailboxId: mailboxID, Uids: uidRanges(missing), WithStructure: withStructure,
			HeaderOnly:   parts&structureHeader != 0,
			EnvelopeOnly: parts&structureEnvelope != 0,
			PreviewOnly:  parts&structurePreview != 0,
			SortKeysOnly: parts&structureSortKeys != 0,
			HeaderFields: headerFields,
			User:         c.accountName(),
		})
		if err != nil {
			return err
		}
		for {
			rec, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			fetched[rec.GetUid()] = rec
		}
	})
	if err != nil {
		return nil, rpcStatus(err, imapresp.CodeNonExistent, "fetch messages")
	}
	for uid, rec := range fetched {
		if cache != nil {
			key.uid = uid
			cache.put(key, rec)
		}
		records[uid] = rec
	}
	return records, nil
}

// writeFetch writes the FETCH response of message i (RFC 9051 7.5.2). rec is nil when only
// FLAGS and UID are asked for; addFlags appends FLAGS after an implicit \Seen. The response
// is rendered in *buf, which is left for the next one. A failure after part of the response
// went out leaves the client unable to parse the rest, so the connection then ends.
func (c *conn) writeFetch(i int, items []imapwire.FetchItem, rec *metadatapb.MessageRecord, addFlags bool, buf *[]byte) error {
	begun := false
	err := c.appendFetch(i, items, rec, addFlags, &begun, buf)
	if err != nil && begun {
		c.state = stateLogout
	}
	return err
}

func (c *conn) appendFetch(i int, items []imapwire.FetchItem, rec *metadatapb.MessageRecord, addFlags bool, begun *bool, buf *[]byte) error {
	s := c.sel
	enc := c.encoder()
	// BINARY needs the decoded size before the response starts, and an encoding the server
	// cannot decode fails the command before anything of this message is written.
	var binaries map[int]*binarySection
	for k, it := range items {
		if it.Attr != imapwire.FetchBinarySection && it.Attr != imapwire.FetchBinarySize {
			continue
		}
		bs, err := c.measureBinary(rec, it.Section.Part, it.Attr == imapwire.FetchBinarySection)
		if err != nil {
			return err
		}
		if binaries == nil {
			binaries = map[int]*binarySection{}
		}
		binaries[k] = bs
	}
	num, uidFetch := c.fetchNum(i)
	b := imapresp.AppendFetchStart((*buf)[:0], num, uidFetch)
	for k, it := range items {
		if k > 0 {
			b = append(b, ' ')
		}
		switch it.Attr {
		case imapwire.FetchFlags:
			b = c.appendSessionFlags(append(b, "FLAGS "...), i)
		case imapwire.FetchUID:
			b = strconv.AppendUint(append(b, "UID "...), uint64(s.msgs.uid(i)), 10)
		case imapwire.FetchModSeq:
			b = imapresp.AppendModSeq(b, s.msgs.modseq(i)) // RFC 7162 3.1.4
		case imapwire.FetchInternalDate:
			date := time.Unix(rec.GetInternalDateUnix(), 0).UTC().Format(internalDateLayout)
			b = append(b, `INTERNALDATE "`+date+`"`...)
		case imapwire.FetchRFC822Size:
			b = strconv.AppendUint(append(b, "RFC822.SIZE "...), rec.GetSize(), 10)
		case imapwire.FetchSaveDate:
			// RFC 8514 3: when the message was saved into this mailbox; NIL for messages
			// stored before Strata kept it.
			if saved := rec.GetSavedUnix(); saved != 0 {
				b = append(b, `SAVEDATE "`+time.Unix(saved, 0).UTC().Format(internalDateLayout)+`"`...)
			} else {
				b = append(b, "SAVEDATE NIL"...)
			}
		case imapwire.FetchPreview:
			// RFC 8970 3: the preview made at ingest; "" when the message has no text.
			b = enc.AppendString(append(b, "PREVIEW "...), rec.GetStructure().GetPreview())
		case imapwire.FetchEnvelope:
			b = enc.AppendEnvelope(append(b, "ENVELOPE "...), rec.GetStructure().GetEnvelope())
		case imapwire.FetchBodyStructure:
			b = enc.AppendBodyStructure(append(b, "BODYSTRUCTURE "...), rec.GetStructure().GetBody(), true)
		case imapwire.FetchBody:
			b = enc.AppendBodyStructure(append(b, "BODY "...), rec.GetStructure().GetBody(), false)
		case imapwire.FetchRFC822:
			b = append(b, "RFC822 "...)
			if err := c.writeSection(&b, begun, rec, &imap.FetchItemBodySection{}); err != nil {
				return err
			}
		case imapwire.FetchRFC822Header:
			b = append(b, "RFC822.HEADER "...)
			if err := c.writeSection(&b, begun, rec, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}); err != nil {
				return err
			}
		case imapwire.FetchRFC822Text:
			b = append(b, "RFC822.TEXT "...)
			if err := c.writeSection(&b, begun, rec, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}); err != nil {
				return err
			}
		case imapwire.FetchBodySection:
			b = appendSectionName(b, it.Section, enc)
			b = append(b, ' ')
			if err := c.writeSection(&b, begun, rec, it.Section); err != nil {
				return err
			}
		case imapwire.FetchBinarySection:
			b = appendBinaryName(append(b, "BINARY"...), it.Section.Part)
			if p := it.Section.Partial; p != nil {
				b = strconv.AppendInt(append(b, '<'), p.Offset, 10) // RFC 9051 7.5.2
				b = append(b, '>')
			}
			b = append(b, ' ')
			if err := c.writeBinary(&b, begun, rec, binaries[k], it.Section.Partial); err != nil {
				return err
			}
		case imapwire.FetchBinarySize:
			b = appendBinaryName(append(b, "BINARY.SIZE"...), it.Section.Part)
			b = strconv.AppendInt(append(b, ' '), binaries[k].size, 10)
		case imapwire.FetchEmailID: // RFC 8474 5.3, 7: "EMAILID" SP "(" objectid ")"
			b = imapresp.AppendObjectID(append(b, "EMAILID "...), rec.GetEmailId())
		case imapwire.FetchThreadID: // RFC 8474 5.3, 7: "THREADID" SP ( "(" objectid ")" / nil )
			b = imapresp.AppendObjectID(append(b, "THREADID "...), rec.GetThreadId())
		}
	}
	if addFlags {
		b = c.appendSessionFlags(append(b, " FLAGS "...), i)
		// RFC 7162 3.1: a FETCH that set \Seen reports UID and MODSEQ with the flags.
		if c.condStore && !c.uidOnly && !slices.ContainsFunc(items, func(it imapwire.FetchItem) bool { return it.Attr == imapwire.FetchUID }) {
			b = strconv.AppendUint(append(b, " UID "...), uint64(s.msgs.uid(i)), 10)
		}
		if c.condStore && !slices.ContainsFunc(items, func(it imapwire.FetchItem) bool { return it.Attr == imapwire.FetchModSeq }) {
			b = imapresp.AppendModSeq(append(b, ' '), s.msgs.modseq(i))
		}
	}
	b = append(b, ")\r\n"...)
	c.bw.Write(b)
	*buf = b[:0]
	return nil
}

// appendSectionName renders the response name of a body section: BODY[<section>]<<origin>>
// (RFC 9051 7.5.2).
func appendSectionName(b []byte, s *imap.FetchItemBodySection, enc message.Encoder) []byte {
	b = append(b, "BODY["...)
	for k, n := range s.Part {
		if k > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	if s.Specifier != imap.PartSpecifierNone {
		if len(s.Part) > 0 {
			b = append(b, '.')
		}
		b = append(b, s.Specifier...)
		fields := s.HeaderFields
		if s.HeaderFieldsNot != nil {
			b = append(b, ".FIELDS.NOT"...)
			fields = s.HeaderFieldsNot
		} else if fields != nil {
			b = append(b, ".FIELDS"...)
		}
		if fields != nil {
			b = append(b, " ("...)
			for k, f := range fields {
				if k > 0 {
					b = append(b, ' ')
				}
				b = enc.AppendAString(b, f)
			}
			b = append(b, ')')
		}
	}
	b = append(b, ']')
	if s.Partial != nil {
		b = append(b, '<')
		b = strconv.AppendInt(b, s.Partial.Offset, 10)
		b = append(b, '>')
	}
	return b
}

// writeSection writes the value of a body section as a literal: *b (the response so far) is
// written out first, then the section's bytes are streamed from the blob, or taken from the
// metadata for a top-level header. *b is left empty for the rest of the response.
func (c *conn) writeSection(b *[]byte, begun *bool, rec *metadatapb.MessageRecord, sec *imap.FetchItemBodySection) error {
	st := rec.GetStructure()
	spec := string(sec.Specifier)
	filtered := sec.HeaderFields != nil || sec.HeaderFieldsNot != nil
	var inline []byte // section bytes already in memory, or nil to read the blob
	var offset, length int64
	switch {
	case wholeMessage(sec):
		offset, length = 0, int64(rec.GetSize())
	case len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierHeader && message.HeaderComplete(st):
		inline = st.GetHeader()
	default:
		var err error
		offset, length, err = message.SectionRange(st, sec.Part, spec)
		if errors.Is(err, message.ErrNoSuchPart) {
			inline = []byte{} // sent as an empty string, see message.ErrNoSuchPart
		} else if err != nil {
			return fmt.Errorf("section of message %d: %w", rec.GetUid(), err)
		}
	}
	if filtered {
		if inline == nil {
			if length > maxPartHeader {
				length = maxPartHeader
			}
			header, err := c.readBlob(rec.GetBlobKey(), offset, length)
			if err != nil {
				return err
			}
			inline = header
		}
		if sec.HeaderFieldsNot != nil {
			inline = message.FilterHeader(inline, sec.HeaderFieldsNot, true)
		} else {
			inline = message.FilterHeader(inline, sec.HeaderFields, false)
		}
	}
	if inline != nil {
		offset, length = 0, int64(len(inline))
	}
	// RFC 9051 6.4.5 partial: the bytes from origin, at most size of them.
	if p := sec.Partial; p != nil {
		if p.Offset >= length {
			offset, length = offset+length, 0
		} else {
			offset += p.Offset
			length = min(p.Size, length-p.Offset)
		}
	}
	body := io.Reader(bytes.NewReader(nil))
	if inline != nil {
		body = bytes.NewReader(inline[offset : offset+length])
	} else if length > 0 {
		ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
		defer cancel()
		blob, err := c.srv.cfg.Blobs.Get(ctx, rec.GetBlobKey(), offset, length)
		if err != nil {
			return fmt.Errorf("read body of message %d: %w", rec.GetUid(), err)
		}
		defer blob.Close()
		body = blob
	}
	*begun = true
	c.bw.Write(*b)
	*b = (*b)[:0]
	if err := c.writeLiteral(body, length); err != nil {
		return fmt.Errorf("stream body of message %d: %w", rec.GetUid(), err)
	}
	return nil
}

// readBlob reads a bounded byte range of a body into memory.
func (c *conn) readBlob(key string, offset, length int64) ([]byte, error) {
	ctx, cancel := c.rpcContext()
	defer cancel()
	r, err := c.srv.cfg.Blobs.Get(ctx, key, offset, length)
	if err != nil {
		return nil, fmt.Errorf("read body range: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, length))
	if err != nil {
		return nil, fmt.Errorf("read body range: %w", err)
	}
	return data, nil
}

// hasFlag reports whether flags holds f, ignoring case (RFC 9051 2.3.2: flags are
// case-insensitive).
func hasFlag(flags []string, f string) bool {
	return slices.ContainsFunc(flags, func(g string) bool { return strings.EqualFold(g, f) })
}
