package frontend

import (
	"slices"
	"sync"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// \Recent (RFC 3501 2.3.2) for IMAP4rev1 sessions; IMAP4rev2 removed it (RFC 9051 appendix
// E). A message is recent in exactly one session: the first that selects its mailbox after
// it arrived, or the first selected session to learn of it.
//
// Strata's frontends are stateless and share nothing, so each frontend approximates this
// with what it has seen itself: for every mailbox it keeps the highest UIDNEXT
// that one of its sessions has selected (SELECT, not EXAMINE: RFC 3501 6.3.2) or learnt of.
// A session's recent messages are those at or above that mark when it selects, and the new
// messages it is the first on this frontend to learn of while selected. Consequences: two
// frontends may both show a message as recent, and after a frontend restarts no message is
// recent until new mail arrives, which loses \Recent but never shows it twice on one frontend.

// recentMarks holds, per mailbox (its owner and id), the UID below which every message has been
// claimed as recent by some session of this frontend. The zero value is ready to use.
type recentMarks struct {
	mu    sync.Mutex
	marks map[recentKey]uint32
}

type recentKey struct {
	owner     string
	mailboxID uint64
}

// claimOnSelect returns the first UID that is recent for a session selecting the mailbox
// whose UIDNEXT is uidNext, and, unless the selection is read-only, claims every message
// below uidNext. A mailbox this frontend has never seen selected has no recent message.
func (m *recentMarks) claimOnSelect(owner string, mailboxID uint64, uidNext uint32, readOnly bool) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := recentKey{owner, mailboxID}
	mark, seen := m.marks[key]
	if !seen {
		mark = uidNext
	}
	if !readOnly {
		if m.marks == nil {
			m.marks = map[recentKey]uint32{}
		}
		m.marks[key] = max(mark, uidNext)
	}
	return min(mark, uidNext)
}

// firstRecent returns the first UID that claimOnSelect would make recent in a read-write
// session selecting the mailbox now, without claiming anything (STATUS RECENT).
func (m *recentMarks) firstRecent(owner string, mailboxID uint64, uidNext uint32) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	mark, seen := m.marks[recentKey{owner, mailboxID}]
	if !seen {
		return uidNext
	}
	return min(mark, uidNext)
}

// claimArrival reports whether a selected read-write session is the first on this frontend
// to learn of message uid, which is then recent in that session only.
func (m *recentMarks) claimArrival(owner string, mailboxID uint64, uid uint32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := recentKey{owner, mailboxID}
	if m.marks[key] > uid {
		return false
	}
	if m.marks == nil {
		m.marks = map[recentKey]uint32{}
	}
	m.marks[key] = uid + 1
	return true
}

// initRecent sets the session's recent messages at SELECT or EXAMINE (RFC 3501 6.3.1) and
// returns how many there are, for the RECENT response. IMAP4rev2 sessions have none.
func (c *conn) initRecent(s *selected) int {
	if c.rev2 {
		return 0
	}
	from := c.srv.recent.claimOnSelect(s.owner, s.mailboxID, s.uidNext, s.readOnly)
	i, _ := slices.BinarySearch(s.uids, from)
	s.recent = slices.Clone(s.uids[i:])
	return len(s.recent)
}

// statusRecent returns the number of \Recent messages in mb for STATUS RECENT (RFC 3501
// 6.3.10): those a SELECT would now claim (initRecent) and, when mb is selected read-write,
// those this session has claimed; nothing is claimed. IMAP4rev2 sessions have none.
func (c *conn) statusRecent(ref mailboxRef, mb *metadatapb.Mailbox) (int, error) {
	if c.rev2 {
		return 0, nil
	}
	n := 0
	if s := c.sel; s != nil && s.owner == ref.owner && s.mailboxID == mb.GetId() && !s.readOnly {
		n = s.recentCount()
	}
	from := c.srv.recent.firstRecent(ref.owner, mb.GetId(), mb.GetUidNext())
	if from >= mb.GetUidNext() {
		return n, nil
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	resp, err := c.srv.cfg.Metadata.ListMessages(ctx, &metadatapb.ListMessagesRequest{Account: ref.owner, MailboxId: mb.GetId(), User: c.accountName()})
	if err != nil {
		return 0, rpcStatus(err, codeNonExistent, "list messages")
	}
	uids := resp.GetUids()
	i, _ := slices.BinarySearch(uids, from)
	return n + len(uids) - i, nil
}

// noteArrival records a message the session learnt of from the change feed; it returns
// whether the number of recent messages changed, so that a RECENT response is due (RFC 3501
// 7.3.2).
func (c *conn) noteArrival(uid uint32) bool {
	s := c.sel
	if c.rev2 || s.readOnly || !c.srv.recent.claimArrival(s.owner, s.mailboxID, uid) {
		return false
	}
	s.recent = append(s.recent, uid)
	return true
}

// isRecent reports whether message uid is \Recent in this session.
func (s *selected) isRecent(uid uint32) bool {
	_, found := slices.BinarySearch(s.recent, uid)
	return found
}

// sessionFlags returns the flags of message i as this session shows them: the stored flags
// and, in an IMAP4rev1 session, \Recent.
func (c *conn) sessionFlags(i int) []string {
	s := c.sel
	if c.rev2 || !s.isRecent(s.uids[i]) {
		return s.flags[i]
	}
	return append(slices.Clip(s.flags[i]), `\Recent`)
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
