package imap

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// delimiter is the hierarchy delimiter of every Strata mailbox name (RFC 9051 5.1.1).
const delimiter = '/'

// Bounds on names and patterns. The metadata service refuses names over 1024 bytes; the
// frontend answers those, and hierarchies deeper than maxMailboxDepth, with NO [LIMIT]
// (RFC 5530 3) before asking it.
const (
	maxListPatterns   = 64
	maxPatternLength  = 1024
	maxMailboxNameLen = 1024
	maxMailboxDepth   = 128
)

// creatableSpecialUses are the RFC 6154 2 attributes CREATE accepts in USE. \All and
// \Flagged name virtual mailboxes that Strata does not compute, so they are refused with
// [USEATTR] (RFC 6154 3).
var creatableSpecialUses = []string{`\Archive`, `\Drafts`, `\Junk`, `\Sent`, `\Trash`}

// listQuery is one LIST or LSUB command, parsed and checked.
type listQuery struct {
	lsub bool
	// extended is RFC 5258 3's extended LIST: selection options, return options or more
	// than one pattern.
	extended bool
	// Selection options (RFC 5258 3.1, RFC 6154 5.1).
	selSubscribed, selSpecialUse, recursive bool
	// Return options (RFC 5258 3.2, RFC 5819, RFC 6154 5.2).
	retSubscribed bool
	retMyRights   bool // RFC 8440
	statusItems   []string
	patterns      []string
}

// parseListQuery checks the options of LIST / LSUB and decodes the patterns.
func (c *conn) parseListQuery(name string, args *imapwire.ListArgs) (*listQuery, error) {
	q := &listQuery{lsub: name == "LSUB"}
	q.selSubscribed = q.lsub
	q.extended = len(args.SelectOptions) > 0 || args.ReturnOptions != nil || len(args.Patterns) > 1
	for _, opt := range args.SelectOptions {
		switch opt {
		case "SUBSCRIBED":
			q.selSubscribed = true
		case "SPECIAL-USE": // RFC 6154 5.1
			q.selSpecialUse = true
		case "RECURSIVEMATCH":
			q.recursive = true
		case "REMOTE": // RFC 5258 3.1: no remote mailboxes here, so nothing to add
		default:
			// RFC 5258 3.1: an unrecognised selection option is a BAD.
			return nil, bad("", "Unsupported LIST selection option "+opt)
		}
	}
	if q.recursive && !q.selSubscribed && !q.selSpecialUse {
		// RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE only) is a BAD.
		return nil, bad("", "RECURSIVEMATCH needs another selection option")
	}
	q.retSubscribed = q.selSubscribed && !q.lsub
	for _, opt := range args.ReturnOptions {
		switch opt {
		case "SUBSCRIBED":
			q.retSubscribed = true
		case "CHILDREN", "SPECIAL-USE": // RFC 5258 4, RFC 6154 5.2: always returned
		case "MYRIGHTS": // RFC 8440 2
			q.retMyRights = true
		case "STATUS": // RFC 5819 2
			for _, item := range args.StatusItems {
				if !knownStatusItem(item) {
					return nil, bad("", "Unsupported STATUS item "+item)
				}
			}
			q.statusItems = args.StatusItems
		default:
			return nil, bad("", "Unsupported LIST return option "+opt)
		}
	}
	if len(args.Patterns) > maxListPatterns {
		return nil, bad(imapresp.CodeLimit, "Too many patterns")
	}
	for _, pattern := range args.Patterns {
		if pattern == "" {
			continue
		}
		full := args.Reference + pattern
		if len(full) > maxPatternLength {
			return nil, bad(imapresp.CodeLimit, "Pattern too long")
		}
		// RFC 3501 5.1.3: a rev1 client's patterns are modified UTF-7 like its names; the
		// wildcards are printable ASCII and decode as themselves. A pattern that does not
		// decode matches no name.
		decoded, err := c.decodeClientName(full)
		if err != nil {
			continue
		}
		q.patterns = append(q.patterns, decoded)
	}
	return q, nil
}

// matches reports whether name matches one of the query's patterns.
func (q *listQuery) matches(name string) bool {
	return slices.ContainsFunc(q.patterns, func(p string) bool { return matchPattern(p, name) })
}

// cmdList: LIST (RFC 9051 6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and
// SPECIAL-USE (RFC 6154), and LSUB (RFC 3501 6.3.9).
func (c *conn) cmdList(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.ListArgs)
	q, err := c.parseListQuery(cmd.Name, args)
	if err != nil {
		return err
	}
	// RFC 9051 6.3.9: an empty pattern asks for the hierarchy delimiter and the root.
	if !slices.ContainsFunc(args.Patterns, func(p string) bool { return p != "" }) {
		c.bw.Write(imapresp.AppendList(nil, c.encoder(), imapresp.List{LSUB: q.lsub, Attrs: []string{`\Noselect`}, Delimiter: delimiter}))
		return nil
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	resp, err := c.srv.cfg.Metadata.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: c.accountName(), User: c.accountName()})
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, "list mailboxes")
	}
	// Every mailbox the session may see, by its session name: its own, and those of other
	// owners of its tenant on which it has the l right (RFC 4314 4), which the metadata
	// service lists in shared under the namespaces' prefixes.
	exists := make(map[string]*metadatapb.Mailbox, len(resp.GetMailboxes())+len(resp.GetShared()))
	refs := make(map[string]mailboxRef, len(resp.GetShared()))
	hasChildren := map[string]bool{}
	candidates := map[string]bool{}
	add := func(name string, mb *metadatapb.Mailbox) {
		exists[name] = mb
		candidates[name] = true
		for _, parent := range parentNames(name) {
			hasChildren[parent] = true
			candidates[parent] = true
		}
	}
	for _, mb := range resp.GetMailboxes() {
		if !hiddenPersonal(mb.GetName()) {
			add(mb.GetName(), mb)
		}
	}
	for _, mb := range resp.GetShared() {
		ref := c.refOf(mb)
		if c.personal(ref) || !c.ownerInTenant(ref.owner) {
			continue
		}
		refs[ref.full] = ref
		add(ref.full, mb)
	}
	subscribed := map[string]bool{}
	// subscribedBelow marks the names with a subscribed inferior that no pattern matches:
	// RFC 5258 3.5 CHILDINFO, and RFC 3501 6.3.9's LSUB rule for "%".
	subscribedBelow := map[string]bool{}
	for _, name := range resp.GetSubscriptions() {
		subscribed[name] = true
		candidates[name] = true
		outside := !q.matches(name)
		for _, parent := range parentNames(name) {
			candidates[parent] = true
			if outside {
				subscribedBelow[parent] = true
			}
		}
	}
	names := make([]string, 0, len(candidates))
	for name := range candidates {
		if q.matches(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	for _, name := range names {
		mb := exists[name]
		childInfo := false
		switch {
		case q.lsub:
			// RFC 3501 6.3.9: an unsubscribed superior of a subscribed name that "%"
			// stops at is listed, \Noselect.
			if !subscribed[name] && !subscribedBelow[name] {
				continue
			}
		case q.selSubscribed:
			childInfo = q.recursive && subscribedBelow[name]
			if !subscribed[name] && !childInfo {
				continue
			}
		case !q.selSpecialUse && mb == nil && !hasChildren[name]:
			continue // only a subscription: not listed without SUBSCRIBED
		}
		if q.selSpecialUse && (mb == nil || mb.GetSpecialUse() == "") {
			continue
		}
		var attrs []string
		switch {
		case mb == nil && isNamespaceNode(name):
			// RFC 2342 5: a namespace level holds mailboxes but is none.
			attrs = append(attrs, `\Noselect`)
		case mb == nil && (q.lsub || !q.extended && !c.rev2):
			// RFC 3501 7.2.2: the rev1 grammar has one of \Noselect / \Marked / \Unmarked.
			attrs = append(attrs, `\Noselect`)
		case mb == nil:
			attrs = append(attrs, `\NonExistent`) // RFC 5258 3.4, RFC 9051 7.3.1
		case mb.GetNoselect() || q.lsub && !subscribed[name]:
			attrs = append(attrs, `\Noselect`)
		}
		if q.retSubscribed && subscribed[name] {
			attrs = append(attrs, `\Subscribed`) // RFC 5258 3.4
		}
		if mb.GetSpecialUse() != "" {
			attrs = append(attrs, mb.GetSpecialUse()) // RFC 6154 2
		}
		if hasChildren[name] {
			attrs = append(attrs, `\HasChildren`) // RFC 5258 4, RFC 3348
		} else if mb != nil {
			attrs = append(attrs, `\HasNoChildren`)
		}
		c.bw.Write(imapresp.AppendList(nil, c.encoder(), imapresp.List{
			LSUB: q.lsub, Attrs: attrs, Delimiter: delimiter, Mailbox: c.mailboxOut(name),
			ChildInfoSubscribed: childInfo, // RFC 5258 3.5
		}))
		ref, shared := refs[name]
		if !shared {
			ref = mailboxRef{full: name, owner: c.accountName(), name: name}
		}
		// RFC 8440 2: MYRIGHTS follows the LIST of each mailbox that exists (not of
		// \NonExistent or \Noselect placeholders), as MYRIGHTS (RFC 4314 3.5) answers it.
		if q.retMyRights && mb != nil && !mb.GetNoselect() {
			c.bw.Write(imapresp.AppendMyRights(nil, c.encoder(), c.mailboxOut(name), rightsOut(string(c.rightsOn(ref, mb)))))
		}
		// RFC 5819 2: STATUS follows the LIST of each selectable mailbox it covers that
		// the session may read (RFC 4314 4: STATUS needs r).
		if q.statusItems != nil && mb != nil && !mb.GetNoselect() {
			if c.rightsOn(ref, mb).has('r') {
				if err := c.writeStatusResponse(ref, mb, q.statusItems); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// parentNames returns the superior names of name, outermost first.
func parentNames(name string) []string {
	var parents []string
	for i := 0; i < len(name); i++ {
		if name[i] == delimiter {
			parents = append(parents, name[:i])
		}
	}
	return parents
}

// matchPattern reports whether name matches a LIST pattern: "*" matches anything, "%"
// anything but the delimiter (RFC 9051 6.3.9). INBOX, also as the first level of its
// inferiors, matches case-insensitively (RFC 9051 5.1). The match is dynamic programming
// over the two strings, so no pattern makes it exponential.
func matchPattern(pattern, name string) bool {
	if (name == "INBOX" || strings.HasPrefix(name, "INBOX/")) && len(pattern) >= 5 && strings.EqualFold(pattern[:5], "INBOX") {
		pattern = "INBOX" + pattern[5:]
	}
	// match[j]: pattern[:i] matches name[:j].
	match := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	match[0] = true
	for i := 0; i < len(pattern); i++ {
		clear(next)
		switch pc := pattern[i]; pc {
		case '*', '%':
			for j := 0; j <= len(name); j++ {
				next[j] = match[j] || j > 0 && next[j-1] && (pc == '*' || name[j-1] != delimiter)
			}
		default:
			for j := 1; j <= len(name); j++ {
				next[j] = match[j-1] && name[j-1] == pc
			}
		}
		match, next = next, match
	}
	return match[len(name)]
}

// checkNewName checks a name given to CREATE, RENAME or SUBSCRIBE: non-empty, no empty
// hierarchy level, no wildcards or control characters (RFC 9051 5.1), within the length
// and depth limits.
func checkNewName(name string) error {
	if len(name) > maxMailboxNameLen || strings.Count(name, string(delimiter)) >= maxMailboxDepth {
		return no(imapresp.CodeLimit, "Mailbox name too long or too deep")
	}
	if name == "" {
		return no(imapresp.CodeCannot, "Empty mailbox name")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' || r >= 0x80 && r < 0xa0 {
			return no(imapresp.CodeCannot, "Mailbox name holds a wildcard or control character")
		}
	}
	for _, level := range strings.Split(name, string(delimiter)) {
		if level == "" {
			return no(imapresp.CodeCannot, "Mailbox name has an empty hierarchy level")
		}
	}
	return nil
}

// cmdCreate: RFC 9051 6.3.4, with CREATE-SPECIAL-USE (RFC 6154 3) and the new mailbox's
// MAILBOXID in the tagged OK (RFC 8474 4.1). In another owner's space it needs the k right on
// the parent (RFC 4314 4), which the metadata service checks; a namespace level cannot be
// created.
func (c *conn) cmdCreate(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.MailboxArgs)
	name, err := c.mailboxIn(args.Mailbox)
	if err != nil {
		return err
	}
	// RFC 9051 6.3.4: a trailing delimiter only declares that inferiors will follow.
	name = strings.TrimSuffix(name, string(delimiter))
	if err := checkNewName(name); err != nil {
		return err
	}
	ref := c.locate(name)
	if ref.node {
		return no(imapresp.CodeCannot, "Mailbox name is a namespace level (RFC 2342)")
	}
	if ref.name == "INBOX" {
		return no(imapresp.CodeAlreadyExists, "INBOX always exists")
	}
	specialUse := ""
	if len(args.SpecialUse) > 1 {
		return no(imapresp.CodeUseAttr, "One special-use attribute per mailbox") // RFC 6154 3
	}
	if len(args.SpecialUse) == 1 {
		i := slices.IndexFunc(creatableSpecialUses, func(su string) bool { return strings.EqualFold(su, args.SpecialUse[0]) })
		if i < 0 {
			return no(imapresp.CodeUseAttr, "Special-use attribute "+args.SpecialUse[0]+" cannot be created") // RFC 6154 3
		}
		specialUse = creatableSpecialUses[i]
	}
	requestID := newRequestID()
	var created *metadatapb.Mailbox
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		created, err = c.srv.cfg.Metadata.CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{
			RequestId: requestID, Account: ref.owner, Name: ref.name, SpecialUse: specialUse, User: c.accountName(),
		})
		return err
	})
	if status.Code(err) == codes.NotFound && !c.personal(ref) {
		// RFC 4314 6: an owner or parent the session cannot see is answered like one it
		// may not create in.
		return no(imapresp.CodeNoPerm, "create "+strconv.Quote(name)+": permission denied")
	}
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, "create "+strconv.Quote(name))
	}
	c.notifyOwnNames(ref.owner, ref.name)
	if id := created.GetObjectId(); id != "" {
		return ok(imapresp.MailboxIDCode(id), "CREATE completed") // RFC 8474 4.1
	}
	return nil
}

// cmdDelete: RFC 9051 6.3.5; the x right (RFC 4314 4), checked by the metadata service.
func (c *conn) cmdDelete(cmd *imapwire.Command) error {
	ref, err := c.mailboxRefIn(cmd.Args.(*imapwire.MailboxArgs).Mailbox)
	if err != nil {
		return err
	}
	if ref.node {
		return no(imapresp.CodeNonExistent, "delete "+strconv.Quote(ref.full)+": mailbox does not exist")
	}
	if ref.name == "INBOX" {
		return no(imapresp.CodeCannot, "INBOX cannot be deleted")
	}
	requestID := newRequestID()
	err = c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.DeleteMailbox(ctx, &metadatapb.DeleteMailboxRequest{
			RequestId: requestID, Account: ref.owner, Name: ref.name, User: c.accountName(),
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, "delete "+strconv.Quote(ref.full))
	}
	c.notifyOwnNames(ref.owner, ref.name)
	return nil
}

// cmdRename: RFC 9051 6.3.6. Inferiors move along; renaming INBOX moves its messages to
// the new mailbox and leaves INBOX empty (both done by the metadata service). A mailbox
// stays in its owner's space; it needs x on it and k on the new parent (RFC 4314 4).
func (c *conn) cmdRename(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.RenameArgs)
	from, err := c.mailboxRefIn(args.From)
	if err != nil {
		return err
	}
	toName, err := c.mailboxIn(args.To)
	if err != nil {
		return err
	}
	toName = strings.TrimSuffix(toName, string(delimiter))
	if err := checkNewName(toName); err != nil {
		return err
	}
	to := c.locate(toName)
	switch {
	case from.node:
		return no(imapresp.CodeNonExistent, "rename "+strconv.Quote(from.full)+": mailbox does not exist")
	case to.node:
		return no(imapresp.CodeCannot, "Mailbox name is a namespace level (RFC 2342)")
	case from.owner != to.owner:
		return no(imapresp.CodeCannot, "A mailbox cannot move to another owner's namespace")
	case to.name == "INBOX":
		return no(imapresp.CodeAlreadyExists, "INBOX always exists")
	}
	requestID := newRequestID()
	err = c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.RenameMailbox(ctx, &metadatapb.RenameMailboxRequest{
			RequestId: requestID, Account: from.owner, From: from.name, To: to.name, User: c.accountName(),
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, "rename "+strconv.Quote(from.full))
	}
	c.notifyOwnNames(from.owner, from.name, to.name, to.name+"/")
	return nil
}

// cmdSubscribe: SUBSCRIBE and UNSUBSCRIBE, RFC 9051 6.3.7 and 6.3.8. The name need not
// exist, and a subscription outlives its mailbox (RFC 9051 6.3.7).
func (c *conn) cmdSubscribe(cmd *imapwire.Command) error {
	name, err := c.mailboxIn(cmd.Args.(*imapwire.MailboxArgs).Mailbox)
	if err != nil {
		return err
	}
	name = strings.TrimSuffix(name, string(delimiter))
	if err := checkNewName(name); err != nil {
		return err
	}
	requestID := newRequestID()
	err = c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.SetSubscribed(ctx, &metadatapb.SetSubscribedRequest{
			RequestId: requestID, Account: c.accountName(), Name: name, Subscribed: cmd.Name == "SUBSCRIBE",
		})
		return err
	})
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, strings.ToLower(cmd.Name)+" "+strconv.Quote(name))
	}
	c.notifyOwnSubscription(name, cmd.Name == "SUBSCRIBE")
	return nil
}

// getMailbox looks a mailbox up, as the session's account sees it: a namespace level, a
// mailbox that does not exist and one the account may not see all fail alike, with
// notFoundCode (RFC 4314 6).
func (c *conn) getMailbox(ref mailboxRef, notFoundCode string) (*metadatapb.Mailbox, error) {
	what := "mailbox " + strconv.Quote(ref.full)
	if ref.node {
		return nil, no(notFoundCode, what+": mailbox does not exist")
	}
	var mb *metadatapb.Mailbox
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		mb, err = c.srv.cfg.Metadata.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: ref.owner, Name: ref.name, User: c.accountName()})
		return err
	})
	if err != nil {
		return nil, rpcStatus(err, notFoundCode, what)
	}
	return mb, nil
}

// lookupMailbox locates the mailbox the client named raw and reads it (getMailbox, with
// NONEXISTENT for a mailbox that is not found).
func (c *conn) lookupMailbox(raw string) (mailboxRef, *metadatapb.Mailbox, error) {
	ref, err := c.mailboxRefIn(raw)
	if err != nil {
		return ref, nil, err
	}
	mb, err := c.getMailbox(ref, imapresp.CodeNonExistent)
	return ref, mb, err
}

// cmdStatus: RFC 9051 6.3.11, with SIZE and DELETED (RFC 9051, RFC 8438), DELETED-STORAGE
// (RFC 9208 4.1.4), APPENDLIMIT (RFC 7889), MAILBOXID (RFC 8474 4.3) and RECENT (RFC 3501
// 6.3.10). It needs the r right (RFC 4314 4).
func (c *conn) cmdStatus(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.StatusArgs)
	for _, item := range args.Items {
		if !knownStatusItem(item) {
			return bad("", "Unsupported STATUS item "+item)
		}
	}
	ref, mb, err := c.lookupMailbox(args.Mailbox)
	if err != nil {
		return err
	}
	if mb.GetNoselect() {
		return no(imapresp.CodeNonExistent, "Mailbox cannot be selected")
	}
	if !c.rightsOn(ref, mb).has('r') {
		return no(imapresp.CodeNoPerm, "STATUS needs the r right") // RFC 4314 4
	}
	return c.writeStatusResponse(ref, mb, args.Items)
}

// knownStatusItem reports a status-att of RFC 9051 6.3.11 (with RECENT from RFC 3501,
// APPENDLIMIT from RFC 7889 and DELETED-STORAGE from RFC 9208 4.1.4, announced by
// QUOTA=RES-STORAGE), HIGHESTMODSEQ (RFC 7162 3.1.7) and MAILBOXID (RFC 8474 4.3).
func knownStatusItem(item string) bool {
	switch item {
	case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "DELETED-STORAGE", "SIZE", "RECENT", "APPENDLIMIT", "HIGHESTMODSEQ", "MAILBOXID":
		return true
	}
	return false
}

// writeStatusResponse writes "* STATUS name (items)" (RFC 9051 7.3.2) for mb, which ref
// located.
func (c *conn) writeStatusResponse(ref mailboxRef, mb *metadatapb.Mailbox, statusItems []string) error {
	var deleted *deletedMessages
	items := make([]imapresp.StatusItem, 0, len(statusItems))
	for _, item := range statusItems {
		it := imapresp.StatusItem{Name: item}
		switch item {
		case "MESSAGES":
			it.Value = uint64(mb.GetMessages())
		case "UIDNEXT":
			it.Value = uint64(mb.GetUidNext())
		case "UIDVALIDITY":
			it.Value = uint64(mb.GetUidValidity())
		case "UNSEEN":
			it.Value = uint64(mb.GetUnseen())
		case "SIZE":
			it.Value = mb.GetSize()
		case "HIGHESTMODSEQ": // RFC 7162 3.1.7
			c.enableCondStore()
			it.Value = mb.GetHighestModseq()
		case "RECENT":
			it.Value = uint64(c.statusRecent(ref, mb))
		case "APPENDLIMIT":
			it.Value = uint64(c.srv.cfg.MaxMessageSize) // positive (NewServer)
		case "MAILBOXID": // RFC 8474 4.3: "MAILBOXID" SP "(" objectid ")"
			if mb.GetObjectId() == "" {
				continue // a metadata server without OBJECTID
			}
			it.ObjectID = mb.GetObjectId()
		case "DELETED", "DELETED-STORAGE":
			if deleted == nil {
				var err error
				if deleted, err = c.countDeleted(ref, mb, slices.Contains(statusItems, "DELETED-STORAGE")); err != nil {
					return err
				}
			}
			if item == "DELETED" {
				it.Value = uint64(len(deleted.uids))
			} else {
				// RFC 9208 4.1.4: the storage an EXPUNGE would free, in the 1024-octet
				// units of the STORAGE resource (5.1), rounded up as GETQUOTA's usage is.
				it.Value = (deleted.size + 1023) / 1024
			}
		}
		items = append(items, it)
	}
	c.bw.Write(imapresp.AppendMailboxStatus(nil, c.encoder(), c.mailboxOut(ref.full), items))
	return nil
}

// deletedMessages are the messages of a mailbox that have \Deleted.
type deletedMessages struct {
	uids []uint32
	size uint64 // the sum of their RFC822.SIZE, when asked for
}

// countDeleted finds the messages of mb that have \Deleted (STATUS DELETED, RFC 9051
// 6.3.11) and, withSize, the sum of their sizes (DELETED-STORAGE, RFC 9208 4.1.4). A
// mailbox whose shared view is open on this frontend (mailview.go) is counted in the view,
// once the view holds mb's state at least (mb was read at or past the session's read
// position, as SELECT's join waits for it); any other is listed.
func (c *conn) countDeleted(ref mailboxRef, mb *metadatapb.Mailbox, withSize bool) (*deletedMessages, error) {
	d := &deletedMessages{}
	fromView := false
	if v := c.srv.views.open(viewKey{owner: ref.owner, mailboxID: mb.GetId(), user: c.accountName()}); v != nil {
		ctx, cancel := c.rpcContext()
		uids, err := v.deletedUIDs(ctx, mb.GetUidValidity(), mb.GetHighestModseq())
		cancel()
		d.uids, fromView = uids, err == nil
		if fromView {
			atTestHook("status from view")
		}
	}
	if !fromView {
		var resp *metadatapb.ListMessagesResponse
		err := c.withRetry(func(ctx context.Context) error {
			var err error
			resp, err = c.srv.cfg.Metadata.ListMessages(ctx, &metadatapb.ListMessagesRequest{
				Account: ref.owner, MailboxId: mb.GetId(), User: c.accountName(), FlagSetDictionary: true,
			})
			return err
		})
		if err != nil {
			return nil, rpcStatus(err, imapresp.CodeNonExistent, "list messages")
		}
		if !consistentPage(resp, 0) {
			return nil, no(imapresp.CodeServerBug, "list messages: inconsistent mailbox listing")
		}
		for i, uid := range resp.GetUids() {
			var fs *metadatapb.FlagSet
			if len(resp.GetFlags()) > 0 {
				fs = resp.GetFlags()[i] // a metadata service without the dictionary
			} else {
				fs = resp.GetFlagSets()[resp.GetFlagSetIndexes()[i]]
			}
			if slices.Contains(fs.GetFlags(), `\Deleted`) {
				d.uids = append(d.uids, uid)
			}
		}
	}
	if !withSize {
		return d, nil
	}
	for start := 0; start < len(d.uids); start += fetchBatch {
		batch := d.uids[start:min(start+fetchBatch, len(d.uids))]
		records, err := c.fetchRecordsOf(ref.owner, mb.GetId(), mb.GetUidValidity(), batch, false, structureAll, nil)
		if err != nil {
			return nil, err
		}
		for _, rec := range records {
			d.size += rec.GetSize()
		}
	}
	return d, nil
}
