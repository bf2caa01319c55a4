package imap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// ESEARCH (RFC 7377, MULTISEARCH) searches several mailboxes with one command, in the
// authenticated state as well as the selected one (RFC 7377 2). Each mailbox is searched
// by the evaluation of SEARCH (search.go, with the search index where it is on): the
// selected mailbox in the session's view, any other in a copy of the frontend's shared view
// of it (mailview.go: listed as a cold SELECT lists it when it is not open). The
// answer is one ESEARCH response per mailbox that has matches, with the TAG, MAILBOX and
// UIDVALIDITY correlator and UIDs (RFC 7377 2.1).
//
// Rules:
//   - The mailboxes are those of the session's namespaces (namespace.go) that the source
//     options name and that exist and can be selected; one the session may not read (no r
//     right, RFC 4314 4) is skipped without an error, as one that does not exist is (RFC
//     7377 2.2). A mailbox named twice is searched once.
//   - "selected-delayed" is "selected": RFC 5465 6.1's delay is about when EXPUNGE
//     responses go out, which for ESEARCH, answered in UIDs, follow the rule of UID SEARCH
//     (RFC 9051 7.5.1). Either needs a selected mailbox: in the authenticated state it is a
//     BAD, as SEARCH is there.
//   - RETURN takes MIN, MAX, ALL and COUNT (RFC 4731), and SAVE (RFC 5182) only when the
//     selected mailbox is the only source (RFC 7377 2); "$" in the criteria likewise,
//     since the saved result is the selected mailbox's. No RETURN, or RETURN (), is ALL
//     (RFC 7377 2.1).
//   - Bounds (RFC 5530 3, NO [LIMIT]): Limits.MaxMultiSearchMailboxes mailboxes and
//     Limits.MaxMultiSearchMessages messages in all, checked before any is read, and
//     Limits.SearchTimeout for the scans of all of them together.

// searchTarget is one mailbox an ESEARCH searches.
type searchTarget struct {
	ref mailboxRef
	mb  *metadatapb.Mailbox // nil for the selected mailbox, searched in the session's view
}

// isSelectedSource reports whether a source of ESEARCH names the selected mailbox.
func isSelectedSource(src imapwire.SearchSource) bool {
	return src.Filter == imapwire.NotifySelected || src.Filter == imapwire.NotifySelectedDelayed
}

// cmdMultiSearch: ESEARCH (RFC 7377 2).
func (c *conn) cmdMultiSearch(cmd *imapwire.Command) (err error) {
	args := cmd.Args.(*imapwire.MultiSearchArgs)
	search := &args.Search
	sources := args.Sources
	if len(sources) == 0 {
		sources = []imapwire.SearchSource{{Filter: imapwire.NotifySelected}} // RFC 7377 2.2
	}
	selectedOnly := !slices.ContainsFunc(sources, func(src imapwire.SearchSource) bool { return !isSelectedSource(src) })
	if c.sel == nil && slices.ContainsFunc(sources, isSelectedSource) {
		return bad("", "ESEARCH IN (selected) needs a selected mailbox") // RFC 7377 2
	}
	save := slices.Contains(search.Return, "SAVE")
	for _, opt := range search.Return {
		switch opt {
		case "MIN", "MAX", "ALL", "COUNT": // RFC 4731 3.1
		case "SAVE":
			if !selectedOnly {
				return bad("", "ESEARCH RETURN (SAVE) is only for the selected mailbox alone") // RFC 7377 2
			}
		default:
			return bad("", "Unsupported ESEARCH return option "+opt) // RFC 7377 2: no other
		}
	}
	if save {
		// RFC 5182 2.1: a SEARCH with SAVE that fails leaves an empty saved result.
		defer func() {
			if err != nil {
				c.sel.searchRes = nil
			}
		}()
	}
	usesSaved := func(crit *imap.SearchCriteria) bool {
		return slices.ContainsFunc(crit.UID, func(set imap.UIDSet) bool { return imap.IsSearchRes(set) })
	}
	if !selectedOnly && criteriaAny(&search.Criteria, usesSaved) {
		return bad("", `ESEARCH can use "$" only in the selected mailbox alone`) // RFC 5182 2.1
	}
	if err := checkCharset(search.Charset); err != nil { // RFC 9051 6.4.4
		return err
	}
	if c.uidOnly && criteriaUseSeqNumbers(&search.Criteria) {
		return bad(imapresp.CodeUIDRequired, "UIDONLY does not allow message sequence numbers") // RFC 9586 3
	}
	if search.ModSeq {
		c.enableCondStore() // RFC 7162 3.1
	}
	targets, err := c.multiSearchTargets(sources)
	if err != nil {
		return err
	}
	if err := c.checkMultiSearchBounds(targets); err != nil {
		return err
	}
	returns := search.Return
	if len(returns) == 0 {
		returns = []string{"ALL"} // RFC 7377 2.1, RFC 4731 3.1
	}
	c.searchDeadline = time.Now().Add(c.srv.limits.SearchTimeout)
	defer func() { c.searchDeadline = time.Time{} }()
	for _, t := range targets {
		if time.Now().After(c.searchDeadline) {
			return multiSearchTooLong()
		}
		s := c.sel
		if t.mb != nil {
			if s, err = c.searchView(t); err != nil {
				if skippedMailbox(err) {
					continue // deleted, or the r right taken, meanwhile (RFC 7377 2.2)
				}
				return err
			}
		}
		matched, err := c.searchIn(s, &search.Criteria)
		if err != nil {
			return err
		}
		if save {
			s.searchRes = savedResult(&s.msgs, matched, returns)
			if len(returns) == 1 {
				continue // RFC 5182 2.4: SAVE alone produces no ESEARCH response
			}
		}
		if len(matched) == 0 {
			continue // RFC 7377 2.1: a response per mailbox with matches
		}
		e := imapresp.ESearch{Tag: cmd.Tag, Returns: returns, Nums: make([]uint32, len(matched))}
		for k, i := range matched {
			e.Nums[k] = s.msgs.uid(i)
		}
		if search.ModSeq {
			e.ModSeq = reportedModSeq(s, matched, returns)
		}
		c.bw.Write(imapresp.AppendMultiSearch(nil, c.encoder(), c.mailboxOut(t.ref.full), s.uidValidity, e))
	}
	return nil
}

// searchIn returns the positions of the messages of s that match criteria: SEARCH's
// evaluation (searchMatches) in s, the selected mailbox's view or another's, which stands
// in for it meanwhile.
func (c *conn) searchIn(s *selected, criteria *imap.SearchCriteria) ([]int, error) {
	saved := c.sel
	c.sel = s
	matched, _, err := c.searchMatches(criteria)
	// Put the selection back only if the search left s in place: waiting for the
	// session's own messages may end the session's selection (the mailbox deleted, the
	// r right taken; sendChanges closes it), and a closed one must stay closed (found in
	// review).
	if c.sel == s {
		c.sel = saved
	}
	return matched, err
}

// multiSearchTooLong is the NO [LIMIT] (RFC 5530 3) of an ESEARCH past its deadline.
func multiSearchTooLong() error {
	return no(imapresp.CodeLimit, "ESEARCH took longer than this server allows; search fewer mailboxes")
}

// checkMultiSearchBounds refuses, NO [LIMIT] (RFC 5530 3), an ESEARCH over more mailboxes
// or more messages in all than the server's limits allow.
func (c *conn) checkMultiSearchBounds(targets []searchTarget) error {
	lim := c.srv.limits
	if len(targets) > lim.MaxMultiSearchMailboxes {
		return no(imapresp.CodeLimit, fmt.Sprintf("ESEARCH would search %d mailboxes, more than this server allows (%d)", len(targets), lim.MaxMultiSearchMailboxes))
	}
	messages := 0
	for _, t := range targets {
		if t.mb == nil {
			messages += c.sel.msgs.len()
		} else {
			messages += int(t.mb.GetMessages())
		}
	}
	if messages > lim.MaxMultiSearchMessages {
		return no(imapresp.CodeLimit, fmt.Sprintf("ESEARCH would search %d messages, more than this server allows (%d)", messages, lim.MaxMultiSearchMessages))
	}
	return nil
}

// skippedMailbox reports whether an error reading a mailbox an ESEARCH names means it is
// not there for the session: it does not exist, no mailbox can have its name, or it
// cannot be read (RFC 7377 2.2: skipped). An error of the store (unavailable, a timeout)
// is not: the command fails rather than answer without the mailbox.
func skippedMailbox(err error) bool {
	var st *imapStatus
	if errors.As(err, &st) {
		return st.Code == imapresp.CodeNonExistent || st.Code == imapresp.CodeNoPerm || st.Code == imapresp.CodeCannot
	}
	code := status.Code(err)
	return code == codes.NotFound || code == codes.PermissionDenied || code == codes.InvalidArgument
}

// searchView returns a mailbox other than the selected one as a session's view would hold
// it, for an ESEARCH: a copy of the frontend's shared view of it (mailview.go), opened and
// listed when it is not open, and left at once. A view lingers after its last session, so
// the next ESEARCH, or a SELECT, over the same mailboxes copies it instead of listing them
// again.
func (c *conn) searchView(t searchTarget) (*selected, error) {
	view, feed, err := c.joinView(t.ref, t.mb)
	if err != nil {
		return nil, err
	}
	feed.leave()
	return &selected{
		owner: t.ref.owner, mailboxID: t.mb.GetId(), name: t.mb.GetName(),
		uidValidity: view.uidValidity, uidNext: view.uidNext, highestModSeq: view.highestModSeq,
		readOnly: true, rights: c.rightsOn(t.ref, t.mb), msgs: view.msgs,
	}, nil
}

// mailboxCatalog is what ESEARCH knows of the session's mailboxes from one ListMailboxes:
// every mailbox the session may list (its own and those others share with it, RFC 4314 4),
// by session name, and its subscriptions.
type mailboxCatalog struct {
	names      []string // sorted
	byName     map[string]searchTarget
	subscribed []string
}

// listCatalog lists the session's mailboxes as LIST sees them (mailbox.go).
func (c *conn) listCatalog() (*mailboxCatalog, error) {
	var resp *metadatapb.ListMailboxesResponse
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: c.accountName(), User: c.accountName()})
		return err
	})
	if err != nil {
		return nil, rpcStatus(err, imapresp.CodeNonExistent, "list mailboxes")
	}
	cat := &mailboxCatalog{byName: map[string]searchTarget{}, subscribed: resp.GetSubscriptions()}
	for _, mb := range resp.GetMailboxes() {
		if !hiddenPersonal(mb.GetName()) {
			cat.byName[mb.GetName()] = searchTarget{ref: mailboxRef{full: mb.GetName(), owner: c.accountName(), name: mb.GetName()}, mb: mb}
		}
	}
	for _, mb := range resp.GetShared() {
		ref := c.refOf(mb)
		if c.personal(ref) || !c.ownerInTenant(ref.owner) {
			continue
		}
		cat.byName[ref.full] = searchTarget{ref: ref, mb: mb}
	}
	for name := range cat.byName {
		cat.names = append(cat.names, name)
	}
	slices.Sort(cat.names)
	return cat, nil
}

// multiSearchTargets resolves the sources of an ESEARCH (RFC 7377 2.2, RFC 5465 6) to the
// mailboxes to search, each once, in the order the sources name them (each source's in
// name order), leaving out those that do not exist, cannot be selected or may not be read.
func (c *conn) multiSearchTargets(sources []imapwire.SearchSource) ([]searchTarget, error) {
	names := 0
	for _, src := range sources {
		names += len(src.Mailboxes)
	}
	if names > c.srv.limits.MaxMultiSearchMailboxes {
		return nil, no(imapresp.CodeLimit, fmt.Sprintf("ESEARCH names %d mailboxes, more than this server allows (%d)", names, c.srv.limits.MaxMultiSearchMailboxes))
	}
	var cat *mailboxCatalog
	if slices.ContainsFunc(sources, func(src imapwire.SearchSource) bool { return !isSelectedSource(src) }) {
		var err error
		if cat, err = c.listCatalog(); err != nil {
			return nil, err
		}
	}
	type key struct {
		owner string
		id    uint64
	}
	seen := map[key]bool{}
	var targets []searchTarget
	add := func(t searchTarget) {
		if t.mb == nil || t.mb.GetNoselect() || seen[key{t.ref.owner, t.mb.GetId()}] {
			return
		}
		seen[key{t.ref.owner, t.mb.GetId()}] = true
		if !c.rightsOn(t.ref, t.mb).has('r') {
			return // RFC 4314 4: searching needs r; RFC 7377 2.2: skipped, no error
		}
		if s := c.sel; s != nil && s.owner == t.ref.owner && s.mailboxID == t.mb.GetId() {
			t.mb = nil // the selected mailbox: the session's view
		}
		targets = append(targets, t)
	}
	for _, src := range sources {
		switch src.Filter {
		case imapwire.NotifySelected, imapwire.NotifySelectedDelayed:
			s := c.sel
			if !seen[key{s.owner, s.mailboxID}] {
				seen[key{s.owner, s.mailboxID}] = true
				targets = append(targets, searchTarget{ref: mailboxRef{full: c.external(s.owner, s.name), owner: s.owner, name: s.name}})
			}
		case imapwire.NotifyInboxes:
			// RFC 5465 6.3: the personal mailboxes mail is delivered to; Strata delivers
			// to INBOX (Sieve's fileinto aside, which RFC 5465 leaves to the server).
			add(cat.byName["INBOX"])
		case imapwire.NotifyPersonal: // RFC 5465 6.2
			for _, name := range cat.names {
				if t := cat.byName[name]; c.personal(t.ref) {
					add(t)
				}
			}
		case imapwire.NotifySubscribed: // RFC 5465 6.4
			for _, name := range cat.subscribed {
				add(cat.byName[name])
			}
		case imapwire.NotifyMailboxes, imapwire.NotifySubtree, imapwire.SearchSubtreeOne:
			for _, raw := range src.Mailboxes {
				root, ok := c.searchRoot(raw)
				if !ok {
					continue // no mailbox has this name
				}
				if t, listed := cat.byName[root.full]; listed {
					add(t)
				} else if !root.node {
					// One the session may read but not list (RFC 4314 4) is named here only.
					if mb, err := c.getMailbox(root, imapresp.CodeNonExistent); err == nil {
						add(searchTarget{ref: root, mb: mb})
					} else if !skippedMailbox(err) {
						return nil, err
					}
				}
				if src.Filter == imapwire.NotifyMailboxes {
					continue
				}
				for _, name := range cat.names {
					if below, depth := under(name, root.full); below && (src.Filter == imapwire.NotifySubtree || depth == 1) {
						add(cat.byName[name]) // RFC 5465 6.5; RFC 7377 2.2 subtree-one: one level
					}
				}
			}
		}
	}
	return targets, nil
}

// searchRoot resolves a mailbox name of ESEARCH's mailboxes, subtree or subtree-one to its
// reference, with full the session name as LIST writes it (INBOX in capitals, an owner in
// lower case); ok is false for a name no mailbox can have.
func (c *conn) searchRoot(raw string) (ref mailboxRef, ok bool) {
	name, err := c.mailboxIn(raw)
	if err != nil {
		return ref, false
	}
	if name == "" {
		// No mailbox is named "": it is the root of every name (under), whose subtree
		// is every mailbox the session may list. Not looked up, which would fail the
		// command where RFC 7377 2.2 skips a mailbox that does not exist.
		return mailboxRef{node: true}, true
	}
	ref = c.locate(name)
	switch {
	case !ref.node:
		ref.full = c.external(ref.owner, ref.name)
	case ref.owner != "" && isAccountOwner(ref.owner) && ref.name == "":
		ref.full = otherUsersNamespace + string(delimiter) + ref.owner // "Other Users/alice@..."
	}
	return ref, true
}

// under reports whether name is root or below it in the hierarchy, and how many levels
// below (0: root itself); every name is below the empty root.
func under(name, root string) (below bool, depth int) {
	rest := name
	if root != "" {
		if name == root {
			return true, 0
		}
		var found bool
		if rest, found = strings.CutPrefix(name, root+string(delimiter)); !found {
			return false, 0
		}
	}
	return true, strings.Count(rest, string(delimiter)) + 1
}
