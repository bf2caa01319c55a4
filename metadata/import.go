package metadata

import (
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Import (issue 16): `strata migrate` copies a mailbox from another IMAP server keeping its
// UIDVALIDITY and UIDs, so a client that synced from the old server finds the same
// (UIDVALIDITY, UID) pairs naming the same messages and downloads nothing again.
//
// Invariants kept (RFC 9051 2.3.1.1):
//   - UIDs strictly ascend in a mailbox and are never reused: imported UIDs are strictly
//     increasing and start at or above UIDNEXT, which becomes the last one plus one; UIDs
//     skipped over are never used.
//   - A mailbox takes an imported UIDVALIDITY only while it has never held a message
//     (UIDNEXT 1): no client can have a UID cached under its old value. Its MAILBOXID is
//     minted again with it (objectid.go), as for every UIDVALIDITY a mailbox gets.
//   - Every UIDVALIDITY assigned later is above the imported one (newUIDValidity), so a
//     name deleted and created again never gets back a value a client may hold.
//   - Each import is one command with one new MODSEQ, so HIGHESTMODSEQ stays consistent
//     with the messages' MODSEQs as for any append.
//   - A message's source UID (source_uids, the UID it has at the server it is copied from)
//     is written into its MessageIndex by the command that stores it, so the copy and
//     `strata migrate`'s source-UID -> UID map of the mailbox (ListMessages source_uids)
//     are never apart; a COPY or MOVE leaves it behind, and mail not imported has none.

// importMessages implements ImportMessages: an append by an administrator (the acting user
// is the owner) that may fix the messages' UIDs and the mailbox's UIDVALIDITY; without
// messages it only sets the UIDVALIDITY (of a source folder that is empty).
func (c *cmdCtx) importMessages(req *metadatapb.ImportMessagesRequest) (*metadatapb.CommandResult, error) {
	ms, granted, err := c.selectable("", req.GetAccount(), req.GetMailboxId(), rightInsert)
	if err != nil {
		return nil, err
	}
	msgs, uids := req.GetMessages(), req.GetUids()
	if len(msgs) == 0 && req.GetUidValidity() == 0 {
		return nil, errInvalid("import without messages or UIDVALIDITY")
	}
	box := ms.box()
	if len(uids) > 0 {
		if len(uids) != len(msgs) {
			return nil, errInvalid("import of %d messages with %d UIDs", len(msgs), len(uids))
		}
		if uids[0] < box.GetUidNext() {
			return nil, errPrecondition("UID %d is below UIDNEXT %d of mailbox %q", uids[0], box.GetUidNext(), box.GetName())
		}
		for i := 1; i < len(uids); i++ {
			if uids[i] <= uids[i-1] {
				return nil, errInvalid("imported UIDs are not strictly increasing: %d after %d", uids[i], uids[i-1])
			}
		}
		if uids[len(uids)-1] >= maxUID {
			// UIDNEXT must stay representable (RFC 9051 2.3.1.1: UIDs are 32-bit).
			return nil, errInvalid("UID %d leaves no UIDNEXT", uids[len(uids)-1])
		}
	}
	sourceUIDs := req.GetSourceUids()
	switch {
	case len(sourceUIDs) == 0:
		sourceUIDs = nil
	case len(sourceUIDs) != len(msgs):
		return nil, errInvalid("import of %d messages with %d source UIDs", len(msgs), len(sourceUIDs))
	}
	if v := req.GetUidValidity(); v != 0 && v != box.GetUidValidity() {
		if box.GetUidNext() != 1 {
			return nil, errPrecondition("mailbox %q has held messages; its UIDVALIDITY %d stays", box.GetName(), box.GetUidValidity())
		}
		if err := c.raiseUIDValidity(v); err != nil {
			return nil, err
		}
		box.UidValidity = v
		box.ObjectId = mailboxObjectID(ms.rec.GetAccount(), box.GetId(), v, c.now)
		ms.dirty, ms.newUIDValidity = true, true
	}
	if len(uids) == 0 {
		uids = nil
	}
	resp, err := c.addNewMessages(ms, "", granted, msgs, req.GetBlobEpoch(), uids, sourceUIDs)
	if err != nil {
		return nil, err
	}
	resp.Modseq = ms.modseq
	if resp.BlobEpoch, err = c.blobEpoch(); err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Append{Append: resp}}, nil
}

// raiseUIDValidity makes every UIDVALIDITY assigned from now on greater than v.
func (c *cmdCtx) raiseUIDValidity(v uint32) error {
	last, _, err := getRaw(c.tx, keyLastUIDValidity)
	if err != nil {
		return err
	}
	if uint64(v) > decodeUint64(last) {
		c.tx.mustSet(keyLastUIDValidity, encodeUint64(uint64(v)))
	}
	return nil
}
