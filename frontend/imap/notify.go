package imap

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// NOTIFY (RFC 5465). A session that ran NOTIFY SET gets unsolicited responses at any time
// while no command is in progress (RFC 5465 3), not only in IDLE:
//
//   - for the selected mailbox, as the SELECTED or SELECTED-DELAYED group asks (6.1): the
//     EXISTS, EXPUNGE (VANISHED with QRESYNC) and FETCH FLAGS of its change feed (sync.go),
//     with MessageNew's fetch attributes after EXISTS (5.2); SELECTED-DELAYED holds expunges
//     until a command that allows them (6.1.2), and without FlagChange flag changes wait for
//     the next command. Without either group nothing is sent between commands; command
//     responses carry the updates as RFC 9051 7 requires either way;
//   - for the other mailboxes of the account: STATUS when their messages or flags change
//     (5.1 to 5.3), LIST for MailboxName (created, deleted with \NonExistent, renamed with
//     OLDNAME, 5.4) and for SubscriptionChange (with \Subscribed when subscribed, 5.5).
//
// The events of the other mailboxes come from Metadata.WatchAccount, one stream per NOTIFY
// session, so changes made through any frontend arrive. The stream's batches coalesce in
// accountFeed: each mailbox waits once, in its latest state, and the session compares it
// with the state it last reported (notifyState.known), so a burst of appends is one STATUS
// per mailbox per flush. A reconnected stream starts with a snapshot that the same
// comparison turns into the events missed. More than maxNotifyPending mailboxes waiting, or
// a stream that cannot go on, ends NOTIFY with an untagged OK [NOTIFICATIONOVERFLOW] (5.8);
// a feed that panicked ends the session with BYE [UNAVAILABLE], as a failed mailbox feed
// does (sync.go).
//
// Scope: the account's own mailboxes (the personal namespace, 6.2). Mailboxes of other
// owners shared with the account are not watched: SUBTREE and MAILBOXES names in the other
// users' and shared namespaces are ignored like any name the session cannot access (6.5,
// 6.6). INBOXES is INBOX, where mail is delivered (6.3). Of the events the session causes
// itself (RFC 5465 5: SHOULD be omitted), its own APPEND, COPY and MOVE into another mailbox
// bring no STATUS, and into the selected one no FETCH of MessageNew (5.2); its own CREATE,
// DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE bring no LIST (ownNames, ownSubs).

// Limits of NOTIFY.
const (
	// maxNotifyGroups bounds the event groups of one NOTIFY SET, maxNotifyNames the
	// mailbox names of its SUBTREE and MAILBOXES groups; more is NO [LIMIT] (RFC 5530).
	maxNotifyGroups = 64
	maxNotifyNames  = 1000
	// maxNotifyPending bounds the mailboxes whose changes wait for the session; past it the
	// session cannot keep up and NOTIFY ends (RFC 5465 5.8).
	maxNotifyPending = 1024
)

// accountFeedFailedText is the BYE of a NOTIFY session whose account feed panicked.
const accountFeedFailedText = "Mailbox notifications can no longer be followed; please reconnect"

// supportedEvents are the events BADEVENT lists (RFC 5465 3.1).
var supportedEvents = []string{
	imapwire.EventMessageNew, imapwire.EventMessageExpunge, imapwire.EventFlagChange,
	imapwire.EventMailboxName, imapwire.EventSubscriptionChange,
}

// notifyState is a session's NOTIFY SET.
type notifyState struct {
	// selected is the SELECTED or SELECTED-DELAYED group; nil when the selected mailbox
	// sends nothing between commands (RFC 5465 3.1: as SELECTED NONE).
	selected *imapwire.NotifyGroup
	// fetchAtts are the attributes of the FETCH after a new message's EXISTS (5.2), with
	// UID first.
	fetchAtts []imapwire.FetchItem
	groups    []notifyGroup // the groups of the other mailboxes
	feed      *accountFeed
	// known is the account's mailboxes as last reported, by id, and subscribed its
	// subscription list.
	known      map[uint64]*metadatapb.Mailbox
	subscribed map[string]bool
	// own are the MODSEQs of the session's own APPEND and COPY/MOVE into other mailboxes,
	// by mailbox id, not yet seen on the feed: a change made only of them brings no STATUS
	// (RFC 5465 5: the server SHOULD omit events the client caused).
	own map[uint64][]uint64
	// ownNames are the mailbox names the session's own CREATE, DELETE and RENAME changed
	// ("name/" for the inferiors RENAME moves), and ownSubs, by name, the subscription
	// states its own SUBSCRIBE and UNSUBSCRIBE set, in the order it set them; each until its
	// event arrives or ownNameTTL passes: those MailboxName and SubscriptionChange events
	// are the client's own (RFC 5465 5: SHOULD be omitted). The event of a command may
	// arrive after the session's next command: the order of the states tells a SUBSCRIBE's
	// late event from the UNSUBSCRIBE's that follows it.
	ownNames map[string]time.Time
	ownSubs  map[string][]ownSubscription
}

// ownSubscription is a subscription state that the session's own command set.
type ownSubscription struct {
	subscribed bool
	at         time.Time
}

// ownNameTTL bounds how long an own name change waits for its event on the feed.
const ownNameTTL = 30 * time.Second

// notifyOwnNames records mailbox names (or "name/" subtrees) of the session's account that
// its own command changed.
func (c *conn) notifyOwnNames(owner string, names ...string) {
	if n := c.notify; n != nil && owner == c.accountName() {
		n.ownNames = rememberOwn(n.ownNames, names)
	}
}

// notifyOwnSubscription records the subscription state of name that the session's own
// command set.
func (c *conn) notifyOwnSubscription(name string, subscribed bool) {
	n := c.notify
	if n == nil {
		return
	}
	now := time.Now()
	if n.ownSubs == nil {
		n.ownSubs = map[string][]ownSubscription{}
	}
	for k, states := range n.ownSubs {
		if now.Sub(states[len(states)-1].at) > ownNameTTL {
			delete(n.ownSubs, k)
		}
	}
	states := n.ownSubs[name]
	if k := len(states); k > 0 && states[k-1].subscribed == subscribed {
		// The state set again: no second event comes.
		states[k-1].at = now
		return
	}
	n.ownSubs[name] = append(states, ownSubscription{subscribed: subscribed, at: now})
}

// isOwnSubscription reports whether the flip of name's subscription to subscribed is the
// event of the session's own command, which it then forgets. A flip to another state than
// the first one the session set means the states are out of step with the feed (a command
// that changed nothing, or events merged in one batch): they are forgotten.
func (n *notifyState) isOwnSubscription(name string, subscribed bool) bool {
	states := n.ownSubs[name]
	if len(states) == 0 {
		return false
	}
	if states[0].subscribed != subscribed || time.Since(states[0].at) > ownNameTTL {
		delete(n.ownSubs, name)
		return false
	}
	if len(states) == 1 {
		delete(n.ownSubs, name)
	} else {
		n.ownSubs[name] = states[1:]
	}
	return true
}

func rememberOwn(m map[string]time.Time, names []string) map[string]time.Time {
	now := time.Now()
	if m == nil {
		m = map[string]time.Time{}
	}
	for k, at := range m {
		if now.Sub(at) > ownNameTTL {
			delete(m, k)
		}
	}
	for _, name := range names {
		m[name] = now
	}
	return m
}

// isOwn reports whether name is among own (exactly, and then it is forgotten, or below a
// "name/" subtree entry).
func isOwn(own map[string]time.Time, name string) bool {
	now := time.Now()
	if at, ok := own[name]; ok {
		delete(own, name)
		return now.Sub(at) <= ownNameTTL
	}
	for k, at := range own {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(name, k) && now.Sub(at) <= ownNameTTL {
			return true
		}
	}
	return false
}

// maxOwnChanges bounds the MODSEQs of own changes kept per mailbox.
const maxOwnChanges = 64

// notifyOwnChange records that the session's own command brought mailboxID of owner to
// modseq (APPEND, or the target of COPY and MOVE).
func (c *conn) notifyOwnChange(owner string, mailboxID, modseq uint64) {
	n := c.notify
	if n == nil || owner != c.accountName() || modseq == 0 {
		return
	}
	if n.own == nil {
		n.own = map[uint64][]uint64{}
	}
	mine := append(n.own[mailboxID], modseq)
	if len(mine) > maxOwnChanges {
		mine = mine[len(mine)-maxOwnChanges:]
	}
	n.own[mailboxID] = mine
}

// onlyOwn reports whether every change of the mailbox from old to mb is the session's own,
// and forgets the own changes mb covers.
func (n *notifyState) onlyOwn(old, mb *metadatapb.Mailbox) bool {
	mine := n.own[mb.GetId()]
	if len(mine) == 0 {
		return false
	}
	from, to := old.GetHighestModseq(), mb.GetHighestModseq()
	count := uint64(0)
	kept := mine[:0]
	for _, m := range mine {
		switch {
		case m > to:
			kept = append(kept, m)
		case m > from:
			count++
		}
	}
	if len(kept) == 0 {
		delete(n.own, mb.GetId())
	} else {
		n.own[mb.GetId()] = kept
	}
	return to > from && count == to-from && mb.GetUidValidity() == old.GetUidValidity()
}

// notifyGroup is one event group of the other mailboxes (RFC 5465 6.2 to 6.6).
type notifyGroup struct {
	filter imapwire.NotifyFilter
	names  []string // SUBTREE and MAILBOXES: personal names
	// The events: messages is MessageNew and MessageExpunge (always together, RFC 5465 5).
	messages, flags, mailboxName, subscriptions bool
}

// covers reports whether the group's mailbox specifier takes the personal mailbox name.
func (g *notifyGroup) covers(name string, subscribed map[string]bool) bool {
	switch g.filter {
	case imapwire.NotifyInboxes: // RFC 5465 6.3: where mail is delivered
		return name == "INBOX"
	case imapwire.NotifyPersonal: // RFC 5465 6.2
		return true
	case imapwire.NotifySubscribed: // RFC 5465 6.4: the list as it is now
		return subscribed[name]
	case imapwire.NotifySubtree: // RFC 5465 6.5: the names and their inferiors
		return slices.ContainsFunc(g.names, func(n string) bool {
			return name == n || strings.HasPrefix(name, n+string(delimiter))
		})
	case imapwire.NotifyMailboxes: // RFC 5465 6.6: exactly these, no wildcards
		return slices.Contains(g.names, name)
	}
	return false
}

// notifyEvent selects a notifyGroup event.
type notifyEvent func(*notifyGroup) bool

func messageEvents(g *notifyGroup) bool     { return g.messages }
func flagEvents(g *notifyGroup) bool        { return g.flags }
func mailboxNameEvents(g *notifyGroup) bool { return g.mailboxName }
func subscriptionEvents(g *notifyGroup) bool {
	return g.subscriptions
}

// wants reports whether some group asks for event on the personal mailbox name.
func (n *notifyState) wants(event notifyEvent, name string, subscribed map[string]bool) bool {
	if hiddenPersonal(name) {
		return false
	}
	for i := range n.groups {
		if g := &n.groups[i]; event(g) && g.covers(name, subscribed) {
			return true
		}
	}
	return false
}

// cmdNotify: NOTIFY (RFC 5465 3.1). NOTIFY SET replaces what the session had asked for; its
// tagged OK follows the initial STATUS responses of NOTIFY SET STATUS, and the updates of
// the selected mailbox go before it as after any command (an implicit NOOP).
func (c *conn) cmdNotify(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.NotifyArgs)
	if args.None {
		c.stopNotify()
		return nil
	}
	n, err := c.newNotifyState(args)
	if err != nil {
		return err
	}
	c.stopNotify()
	n.feed = c.startAccountFeed()
	if err := n.feed.waitReady(c.ctx, rpcTimeout); err != nil {
		n.feed.stop()
		return rpcStatus(err, imapresp.CodeUnavailable, "watch the account's mailboxes")
	}
	first := n.feed.take()
	n.known = first.mailboxes
	n.subscribed = nameSet(first.subscriptions)
	c.notify = n
	if args.Status {
		// RFC 5465 3.1: a STATUS for each mailbox other than the selected one with message
		// events, before the tagged OK.
		for _, mb := range sortedByName(n.known) {
			if c.statusWanted(mb) && n.wants(messageEvents, mb.GetName(), n.subscribed) {
				c.notifyStatus(mb)
			}
		}
	}
	return nil
}

// newNotifyState checks a NOTIFY SET and turns it into the session's state: NO [BADEVENT]
// for events Strata does not send (RFC 5465 3.1), NO [LIMIT] past the limits.
func (c *conn) newNotifyState(args *imapwire.NotifyArgs) (*notifyState, error) {
	if len(args.Groups) > maxNotifyGroups {
		return nil, no(imapresp.CodeLimit, "Too many event groups")
	}
	names := 0
	for _, g := range args.Groups {
		names += len(g.Mailboxes)
		for _, ev := range g.Events {
			if !slices.Contains(supportedEvents, ev.Name) {
				return nil, no(imapresp.BadEventCode(supportedEvents), "Event "+ev.Name+" is not supported")
			}
		}
	}
	if names > maxNotifyNames {
		return nil, no(imapresp.CodeLimit, "Too many mailbox names")
	}
	n := &notifyState{}
	for i := range args.Groups {
		g := &args.Groups[i]
		if g.Filter == imapwire.NotifySelected || g.Filter == imapwire.NotifySelectedDelayed {
			if len(g.Events) > 0 {
				n.selected = g
				n.fetchAtts = notifyFetchAtts(g)
			}
			continue
		}
		ng := notifyGroup{
			filter:        g.Filter,
			messages:      g.Has(imapwire.EventMessageNew),
			flags:         g.Has(imapwire.EventFlagChange),
			mailboxName:   g.Has(imapwire.EventMailboxName),
			subscriptions: g.Has(imapwire.EventSubscriptionChange),
		}
		for _, raw := range g.Mailboxes {
			name, err := c.mailboxIn(raw)
			if err != nil {
				return nil, err
			}
			// RFC 5465 6.5, 6.6: a name the session cannot access is ignored; only the
			// personal namespace is watched.
			if ref := c.locate(strings.TrimSuffix(name, string(delimiter))); c.personal(ref) && !ref.node {
				ng.names = append(ng.names, canonicalInbox(ref.name))
			}
		}
		n.groups = append(n.groups, ng)
	}
	return n, nil
}

// notifyFetchAtts returns the fetch attributes of the SELECTED group's MessageNew, with UID
// first so that the client can tell the messages apart; nil when none were given.
func notifyFetchAtts(g *imapwire.NotifyGroup) []imapwire.FetchItem {
	for _, ev := range g.Events {
		if ev.Name != imapwire.EventMessageNew || len(ev.FetchAtts) == 0 {
			continue
		}
		items := []imapwire.FetchItem{{Attr: imapwire.FetchUID}}
		for _, it := range ev.FetchAtts {
			if it.Attr != imapwire.FetchUID {
				items = append(items, it)
			}
		}
		return items
	}
	return nil
}

// stopNotify ends NOTIFY (NOTIFY NONE, a new NOTIFY SET, an overflow, the end of the
// connection).
func (c *conn) stopNotify() {
	if c.notify != nil {
		c.notify.feed.stop()
		c.notify = nil
	}
}

// sendUnsolicited sends what may go out while no command is in progress: the selected
// mailbox's changes as NOTIFY asks for them (in IDLE without NOTIFY, all of them, RFC
// 2177), and the notifications of the other mailboxes. It may end the session (a deleted
// selected mailbox).
func (c *conn) sendUnsolicited(inIdle bool) {
	if c.sel != nil {
		switch n := c.notify; {
		case n == nil:
			if inIdle {
				c.sendUpdates(true)
			}
		case n.selected != nil:
			// RFC 5465 6.1.2: SELECTED-DELAYED holds expunges until a command that allows
			// them, IDLE among them; 5.1: flag changes only with FlagChange.
			delayed := n.selected.Filter == imapwire.NotifySelectedDelayed
			c.sendChanges(!delayed || inIdle, n.selected.Has(imapwire.EventFlagChange))
		}
		if c.state == stateLogout {
			return
		}
	}
	c.sendNotifications()
}

// sendNotifications reports the changes of the account's mailboxes that arrived since the
// last flush, as the session's groups ask for them.
func (c *conn) sendNotifications() {
	n := c.notify
	if n == nil {
		return
	}
	ch := n.feed.take()
	if errors.Is(ch.failed, errAccountFeedPanicked) {
		// Whatever the feed was doing is lost with its state: the session ends, as for a
		// failed mailbox feed (sync.go), and the client reconnects (RFC 9051 7.1.5, RFC
		// 5530 UNAVAILABLE).
		c.stopNotify()
		c.bye("[" + imapresp.CodeUnavailable + "] " + accountFeedFailedText)
		return
	}
	if ch.overflowed || ch.failed != nil {
		if ch.failed != nil {
			c.log.Warn("account change feed failed; NOTIFY ends", "err", ch.failed)
		}
		// RFC 5465 5.8: as if NOTIFY NONE had been received.
		c.stopNotify()
		c.untaggedOK(imapresp.CodeNotificationOverflow, "Too many changes to report; NOTIFY is off")
		return
	}
	if !ch.snapshot && len(ch.mailboxes) == 0 && len(ch.deleted) == 0 && !ch.subscriptionsChanged {
		return
	}
	known := n.known
	var next map[uint64]*metadatapb.Mailbox
	var gone []uint64
	if ch.snapshot {
		// A stream's first batch after a reconnect: what was known and is not in it is
		// gone.
		next = ch.mailboxes
		for id := range known {
			if next[id] == nil {
				gone = append(gone, id)
			}
		}
	} else {
		next = maps.Clone(known)
		if next == nil {
			next = map[uint64]*metadatapb.Mailbox{}
		}
		maps.Copy(next, ch.mailboxes)
		for id := range ch.deleted {
			if known[id] != nil {
				gone = append(gone, id)
			}
			delete(next, id)
		}
	}
	if next == nil {
		next = map[uint64]*metadatapb.Mailbox{}
	}
	slices.Sort(gone)
	subscribed := n.subscribed
	if ch.subscriptionsChanged {
		subscribed = nameSet(ch.subscriptions)
	}
	var byName map[string]*metadatapb.Mailbox // built when a LIST needs it
	list := func(name, oldName string) {
		if byName == nil {
			byName = make(map[string]*metadatapb.Mailbox, len(next))
			for _, mb := range next {
				byName[mb.GetName()] = mb
			}
		}
		c.notifyList(name, byName, subscribed, oldName)
	}
	changed := slices.Sorted(maps.Keys(ch.mailboxes))

	// RFC 5465 5.4: MailboxName, a LIST for each name created or renamed (with OLDNAME),
	// then for each name deleted (\NonExistent) that no new mailbox took.
	listed := map[string]bool{}
	for _, id := range changed {
		mb, old := next[id], known[id]
		switch name := mb.GetName(); {
		case (old == nil || old.GetName() != name) && isOwn(n.ownNames, name):
			// The session's own CREATE or RENAME (RFC 5465 5).
		case old == nil:
			if n.wants(mailboxNameEvents, name, subscribed) {
				list(name, "")
				listed[name] = true
			}
		case old.GetName() != name:
			if n.wants(mailboxNameEvents, name, subscribed) || n.wants(mailboxNameEvents, old.GetName(), subscribed) {
				list(name, old.GetName())
				listed[name] = true
			}
		}
	}
	for _, id := range gone {
		old := known[id]
		if name := old.GetName(); !listed[name] && !isOwn(n.ownNames, name) && n.wants(mailboxNameEvents, name, subscribed) {
			list(name, "")
			listed[name] = true
		}
	}
	// RFC 5465 5.5: SubscriptionChange, a LIST for each name subscribed or unsubscribed.
	if ch.subscriptionsChanged {
		var flipped []string
		for name := range subscribed {
			if !n.subscribed[name] {
				flipped = append(flipped, name)
			}
		}
		for name := range n.subscribed {
			if !subscribed[name] {
				flipped = append(flipped, name)
			}
		}
		slices.Sort(flipped)
		for _, name := range flipped {
			if n.isOwnSubscription(name, subscribed[name]) {
				continue // the session's own SUBSCRIBE or UNSUBSCRIBE (RFC 5465 5)
			}
			if n.wants(subscriptionEvents, name, subscribed) || n.wants(subscriptionEvents, name, n.subscribed) {
				list(name, "")
			}
		}
	}
	// RFC 5465 5.1 to 5.3: STATUS for a mailbox whose messages (MessageNew, MessageExpunge)
	// or only flags (FlagChange) changed.
	for _, id := range changed {
		mb, old := next[id], known[id]
		if old == nil || !c.statusWanted(mb) || n.onlyOwn(old, mb) {
			continue
		}
		messages := mb.GetUidNext() != old.GetUidNext() || mb.GetMessages() != old.GetMessages() || mb.GetUidValidity() != old.GetUidValidity()
		flags := !messages && (mb.GetHighestModseq() != old.GetHighestModseq() || mb.GetUnseen() != old.GetUnseen())
		if messages && n.wants(messageEvents, mb.GetName(), subscribed) || flags && n.wants(flagEvents, mb.GetName(), subscribed) {
			c.notifyStatus(mb)
		}
	}
	n.known, n.subscribed = next, subscribed
}

// statusWanted reports whether a STATUS may report mb: a selectable mailbox that is not the
// selected one, whose changes its own feed reports (RFC 5465 6.1).
func (c *conn) statusWanted(mb *metadatapb.Mailbox) bool {
	if mb.GetNoselect() || hiddenPersonal(mb.GetName()) {
		return false
	}
	s := c.sel
	return s == nil || s.mailboxID != mb.GetId() || !c.personal(mailboxRef{owner: s.owner})
}

// notifyStatus sends the STATUS of a NOTIFY event (RFC 5465 5.2, 5.3): MESSAGES, UIDNEXT,
// UIDVALIDITY and UNSEEN, and HIGHESTMODSEQ once CONDSTORE is on.
func (c *conn) notifyStatus(mb *metadatapb.Mailbox) {
	items := []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
	if c.condStore {
		items = append(items, "HIGHESTMODSEQ")
	}
	ref := mailboxRef{full: mb.GetName(), owner: c.accountName(), name: mb.GetName()}
	if err := c.writeStatusResponse(ref, mb, items); err != nil {
		c.log.Warn("NOTIFY STATUS", "mailbox", mb.GetName(), "err", err)
	}
}

// notifyList sends the LIST of a MailboxName or SubscriptionChange event (RFC 5465 5.4,
// 5.5) for the personal name, with its attributes as they are now: \NonExistent when no
// mailbox has the name, \Subscribed when it is subscribed, and OLDNAME (RFC 5465 5.4) after
// a rename.
func (c *conn) notifyList(name string, byName map[string]*metadatapb.Mailbox, subscribed map[string]bool, oldName string) {
	mb := byName[name]
	var attrs []string
	switch {
	case mb == nil:
		attrs = append(attrs, `\NonExistent`) // RFC 5465 5.4, RFC 5258 3.4
	case mb.GetNoselect():
		attrs = append(attrs, `\Noselect`)
	}
	if subscribed[name] {
		attrs = append(attrs, `\Subscribed`) // RFC 5465 5.5
	}
	if mb.GetSpecialUse() != "" {
		attrs = append(attrs, mb.GetSpecialUse())
	}
	if mb != nil {
		prefix := name + string(delimiter)
		children := false
		for other := range byName {
			if strings.HasPrefix(other, prefix) {
				children = true
				break
			}
		}
		if children {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
	}
	l := imapresp.List{Attrs: attrs, Delimiter: delimiter, Mailbox: c.mailboxOut(name)}
	if oldName != "" {
		l.OldName = c.mailboxOut(oldName)
	}
	c.bw.Write(imapresp.AppendList(nil, c.encoder(), l))
}

// notifyNewMessages sends the FETCH that NOTIFY's MessageNew asks for after the EXISTS of
// the messages from index from on (RFC 5465 5.2), except for the messages the session's own
// APPEND, COPY or MOVE added, which it knows.
func (c *conn) notifyNewMessages(from int) {
	n := c.notify
	if n == nil || n.fetchAtts == nil || c.sel == nil || from >= c.sel.msgs.len() {
		return
	}
	if c.cmd != nil {
		switch c.cmd.Base {
		case "APPEND", "COPY", "MOVE":
			return
		}
	}
	idx := make([]int, 0, c.sel.msgs.len()-from)
	for i := from; i < c.sel.msgs.len(); i++ {
		idx = append(idx, i)
	}
	if err := c.fetchMessages(idx, n.fetchAtts, false); err != nil {
		c.log.Warn("NOTIFY MessageNew FETCH", "err", err)
	}
}

func nameSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, name := range names {
		set[name] = true
	}
	return set
}

// sortedByName returns the mailboxes ordered by name.
func sortedByName(boxes map[uint64]*metadatapb.Mailbox) []*metadatapb.Mailbox {
	out := slices.Collect(maps.Values(boxes))
	slices.SortFunc(out, func(a, b *metadatapb.Mailbox) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// accountFeed receives the account's mailbox-level changes from Metadata.WatchAccount in
// its own goroutine and keeps, for the session, the latest state of each mailbox that
// changed since the session last took them (coalescing), the ids deleted and the newest
// subscription list.
type accountFeed struct {
	srv    *Server // counts its panics
	cancel context.CancelFunc
	done   chan struct{}
	// onChange is called, with mu held, when changes arrive: the session's feedChanged.
	onChange func()

	mu      sync.Mutex
	pending accountChanges
	ready   bool          // the first snapshot arrived
	wake    chan struct{} // closed and replaced whenever a batch arrives
}

// accountChanges are the changes the session has not taken yet.
type accountChanges struct {
	// snapshot: mailboxes is the whole account (a stream's first batch is pending).
	snapshot             bool
	mailboxes            map[uint64]*metadatapb.Mailbox
	deleted              map[uint64]bool
	subscriptions        []string
	subscriptionsChanged bool
	// overflowed: more mailboxes than maxNotifyPending waited; failed: the stream cannot
	// go on. Either ends NOTIFY (RFC 5465 5.8).
	overflowed bool
	failed     error
}

// startAccountFeed watches the session's account until stop or the end of the connection.
func (c *conn) startAccountFeed() *accountFeed {
	ctx, cancel := context.WithCancel(c.ctx)
	f := &accountFeed{srv: c.srv, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}), onChange: c.feedChanged}
	req := &metadatapb.WatchAccountRequest{Account: c.accountName(), User: c.accountName()}
	go f.run(ctx, c.srv, req, c.log)
	return f
}

func (f *accountFeed) stop() {
	f.cancel()
	<-f.done
}

func (f *accountFeed) run(ctx context.Context, srv *Server, req *metadatapb.WatchAccountRequest, log *slog.Logger) {
	defer close(f.done)
	defer srv.recoverPanic(log, "account change feed", func(any) { f.fail(errAccountFeedPanicked) })
	md := srv.cfg.Metadata
	// A new stream starts with a snapshot, which the session compares with what it knew:
	// nothing is missed.
	followStream(ctx, log, "account change feed",
		func(ctx context.Context) (recver[metadatapb.AccountChanges], error) {
			return md.WatchAccount(ctx, req)
		},
		func(batch *metadatapb.AccountChanges) {
			atTestHook("account feed")
			f.add(batch)
		},
		func(err error) bool {
			switch status.Code(err) {
			case codes.NotFound, codes.PermissionDenied, codes.InvalidArgument, codes.Unimplemented:
				f.fail(err)
				return true
			}
			return false
		})
}

// errAccountFeedPanicked is the failure of an account feed that panicked.
var errAccountFeedPanicked = errors.New("account change feed panicked")

// add merges a batch into the pending changes.
func (f *accountFeed) add(batch *metadatapb.AccountChanges) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &f.pending
	if !p.overflowed {
		if batch.GetSnapshot() {
			p.snapshot, p.mailboxes, p.deleted = true, nil, nil
		}
		if p.mailboxes == nil {
			p.mailboxes = map[uint64]*metadatapb.Mailbox{}
		}
		for _, mb := range batch.GetMailboxes() {
			p.mailboxes[mb.GetId()] = mb
			delete(p.deleted, mb.GetId())
		}
		for _, id := range batch.GetDeleted() {
			delete(p.mailboxes, id)
			if !p.snapshot {
				if p.deleted == nil {
					p.deleted = map[uint64]bool{}
				}
				p.deleted[id] = true
			}
		}
		if batch.GetSubscriptionsChanged() {
			p.subscriptions, p.subscriptionsChanged = batch.GetSubscriptions(), true
		}
		if !p.snapshot && len(p.mailboxes)+len(p.deleted) > maxNotifyPending {
			*p = accountChanges{overflowed: true}
		}
	}
	f.ready = true
	f.signal()
}

// fail records that the stream cannot go on.
func (f *accountFeed) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending.failed = err
	f.signal()
}

// signal wakes the session; f.mu is held.
func (f *accountFeed) signal() {
	close(f.wake)
	f.wake = make(chan struct{})
	if f.onChange != nil {
		f.onChange()
	}
}

// take removes the pending changes.
func (f *accountFeed) take() accountChanges {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pending
	f.pending = accountChanges{}
	return p
}

// waitReady waits for the stream's first snapshot, at most timeout.
func (f *accountFeed) waitReady(ctx context.Context, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		f.mu.Lock()
		ready, failed, wake := f.ready, f.pending.failed, f.wake
		f.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case ready:
			return nil
		}
		select {
		case <-wake:
		case <-timer.C:
			return status.Error(codes.Unavailable, "no answer from the metadata service")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
