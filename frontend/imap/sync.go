package imap

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// selected is a session's view of its selected mailbox (DESIGN.md "Sequence numbers live in
// the frontend"): the messages as of the last update sent to the client, in ascending UID
// order, so that message sequence number n is msgs.uid(n-1), with each message's flags and
// MODSEQ. Only the connection's goroutine touches it; changes from the feed wait in feed until the
// session applies them at a point RFC 9051 7 allows.
type selected struct {
	owner     string // the mailbox's owner: the session's account, another's or "tenant:NAME"
	mailboxID uint64
	name      string // in the owner's space
	// specialUse is the mailbox's RFC 6154 attribute at SELECT, for spam learning
	// (learn.go): a change by SETMETADATA shows at the next SELECT.
	specialUse  string
	uidValidity uint32
	uidNext     uint32
	// highestModSeq is the mailbox's HIGHESTMODSEQ as far as the client has been told of
	// its changes (RFC 7162 3.1.2.1).
	highestModSeq uint64
	// readOnly is EXAMINE (RFC 9051 6.3.3), or SELECT without a right to change anything
	// (RFC 4314 5.2).
	readOnly bool
	// rights are the session's rights on the mailbox (RFC 4314 2.1) as of the mailbox's ACL
	// version aclVersion, brought up to date before each command when the mailbox is
	// another owner's (refreshRights).
	rights     rights
	aclVersion uint64

	// msgs are the messages, shared with the mailbox's view until either changes
	// (msgList: copy on write).
	msgs msgList
	// keywords are the keywords announced to the client in FLAGS (RFC 9051 7.3.5), sorted:
	// every keyword in flags is among them (announceKeywords).
	keywords []string

	// searchRes is the saved search result of RFC 5182 ("$"), as UIDs: a UID that is
	// expunged no longer resolves, which removes it from the result (RFC 5182 2.1).
	searchRes []uint32
	// recent are the UIDs that are \Recent in this IMAP4rev1 session, ascending (recent.go).
	recent []uint32
	// contexts are the updating contexts of RFC 5267 4.3 (context.go), and contextFlags the
	// UIDs whose flags changed since the contexts were last evaluated.
	contexts     []*searchContext
	contextFlags []uint32

	// ownAdded is the MODSEQ of this session's latest APPEND, COPY or MOVE into the mailbox
	// whose response went out before the feed delivered its new messages (awaitOwn gave
	// up), 0 when there is none: the client has their UIDs (APPENDUID, COPYUID: RFC 4315
	// 3) but the view lacks them, so a UID command or a search that can name them must
	// wait for them (awaitOwnAdditions, awaitOwnAdditionsToSearch) rather than ignore
	// them as UIDs that do not exist (RFC 9051 6.4.9).
	ownAdded uint64

	feed *changeFeed
}

// awaitOwn waits, at most appendSyncWait, until the feed of the selected mailbox has
// delivered modseq, the change of this session's APPEND, COPY or MOVE into it, so that its
// EXISTS goes out with the command's response (RFC 9051 6.3.12, 7.4.1); when the feed is
// later than that it records modseq in ownAdded.
func (c *conn) awaitOwn(modseq uint64) {
	s := c.sel
	if !c.waitForFeed(modseq) {
		s.ownAdded = max(s.ownAdded, modseq)
		c.log.Info("selected mailbox's change feed is behind this session's own change", "mailbox", s.mailboxID, "modseq", modseq, "feed_seen", s.feed.seenModSeq())
	}
}

// rejoin makes the session share its view's messages again (msgList.share) when it holds
// what the view holds: it has taken every change its feed delivered, and its messages and
// their MODSEQs are the view's (a change of its own that the feed has not delivered yet
// makes them differ; flags change only with a new MODSEQ). Sessions idling in a mailbox
// that receives mail thus hold one list between them, not one each: a change copies only
// the chunks it touches (msgList), so this pays at every size, and the comparison, under
// the view's lock, reads only the chunks the two lists do not hold with the same content:
// those that both changed, not those that a compaction of flag sets copied (issue 14).
func (s *selected) rejoin() {
	v := s.feed.view
	n := s.msgs.len()
	if v == nil || n == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	compared := 0
	if h := rejoinHook.Load(); h != nil {
		defer func() { (*h)(s, s.msgs.sharedChunks(&v.msgs), len(v.msgs.chunks), v.msgs.len(), compared) }()
	}
	if v.gone || v.msgs.len() != n || s.msgs.sharedChunks(&v.msgs) == len(v.msgs.chunks) {
		return // not in step, or sharing already
	}
	s.feed.mu.Lock()
	pending := len(s.feed.pending)
	s.feed.mu.Unlock()
	if pending > 0 {
		return
	}
	var same bool
	same, compared = s.msgs.sameMessages(&v.msgs)
	if same {
		s.msgs = v.msgs.share()
	}
}

// rejoinHook, set only by tests, is called at the end of each rejoin past its first checks
// with the session, how many of the view's chunks the session's list shares, the view's
// chunks and messages, and how many messages the rejoin compared one by one.
var rejoinHook atomic.Pointer[func(session any, shared, chunks, messages, compared int)]

// seqOf returns the sequence number of uid, or 0 if the session does not know it.
func (s *selected) seqOf(uid uint32) int {
	i, found := s.msgs.search(uid)
	if !found {
		return 0
	}
	return i + 1
}

// selectedGoneText is the BYE of a session whose selected mailbox was deleted or whose
// right to read it was revoked.
const selectedGoneText = "Selected mailbox was deleted or is no longer readable"

// changeFeed queues a session's changes of its selected mailbox: the batches its shared
// view (mailview.go) received after the session joined it, until the session applies them
// at a point RFC 9051 7 allows.
type changeFeed struct {
	view *mailView // the view it follows; nil in tests of the feed alone
	// onChange is called, with mu held, when a batch arrives: the session's feedChanged.
	onChange func()

	mu      sync.Mutex
	pending []*metadatapb.Change
	// stopped, when set, is why the feed stopped for good, the text of the session's BYE
	// [UNAVAILABLE]: the metadata service no longer keeps the changes after seen
	// (metadata/history.go), the stream failed in a way a retry cannot mend, or the feed
	// panicked. The session's view can no longer follow the mailbox, so the session ends.
	stopped string
	seen    uint64        // the highest MODSEQ received
	wake    chan struct{} // closed and replaced whenever a batch arrives
}

// leave detaches the feed from its view: the session leaves the mailbox.
func (f *changeFeed) leave() {
	if f.view != nil {
		f.view.leave(f)
	}
}

func (f *changeFeed) add(batch *metadatapb.ChangeBatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, batch.GetChanges()...)
	f.seen = max(f.seen, batch.GetHighestModseq())
	close(f.wake)
	f.wake = make(chan struct{})
	if f.onChange != nil {
		f.onChange()
	}
}

// stop records that the feed stopped for good, with the reason the session's BYE gives, and
// wakes the session.
func (f *changeFeed) stop(reason string) {
	f.mu.Lock()
	f.stopped = reason
	f.mu.Unlock()
	f.add(&metadatapb.ChangeBatch{})
}

// stoppedReason returns why the feed stopped for good, or "" while it runs.
func (f *changeFeed) stoppedReason() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

// take removes the pending changes the session may apply now. Without allowExpunge, EXPUNGE
// changes stay queued (RFC 9051 7.5.1), and without allowFlags FLAGS changes do (a NOTIFY
// session that did not ask for FlagChange, between commands: RFC 5465 5.1); everything else
// is taken.
func (f *changeFeed) take(allowExpunge, allowFlags bool) []*metadatapb.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	if allowExpunge && allowFlags {
		changes := f.pending
		f.pending = nil
		return changes
	}
	var changes, kept []*metadatapb.Change
	for _, ch := range f.pending {
		switch ch.GetKind() {
		case metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE:
			if !allowExpunge {
				kept = append(kept, ch)
				continue
			}
		case metadatapb.ChangeKind_CHANGE_KIND_FLAGS:
			if !allowFlags {
				kept = append(kept, ch)
				continue
			}
		}
		changes = append(changes, ch)
	}
	f.pending = kept
	return changes
}

// pendingExpunges returns the UIDs of the EXPUNGE changes waiting in the feed.
func (f *changeFeed) pendingExpunges() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var uids []uint32
	for _, ch := range f.pending {
		if ch.GetKind() == metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE {
			uids = append(uids, ch.GetUid())
		}
	}
	return uids
}

// waitFor waits until the feed has seen modseq (a change this session committed), at most
// timeout, and reports whether it has.
func (f *changeFeed) waitFor(ctx context.Context, modseq uint64, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		f.mu.Lock()
		seen, wake := f.seen, f.wake
		f.mu.Unlock()
		if seen >= modseq {
			return true
		}
		select {
		case <-wake:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// seenModSeq is the highest MODSEQ the feed received.
func (f *changeFeed) seenModSeq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// awaitOwnAdditions brings the messages of the session's own APPEND, COPY or MOVE whose
// response went out before the feed delivered them (ownAdded) into its view before a UID
// command resolves its set, announcing them with EXISTS (RFC 9051 7.4.1, allowed with any
// response; EXPUNGEs stay queued, 7.5.1). Without it, a UID STORE or UID EXPUNGE of a UID
// the client got in APPENDUID found no such message in the view and answered OK having
// done nothing, whenever the feed was held up for longer than appendSyncWait (a paused or
// partitioned metadata node): the acknowledged UID EXPUNGE that e2e TestJepsenClusterFaults
// found "undone" (TestUIDCommandOnOwnAdditionBeforeFeed). When the feed does
// not deliver them within appendSyncWait either, the command fails with NO [UNAVAILABLE]
// and changes nothing. A set that cannot name them (every UID at most the view's highest,
// no "*" or "$") goes on at once: a client using UID commands only keeps working on the
// messages it has while the feed is held up.
func (c *conn) awaitOwnAdditions(set imap.UIDSet) error {
	s := c.sel
	if s.ownAdded == 0 || !reachesPastView(set, s.msgs.last()) {
		return nil
	}
	return c.receiveOwnAdditions()
}

// awaitOwnAdditionsToSearch is awaitOwnAdditions for SEARCH, SORT and THREAD (RFC 9051
// 6.4.4, RFC 5256), their UID forms and their ESEARCH and ESORT returns (RFC 4731, RFC
// 5267): a search whose answer can name the session's own new messages waits for them
// like a UID set that reaches past the view. Its answer can name them when it answers with
// UIDs (the UID form; the client has them from APPENDUID or COPYUID, RFC 4315 3) or has a
// UID key (the client names them), unless its criteria confine it to the view
// (mayMatchPastView). A SEARCH by sequence number without UID keys goes on at once: the
// client knows the new messages by no number until their EXISTS, as for FETCH and STORE.
// Found when UID SEARCH after an APPEND missed the message its APPENDUID named
// (TestSearchOnOwnAdditionBeforeFeed).
func (c *conn) awaitOwnAdditionsToSearch(crit *imap.SearchCriteria) error {
	s := c.sel
	uidCmd := c.cmd != nil && commands[c.cmd.Name].answersUIDs // the dispatch table
	if s.ownAdded == 0 || !uidCmd && !criteriaUseUIDs(crit) || !mayMatchPastView(crit, s.msgs.last()) {
		return nil
	}
	return c.receiveOwnAdditions()
}

// receiveOwnAdditions waits, at most appendSyncWait, until the feed has delivered ownAdded
// and applies it to the view (awaitOwnAdditions), or answers NO [UNAVAILABLE].
func (c *conn) receiveOwnAdditions() error {
	s := c.sel
	if !c.waitForFeed(s.ownAdded) {
		c.log.Info("command refused: the change feed still lacks this session's own change", "command", c.cmd.Name, "mailbox", s.mailboxID, "modseq", s.ownAdded, "feed_seen", s.feed.seenModSeq())
		return no(imapresp.CodeUnavailable, "This session's new messages have not reached its view of the mailbox yet; try again")
	}
	s.ownAdded = 0
	c.sendChanges(false, true)
	if c.sel != s {
		return no(imapresp.CodeUnavailable, "The mailbox is no longer selected") // sendChanges ended the session
	}
	return nil
}

// waitForFeed waits, at most appendSyncWait, until the feed of the selected mailbox has
// delivered modseq, a change this session committed, and reports whether it has. Before
// it waits it sends the responses held for a pipeline (connWriter.hold): a response must
// not wait for the feed of the command after it.
func (c *conn) waitForFeed(modseq uint64) bool {
	s := c.sel
	if s.feed.seenModSeq() < modseq {
		c.bw.flushHeld()
	}
	return s.feed.waitFor(c.ctx, modseq, time.Duration(appendSyncWait.Load()))
}

// mayMatchPastView reports whether crit may match a message whose UID is above the highest
// UID top, one the view lacks: false when a key that must hold confines the
// match to the view, a UID set that does not reach past it (reachesPastView) or a set of
// sequence numbers, which name only messages the client was told of (RFC 9051 6.4.4,
// 7.4.1). A NOT may match anything.
func mayMatchPastView(crit *imap.SearchCriteria, top uint32) bool {
	if len(crit.SeqNum) > 0 {
		return false
	}
	for _, set := range crit.UID {
		if !reachesPastView(set, top) {
			return false
		}
	}
	for _, or := range crit.Or {
		if !mayMatchPastView(&or[0], top) && !mayMatchPastView(&or[1], top) {
			return false
		}
	}
	return true
}

// criteriaUseUIDs reports whether search criteria name messages by UID anywhere.
func criteriaUseUIDs(crit *imap.SearchCriteria) bool {
	return criteriaAny(crit, func(c *imap.SearchCriteria) bool { return len(c.UID) > 0 })
}

// reachesPastView reports whether set may name a UID above top, the view's highest (0 for none):
// it holds "*" (RFC 9051 6.4.9: the highest UID in use, which may be one the view lacks), is
// "$" (RFC 5182), or names a higher UID.
func reachesPastView(set imap.UIDSet, top uint32) bool {
	if imap.IsSearchRes(set) {
		return true
	}
	for _, r := range set {
		if r.Start == 0 || r.Stop == 0 || r.Start > imap.UID(top) || r.Stop > imap.UID(top) {
			return true
		}
	}
	return false
}

// closeSelected leaves the selected mailbox, if any, and stops its feed.
func (c *conn) closeSelected() {
	if c.sel == nil {
		return
	}
	c.sel.feed.leave()
	c.sel = nil
	if c.state == stateSelected {
		c.state = stateAuthenticated
	}
}

// sendUpdates applies the queued changes of the selected mailbox to the session's view and
// tells the client: EXISTS for new messages (and RECENT when this session claims some of
// them, recent.go), EXPUNGE for removed ones (only if allowExpunge), FETCH FLAGS for flag
// changes, with the UID inside a UID command (RFC 9051 7.4.2, 7.5.1). Changes the session
// made itself are already in its view and are skipped.
func (c *conn) sendUpdates(allowExpunge bool) {
	c.sendChanges(allowExpunge, true)
}

// sendChanges is sendUpdates that leaves flag changes queued without allowFlags. New
// messages are followed by the FETCH responses that NOTIFY's MessageNew asks for (RFC
// 5465 5.2, notify.go).
func (c *conn) sendChanges(allowExpunge, allowFlags bool) {
	s := c.sel
	uidCmd := c.cmd != nil && c.cmd.UID
	existsDirty := false
	newFrom := 0 // with existsDirty, the index of the first message not yet announced
	var expunged []uint32
	flushExpunged := func() {
		if len(expunged) > 0 {
			c.expungeUIDs(expunged)
			expunged = expunged[:0]
		}
	}
	flushExists := func() {
		flushExpunged()
		if existsDirty {
			c.bw.Write(imapresp.AppendExists(nil, s.msgs.len())) // RFC 9051 7.4.1
			// One claim for the batch of new messages (recent.go).
			if c.claimArrivals() {
				c.bw.Write(imapresp.AppendRecent(nil, s.recentCount())) // RFC 3501 7.3.2
			}
			c.notifyNewMessages(newFrom)
			c.flushContextFlags()
			c.contextsAppended(newFrom) // RFC 5267 4.3.3: ADDTO after EXISTS
			existsDirty = false
		}
	}
	for _, ch := range s.feed.take(allowExpunge, allowFlags) {
		s.highestModSeq = max(s.highestModSeq, ch.GetModseq())
		switch ch.GetKind() {
		case metadatapb.ChangeKind_CHANGE_KIND_APPEND:
			uid := ch.GetUid()
			if s.msgs.len() > 0 && uid <= s.msgs.last() {
				continue // known already: UIDs only grow within a mailbox (RFC 9051 2.3.1.1)
			}
			flushExpunged()
			if !existsDirty {
				newFrom = s.msgs.len()
			}
			c.announceKeywords(ch.GetFlags())
			s.msgs.append(uid, ch.GetModseq(), ch.GetFlags())
			s.uidNext = max(s.uidNext, uid+1)
			existsDirty = true
		case metadatapb.ChangeKind_CHANGE_KIND_FLAGS:
			// Expunges and new messages queued before this change go out first, so the
			// sequence number is taken after them (RFC 9051 7.5.1: each response's
			// number counts the ones sent before it). Found by the consistency checker
			// (jepsen/): taken before, it named another message, or none.
			flushExists()
			seq := s.seqOf(ch.GetUid())
			if seq == 0 || ch.GetModseq() <= s.msgs.modseq(seq-1) {
				continue
			}
			c.announceKeywords(ch.GetFlags())
			s.msgs.setFlags(seq-1, ch.GetFlags(), ch.GetModseq())
			c.bw.Write(c.flagsFetch(seq, uidCmd))
			s.noteContextFlags(ch.GetUid())
		case metadatapb.ChangeKind_CHANGE_KIND_EXPUNGE:
			if s.seqOf(ch.GetUid()) == 0 {
				continue // expunged by this session, or never known
			}
			if existsDirty {
				flushExists()
			}
			expunged = append(expunged, ch.GetUid())
		case metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_RENAMED:
			s.name = ch.GetName()
		case metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED:
			// The selected mailbox is gone, or the session may no longer read it; no
			// response can deselect it, so the session ends (RFC 9051 7.1.5).
			flushExists()
			c.closeSelected()
			c.bye(selectedGoneText)
			return
		}
	}
	flushExists()
	c.flushContextFlags()
	s.msgs.compactSets()
	if reason := s.feed.stoppedReason(); reason != "" {
		// The session's view cannot be brought up to date change by change any more, and
		// no response can deselect the mailbox: the session ends, and the client
		// reconnects and resynchronises (RFC 9051 7.1.5, RFC 5530 UNAVAILABLE; RFC 7162
		// 3.2.5 makes the resynchronisation cheap).
		c.closeSelected()
		c.bye("[" + imapresp.CodeUnavailable + "] " + reason)
		return
	}
	if allowExpunge && allowFlags {
		s.rejoin()
	}
}

// The BYE texts of a session whose change feed stopped: it fell behind the history the
// metadata service keeps, or it failed (a panic, or an error no retry mends).
const (
	feedBehindText = "Mailbox changes since this session's view are no longer kept; please reconnect"
	feedFailedText = "Mailbox changes can no longer be followed; please reconnect"
)

// flagsFetch renders the FETCH response that reports the flags of message seq: "* seq FETCH
// (FLAGS (...))" CRLF (imapresp.AppendFlagsFetch), with the UID when uid is true, and UID
// and MODSEQ once CONDSTORE is enabled (RFC 7162 3.1). With NOTIFY the UID is always there (RFC 5465 5.1).
func (c *conn) flagsFetch(seq int, uid bool) []byte {
	return c.flagsFetchFor(seq, uid || c.condStore || c.notify != nil)
}

// flagsFetchFor is flagsFetch with the UID when uid is true.
func (c *conn) flagsFetchFor(seq int, uid bool) []byte {
	s := c.sel
	num, uidFetch := c.fetchNum(seq - 1)
	f := imapresp.FlagsFetch{Num: num, UIDFetch: uidFetch, Flags: c.sessionFlags(seq - 1)}
	if uid && !c.uidOnly {
		f.UID = s.msgs.uid(seq - 1)
	}
	if c.condStore {
		f.ModSeq = s.msgs.modseq(seq - 1)
	}
	return imapresp.AppendFlagsFetch(make([]byte, 0, 128), f)
}
