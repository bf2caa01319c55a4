package frontend

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdCopy: COPY (RFC 9051 6.4.7), MOVE (6.4.8, RFC 6851) and their UID forms, answering
// with COPYUID (RFC 4315 3).
func (c *conn) cmdCopy(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.CopyArgs)
	s := c.sel
	move := cmd.Name == "MOVE" || cmd.Name == "UID MOVE"
	if move && s.readOnly {
		return no(codeReadOnly, "Mailbox is read-only")
	}
	uids, err := c.resolveUIDs(args.Set)
	if err != nil {
		return err
	}
	destName, err := c.mailboxIn(args.Mailbox)
	if err != nil {
		return err
	}
	// RFC 9051 6.4.7: a target that does not exist gets NO [TRYCREATE].
	dest, err := c.getMailbox(destName, codeTryCreate)
	if err != nil {
		return err
	}
	if dest.GetNoselect() {
		return no(codeTryCreate, "Target mailbox cannot hold messages")
	}
	if len(uids) == 0 {
		return nil
	}
	requestID := newRequestID()
	var resp *metadatapb.CopyResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.Copy(ctx, &metadatapb.CopyRequest{
			RequestId: requestID, Account: c.accountName(), SourceMailboxId: s.mailboxID,
			Uids: uidRanges(uids), DestMailboxId: dest.GetId(), Move: move,
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, codeTryCreate, strings.ToLower(cmd.Name)+" to "+strconv.Quote(destName))
	}
	if dest.GetId() == s.mailboxID {
		// RFC 9051 6.4.7 / 7.4.1: the copies are new messages of the selected mailbox; wait
		// for the feed to deliver them so EXISTS goes out with this command's response.
		s.feed.waitFor(c.ctx, resp.GetDestModseq(), appendSyncWait)
	}
	copyUID := ""
	if len(resp.GetSourceUids()) > 0 && len(resp.GetSourceUids()) == len(resp.GetDestUids()) {
		copyUID = "COPYUID " + strconv.FormatUint(uint64(resp.GetDestUidValidity()), 10) + " " +
			uidSetString(resp.GetSourceUids()) + " " + uidSetString(resp.GetDestUids())
	}
	if !move {
		return ok(copyUID, cmd.Name+" completed")
	}
	// RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
	if copyUID != "" {
		c.untagged("OK [" + copyUID + "] Moved")
	}
	moved := slices.Clone(resp.GetSourceUids())
	slices.Sort(moved)
	for i := len(moved) - 1; i >= 0; i-- {
		if seq := s.seqOf(moved[i]); seq > 0 {
			c.expungeSeq(seq)
		}
	}
	return nil
}
