package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// appendSyncWait bounds how long APPEND to the selected mailbox waits for its own change to
// come back on the feed, so that EXISTS goes out with the response.
const appendSyncWait = 2 * time.Second

// cmdAppend: RFC 9051 6.3.12 with LITERAL+ (RFC 7888), literal8 (RFC 3516), APPENDLIMIT (RFC
// 7889) and APPENDUID (RFC 4315 3). The message literal is streamed into a spool file while
// it is hashed, parsed once for its structure, stored in the blob store, and only then
// appended in metadata.
func (c *conn) cmdAppend(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.AppendArgs)
	lit := args.Literal
	mb, err := c.getMailbox(args.Mailbox, codeTryCreate)
	if err == nil && mb.GetNoselect() {
		err = no(codeTryCreate, "Mailbox cannot hold messages")
	}
	if err == nil && lit.Size > c.srv.cfg.MaxMessageSize {
		err = no(codeTooBig, "Message larger than APPENDLIMIT "+strconv.FormatInt(c.srv.cfg.MaxMessageSize, 10)) // RFC 7889 4
	}
	if err != nil {
		// Refused before the message arrives (RFC 9051 6.3.12): no continuation request
		// for a synchronising literal; a non-synchronising one is read and dropped.
		c.discardAppendLiteral(cmd)
		return err
	}
	if !lit.NonSync {
		c.continuation(continuationText)
		if err := c.bw.Flush(); err != nil {
			return err
		}
	}
	spool, err := blobstore.NewSpool(c.srv.cfg.SpoolDir, max(lit.Size, 1))
	if err != nil {
		c.discardAppendLiteral(cmd)
		return fmt.Errorf("append: %w", err)
	}
	defer spool.Close()
	if _, err := io.CopyN(spool, c.framer.LiteralReader(lit.Size), lit.Size); err != nil {
		// The connection failed mid-literal or the spool could not be written; either way
		// the command stream is lost.
		c.state = stateLogout
		return fmt.Errorf("append: spool message: %w", err)
	}
	rest, err := c.framer.ReadLine()
	if err != nil && !errors.Is(err, imapwire.ErrLineTooLong) {
		return err
	}
	if err != nil || len(rest) != 0 {
		c.skipCommand(rest)
		return bad("", "Unexpected data after the message (MULTIAPPEND is not supported)")
	}

	structure, err := message.Parse(spool.Reader())
	if err != nil {
		return fmt.Errorf("append: parse message: %w", err)
	}
	key := blobstore.Key(c.account.GetTenant(), spool.Sum())
	putCtx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	err = c.srv.cfg.Blobs.Put(putCtx, key, spool.Reader(), spool.Size())
	cancel()
	if err != nil {
		return no(codeUnavailable, "Could not store the message: "+err.Error())
	}

	date := args.Date
	if date.IsZero() {
		date = time.Now()
	}
	var flags []string
	for _, f := range args.Flags {
		if !strings.EqualFold(string(f), `\Recent`) {
			flags = append(flags, string(f))
		}
	}
	requestID := newRequestID()
	var resp *metadatapb.AppendResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.Append(ctx, &metadatapb.AppendRequest{
			RequestId: requestID, Account: c.accountName(), MailboxId: mb.GetId(),
			Messages: []*metadatapb.NewMessage{{
				BlobKey: key, Size: uint64(spool.Size()), InternalDateUnix: date.Unix(),
				Flags: flags, Structure: structure,
			}},
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, codeTryCreate, "append to "+strconv.Quote(args.Mailbox))
	}
	if c.sel != nil && c.sel.mailboxID == mb.GetId() {
		// RFC 9051 6.3.12: appending to the selected mailbox should be followed by EXISTS;
		// wait for the feed to deliver this append so run sends it now.
		c.sel.feed.waitFor(c.ctx, resp.GetModseq(), appendSyncWait)
	}
	if uids := resp.GetUids(); len(uids) == 1 {
		return ok(fmt.Sprintf("APPENDUID %d %d", resp.GetUidValidity(), uids[0]), "APPEND completed")
	}
	return nil
}
