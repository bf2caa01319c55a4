package metadata

import (
	"strings"

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
	return listMailboxNames(c.tx.b, email, prefix)
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
	v, _, err := getRaw(c.tx.b, keyLastUIDValidity)
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
// lives apart from the mailbox records (see subscriptions).
func (c *cmdCtx) newMailbox(email, name, specialUse string, subscribed bool) (*mailboxState, error) {
	id, err := c.nextCounter(keyLastMailboxID)
	if err != nil {
		return nil, err
	}
	uidValidity, err := c.newUIDValidity()
	if err != nil {
		return nil, err
	}
	ms := &mailboxState{
		rec: &metadatapb.MailboxRecord{Account: email, Mailbox: &metadatapb.Mailbox{
			Id:            id,
			Name:          name,
			UidValidity:   uidValidity,
			UidNext:       1,
			HighestModseq: 1,
			SpecialUse:    specialUse,
		}},
		dirty: true,
	}
	c.mailboxes[id] = ms
	c.tx.mustSet(mailboxNameKey(email, name), encodeUint64(id))
	if subscribed {
		c.tx.mustSet(subscriptionKey(email, name), nil)
	}
	return ms, nil
}

// createParents creates the missing superiors of name as selectable mailboxes
// (RFC 9051 6.3.4: the server SHOULD create superior names that are needed).
func (c *cmdCtx) createParents(email, name string) error {
	for _, parent := range parentNames(name) {
		id, err := lookupName(c.tx.b, email, parent)
		if err != nil {
			return err
		}
		if id == 0 {
			if _, err := c.newMailbox(email, parent, "", false); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cmdCtx) createMailboxCmd(req *metadatapb.CreateMailboxRequest) (*metadatapb.CommandResult, error) {
	email := req.GetAccount()
	if _, err := c.loadAccount(email); err != nil {
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
	id, err := lookupName(c.tx.b, email, name)
	if err != nil {
		return nil, err
	}
	if id != 0 {
		ms, err := c.loadMailbox(email, id)
		if err != nil {
			return nil, err
		}
		if !ms.box().GetNoselect() {
			return nil, errExists("mailbox %q already exists", name)
		}
		// The \Noselect placeholder of a deleted mailbox with inferiors becomes a
		// real mailbox again, with a new UIDVALIDITY.
		uidValidity, err := c.newUIDValidity()
		if err != nil {
			return nil, err
		}
		box := ms.box()
		box.Noselect, box.UidValidity, box.SpecialUse = false, uidValidity, specialUse
		ms.dirty = true
		return c.mailboxResult(email, box)
	}
	if err := c.createParents(email, name); err != nil {
		return nil, err
	}
	ms, err := c.newMailbox(email, name, specialUse, false)
	if err != nil {
		return nil, err
	}
	return c.mailboxResult(email, ms.box())
}

// mailboxResult answers a command with a copy of box whose subscribed field says whether
// its name is on the subscription list (a name may be subscribed before it is created).
func (c *cmdCtx) mailboxResult(email string, box *metadatapb.Mailbox) (*metadatapb.CommandResult, error) {
	_, subscribed, err := getRaw(c.tx.b, subscriptionKey(email, box.GetName()))
	if err != nil {
		return nil, err
	}
	out := proto.Clone(box).(*metadatapb.Mailbox)
	out.Subscribed = subscribed
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Mailbox{Mailbox: out}}, nil
}

// destroyMailbox removes a mailbox's messages, tombstones and record, releasing
// blob references; finish journals MAILBOX_DELETED. The name entry is the caller's.
func (c *cmdCtx) destroyMailbox(ms *mailboxState) error {
	id := ms.box().GetId()
	var uids []uint32
	var blobs []string
	err := scan(c.tx.b, mailboxPrefix(prefixMessage, id), prefixEnd(mailboxPrefix(prefixMessage, id)), func(k, v []byte) (bool, error) {
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
	var tombstones [][]byte
	err = scan(c.tx.b, mailboxPrefix(prefixTombstone, id), prefixEnd(mailboxPrefix(prefixTombstone, id)), func(k, _ []byte) (bool, error) {
		tombstones = append(tombstones, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range tombstones {
		c.tx.mustDelete(k)
	}
	ms.deleted = true
	return nil
}

// deleteMailbox implements RFC 9051 6.3.5.
func (c *cmdCtx) deleteMailbox(req *metadatapb.DeleteMailboxRequest) (*metadatapb.CommandResult, error) {
	email := req.GetAccount()
	if _, err := c.loadAccount(email); err != nil {
		return nil, err
	}
	name, err := validMailboxName(req.GetName())
	if err != nil {
		return nil, err
	}
	if name == "INBOX" {
		// RFC 9051 6.3.5: it is an error to attempt to delete INBOX.
		return nil, errPrecondition("INBOX cannot be deleted")
	}
	id, err := lookupName(c.tx.b, email, name)
	if err != nil {
		return nil, err
	}
	if id == 0 {
		return nil, errNotFound("mailbox %q not found", name)
	}
	ms, err := c.loadMailbox(email, id)
	if err != nil {
		return nil, err
	}
	children, err := c.mailboxNames(email, name)
	if err != nil {
		return nil, err
	}
	if len(children) > 0 && ms.box().GetNoselect() {
		// RFC 9051 6.3.5: deleting a \Noselect name that has inferiors is an error.
		return nil, errPrecondition("mailbox %q has inferiors and is \\Noselect", name)
	}
	if err := c.chargeUsage(email, -int64(ms.box().GetMessages()), -int64(ms.box().GetSize())); err != nil {
		return nil, err
	}
	if err := c.destroyMailbox(ms); err != nil {
		return nil, err
	}
	c.tx.mustDelete(mailboxNameKey(email, name))
	if len(children) > 0 {
		// RFC 9051 6.3.5: the messages go and the name stays as \Noselect for its
		// inferiors. The placeholder is a new mailbox id; watchers of the old id
		// see MAILBOX_DELETED.
		placeholder, err := c.newMailbox(email, name, "", false)
		if err != nil {
			return nil, err
		}
		placeholder.box().Noselect = true
	}
	return okResult(), nil
}

// renameMailbox implements RFC 9051 6.3.6.
func (c *cmdCtx) renameMailbox(req *metadatapb.RenameMailboxRequest) (*metadatapb.CommandResult, error) {
	email := req.GetAccount()
	if _, err := c.loadAccount(email); err != nil {
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
	fromID, err := lookupName(c.tx.b, email, from)
	if err != nil {
		return nil, err
	}
	if fromID == 0 {
		return nil, errNotFound("mailbox %q not found", from)
	}
	if toID, err := lookupName(c.tx.b, email, to); err != nil {
		return nil, err
	} else if toID != 0 {
		// RFC 9051 6.3.6: renaming to an existing name is an error.
		return nil, errExists("mailbox %q already exists", to)
	}
	if from == "INBOX" {
		return c.renameInbox(email, fromID, to)
	}
	if strings.HasPrefix(to, from+Delimiter) {
		return nil, errInvalid("cannot rename %q into its own inferior %q", from, to)
	}
	// RFC 9051 6.3.6: inferior names are renamed too.
	subtree, err := c.mailboxNames(email, from)
	if err != nil {
		return nil, err
	}
	subtree = append([]mailboxName{{name: from, id: fromID}}, subtree...)
	for _, n := range subtree[1:] {
		newName := to + strings.TrimPrefix(n.name, from)
		if id, err := lookupName(c.tx.b, email, newName); err != nil {
			return nil, err
		} else if id != 0 {
			return nil, errExists("mailbox %q already exists", newName)
		}
	}
	for _, n := range subtree {
		c.tx.mustDelete(mailboxNameKey(email, n.name))
	}
	for _, n := range subtree {
		newName := to + strings.TrimPrefix(n.name, from)
		ms, err := c.loadMailbox(email, n.id)
		if err != nil {
			return nil, err
		}
		ms.box().Name = newName
		ms.dirty = true
		c.tx.mustSet(mailboxNameKey(email, newName), encodeUint64(n.id))
		c.record(ms, &metadatapb.Change{Kind: metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_RENAMED, Name: newName})
		// A subscription follows its mailbox to the new name, as clients that rename a
		// folder expect it to stay visible; subscribed names without a mailbox stay.
		if _, subscribed, err := getRaw(c.tx.b, subscriptionKey(email, n.name)); err != nil {
			return nil, err
		} else if subscribed {
			c.tx.mustDelete(subscriptionKey(email, n.name))
			c.tx.mustSet(subscriptionKey(email, newName), nil)
		}
	}
	// RFC 9051 6.3.6: superior names of the new name are created as needed.
	if err := c.createParents(email, to); err != nil {
		return nil, err
	}
	return okResult(), nil
}

// renameInbox moves all of INBOX's messages to a new mailbox and leaves INBOX empty;
// its inferiors stay (RFC 9051 6.3.6).
func (c *cmdCtx) renameInbox(email string, inboxID uint64, to string) (*metadatapb.CommandResult, error) {
	if err := c.createParents(email, to); err != nil {
		return nil, err
	}
	dst, err := c.newMailbox(email, to, "", false)
	if err != nil {
		return nil, err
	}
	inbox, err := c.loadMailbox(email, inboxID)
	if err != nil {
		return nil, err
	}
	if _, err := c.transfer(inbox, dst, nil, true); err != nil {
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
