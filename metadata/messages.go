package metadata

import (
	"cmp"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

const maxUID = 1<<32 - 1

func decodeMessageIndex(k, v []byte) (*metadatapb.MessageIndex, error) {
	idx := &metadatapb.MessageIndex{}
	if err := proto.Unmarshal(v, idx); err != nil {
		return nil, fmt.Errorf("decode message %x: %w", k, err)
	}
	return idx, nil
}

// normalizeRanges returns the ranges sorted and merged; last == 0 means to the end,
// first > last is the same range reversed (RFC 9051 9: "4:2" is "2:4").
func normalizeRanges(in []*metadatapb.UidRange) [][2]uint32 {
	out := make([][2]uint32, 0, len(in))
	for _, r := range in {
		first, last := r.GetFirst(), r.GetLast()
		if last == 0 {
			last = maxUID
		}
		if first > last {
			first, last = last, first
		}
		out = append(out, [2]uint32{max(first, 1), last})
	}
	slices.SortFunc(out, func(a, b [2]uint32) int { return cmp.Compare(a[0], b[0]) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && uint64(r[0]) <= uint64(merged[n-1][1])+1 {
			merged[n-1][1] = max(merged[n-1][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

var allUIDs = [][2]uint32{{1, maxUID}}

type storedMessage struct {
	uid uint32
	idx *metadatapb.MessageIndex
}

// scanMessages calls fn for the mailbox's messages in the ranges, in UID order.
func scanMessages(r reader, mailbox uint64, ranges [][2]uint32, fn func(uid uint32, idx *metadatapb.MessageIndex) (bool, error)) error {
	for _, rg := range ranges {
		more := true
		upper := prefixEnd(mailboxPrefix(prefixMessage, mailbox))
		if rg[1] < maxUID {
			upper = messageKey(mailbox, rg[1]+1)
		}
		err := scan(r, messageKey(mailbox, rg[0]), upper, func(k, v []byte) (bool, error) {
			idx, err := decodeMessageIndex(k, v)
			if err != nil {
				return false, err
			}
			more, err = fn(uidFromKey(k), idx)
			return more, err
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (c *cmdCtx) messages(mailbox uint64, ranges [][2]uint32) ([]storedMessage, error) {
	var msgs []storedMessage
	err := scanMessages(c.tx.b, mailbox, ranges, func(uid uint32, idx *metadatapb.MessageIndex) (bool, error) {
		msgs = append(msgs, storedMessage{uid: uid, idx: idx})
		return true, nil
	})
	return msgs, err
}

func (c *cmdCtx) addBlobRef(key string) error {
	ref := &metadatapb.BlobRef{}
	if _, err := getProto(c.tx.b, blobKey(key), ref); err != nil {
		return err
	}
	if ref.GetRefs() == 0 && ref.GetOrphanedUnixNano() != 0 {
		// A dedup append revives an orphan before the collector took it.
		c.tx.mustDelete(orphanKey(ref.GetOrphanedUnixNano(), key))
		ref.OrphanedUnixNano = 0
	}
	ref.Refs++
	c.tx.setProto(blobKey(key), ref)
	return nil
}

// releaseBlob drops one reference; a blob without references is listed as an
// orphan for the garbage collector (DESIGN.md: bodies).
func (c *cmdCtx) releaseBlob(key string) error {
	ref := &metadatapb.BlobRef{}
	found, err := getProto(c.tx.b, blobKey(key), ref)
	if err != nil {
		return err
	}
	if !found || ref.GetRefs() == 0 {
		return newCmdError(codes.Internal, "release blob %q: no reference recorded", key)
	}
	ref.Refs--
	if ref.Refs == 0 {
		ref.OrphanedUnixNano = c.now
		c.tx.mustSet(orphanKey(c.now, key), nil)
	}
	c.tx.setProto(blobKey(key), ref)
	return nil
}

// addMessage stores a message under the mailbox's next UID at the command's MODSEQ.
func (c *cmdCtx) addMessage(ms *mailboxState, idx *metadatapb.MessageIndex, structure []byte) (uint32, error) {
	box := ms.box()
	uid := box.UidNext
	box.UidNext++
	idx.Modseq = c.bump(ms)
	// UIDs at or above UIDNEXT have never been used in this mailbox.
	c.tx.insert(messageKey(box.Id, uid), mustMarshal(idx))
	if len(structure) > 0 {
		c.tx.insert(structureKey(box.Id, uid), structure)
	}
	if err := c.addBlobRef(idx.GetBlobKey()); err != nil {
		return 0, err
	}
	box.Messages++
	box.Size += idx.GetSize()
	if !hasFlag(idx.GetFlags(), flagSeen) {
		box.Unseen++
	}
	c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_APPEND, Uid: uid, Flags: idx.GetFlags()})
	return uid, nil
}

// removeMessage expunges one message and leaves a tombstone at the command's MODSEQ.
func (c *cmdCtx) removeMessage(ms *mailboxState, m storedMessage) error {
	box := ms.box()
	modseq := c.bump(ms)
	c.tx.mustDelete(messageKey(box.Id, m.uid))
	c.tx.mustDelete(structureKey(box.Id, m.uid))
	c.tx.mustSet(tombstoneKey(box.Id, m.uid), encodeUint64(modseq))
	if err := c.releaseBlob(m.idx.GetBlobKey()); err != nil {
		return err
	}
	box.Messages--
	box.Size -= m.idx.GetSize()
	if !hasFlag(m.idx.GetFlags(), flagSeen) {
		box.Unseen--
	}
	c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE, Uid: m.uid})
	return nil
}

func checkUIDSpace(ms *mailboxState, n int) error {
	if uint64(ms.box().GetUidNext())+uint64(n) > maxUID {
		return errPrecondition("mailbox %q has no UIDs left; it needs a new UIDVALIDITY", ms.box().GetName())
	}
	return nil
}

// appendMessages implements APPEND (RFC 9051 6.3.12) and MULTIAPPEND (RFC 3502):
// all messages or none.
func (c *cmdCtx) appendMessages(req *metadatapb.AppendRequest) (*metadatapb.CommandResult, error) {
	ms, err := c.selectable(req.GetAccount(), req.GetMailboxId())
	if err != nil {
		return nil, err
	}
	if len(req.GetMessages()) == 0 {
		return nil, errInvalid("append without messages")
	}
	if err := checkUIDSpace(ms, len(req.GetMessages())); err != nil {
		return nil, err
	}
	var size int64
	for _, m := range req.GetMessages() {
		size += int64(m.GetSize())
	}
	if err := c.chargeUsage(req.GetAccount(), int64(len(req.GetMessages())), size); err != nil {
		return nil, err
	}
	resp := &metadatapb.AppendResponse{UidValidity: ms.box().GetUidValidity()}
	for i, m := range req.GetMessages() {
		if m.GetBlobKey() == "" {
			return nil, errInvalid("message %d has no blob key", i)
		}
		if err := c.checkAppendBlob(m.GetBlobKey(), req.GetBlobEpoch()); err != nil {
			return nil, err
		}
		flags, valid := normalizeFlags(m.GetFlags())
		if !valid {
			return nil, errInvalid("message %d has invalid flags %q", i, m.GetFlags())
		}
		var structure []byte
		if m.GetStructure() != nil {
			structure = mustMarshal(m.GetStructure())
		}
		uid, err := c.addMessage(ms, &metadatapb.MessageIndex{
			Flags:            flags,
			InternalDateUnix: m.GetInternalDateUnix(),
			Size:             m.GetSize(),
			BlobKey:          m.GetBlobKey(),
		}, structure)
		if err != nil {
			return nil, err
		}
		resp.Uids = append(resp.Uids, uid)
	}
	resp.Modseq = ms.modseq
	if resp.BlobEpoch, err = c.blobEpoch(); err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Append{Append: resp}}, nil
}

// storeFlags implements STORE (RFC 9051 6.4.6) with UNCHANGEDSINCE (RFC 7162 3.1.3).
// Only messages whose flags change get the command's MODSEQ.
func (c *cmdCtx) storeFlags(req *metadatapb.StoreFlagsRequest) (*metadatapb.CommandResult, error) {
	ms, err := c.selectable(req.GetAccount(), req.GetMailboxId())
	if err != nil {
		return nil, err
	}
	if req.GetOp() == metadatapb.FlagOp_FLAG_OP_UNSPECIFIED {
		return nil, errInvalid("store without a flag operation")
	}
	if len(req.GetUids()) == 0 {
		return nil, errInvalid("store without UIDs")
	}
	flags, valid := normalizeFlags(req.GetFlags())
	if !valid {
		return nil, errInvalid("invalid flags %q", req.GetFlags())
	}
	msgs, err := c.messages(ms.box().GetId(), normalizeRanges(req.GetUids()))
	if err != nil {
		return nil, err
	}
	resp := &metadatapb.StoreFlagsResponse{}
	box := ms.box()
	for _, m := range msgs {
		if since := req.GetUnchangedSince(); since != 0 && m.idx.GetModseq() > since {
			// RFC 7162 3.1.3: the message changed after UNCHANGEDSINCE.
			resp.Modified = append(resp.Modified, m.uid)
			continue
		}
		updated := applyFlagOp(m.idx.GetFlags(), req.GetOp(), flags)
		if slices.Equal(updated, m.idx.GetFlags()) {
			continue
		}
		wasSeen, isSeen := hasFlag(m.idx.GetFlags(), flagSeen), hasFlag(updated, flagSeen)
		if wasSeen && !isSeen {
			box.Unseen++
		} else if !wasSeen && isSeen {
			box.Unseen--
		}
		m.idx.Flags = updated
		m.idx.Modseq = c.bump(ms)
		c.tx.setProto(messageKey(box.GetId(), m.uid), m.idx)
		c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: m.uid, Flags: updated})
		resp.Updated = append(resp.Updated, &metadatapb.FlagUpdate{Uid: m.uid, Flags: updated, Modseq: m.idx.Modseq})
	}
	resp.Modseq = box.GetHighestModseq()
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_StoreFlags{StoreFlags: resp}}, nil
}

// copyMessages implements COPY (RFC 9051 6.4.7) and MOVE (RFC 6851 3.1).
func (c *cmdCtx) copyMessages(req *metadatapb.CopyRequest) (*metadatapb.CommandResult, error) {
	src, err := c.selectable(req.GetAccount(), req.GetSourceMailboxId())
	if err != nil {
		return nil, err
	}
	dst, err := c.selectable(req.GetAccount(), req.GetDestMailboxId())
	if err != nil {
		// RFC 9051 6.4.7: a missing destination is NO [TRYCREATE]; NotFound says so.
		return nil, err
	}
	if len(req.GetUids()) == 0 {
		return nil, errInvalid("copy without UIDs")
	}
	resp, err := c.transfer(src, dst, normalizeRanges(req.GetUids()), req.GetMove())
	if err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Copy{Copy: resp}}, nil
}

// transfer copies the source messages in ranges (nil: all) to dst with new UIDs, and
// expunges them from src when move is set, all in this command.
func (c *cmdCtx) transfer(src, dst *mailboxState, ranges [][2]uint32, move bool) (*metadatapb.CopyResponse, error) {
	if ranges == nil {
		ranges = allUIDs
	}
	msgs, err := c.messages(src.box().GetId(), ranges)
	if err != nil {
		return nil, err
	}
	if err := checkUIDSpace(dst, len(msgs)); err != nil {
		return nil, err
	}
	if !move {
		var size int64
		for _, m := range msgs {
			size += int64(m.idx.GetSize())
		}
		if err := c.chargeUsage(dst.rec.GetAccount(), int64(len(msgs)), size); err != nil {
			return nil, err
		}
	}
	resp := &metadatapb.CopyResponse{DestUidValidity: dst.box().GetUidValidity()}
	for _, m := range msgs {
		structure, _, err := getRaw(c.tx.b, structureKey(src.box().GetId(), m.uid))
		if err != nil {
			return nil, err
		}
		uid, err := c.addMessage(dst, &metadatapb.MessageIndex{
			Flags:            m.idx.GetFlags(),
			InternalDateUnix: m.idx.GetInternalDateUnix(),
			Size:             m.idx.GetSize(),
			BlobKey:          m.idx.GetBlobKey(),
		}, structure)
		if err != nil {
			return nil, err
		}
		resp.SourceUids = append(resp.SourceUids, m.uid)
		resp.DestUids = append(resp.DestUids, uid)
		if move {
			if err := c.removeMessage(src, m); err != nil {
				return nil, err
			}
		}
	}
	resp.DestModseq = dst.box().GetHighestModseq()
	return resp, nil
}

// expunge implements EXPUNGE (RFC 9051 6.4.3) and UID EXPUNGE (RFC 9051 6.4.9):
// only messages with \Deleted go.
func (c *cmdCtx) expunge(req *metadatapb.ExpungeRequest) (*metadatapb.CommandResult, error) {
	ms, err := c.selectable(req.GetAccount(), req.GetMailboxId())
	if err != nil {
		return nil, err
	}
	ranges := allUIDs
	if len(req.GetUids()) > 0 {
		ranges = normalizeRanges(req.GetUids())
	}
	msgs, err := c.messages(ms.box().GetId(), ranges)
	if err != nil {
		return nil, err
	}
	resp := &metadatapb.ExpungeResponse{}
	var freed int64
	for _, m := range msgs {
		if !hasFlag(m.idx.GetFlags(), flagDeleted) {
			continue
		}
		if err := c.removeMessage(ms, m); err != nil {
			return nil, err
		}
		resp.Expunged = append(resp.Expunged, m.uid)
		freed += int64(m.idx.GetSize())
	}
	if err := c.chargeUsage(req.GetAccount(), -int64(len(resp.Expunged)), -freed); err != nil {
		return nil, err
	}
	resp.Modseq = ms.box().GetHighestModseq()
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Expunge{Expunge: resp}}, nil
}
