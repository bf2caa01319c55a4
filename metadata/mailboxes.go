package metadata

import (
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

type mailboxName struct {
	name string
	id   uint64
}

// mailboxNames lists the account's mailbox names in order: all of them when under
// is empty, else the strict inferiors of under.
func (c *cmdCtx) mailboxNames(email, under string) ([]mailboxName, error) {
	prefix := mailboxNamesPrefix(email)
	if under != "" {
		prefix = mailboxNameKey(email, under+Delimiter)
	}
	return listMailboxNames(c.tx, email, prefix)
}

func listMailboxNames(r reader, email string, prefix []byte) ([]mailboxName, error) {
	base := len(mailboxNamesPrefix(email))
	var names []mailboxName
	err := scan(r, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		names = append(names, mailboxName{name: string(k[base:]), id: decodeUint64(v)})
		return true, nil
	})
	return names, err
}

// lookupName returns the id of the account's mailbox name, 0 if there is none.
func lookupName(r reader, email, name string) (uint64, error) {
	v, found, err := getRaw(r, mailboxNameKey(email, name))
	if err != nil || !found {
		return 0, err
	}
	return decodeUint64(v), nil
}

// newUIDValidity returns a fresh UIDVALIDITY: the log time in seconds, or one more
// than the last one assigned when that is later, so that no two mailboxes, and no two
// incarnations of one name, ever share a value (RFC 9051 2.3.1.1).
func (c *cmdCtx) newUIDValidity() (uint32, error) {
	v, _, err := getRaw(c.tx, keyLastUIDValidity)
	if err != nil {
		return 0, err
	}
	next := decodeUint64(v) + 1
	if secs := uint64(c.now / 1e9); secs > next {
		next = secs
	}
	next = min(next, 1<<32-1)
	c.tx.mustSet(keyLastUIDValidity, encodeUint64(next))
	return uint32(next), nil
}

// newMailbox creates a selectable mailbox with a new id and UIDVALIDITY; name must be
// normalised and free. subscribed adds the name to the account's subscription list, which
// lives apart from the mailbox records (see subscriptions). The mailbox starts with a copy
// of acl.
func (c *cmdCtx) newMailbox(owner, name, specialUse string, subscribed bool, acl []*metadatapb.AclEntry) (*mailboxState, error) {
	id, err := c.nextCounter(keyLastMailboxID)
	if err != nil {
		return nil, err
	}
	uidValidity, err := c.newUIDValidity()
	if err != nil {
		return nil, err
	}
	ms := &mailboxState{
		rec: &metadatapb.MailboxRecord{Account: owner, Mailbox: &metadatapb.Mailbox{
			Id:             id,
			Name:           name,
			UidValidity:    uidValidity,
			UidNext:        1,
			FirstRecentUid: 1, // what arrives before the first SELECT is \Recent (recent.go)
			HighestModseq:  1,
			SpecialUse:     specialUse,
			Acl:            cloneACL(acl),
			ObjectId:       mailboxObjectID(owner, id, uidValidity, c.now),
		},
			// Complete from its first message in each layout the command's level has
			// (featurelevel.go); else filled later (numberfill.go).
			NumbersComplete:        true,                             // numbers (messagenumbers.go)
			DatesComplete:          c.level >= FeatureSortDates,      // dates (sortdates.go)
			ListingColumn:          c.level >= FeatureListingColumn,  // listing (listingcolumn.go)
			ThreadKeysComplete:     c.level >= FeatureThreadKeys,     // thread keys (threadkeys.go)
			SubjectsComplete:       c.level >= FeatureSubjectNumbers, // subject numbers (subjectnumbers.go)
			SubjectRecordsComplete: c.level >= FeatureSubjectRecords, // subject projection (subjectrecords.go)
		},
		dirty:   true,
		created: true,
	}
	c.mailboxes[id] = ms
	c.tx.mustSet(mailboxNameKey(owner, name), encodeUint64(id))
	if subscribed {
		c.tx.mustSet(subscriptionKey(owner, name), nil)
		c.subscriptionsOf(owner)
	}
	return ms, nil
}

func cloneACL(acl []*metadatapb.AclEntry) []*metadatapb.AclEntry {
	out := make([]*metadatapb.AclEntry, 0, len(acl))
	for _, e := range acl {
		out = append(out, proto.Clone(e).(*metadatapb.AclEntry))
	}
	return out
}

// createParents creates the missing superiors of name as selectable mailboxes (RFC 9051
// 6.3.4: the server SHOULD create superior names that are needed), each with acl.
func (c *cmdCtx) createParents(owner, name string, acl []*metadatapb.AclEntry) error {
	for _, parent := range parentNames(name) {
		id, err := lookupName(c.tx, owner, parent)
		if err != nil {
			return err
		}
		if id == 0 {
			if _, err := c.newMailbox(owner, parent, "", false, acl); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkOwner checks that the owner a command names exists: an account, or the tenant of
// a pseudo-owner. A user who names an unknown owner gets the answer of a missing mailbox
// (RFC 4314 6), so that no command tells whether an account exists.
func (c *cmdCtx) checkOwner(user, owner string) error {
	var err error
	if tenant, isTenant := cutTenantOwner(owner); isTenant {
		_, err = c.loadTenant(tenant)
	} else {
		_, err = c.loadAccount(owner)
	}
	if err != nil && user != "" {
		var ce *cmdError
		if errors.As(err, &ce) && ce.code == codes.NotFound {
			return errNoMailbox()
		}
	}
	return err
}

// createUnder checks that user may create name in owner's space and returns the ACL the
// new mailbox inherits: that of the nearest existing parent (RFC 4314 4: CREATE needs k on
// the nearest existing parent, and the new mailbox SHOULD inherit its ACL). A parent the
// user cannot see counts as missing (RFC 4314 6), and the user gets the answer of the
// nearest parent it sees, without the right to create through the hidden one (whose
// existence the k holder could learn anyway: a CREATE of its name fails). With no parent
// the user sees, a name in another owner's space is answered as a missing mailbox.
func (c *cmdCtx) createUnder(user, owner, name string) ([]*metadatapb.AclEntry, error) {
	parents := parentNames(name)
	var inherit *mailboxState
	hidden := false
	for i := len(parents) - 1; i >= 0; i-- {
		id, err := lookupName(c.tx, owner, parents[i])
		if err != nil {
			return nil, err
		}
		if id == 0 {
			continue
		}
		ms, err := c.loadMailbox(owner, id)
		if err != nil {
			return nil, err
		}
		if inherit == nil {
			inherit = ms
		}
		granted, err := mailboxRights(c.tx, user, ms.rec)
		if err != nil {
			return nil, err
		}
		if !granted.visible() {
			hidden = true
			continue
		}
		if !granted.has(rightCreate) || hidden {
			return nil, errNoRight(rightCreate)
		}
		return inherit.box().GetAcl(), nil
	}
	if !isOwner(user, owner) {
		return nil, errNoMailbox()
	}
	if inherit != nil {
		return inherit.box().GetAcl(), nil
	}
	return nil, nil
}

// visibleTo reports whether the mailbox id of owner exists for user (RFC 4314 6).
func (c *cmdCtx) visibleTo(user, owner string, id uint64) (bool, error) {
	ms, err := c.loadMailbox(owner, id)
	if err != nil {
		return false, err
	}
	granted, err := mailboxRights(c.tx, user, ms.rec)
	return granted.visible(), err
}

// createMailboxCmd implements CREATE (RFC 9051 6.3.4) in the space of an account or of a
// tenant ("tenant:NAME", the shared namespace); RFC 4314 4: it needs k on the nearest
// existing parent.
func (c *cmdCtx) createMailboxCmd(req *metadatapb.CreateMailboxRequest) (*metadatapb.CommandResult, error) {
	owner, user := req.GetAccount(), req.GetUser()
	if err := c.checkOwner(user, owner); err != nil {
		return nil, err
	}
	name, err := validMailboxName(req.GetName())
	if err != nil {
		return nil, err
	}
	specialUse, valid := normalizeSpecialUse(req.GetSpecialUse())
	if !valid {
		// RFC 6154 3: an unknown special-use attribute fails the CREATE.
		return nil, errInvalid("unknown special-use attribute %q", req.GetSpecialUse())
	}
	id, err := lookupName(c.tx, owner, name)
	if err != nil {
		return nil, err
	}
	var existing *mailboxState
	if id != 0 {
		if existing, err = c.loadMailbox(owner, id); err != nil {
			return nil, err
		}
		visible, err := c.visibleTo(user, owner, id)
		if err != nil {
			return nil, err
		}
		if visible && !existing.box().GetNoselect() {
			return nil, errExists("mailbox %q already exists", name)
		}
	}
	acl, err := c.createUnder(user, owner, name)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		if !existing.box().GetNoselect() {
			return nil, errExists("mailbox %q already exists", name)
		}
		// The \Noselect placeholder of a deleted mailbox with inferiors becomes a
		// real mailbox again, with a new UIDVALIDITY, a MAILBOXID minted with it and the
		// ACL it kept.
		uidValidity, err := c.newUIDValidity()
		if err != nil {
			return nil, err
		}
		box := existing.box()
		box.Noselect, box.UidValidity, box.SpecialUse = false, uidValidity, specialUse
		box.ObjectId = mailboxObjectID(owner, box.GetId(), uidValidity, c.now)
		existing.dirty, existing.created = true, true
		return c.mailboxResult(user, existing)
	}
	if err := c.createParents(owner, name, acl); err != nil {
		return nil, err
	}
	ms, err := c.newMailbox(owner, name, specialUse, false, acl)
	if err != nil {
		return nil, err
	}
	return c.mailboxResult(user, ms)
}

// mailboxResult answers a command with a copy of the mailbox as user sees it; subscribed
// says whether its name is on the owner's subscription list (a name may be subscribed
// before it is created).
func (c *cmdCtx) mailboxResult(user string, ms *mailboxState) (*metadatapb.CommandResult, error) {
	owner := ms.rec.GetAccount()
	out := proto.Clone(ms.box()).(*metadatapb.Mailbox)
	_, subscribed, err := getRaw(c.tx, subscriptionKey(owner, out.GetName()))
	if err != nil {
		return nil, err
	}
	out.Subscribed = subscribed
	granted, err := mailboxRights(c.tx, user, ms.rec)
	if err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Mailbox{Mailbox: presentMailbox(out, owner, user, granted)}}, nil
}

// destroyMailbox removes a mailbox's messages, tombstones and record, releasing
// blob references; finish journals MAILBOX_DELETED. The name entry is the caller's.
func (c *cmdCtx) destroyMailbox(ms *mailboxState) error {
	id := ms.box().GetId()
	var uids []uint32
	var blobs []string
	err := scan(c.tx, mailboxPrefix(prefixMessage, id), mailboxPrefixEnd(prefixMessage, id), func(k, v []byte) (bool, error) {
		idx, err := decodeMessageIndex(k, v)
		if err != nil {
			return false, err
		}
		uids = append(uids, uidFromKey(k))
		blobs = append(blobs, idx.GetBlobKey())
		return true, nil
	})
	if err != nil {
		return err
	}
	for i, uid := range uids {
		c.tx.mustDelete(messageKey(id, uid))
		c.tx.mustDelete(structureKey(id, uid))
		if err := c.releaseBlob(blobs[i]); err != nil {
			return err
		}
	}
	c.destroySortColumn(id)
	c.destroyChunks(prefixListingChunk, id)
	var tombstones [][]byte
	err = scan(c.tx, mailboxPrefix(prefixTombstone, id), mailboxPrefixEnd(prefixTombstone, id), func(k, _ []byte) (bool, error) {
		tombstones = append(tombstones, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range tombstones {
		c.tx.mustDelete(k)
	}
	if err := c.destroyPrivateSeen(ms); err != nil {
		return err
	}
	if err := c.destroyAnnotations(ms); err != nil {
		return err
	}
	ms.deleted = true
	return nil
}

// deleteMailbox implements RFC 9051 6.3.5; RFC 4314 4: it needs x on the mailbox.
func (c *cmdCtx) deleteMailbox(req *metadatapb.DeleteMailboxRequest) (*metadatapb.CommandResult, error) {
	owner, user := req.GetAccount(), req.GetUser()
	if err := c.checkOwner(user, owner); err != nil {
		return nil, err
	}
	name, err := validMailboxName(req.GetName())
	if err != nil {
		return nil, err
	}
	ms, _, err := c.accessName(user, owner, name, rightDeleteBox)
	if err != nil {
		return nil, err
	}
	if _, isTenant := cutTenantOwner(owner); name == "INBOX" && !isTenant {
		// RFC 9051 6.3.5: it is an error to attempt to delete INBOX.
		return nil, errPrecondition("INBOX cannot be deleted")
	}
	children, err := c.mailboxNames(owner, name)
	if err != nil {
		return nil, err
	}
	if len(children) > 0 && ms.box().GetNoselect() {
		// RFC 9051 6.3.5: deleting a \Noselect name that has inferiors is an error.
		return nil, errPrecondition("mailbox %q has inferiors and is \\Noselect", name)
	}
	if err := c.chargeUsage(owner, -int64(ms.box().GetMessages()), -int64(ms.box().GetSize())); err != nil {
		return nil, err
	}
	if err := c.destroyMailbox(ms); err != nil {
		return nil, err
	}
	c.tx.mustDelete(mailboxNameKey(owner, name))
	if len(children) > 0 {
		// RFC 9051 6.3.5: the messages go and the name stays as \Noselect for its
		// inferiors, with the ACL it had so that the inferiors stay reachable. The
		// placeholder is a new mailbox id; watchers of the old id see MAILBOX_DELETED.
		placeholder, err := c.newMailbox(owner, name, "", false, ms.box().GetAcl())
		if err != nil {
			return nil, err
		}
		placeholder.box().Noselect = true
	}
	return okResult(), nil
}

// renameMailbox implements RFC 9051 6.3.6 within one owner's space; RFC 4314 4: it needs x
// on the source and k on the nearest existing parent of the new name. Renamed mailboxes
// keep their ACLs; superiors it creates inherit like a CREATE.
func (c *cmdCtx) renameMailbox(req *metadatapb.RenameMailboxRequest) (*metadatapb.CommandResult, error) {
	owner, user := req.GetAccount(), req.GetUser()
	if err := c.checkOwner(user, owner); err != nil {
		return nil, err
	}
	from, err := validMailboxName(req.GetFrom())
	if err != nil {
		return nil, err
	}
	to, err := validMailboxName(req.GetTo())
	if err != nil {
		return nil, err
	}
	source, _, err := c.accessName(user, owner, from, rightDeleteBox)
	if err != nil {
		return nil, err
	}
	fromID := source.box().GetId()
	toID, err := lookupName(c.tx, owner, to)
	if err != nil {
		return nil, err
	}
	if toID != 0 {
		if visible, err := c.visibleTo(user, owner, toID); err != nil {
			return nil, err
		} else if visible {
			// RFC 9051 6.3.6: renaming to an existing name is an error.
			return nil, errExists("mailbox %q already exists", to)
		}
	}
	acl, err := c.createUnder(user, owner, to)
	if err != nil {
		return nil, err
	}
	if toID != 0 {
		return nil, errExists("mailbox %q already exists", to)
	}
	if _, isTenant := cutTenantOwner(owner); from == "INBOX" && !isTenant {
		return c.renameInbox(owner, fromID, to, acl)
	}
	if strings.HasPrefix(to, from+Delimiter) {
		return nil, errInvalid("cannot rename %q into its own inferior %q", from, to)
	}
	// RFC 9051 6.3.6: inferior names are renamed too.
	subtree, err := c.mailboxNames(owner, from)
	if err != nil {
		return nil, err
	}
	subtree = append([]mailboxName{{name: from, id: fromID}}, subtree...)
	for _, n := range subtree[1:] {
		newName := to + strings.TrimPrefix(n.name, from)
		if id, err := lookupName(c.tx, owner, newName); err != nil {
			return nil, err
		} else if id != 0 {
			return nil, errExists("mailbox %q already exists", newName)
		}
	}
	for _, n := range subtree {
		c.tx.mustDelete(mailboxNameKey(owner, n.name))
	}
	for _, n := range subtree {
		newName := to + strings.TrimPrefix(n.name, from)
		ms, err := c.loadMailbox(owner, n.id)
		if err != nil {
			return nil, err
		}
		ms.box().Name = newName
		ms.dirty = true
		c.tx.mustSet(mailboxNameKey(owner, newName), encodeUint64(n.id))
		c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_RENAMED, Name: newName})
		// A subscription follows its mailbox to the new name, as clients that rename a
		// folder expect it to stay visible; subscribed names without a mailbox stay.
		if _, subscribed, err := getRaw(c.tx, subscriptionKey(owner, n.name)); err != nil {
			return nil, err
		} else if subscribed {
			c.tx.mustDelete(subscriptionKey(owner, n.name))
			c.tx.mustSet(subscriptionKey(owner, newName), nil)
			c.subscriptionsOf(owner)
		}
	}
	// RFC 9051 6.3.6: superior names of the new name are created as needed.
	if err := c.createParents(owner, to, acl); err != nil {
		return nil, err
	}
	return okResult(), nil
}

// renameInbox moves all of INBOX's messages to a new mailbox, which gets acl and a copy of
// INBOX's annotations (RFC 5464 4.1), and leaves INBOX empty; its inferiors stay (RFC 9051
// 6.3.6).
func (c *cmdCtx) renameInbox(owner string, inboxID uint64, to string, acl []*metadatapb.AclEntry) (*metadatapb.CommandResult, error) {
	if err := c.createParents(owner, to, acl); err != nil {
		return nil, err
	}
	dst, err := c.newMailbox(owner, to, "", false, acl)
	if err != nil {
		return nil, err
	}
	inbox, err := c.loadMailbox(owner, inboxID)
	if err != nil {
		return nil, err
	}
	if _, err := c.transfer(inbox, dst, nil, true, "", allRights); err != nil {
		return nil, err
	}
	if err := c.copyAnnotations(inbox, dst); err != nil {
		return nil, err
	}
	return okResult(), nil
}

// setSubscribed adds a name to the account's subscription list or removes it (RFC 9051
// 6.3.7, 6.3.8). The name need not exist: RFC 9051 6.3.7 keeps a subscription when its
// mailbox goes, and lets a client subscribe to a name before it is created.
func (c *cmdCtx) setSubscribed(req *metadatapb.SetSubscribedRequest) (*metadatapb.CommandResult, error) {
	email := req.GetAccount()
	if _, err := c.loadAccount(email); err != nil {
		return nil, err
	}
	name, err := validMailboxName(req.GetName())
	if err != nil {
		return nil, err
	}
	if req.GetSubscribed() {
		c.tx.mustSet(subscriptionKey(email, name), nil)
	} else {
		c.tx.mustDelete(subscriptionKey(email, name))
	}
	c.subscriptionsOf(email)
	return okResult(), nil
}

// subscriptions lists the account's subscribed names in order.
func subscriptions(r reader, email string) ([]string, error) {
	prefix := subscriptionsPrefix(email)
	var names []string
	err := scan(r, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		names = append(names, string(k[len(prefix):]))
		return true, nil
	})
	return names, err
}
