package imap

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// \Recent (RFC 3501 2.3.2) for IMAP4rev1 sessions; IMAP4rev2 removed it (RFC 9051 appendix
// E). A message is recent in exactly one session: the first read-write session to select its
// mailbox after it arrived (RFC 3501 6.3.1), or the read-write session that has the mailbox
// selected when it arrives and claims it first. EXAMINE shows the messages that no session
// has claimed as recent and claims none of them (RFC 3501 6.3.2).
//
// The claim is part of the replicated state (metadata/recent.go), so it holds across
// frontends: each mailbox has a mark, Mailbox.first_recent_uid, the first UID that no session
// has claimed (1 in a new mailbox), and Metadata.ClaimRecent raises it and returns the old
// one in one Raft command; the UIDs in between are the claiming session's and no other's.
//
//   - SELECT of a read-write IMAP4rev1 session claims [mark, UIDNEXT) of its listing, and
//     only when the mark is below UIDNEXT: a SELECT with nothing new writes nothing.
//   - EXAMINE, and a SELECT without a right to change the mailbox (RFC 4314 5.2), show
//     [mark, UIDNEXT) as recent and claim nothing.
//   - A selected read-write session claims the messages each batch of change-feed updates
//     adds to its view with one call (sendUpdates) and shows as recent those it got.
//   - STATUS RECENT (RFC 3501 6.3.10) is Mailbox.recent, the messages at or above the mark,
//     plus the session's own when it has the mailbox selected read-write; it claims nothing.
//
// A claim that fails (no metadata answer within the retries) gives this session nothing: the
// messages stay unclaimed and the next claim of any session takes them, unless the lost
// claim did commit. \Recent may be lost that way, but is never shown in two sessions.

// initRecent sets the session's recent messages at SELECT or EXAMINE (RFC 3501 6.3.1) from
// mb, the mailbox of its listing, and returns how many there are, for the RECENT response.
// IMAP4rev2 sessions have none.
func (c *conn) initRecent(s *selected, mb *metadatapb.Mailbox) int {
	s.recent = nil
	if c.rev2 {
		return 0
	}
	mark := mb.GetFirstRecentUid()
	switch {
	case s.readOnly:
		s.addRecent(mark, s.uidNext)
	case mark < s.uidNext:
		c.claimRecent(s)
	}
	return len(s.recent)
}

// claimRecent claims for the read-write session s, with one ClaimRecent call, every message
// below its UIDNEXT that no session has claimed yet, and adds those of its view that it got
// to its recent messages. A failed claim is logged and gives the session nothing.
func (c *conn) claimRecent(s *selected) {
	requestID := newRequestID()
	var resp *metadatapb.ClaimRecentResponse
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.ClaimRecent(ctx, &metadatapb.ClaimRecentRequest{
			RequestId: requestID, Account: s.owner, MailboxId: s.mailboxID, User: c.accountName(), UpToUid: s.uidNext,
		})
		return err
	})
	switch status.Code(err) {
	case codes.OK:
		s.addRecent(resp.GetFirstUid(), resp.GetNextUid())
	case codes.NotFound, codes.PermissionDenied, codes.Canceled:
		// The mailbox went, the session lost its rights to change it (RFC 4314 5.2) and its
		// next command finds out, or the connection is closing.
		c.log.Debug("no \\Recent claim", "mailbox", s.mailboxID, "err", err)
	default:
		c.log.Warn("claiming \\Recent messages failed; the session shows none of them", "mailbox", s.mailboxID, "err", err)
	}
}

// claimArrivals claims, in a read-write IMAP4rev1 session, the messages the change feed just
// added to the view: they are recent in this session if it is the first to claim them (RFC
// 3501 2.3.2). It reports whether the session's recent messages changed, so that a RECENT
// response is due (RFC 3501 7.3.2).
func (c *conn) claimArrivals() bool {
	s := c.sel
	if c.rev2 || s.readOnly || !s.rights.hasAny("iestw") {
		return false
	}
	n := len(s.recent)
	c.claimRecent(s)
	return len(s.recent) != n
}

// addRecent makes the messages of the view with UIDs in [from, to) recent in this session.
// They are above every UID already recent: a session's claims follow a mark that only grows.
func (s *selected) addRecent(from, to uint32) {
	i, _ := s.msgs.search(from)
	for _, uid := range s.msgs.uids(i) {
		if uid >= to {
			break
		}
		s.recent = append(s.recent, uid)
	}
}

// statusRecent returns the number of \Recent messages in mb for STATUS RECENT (RFC 3501
// 6.3.10): those no session has claimed and, when mb is selected read-write here, those this
// session has claimed. IMAP4rev2 sessions have none.
func (c *conn) statusRecent(ref mailboxRef, mb *metadatapb.Mailbox) int {
	if c.rev2 {
		return 0
	}
	n := int(mb.GetRecent())
	if s := c.sel; s != nil && s.owner == ref.owner && s.mailboxID == mb.GetId() && !s.readOnly {
		n += s.recentCount()
	}
	return n
}

// isRecent reports whether message uid is \Recent in this session.
func (s *selected) isRecent(uid uint32) bool {
	_, found := slices.BinarySearch(s.recent, uid)
	return found
}

// sessionFlags returns the flags of message i as this session shows them: the stored flags
// and, in an IMAP4rev1 session, \Recent.
func (c *conn) sessionFlags(i int) []string {
	if !c.recentIn(i) {
		return c.sel.msgs.flags(i)
	}
	return append(slices.Clip(c.sel.msgs.flags(i)), `\Recent`)
}

// recentIn reports whether message i is \Recent in this session (never in IMAP4rev2).
func (c *conn) recentIn(i int) bool {
	return !c.rev2 && len(c.sel.recent) > 0 && c.sel.isRecent(c.sel.msgs.uid(i))
}

// appendSessionFlags appends the flag list of message i as sessionFlags gives it (RFC 9051
// 7.5.2, FLAGS), without building the list.
func (c *conn) appendSessionFlags(b []byte, i int) []byte {
	b = imapresp.AppendFlagList(b, c.sel.msgs.flags(i))
	if !c.recentIn(i) {
		return b
	}
	if len(c.sel.msgs.flags(i)) > 0 {
		return append(b[:len(b)-1], ` \Recent)`...)
	}
	return append(b[:len(b)-1], `\Recent)`...)
}

// hasSessionFlag reports whether message i has flag f (compared without case) as this
// session shows its flags (sessionFlags): \Recent is the session's, never stored (RFC 3501
// 2.3.2).
func (c *conn) hasSessionFlag(i int, f string) bool {
	if strings.EqualFold(f, `\Recent`) {
		return c.recentIn(i)
	}
	return hasFlag(c.sel.msgs.flags(i), f)
}

// recentCount returns how many messages in the view are \Recent in this session.
func (s *selected) recentCount() int {
	n := 0
	for _, uid := range s.recent {
		if s.seqOf(uid) != 0 {
			n++
		}
	}
	return n
}
