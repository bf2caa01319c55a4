package frontend

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// systemFlags are the flags of RFC 9051 2.3.2 that every mailbox supports.
var systemFlags = []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}

// cmdSelect: SELECT (RFC 9051 6.3.2) and EXAMINE (6.3.3, read-only: no flag changes, no
// expunge, no implicit \Seen). Both need the r right (RFC 4314 4).
func (c *conn) cmdSelect(cmd *imapwire.Command) error {
	ref, err := c.mailboxRefIn(cmd.Args.(*imapwire.MailboxArgs).Mailbox)
	if err != nil {
		return err
	}
	readOnly := cmd.Name == "EXAMINE"
	if c.sel != nil {
		// RFC 9051 6.3.2: selecting deselects the current mailbox first, and says so.
		c.closeSelected()
		c.untagged("OK [" + codeClosed + "] Previous mailbox closed")
	}
	mb, err := c.getMailbox(ref, codeNonExistent)
	if err != nil {
		return err
	}
	if mb.GetNoselect() {
		return no(codeNonExistent, "Mailbox cannot be selected")
	}
	granted := c.rightsOn(ref, mb)
	if !granted.has('r') {
		return no(codeNoPerm, cmd.Name+" needs the r right") // RFC 4314 4
	}
	// RFC 4314 5.2: READ-WRITE only for a session that may change the mailbox: insert,
	// expunge, or set some flag.
	readOnly = readOnly || !granted.hasAny("iestw")
	var view *metadatapb.ListMessagesResponse
	err = c.withRetry(func(ctx context.Context) error {
		view, err = c.srv.cfg.Metadata.ListMessages(ctx, &metadatapb.ListMessagesRequest{Account: ref.owner, MailboxId: mb.GetId(), User: c.accountName()})
		return err
	})
	if err != nil {
		return rpcStatus(err, codeNonExistent, "select "+strconv.Quote(ref.full))
	}
	mb = view.GetMailbox()
	s := &selected{
		owner:       ref.owner,
		rights:      granted,
		mailboxID:   mb.GetId(),
		name:        mb.GetName(),
		uidValidity: mb.GetUidValidity(),
		uidNext:     mb.GetUidNext(),
		readOnly:    readOnly,
		uids:        view.GetUids(),
		modseqs:     view.GetModseqs(),
		flags:       make([][]string, len(view.GetUids())),
	}
	if len(s.modseqs) != len(s.uids) || len(view.GetFlags()) != len(s.uids) {
		return no(codeServerBug, "Inconsistent mailbox listing")
	}
	keywords := map[string]bool{}
	firstUnseen := 0
	for i, fs := range view.GetFlags() {
		s.flags[i] = fs.GetFlags()
		for _, f := range s.flags[i] {
			if !strings.HasPrefix(f, `\`) {
				keywords[f] = true
			}
		}
		if firstUnseen == 0 && !slices.Contains(s.flags[i], string(imap.FlagSeen)) {
			firstUnseen = i + 1
		}
	}
	s.feed = c.startFeed(s.owner, s.mailboxID, mb.GetHighestModseq())
	c.sel = s
	c.state = stateSelected

	flags := append(slices.Clone(systemFlags), slices.Sorted(maps.Keys(keywords))...)
	c.untaggedBytes(appendFlags([]byte("FLAGS "), flags)) // RFC 9051 7.3.5
	if readOnly {
		c.untagged("OK [PERMANENTFLAGS ()] Read-only mailbox")
	} else {
		c.untaggedBytes(append(appendFlags([]byte("OK [PERMANENTFLAGS "), permanentFlags(granted, flags)), "] Flags permitted"...))
	}
	c.untagged(strconv.Itoa(len(s.uids)) + " EXISTS")
	if !c.rev2 {
		// RFC 3501 6.3.1 requires RECENT and the first unseen message; IMAP4rev2 dropped both.
		c.untagged(strconv.Itoa(c.initRecent(s, mb)) + " RECENT")
		if firstUnseen > 0 {
			c.untagged("OK [UNSEEN " + strconv.Itoa(firstUnseen) + "] First unseen message")
		}
	}
	c.untagged("OK [UIDVALIDITY " + strconv.FormatUint(uint64(s.uidValidity), 10) + "] UIDs valid")
	c.untagged("OK [UIDNEXT " + strconv.FormatUint(uint64(s.uidNext), 10) + "] Predicted next UID")
	if readOnly {
		return ok(codeReadOnly, "EXAMINE completed")
	}
	return ok(codeReadWrite, "SELECT completed")
}

// permanentFlags are the flags of PERMANENTFLAGS (RFC 9051 7.1) for a session with
// granted: only those it may set (RFC 4314 4), and \* for new keywords with w.
func permanentFlags(granted rights, flags []string) []string {
	perm := granted.permitted(slices.Clone(flags))
	if granted.has('w') {
		perm = append(perm, `\*`)
	}
	return perm
}

// cmdClose: RFC 9051 6.4.1. Removes the \Deleted messages without EXPUNGE responses, unless
// the mailbox is read-only or the session lacks the e right (RFC 4314 4), and returns to
// the authenticated state.
func (c *conn) cmdClose(cmd *imapwire.Command) error {
	s := c.sel
	if !s.readOnly && s.rights.has('e') {
		if _, err := c.expunge(nil); err != nil {
			return err
		}
	}
	c.closeSelected()
	return nil
}

// cmdUnselect: RFC 9051 6.4.2 (RFC 3691): like CLOSE without expunging.
func (c *conn) cmdUnselect(cmd *imapwire.Command) error {
	c.closeSelected()
	return nil
}

// cmdExpunge: EXPUNGE (RFC 9051 6.4.3) and UID EXPUNGE (6.4.9, RFC 4315 2.1).
func (c *conn) cmdExpunge(cmd *imapwire.Command) error {
	s := c.sel
	if s.readOnly {
		return no(codeReadOnly, "Mailbox is read-only")
	}
	if !s.rights.has('e') {
		return no(codeNoPerm, cmd.Name+" needs the e right") // RFC 4314 4
	}
	var ranges []*metadatapb.UidRange
	if args, isUID := cmd.Args.(*imapwire.UIDExpungeArgs); isUID {
		uids, err := c.resolveUIDs(args.Set)
		if err != nil {
			return err
		}
		if len(uids) == 0 {
			return nil
		}
		ranges = uidRanges(uids)
	}
	expunged, err := c.expunge(ranges)
	if err != nil {
		return err
	}
	// Highest first, so that each number sent is the message's number at that point and the
	// numbers still to be sent do not move.
	slices.Sort(expunged)
	for i := len(expunged) - 1; i >= 0; i-- {
		if seq := s.seqOf(expunged[i]); seq > 0 {
			c.expungeSeq(seq)
		}
	}
	return nil
}

// expunge removes the \Deleted messages among ranges (all with nil) and returns their UIDs.
func (c *conn) expunge(ranges []*metadatapb.UidRange) ([]uint32, error) {
	s := c.sel
	requestID := newRequestID()
	var resp *metadatapb.ExpungeResponse
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.Expunge(ctx, &metadatapb.ExpungeRequest{
			RequestId: requestID, Account: s.owner, MailboxId: s.mailboxID, Uids: ranges, User: c.accountName(),
		})
		return err
	})
	if err != nil {
		return nil, rpcStatus(err, codeNonExistent, "expunge")
	}
	return resp.GetExpunged(), nil
}
