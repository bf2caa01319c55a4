package metadata

import (
	"github.com/strata-mail/strata/proto/metadatapb"
)

// \Recent (RFC 3501 2.3.2) is part of the replicated state, so that exactly one IMAP4rev1
// session, through whichever frontend, ever sees a message as recent: the first read-write
// session to select the mailbox after the message arrived, or the selected read-write
// session that claims it from its change feed.
//
//   - Every mailbox holds a mark, first_recent_uid: the first UID no session has claimed. A
//     new mailbox starts at 1, so that everything delivered before its first SELECT is
//     recent. The mark only grows and never passes UIDNEXT.
//   - recent counts the messages at or above the mark (those the next SELECT claims, RFC
//     3501 6.3.10 STATUS RECENT), kept exact with every change of the mailbox's messages
//     like its other counters (doc.go: Counters): an added message is always at or above
//     the mark, an expunged one counts when it was.
//   - ClaimRecent raises the mark and returns the one it found, in one command: the
//     claimer's recent messages are the UIDs in [found, new mark), and since the log
//     orders the claims, no two of them overlap.
//   - A claim changes no message, so it allocates no MODSEQ and journals nothing (doc.go:
//     MODSEQ); Watch streams do not wake for it.

// pinRecentMark gives a mailbox record stored before the mark existed (first_recent_uid
// 0) the mark of one whose messages have all been claimed: its UIDNEXT. Its recent count,
// 0, is then exact. Commands and answers read the record through it, so every replica
// reads the same mark from the same record.
func pinRecentMark(box *metadatapb.Mailbox) {
	if box.GetFirstRecentUid() == 0 {
		box.FirstRecentUid = box.GetUidNext()
	}
}

// claimRecent implements ClaimRecent: it raises the mark of a mailbox to up_to_uid (UIDNEXT
// at most) for a read-write session and answers the mark before and after. A session is
// read-write with r and one of the rights to change the mailbox (RFC 4314 5.2: i, e, s, t,
// w); an EXAMINE session, which may not claim (RFC 3501 6.3.2), never asks.
func (c *cmdCtx) claimRecent(req *metadatapb.ClaimRecentRequest) (*metadatapb.CommandResult, error) {
	ms, granted, err := c.selectable(req.GetUser(), req.GetAccount(), req.GetMailboxId(), rightRead)
	if err != nil {
		return nil, err
	}
	const readWrite = rightInsert | rightExpunge | rightSeen | rightDeleteFlag | rightWrite
	if granted&readWrite == 0 {
		return nil, errNoRight(readWrite)
	}
	box := ms.box()
	resp := &metadatapb.ClaimRecentResponse{FirstUid: box.GetFirstRecentUid(), NextUid: box.GetFirstRecentUid()}
	upTo := min(req.GetUpToUid(), box.GetUidNext())
	if upTo > resp.FirstUid {
		var claimed uint32
		err := scan(c.tx, messageKey(box.GetId(), resp.FirstUid), messageKey(box.GetId(), upTo), func(_, _ []byte) (bool, error) {
			claimed++
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		box.FirstRecentUid, box.Recent = upTo, box.GetRecent()-claimed
		resp.NextUid = upTo
		// Written back by finish; no MODSEQ: no message changed.
		ms.dirty = true
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_ClaimRecent{ClaimRecent: resp}}, nil
}
