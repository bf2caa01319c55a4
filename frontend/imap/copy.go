package imap

import (
	"context"
	"strconv"
	"strings"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdCopy: COPY (RFC 9051 6.4.7), MOVE (6.4.8, RFC 6851) and their UID forms, answering
// with COPYUID (RFC 4315 3). They need r on the source and i on the destination, MOVE
// also t and e on the source (RFC 4314 4); the destination may be another owner's.
func (c *conn) cmdCopy(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.CopyArgs)
	s := c.sel
	move := cmd.Base == "MOVE"
	if move && s.readOnly {
		return no(imapresp.CodeReadOnly, "Mailbox is read-only")
	}
	if move && !(s.rights.has('t') && s.rights.has('e')) {
		return no(imapresp.CodeNoPerm, cmd.Name+" needs the t and e rights on the source") // RFC 4314 4
	}
	uids, err := c.resolveUIDs(args.Set)
	if err != nil {
		return err
	}
	destRef, err := c.mailboxRefIn(args.Mailbox)
	if err != nil {
		return err
	}
	// RFC 9051 6.4.7: a target that does not exist gets NO [TRYCREATE].
	dest, err := c.getMailbox(destRef, imapresp.CodeTryCreate)
	if err != nil {
		return err
	}
	if dest.GetNoselect() {
		return no(imapresp.CodeTryCreate, "Target mailbox cannot hold messages")
	}
	if !c.rightsOn(destRef, dest).has('i') {
		return no(imapresp.CodeNoPerm, cmd.Name+" needs the i right on the target") // RFC 4314 4
	}
	if len(uids) == 0 {
		return nil
	}
	destAccount := ""
	if destRef.owner != s.owner {
		destAccount = destRef.owner
	}
	requestID := newRequestID()
	var resp *metadatapb.CopyResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.Copy(ctx, &metadatapb.CopyRequest{
			RequestId: requestID, Account: s.owner, SourceMailboxId: s.mailboxID,
			Uids: uidRanges(uids), DestMailboxId: dest.GetId(), Move: move,
			User: c.accountName(), DestAccount: destAccount,
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, imapresp.CodeTryCreate, strings.ToLower(cmd.Name)+" to "+strconv.Quote(destRef.full))
	}
	c.notifyOwnChange(destRef.owner, dest.GetId(), resp.GetDestModseq())
	c.learnCopied(dest, destRef.owner, resp.GetDestUids())
	if destRef.owner == s.owner && dest.GetId() == s.mailboxID {
		// RFC 9051 6.4.7 / 7.4.1: the copies are new messages of the selected mailbox; wait
		// for the feed to deliver them so EXISTS goes out with this command's response.
		c.awaitOwn(resp.GetDestModseq())
	}
	copyUID := ""
	if len(resp.GetSourceUids()) > 0 && len(resp.GetSourceUids()) == len(resp.GetDestUids()) {
		copyUID = imapresp.CopyUIDCode(resp.GetDestUidValidity(), imapresp.NumSet(resp.GetSourceUids()), imapresp.NumSet(resp.GetDestUids()))
	}
	if !move {
		return ok(copyUID, cmd.Name+" completed")
	}
	// RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
	if copyUID != "" {
		c.untaggedOK(copyUID, "Moved")
	}
	c.expungeUIDs(resp.GetSourceUids()) // RFC 6851 3.3, RFC 7162 3.2.10: VANISHED with QRESYNC
	return nil
}
