package imap

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// systemFlags are the flags of RFC 9051 2.3.2 that every mailbox supports.
var systemFlags = []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}

// cmdSelect: SELECT (RFC 9051 6.3.2) and EXAMINE (6.3.3, read-only: no flag changes, no
// expunge, no implicit \Seen), with the mailbox's MAILBOXID (RFC 8474 4.2). Both need the r
// right (RFC 4314 4). The session copies the mailbox from the frontend's shared view
// (mailview.go): one GetMailbox call when the mailbox is open here, a paged listing when not.
func (c *conn) cmdSelect(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.MailboxArgs)
	// RFC 7162 3.2.5: the QRESYNC parameter without ENABLE QRESYNC is BAD, and nothing
	// changes: the current mailbox stays selected.
	if args.QResync != nil && !c.qresync {
		return bad("", "QRESYNC parameter without ENABLE QRESYNC")
	}
	if args.QResync != nil && args.QResync.SeqMatchSeqs != nil && c.uidOnly {
		// RFC 9586 3: no message sequence numbers, also not in the sequence match data.
		return bad(imapresp.CodeUIDRequired, "UIDONLY does not allow message sequence match data")
	}
	ref, err := c.mailboxRefIn(args.Mailbox)
	if err != nil {
		return err
	}
	readOnly := cmd.Name == "EXAMINE"
	if c.sel != nil {
		// RFC 9051 6.3.2: selecting deselects the current mailbox first, and says so.
		c.closeSelected()
		c.untaggedOK(imapresp.CodeClosed, "Previous mailbox closed")
	}
	mb, err := c.getMailbox(ref, imapresp.CodeNonExistent)
	if err != nil {
		return err
	}
	if mb.GetNoselect() {
		return no(imapresp.CodeNonExistent, "Mailbox cannot be selected")
	}
	granted := c.rightsOn(ref, mb)
	if !granted.has('r') {
		return no(imapresp.CodeNoPerm, cmd.Name+" needs the r right") // RFC 4314 4
	}
	// RFC 4314 5.2: READ-WRITE only for a session that may change the mailbox: insert,
	// expunge, or set some flag.
	readOnly = readOnly || !granted.hasAny("iestw")
	view, feed, err := c.joinView(ref, mb)
	if err != nil {
		return err
	}
	// Sessions of the view use no rights older than those this SELECT read (acl.go).
	feed.view.noteACLVersion(mb.GetAclVersion())
	s := &selected{
		owner:       ref.owner,
		rights:      granted,
		aclVersion:  mb.GetAclVersion(),
		mailboxID:   mb.GetId(),
		name:        mb.GetName(),
		specialUse:  mb.GetSpecialUse(),
		uidValidity: view.uidValidity,
		// The view is at or past mb (joinView), so its UIDNEXT and HIGHESTMODSEQ are
		// too; UIDNEXT never goes back (RFC 9051 2.3.1.1).
		uidNext:       max(view.uidNext, mb.GetUidNext()),
		highestModSeq: view.highestModSeq,
		readOnly:      readOnly,
		msgs:          view.msgs,
		keywords:      view.keywords,
		feed:          feed,
	}
	c.sel = s
	c.state = stateSelected

	c.sendFlagList()
	c.bw.Write(imapresp.AppendExists(nil, s.msgs.len()))
	if !c.rev2 {
		// RFC 3501 6.3.1 requires RECENT and the first unseen message; IMAP4rev2 dropped both.
		c.bw.Write(imapresp.AppendRecent(nil, c.initRecent(s, mb)))
		if firstUnseen := s.firstUnseen(); firstUnseen > 0 {
			c.untaggedOK(imapresp.UnseenCode(firstUnseen), "First unseen message")
		}
	} else {
		// RFC 9051 6.3.2: LIST with the mailbox name is required; its attributes must be
		// accurate, so it claims none, as the RFC's example does.
		c.bw.Write(imapresp.AppendList(nil, c.encoder(), imapresp.List{Delimiter: delimiter, Mailbox: c.mailboxOut(ref.full)}))
	}
	c.untaggedOK(imapresp.UIDValidityCode(s.uidValidity), "UIDs valid")
	c.untaggedOK(imapresp.UIDNextCode(s.uidNext), "Predicted next UID")
	if id := mb.GetObjectId(); id != "" {
		c.untaggedOK(imapresp.MailboxIDCode(id), "Ok") // RFC 8474 4.2
	}
	if args.CondStore {
		c.enableCondStore() // RFC 7162 3.1.8
	}
	if c.condStore {
		// RFC 7162 3.1.2.1: every mailbox has persistent MODSEQs, so never NOMODSEQ.
		c.untaggedOK(imapresp.HighestModSeqCode(s.highestModSeq), "Highest")
	}
	if args.QResync != nil {
		if err := c.qresyncSelect(args.QResync); err != nil {
			return err
		}
	}
	if readOnly {
		return ok(imapresp.CodeReadOnly, "EXAMINE completed")
	}
	return ok(imapresp.CodeReadWrite, "SELECT completed")
}

// joinView joins the session to the shared view of mb, opening it when it is not open,
// once the view holds mb's state at least (mb was read at or past the session's read
// position: frontend/metaclient/doc.go), and returns the session's copy and feed.
func (c *conn) joinView(ref mailboxRef, mb *metadatapb.Mailbox) (*viewCopy, *changeFeed, error) {
	what := "select " + strconv.Quote(ref.full)
	ctx, cancel := c.rpcContext()
	defer cancel()
	key := viewKey{owner: ref.owner, mailboxID: mb.GetId(), user: c.accountName()}
	for attempt := 0; ; attempt++ {
		v := c.srv.views.acquire(c.srv, key)
		view, feed, err := v.join(ctx, mb.GetHighestModseq(), c.feedChanged)
		if err == nil && view.uidValidity == mb.GetUidValidity() {
			return view, feed, nil
		}
		if err == nil {
			// A view of another UIDVALIDITY than the mailbox's (RFC 9051 2.3.1.1) is
			// of no use to any session: a new one is opened.
			feed.leave()
			v.retire()
			err = errViewGone
		} else {
			c.srv.views.release(v)
		}
		switch {
		case errors.Is(err, errViewGone) && attempt < 2:
			continue
		case errors.Is(err, errViewGone), ctx.Err() != nil:
			return nil, nil, no(imapresp.CodeUnavailable, what+": the mailbox's changes cannot be followed now")
		}
		return nil, nil, rpcStatus(err, imapresp.CodeNonExistent, what)
	}
}

// firstUnseen returns the sequence number of the first message without \Seen, or 0 when
// every message has it; each flag set is looked at once.
func (s *selected) firstUnseen() int {
	const unknown, seen, unseen = 0, 1, 2
	state := make([]int8, len(s.msgs.sets.list))
	for at, run := range s.msgs.runs(0, s.msgs.len()) {
		for j, ref := range run.refs {
			if state[ref] == unknown {
				state[ref] = seen
				if !slices.Contains(s.msgs.sets.list[ref], string(imap.FlagSeen)) {
					state[ref] = unseen
				}
			}
			if state[ref] == unseen {
				return at + j + 1
			}
		}
	}
	return 0
}

// sendFlagList sends the FLAGS response (RFC 9051 7.3.5) with the system flags and the
// keywords the session has announced, and the PERMANENTFLAGS the session may set (7.1).
func (c *conn) sendFlagList() {
	s := c.sel
	flags := append(slices.Clone(systemFlags), s.keywords...)
	c.bw.Write(imapresp.AppendFlags(nil, flags))
	if s.readOnly {
		c.untaggedOK(imapresp.PermanentFlagsCode(nil), "Read-only mailbox")
	} else {
		c.untaggedOK(imapresp.PermanentFlagsCode(permanentFlags(s.rights, flags)), "Flags permitted")
	}
}

// announceKeywords makes sure every keyword among flags has been announced to the client
// before a response carries it: RFC 9051 7.3.5 and RFC 3501 7.2.6 say the FLAGS response
// lists the flags the mailbox uses, so a keyword that another session (or this one, or a
// delivery) has just added is sent in a new FLAGS and PERMANENTFLAGS response first, as
// Dovecot does. It must be called before the EXISTS or FETCH that carries flags.
func (c *conn) announceKeywords(flags []string) {
	s := c.sel
	added := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) || slices.ContainsFunc(s.keywords, func(k string) bool { return strings.EqualFold(k, f) }) {
			continue
		}
		s.keywords = append(s.keywords, f)
		added = true
	}
	if added {
		slices.Sort(s.keywords)
		c.sendFlagList()
	}
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
		if _, _, err := c.expunge(nil); err != nil {
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
		return no(imapresp.CodeReadOnly, "Mailbox is read-only")
	}
	if !s.rights.has('e') {
		return no(imapresp.CodeNoPerm, cmd.Name+" needs the e right") // RFC 4314 4
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
	expunged, modseq, err := c.expunge(ranges)
	if err != nil {
		return err
	}
	c.expungeUIDs(expunged)
	if !c.qresync {
		return nil
	}
	// RFC 7162 3.2.7: the tagged OK of EXPUNGE in a QRESYNC session carries HIGHESTMODSEQ;
	// the changes before it go out first, so that the client has seen all it covers.
	c.sendUpdates(true)
	s.highestModSeq = max(s.highestModSeq, modseq)
	return ok(imapresp.HighestModSeqCode(s.highestModSeq), cmd.Name+" completed")
}

// expunge removes the \Deleted messages among ranges (all with nil) and returns their UIDs
// and the MODSEQ of the expunge.
func (c *conn) expunge(ranges []*metadatapb.UidRange) ([]uint32, uint64, error) {
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
		return nil, 0, rpcStatus(err, imapresp.CodeNonExistent, "expunge")
	}
	return resp.GetExpunged(), resp.GetModseq(), nil
}
