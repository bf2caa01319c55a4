package metadata

import (
	"cmp"
	"fmt"
	"slices"
	"time"

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
		upper := mailboxPrefixEnd(prefixMessage, mailbox)
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
	err := scanMessages(c.tx, mailbox, ranges, func(uid uint32, idx *metadatapb.MessageIndex) (bool, error) {
		msgs = append(msgs, storedMessage{uid: uid, idx: idx})
		return true, nil
	})
	return msgs, err
}

func (c *cmdCtx) addBlobRef(key string) error {
	ref := &metadatapb.BlobRef{}
	refKey := appendStrKey(c.tx.alloc(1+len(key)), prefixBlob, key)
	if _, err := getProto(c.tx, refKey, ref); err != nil {
		return err
	}
	if ref.GetRefs() == 0 && ref.GetOrphanedUnixNano() != 0 {
		// A dedup append revives an orphan before the collector took it.
		c.tx.mustDelete(orphanKey(ref.GetOrphanedUnixNano(), key))
		ref.OrphanedUnixNano = 0
	}
	ref.Refs++
	c.tx.setProto(refKey, ref)
	return nil
}

// releaseBlob drops one reference; a blob without references is listed as an
// orphan for the garbage collector (DESIGN.md: bodies).
func (c *cmdCtx) releaseBlob(key string) error {
	ref := &metadatapb.BlobRef{}
	found, err := getProto(c.tx, blobKey(key), ref)
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
	if ms.firstNewUID == 0 {
		ms.firstNewUID = uid
	}
	idx.Modseq = c.bump(ms)
	idx.SavedUnix = c.now / int64(time.Second) // RFC 8514: saved into this mailbox now
	// UIDs at or above UIDNEXT have never been used in this mailbox.
	c.tx.insert(appendMailboxUIDKey(c.tx.alloc(13), prefixMessage, box.Id, uid), c.tx.marshal(idx))
	c.putListing(ms, uid, idx)
	if len(structure) > 0 {
		c.tx.insert(appendMailboxUIDKey(c.tx.alloc(13), prefixStructure, box.Id, uid), structure)
		if err := c.putSortColumn(ms, uid, idx, structure); err != nil {
			return 0, err
		}
	}
	if err := c.addBlobRef(idx.GetBlobKey()); err != nil {
		return 0, err
	}
	box.Messages++
	box.Recent++ // at or above the mark, which never passes UIDNEXT (recent.go)
	box.Size += idx.GetSize()
	if !hasFlag(idx.GetFlags(), flagSeen) {
		box.Unseen++
	}
	c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_APPEND, Uid: uid, Flags: idx.GetFlags()})
	return uid, nil
}

// addAs stores a message with the flags user gives it: in another owner's mailbox its
// \Seen goes to the user's private record, the rest to the shared flags.
func (c *cmdCtx) addAs(ms *mailboxState, user string, flags []string, idx *metadatapb.MessageIndex, structure []byte) (uint32, error) {
	private := isPrivate(user, ms.rec.GetAccount())
	idx.Flags = flags
	if private {
		idx.Flags = withSeen(flags, false)
	}
	uid, err := c.addMessage(ms, idx, structure)
	if err != nil {
		return 0, err
	}
	if private && hasFlag(flags, flagSeen) {
		if err := c.setPrivateSeen(ms, user, uid, true); err != nil {
			return 0, err
		}
	}
	return uid, nil
}

// removeMessage expunges one message and leaves a tombstone at the command's MODSEQ, with
// the log time for its retention (history.go).
func (c *cmdCtx) removeMessage(ms *mailboxState, m storedMessage) error {
	box := ms.box()
	modseq := c.bump(ms)
	c.tx.mustDelete(messageKey(box.Id, m.uid))
	c.tx.mustDelete(structureKey(box.Id, m.uid))
	c.dropListing(ms, m.uid)
	if err := c.dropSortColumn(box.Id, m.uid); err != nil {
		return err
	}
	c.tx.insert(tombstoneKey(box.Id, modseq, m.uid), encodeUint64(uint64(c.now)))
	if err := c.releaseBlob(m.idx.GetBlobKey()); err != nil {
		return err
	}
	if err := c.dropPrivateSeen(ms, m.uid); err != nil {
		return err
	}
	box.Messages--
	if m.uid >= box.GetFirstRecentUid() {
		box.Recent--
	}
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
// all messages or none. It needs i; flags the user may not set are dropped (RFC 4314 4);
// in another owner's mailbox a \Seen is the user's own (privateseen.go).
func (c *cmdCtx) appendMessages(req *metadatapb.AppendRequest) (*metadatapb.CommandResult, error) {
	user := req.GetUser()
	ms, granted, err := c.selectable(user, req.GetAccount(), req.GetMailboxId(), rightInsert)
	if err != nil {
		return nil, err
	}
	if name := req.GetMailboxName(); name != "" && ms.box().GetName() != name {
		// The frontend remembered which mailbox the name led to; it no longer does
		// (renamed since), and the frontend looks the name up again.
		return nil, errNoMailbox()
	}
	if len(req.GetMessages()) == 0 {
		return nil, errInvalid("append without messages")
	}
	window, err := checkDedup(req)
	if err != nil {
		return nil, err
	}
	if len(req.GetDedupKey()) > 0 {
		// A retry of an append the account stored within the window adds nothing (dedup.go).
		if dup, err := c.duplicateAppend(ms.rec.GetAccount(), req.GetDedupKey()); err != nil {
			return nil, err
		} else if dup != nil {
			return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Append{Append: dup}}, nil
		}
	}
	resp, err := c.addNewMessages(ms, user, granted, req.GetMessages(), req.GetBlobEpoch(), nil, nil)
	if err != nil {
		return nil, err
	}
	resp.Modseq = ms.modseq
	if req.GetReplaceUid() != 0 {
		if resp.ReplacedModseq, err = c.replaceMessage(req); err != nil {
			return nil, err
		}
	}
	if len(req.GetDedupKey()) > 0 {
		if err := c.rememberAppend(ms.rec.GetAccount(), req.GetDedupKey(), window, ms.box().GetId(), resp); err != nil {
			return nil, err
		}
	}
	if resp.BlobEpoch, err = c.blobEpoch(); err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Append{Append: resp}}, nil
}

// addNewMessages stores msgs in ms as user with granted, charging the owner's quota,
// under the next UIDs, or under uids when given (import.go: checked by the caller to be
// strictly increasing from UIDNEXT on), each with its source UID when sourceUIDs is given
// (one per message, import.go). The response has the UIDs; its MODSEQ is set by the caller
// once the command's changes are done.
func (c *cmdCtx) addNewMessages(ms *mailboxState, user string, granted rights, msgs []*metadatapb.NewMessage, blobEpoch uint64, uids, sourceUIDs []uint32) (*metadatapb.AppendResponse, error) {
	if uids == nil {
		if err := checkUIDSpace(ms, len(msgs)); err != nil {
			return nil, err
		}
	}
	var size int64
	for _, m := range msgs {
		size += int64(m.GetSize())
	}
	if err := c.chargeUsage(ms.rec.GetAccount(), int64(len(msgs)), size); err != nil {
		return nil, err
	}
	resp := &metadatapb.AppendResponse{UidValidity: ms.box().GetUidValidity()}
	for i, m := range msgs {
		if m.GetBlobKey() == "" {
			return nil, errInvalid("message %d has no blob key", i)
		}
		if err := c.checkAppendBlob(m.GetBlobKey(), blobEpoch); err != nil {
			return nil, err
		}
		flags, valid := normalizeFlags(m.GetFlags())
		if !valid {
			return nil, errInvalid("message %d has invalid flags %q", i, m.GetFlags())
		}
		if err := checkThreadKeys(m.GetThread()); err != nil {
			return nil, err
		}
		thread, err := c.ingestThread(ms.rec.GetAccount(), m.GetBlobKey(), m.GetThread())
		if err != nil {
			return nil, err
		}
		var structure []byte
		switch {
		case c.structures != nil:
			structure = c.structures[i]
		case m.GetStructure() != nil:
			structure = mustMarshal(m.GetStructure())
		}
		if uids != nil {
			// UIDs between the old UIDNEXT and this one are skipped, never used.
			ms.box().UidNext = uids[i]
		}
		idx := &metadatapb.MessageIndex{
			InternalDateUnix: m.GetInternalDateUnix(),
			Size:             m.GetSize(),
			BlobKey:          m.GetBlobKey(),
			ThreadId:         thread,
		}
		if sourceUIDs != nil {
			idx.SourceUid = sourceUIDs[i]
		}
		uid, err := c.addAs(ms, user, granted.permitted(flags), idx, structure)
		if err != nil {
			return nil, err
		}
		resp.Uids = append(resp.Uids, uid)
	}
	return resp, nil
}

// replaceMessage expunges the message that an APPEND replaces (RFC 8508 3.3): in the same
// command, so the new message and the old one are never both there or both gone. It needs
// t and e on the replaced message's mailbox (RFC 8508 3.4) and returns that mailbox's
// MODSEQ of the expunge.
func (c *cmdCtx) replaceMessage(req *metadatapb.AppendRequest) (uint64, error) {
	account := req.GetReplaceAccount()
	if account == "" {
		account = req.GetAccount()
	}
	src, _, err := c.selectable(req.GetUser(), account, req.GetReplaceMailboxId(), rightExpunge|rightDeleteFlag)
	if err != nil {
		return 0, err
	}
	uid := req.GetReplaceUid()
	msgs, err := c.messages(src.box().GetId(), [][2]uint32{{uid, uid}})
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, errPrecondition("message %d to replace is gone", uid)
	}
	if err := c.removeMessage(src, msgs[0]); err != nil {
		return 0, err
	}
	if err := c.chargeUsage(account, -1, -int64(msgs[0].idx.GetSize())); err != nil {
		return 0, err
	}
	return src.modseq, nil
}

// checkStoreRights refuses a STORE that may change none of the flags it asks for (RFC 4314
// 4: s for \Seen, t for \Deleted, w for the others). A STORE that replaces the flag list
// touches every kind of flag; one that adds or removes no flag changes nothing.
func checkStoreRights(granted rights, op metadatapb.FlagOp, flags []string) error {
	if op == metadatapb.FlagOp_FLAG_OP_REPLACE {
		if granted&(rightSeen|rightWrite|rightDeleteFlag) == 0 {
			return errNoRight(rightSeen | rightWrite | rightDeleteFlag)
		}
		return nil
	}
	for _, f := range flags {
		if granted.mayStore(f) {
			return nil
		}
	}
	if len(flags) > 0 {
		if hasFlag(flags, flagSeen) {
			return errNoRight(rightSeen)
		}
		if hasFlag(flags, flagDeleted) {
			return errNoRight(rightDeleteFlag)
		}
		return errNoRight(rightWrite)
	}
	return nil
}

// storedFlags returns current after a STORE by a user with granted: flags the user may not
// change are left as they are (RFC 4314 4).
func storedFlags(current []string, op metadatapb.FlagOp, flags []string, granted rights) []string {
	if op != metadatapb.FlagOp_FLAG_OP_REPLACE {
		return applyFlagOp(current, op, granted.permitted(flags))
	}
	kept := slices.DeleteFunc(slices.Clone(current), granted.mayStore)
	return canonicalFlags(append(kept, granted.permitted(flags)...))
}

// storeFlags implements STORE (RFC 9051 6.4.6) with UNCHANGEDSINCE (RFC 7162 3.1.3).
// Only messages whose flags change get the command's MODSEQ.
func (c *cmdCtx) storeFlags(req *metadatapb.StoreFlagsRequest) (*metadatapb.CommandResult, error) {
	ms, granted, err := c.selectable(req.GetUser(), req.GetAccount(), req.GetMailboxId(), 0)
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
	if err := checkStoreRights(granted, req.GetOp(), flags); err != nil {
		return nil, err
	}
	ranges := normalizeRanges(req.GetUids())
	box := ms.box()
	msgs, err := c.messages(box.GetId(), ranges)
	if err != nil {
		return nil, err
	}
	user := req.GetUser()
	private := isPrivate(user, req.GetAccount())
	var mine map[uint32]privateSeen
	if private {
		if mine, err = privateSeenIn(c.tx, box.GetId(), user, ranges); err != nil {
			return nil, err
		}
	}
	resp := &metadatapb.StoreFlagsResponse{}
	for _, m := range msgs {
		// The flags and MODSEQ the user sees: with its own \Seen in another's mailbox.
		current, modseq := m.idx.GetFlags(), m.idx.GetModseq()
		if private {
			current, modseq = privateView(current, modseq, mine[m.uid])
		}
		if since := req.GetUnchangedSince(); since != 0 && modseq > since {
			// RFC 7162 3.1.3: the message changed after UNCHANGEDSINCE.
			resp.Modified = append(resp.Modified, m.uid)
			continue
		}
		updated := storedFlags(current, req.GetOp(), flags, granted)
		if slices.Equal(updated, current) {
			continue
		}
		shared := updated
		if private {
			shared = withSeen(updated, hasFlag(m.idx.GetFlags(), flagSeen))
		}
		sharedChanged := !slices.Equal(shared, m.idx.GetFlags())
		if sharedChanged {
			wasSeen, isSeen := hasFlag(m.idx.GetFlags(), flagSeen), hasFlag(shared, flagSeen)
			if wasSeen && !isSeen {
				box.Unseen++
			} else if !wasSeen && isSeen {
				box.Unseen--
			}
			m.idx.Flags = shared
			m.idx.Modseq = c.bump(ms)
			c.tx.setProto(messageKey(box.GetId(), m.uid), m.idx)
			c.putListing(ms, m.uid, m.idx)
			c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: m.uid, Flags: shared})
		}
		if seen := hasFlag(updated, flagSeen); private && seen != mine[m.uid].seen {
			if err := c.setPrivateSeen(ms, user, m.uid, seen); err != nil {
				return nil, err
			}
			if !sharedChanged {
				// Only this user's Watch streams receive it (privateseen.go).
				c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_FLAGS, Uid: m.uid, Flags: updated, User: user})
			}
		}
		resp.Updated = append(resp.Updated, &metadatapb.FlagUpdate{Uid: m.uid, Flags: updated, Modseq: c.bump(ms)})
	}
	resp.Modseq = box.GetHighestModseq()
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_StoreFlags{StoreFlags: resp}}, nil
}

// copyMessages implements COPY (RFC 9051 6.4.7) and MOVE (RFC 6851 3.1). RFC 4314 4: COPY
// needs r on the source and i on the destination, MOVE also t and e on the source (it
// expunges there; x is not needed); the copies keep only the flags the user may set in the
// destination, as for APPEND. The destination may belong to another owner of the same
// tenant (a shared mailbox, or the user's own from one); its owner's quota roots are
// charged.
func (c *cmdCtx) copyMessages(req *metadatapb.CopyRequest) (*metadatapb.CommandResult, error) {
	user := req.GetUser()
	need := rightRead
	if req.GetMove() {
		need |= rightDeleteFlag | rightExpunge
	}
	src, _, err := c.selectable(user, req.GetAccount(), req.GetSourceMailboxId(), need)
	if err != nil {
		return nil, err
	}
	destOwner := req.GetDestAccount()
	if destOwner == "" {
		destOwner = req.GetAccount()
	}
	// RFC 9051 6.4.7: a missing destination is NO [TRYCREATE]; NotFound says so.
	dst, dstRights, err := c.selectable(user, destOwner, req.GetDestMailboxId(), rightInsert)
	if err != nil {
		return nil, err
	}
	if destOwner != req.GetAccount() {
		// Blobs are stored per tenant (DESIGN.md: bodies), and no user reaches two tenants.
		srcTenant, _, err := ownerTenant(c.tx, req.GetAccount())
		if err != nil {
			return nil, err
		}
		dstTenant, _, err := ownerTenant(c.tx, destOwner)
		if err != nil {
			return nil, err
		}
		if srcTenant != dstTenant {
			return nil, errInvalid("copy between mailboxes of two tenants")
		}
	}
	if len(req.GetUids()) == 0 {
		return nil, errInvalid("copy without UIDs")
	}
	resp, err := c.transfer(src, dst, normalizeRanges(req.GetUids()), req.GetMove(), user, dstRights)
	if err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Copy{Copy: resp}}, nil
}

// transfer copies the source messages in ranges (nil: all) to dst with new UIDs, and
// expunges them from src when move is set, all in this command. The copies have the flags
// user sees in src (its own \Seen in another owner's mailbox) that dstRights allows
// setting, given as user gives them (addAs). Usage moves between the owners' quota roots: the source's is
// credited before the destination's is charged, so a move between two owners of one
// tenant never fails the tenant's limit.
func (c *cmdCtx) transfer(src, dst *mailboxState, ranges [][2]uint32, move bool, user string, dstRights rights) (*metadatapb.CopyResponse, error) {
	if ranges == nil {
		ranges = allUIDs
	}
	msgs, err := c.messages(src.box().GetId(), ranges)
	if err != nil {
		return nil, err
	}
	srcPrivate := isPrivate(user, src.rec.GetAccount())
	var mine map[uint32]privateSeen
	if srcPrivate {
		if mine, err = privateSeenIn(c.tx, src.box().GetId(), user, ranges); err != nil {
			return nil, err
		}
	}
	if err := checkUIDSpace(dst, len(msgs)); err != nil {
		return nil, err
	}
	var size int64
	for _, m := range msgs {
		size += int64(m.idx.GetSize())
	}
	srcOwner, dstOwner := src.rec.GetAccount(), dst.rec.GetAccount()
	if move && srcOwner != dstOwner {
		if err := c.chargeUsage(srcOwner, -int64(len(msgs)), -size); err != nil {
			return nil, err
		}
	}
	if !move || srcOwner != dstOwner {
		if err := c.chargeUsage(dstOwner, int64(len(msgs)), size); err != nil {
			return nil, err
		}
	}
	resp := &metadatapb.CopyResponse{DestUidValidity: dst.box().GetUidValidity()}
	for _, m := range msgs {
		structure, _, err := getRaw(c.tx, structureKey(src.box().GetId(), m.uid))
		if err != nil {
			return nil, err
		}
		flags := m.idx.GetFlags()
		if srcPrivate {
			flags = withSeen(flags, mine[m.uid].seen)
		}
		// RFC 8474 5.1, 5.2: the copy keeps the blob key, so its EMAILID, and its THREADID.
		thread, err := c.copiedThread(dstOwner, m.idx.GetBlobKey(), m.idx.GetThreadId())
		if err != nil {
			return nil, err
		}
		uid, err := c.addAs(dst, user, dstRights.permitted(flags), &metadatapb.MessageIndex{
			InternalDateUnix: m.idx.GetInternalDateUnix(),
			Size:             m.idx.GetSize(),
			BlobKey:          m.idx.GetBlobKey(),
			ThreadId:         thread,
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
	// RFC 4314 4: EXPUNGE needs e.
	ms, _, err := c.selectable(req.GetUser(), req.GetAccount(), req.GetMailboxId(), rightExpunge)
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
