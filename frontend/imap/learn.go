package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Spam learning: what a user files as spam or not spam is handed to Config.Learner (the
// rspamd learner of package spam), the way Dovecot's antispam plugin and its imap_sieve
// successor do it:
//
//   - COPY or MOVE into a mailbox whose special use is \Junk (RFC 6154 2) from one that is
//     not: spam;
//   - COPY or MOVE out of \Junk into a mailbox that is neither \Junk nor \Trash: ham (a
//     message thrown away from Junk says nothing about it);
//   - STORE that sets $Junk: spam; that sets $NotJunk: ham (the keywords of the IANA IMAP
//     keyword registry, RFC 5788).
//
// Learning never slows the command: the hook runs after the command's change is committed,
// makes no call of its own, and hands the Learner a function that reads the message later
// from where the command left it (the copy, or the flagged message).

// Learner is told which messages users classify as spam or not (spam.Learner). Learn
// must return at once; open reads the message, in the learner's time, and returns an error
// that is fs.ErrNotExist when the message is gone.
type Learner interface {
	Learn(spam bool, account string, open func(ctx context.Context) (io.ReadCloser, error))
}

const (
	specialUseJunk  = `\Junk`
	specialUseTrash = `\Trash`
	keywordJunk     = "$Junk"
	keywordNotJunk  = "$NotJunk"
)

// hasSpecialUse reports whether the special-use attributes attrs (space-separated) include
// use; they are atoms, compared without case (RFC 9051 9: flag-extension).
func hasSpecialUse(attrs, use string) bool {
	return slices.ContainsFunc(strings.Fields(attrs), func(a string) bool { return strings.EqualFold(a, use) })
}

// learnCopied tells the Learner of messages a COPY or MOVE from the selected mailbox put
// into dest of destOwner as destUIDs.
func (c *conn) learnCopied(dest *metadatapb.Mailbox, destOwner string, destUIDs []uint32) {
	learner := c.srv.cfg.Learner
	if learner == nil || len(destUIDs) == 0 {
		return
	}
	fromJunk := hasSpecialUse(c.sel.specialUse, specialUseJunk)
	toJunk := hasSpecialUse(dest.GetSpecialUse(), specialUseJunk)
	var spam bool
	switch {
	case toJunk && !fromJunk:
		spam = true
	case fromJunk && !toJunk && !hasSpecialUse(dest.GetSpecialUse(), specialUseTrash):
		spam = false
	default:
		return
	}
	for _, uid := range destUIDs {
		learner.Learn(spam, destOwner, c.messageOpener(destOwner, dest.GetId(), uid))
	}
}

// learnStored tells the Learner of the messages of the selected mailbox whose flags a
// STORE changed (changed, their flags now in the view) when it added $Junk or $NotJunk.
func (c *conn) learnStored(op metadatapb.FlagOp, flags []string, changed []uint32) {
	learner := c.srv.cfg.Learner
	if learner == nil || op == metadatapb.FlagOp_FLAG_OP_REMOVE || len(changed) == 0 {
		return
	}
	for _, keyword := range []string{keywordJunk, keywordNotJunk} {
		if !containsFold(flags, keyword) {
			continue
		}
		for _, uid := range changed {
			// A message that had the keyword already had its flags changed for another
			// reason; it is learnt again, which rspamd answers with "already learned".
			if seq := c.sel.seqOf(uid); seq > 0 && containsFold(c.sel.msgs.flags(seq-1), keyword) {
				learner.Learn(keyword == keywordJunk, c.sel.owner, c.messageOpener(c.sel.owner, c.sel.mailboxID, uid))
			}
		}
	}
}

func containsFold(flags []string, flag string) bool {
	return slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(f, flag) })
}

// messageOpener returns a function that reads message uid of mailboxID of owner, as the
// session's user, from the metadata service and the blob store; the Learner calls it on
// its own goroutine, so it holds nothing of the connection but its configuration.
func (c *conn) messageOpener(owner string, mailboxID uint64, uid uint32) func(context.Context) (io.ReadCloser, error) {
	md, blobs, user := c.srv.cfg.Metadata, c.srv.cfg.Blobs, c.accountName()
	return func(ctx context.Context) (io.ReadCloser, error) {
		stream, err := md.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{
			Account: owner, MailboxId: mailboxID, Uids: []*metadatapb.UidRange{{First: uid, Last: uid}}, User: user,
		})
		var rec *metadatapb.MessageRecord
		if err == nil {
			rec, err = stream.Recv()
		}
		switch {
		case errors.Is(err, io.EOF) || status.Code(err) == codes.NotFound:
			// Expunged, or its mailbox deleted, before the learner got to it.
			return nil, fmt.Errorf("message %d: %w", uid, fs.ErrNotExist)
		case err != nil:
			return nil, fmt.Errorf("fetch message %d: %w", uid, err)
		}
		body, err := blobs.Get(ctx, rec.GetBlobKey(), 0, -1)
		if errors.Is(err, blobstore.ErrNotFound) {
			return nil, fmt.Errorf("body of message %d: %w", uid, fs.ErrNotExist)
		}
		return body, err
	}
}
