package metadata

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Access control (RFC 4314), as proto/metadata.proto "access control" states the contract.
//
//   - Owners. A mailbox belongs to an account, or to the pseudo-owner "tenant:NAME" of a
//     tenant-wide shared mailbox. The owner of a personal mailbox has every right whatever
//     the ACL says; a tenant-shared mailbox has no owner with implicit rights.
//   - Acting user. Every mailbox request names the account acting; empty is a trusted
//     admin call with every right. Any other user has the rights the mailbox's ACL grants
//     to its address and to "anyone", minus those of "-address" and "-anyone" (RFC 4314
//     2), and none at all on a mailbox of another tenant, whatever the ACL says: the
//     rights check is what keeps tenants apart, so a forged owner or mailbox id of another
//     tenant is a mailbox the user cannot see.
//   - Existence. A user with none of l, r and i on a mailbox gets NotFound with the message a
//     missing mailbox gets (RFC 4314 6), so no answer tells "forbidden" from "missing";
//     with l or r but without the right an operation needs, PermissionDenied.
//   - Rights are checked where the operation happens: writes inside the command the FSM
//     applies (the ACL it reads is the one in force at that point of the log), reads on
//     the view the answer is read from.
//   - ACL entries name "anyone" or an account of the owner's tenant (a domain the tenant
//     owns), each possibly negated with "-"; anything else is InvalidArgument, so no ACL
//     ever names another tenant's account.

// rights is a set of RFC 4314 2.1 rights.
type rights uint16

const (
	rightLookup      rights = 1 << iota // l: LIST, visible (RFC 4314 2.1)
	rightRead                           // r: SELECT, FETCH, SEARCH, COPY from, STATUS
	rightSeen                           // s: keep \Seen
	rightWrite                          // w: flags other than \Seen and \Deleted
	rightInsert                         // i: APPEND, COPY into
	rightPost                           // p: send mail to the submission address
	rightCreate                         // k: create mailboxes below
	rightDeleteBox                      // x: delete and rename the mailbox
	rightDeleteFlag                     // t: set and clear \Deleted
	rightExpunge                        // e: EXPUNGE
	rightAdminister                     // a: SETACL, DELETEACL, GETACL
	allRights        = rightAdminister<<1 - 1
	rightLetters     = "lrswipkxtea"
	anyoneIdentifier = "anyone"
	// tenantOwnerPrefix starts the pseudo-owner of a tenant's shared mailboxes.
	tenantOwnerPrefix = "tenant:"
)

// parseRights reads RFC 4314 rights letters. The obsolete c and d of RFC 2086 are taken
// as k+x and e+t (RFC 4314 2.1.1, the sets the frontend's RIGHTS=texk announces); any other
// letter is refused, never ignored (RFC 4314 3.1).
func parseRights(s string) (rights, bool) {
	var r rights
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 'c':
			r |= rightCreate | rightDeleteBox
		case 'd':
			r |= rightExpunge | rightDeleteFlag
		default:
			n := strings.IndexByte(rightLetters, c)
			if n < 0 {
				return 0, false
			}
			r |= 1 << n
		}
	}
	return r, true
}

// String renders the rights in the canonical order "lrswipkxtea".
func (r rights) String() string {
	var b [len(rightLetters)]byte
	n := 0
	for i := range len(rightLetters) {
		if r&(1<<i) != 0 {
			b[n] = rightLetters[i]
			n++
		}
	}
	return string(b[:n])
}

func (r rights) has(need rights) bool { return r&need == need }

// visible reports whether a mailbox exists for the user at all (RFC 4314 6): l or r, or
// i alone, so that a mailbox shared for insertion only (a drop box) takes APPEND and COPY
// (RFC 4314 4: APPEND needs i on the target); without r its counters stay hidden.
func (r rights) visible() bool { return r&(rightLookup|rightRead|rightInsert) != 0 }

// mayStore reports whether r allows setting and clearing flag (RFC 4314 4, STORE): s for
// \Seen, t for \Deleted, w for every other flag.
func (r rights) mayStore(flag string) bool {
	switch {
	case strings.EqualFold(flag, flagSeen):
		return r.has(rightSeen)
	case strings.EqualFold(flag, flagDeleted):
		return r.has(rightDeleteFlag)
	}
	return r.has(rightWrite)
}

// permitted returns the flags r allows setting: APPEND and COPY drop the others silently
// (RFC 4314 4), as STORE does while at least one of those asked for applies.
func (r rights) permitted(flags []string) []string {
	if r == allRights {
		return flags
	}
	kept := make([]string, 0, len(flags))
	for _, f := range flags {
		if r.mayStore(f) {
			kept = append(kept, f)
		}
	}
	return kept
}

// tenantOwner is the owner of the tenant's shared mailboxes.
func tenantOwner(tenant string) string { return tenantOwnerPrefix + tenant }

// cutTenantOwner returns the tenant of a tenant pseudo-owner.
func cutTenantOwner(owner string) (string, bool) { return strings.CutPrefix(owner, tenantOwnerPrefix) }

// normalizeOwner normalises the owner named by a request: an account address, or a
// tenant pseudo-owner kept as given (tenant names are exact). An invalid one cannot own
// anything and becomes "", which fails like an unknown owner.
func normalizeOwner(owner string) string {
	if tenant, isTenant := cutTenantOwner(owner); isTenant {
		if !validTenantName(tenant) {
			return ""
		}
		return owner
	}
	email, _ := NormalizeEmail(owner)
	return email
}

// errNoMailbox is the one answer for a mailbox that does not exist and for one the user
// may not see (RFC 4314 6): the message names nothing, so it cannot differ between them.
func errNoMailbox() error { return newCmdError(codes.NotFound, "mailbox not found") }

// errNoRight refuses an operation on a mailbox the user sees but lacks rights for.
func errNoRight(need rights) error {
	return newCmdError(codes.PermissionDenied, "permission denied: the operation needs the %q right (RFC 4314 4)", need.String())
}

// aclRights returns the rights entries grant user: those of user and "anyone", minus those
// of the negative entries "-user" and "-anyone" (RFC 4314 2).
func aclRights(entries []*metadatapb.AclEntry, user string) rights {
	var granted, denied rights
	for _, e := range entries {
		id := e.GetIdentifier()
		negative := strings.HasPrefix(id, "-")
		if negative {
			id = id[1:]
		}
		if id != user && id != anyoneIdentifier {
			continue
		}
		r, _ := parseRights(e.GetRights())
		if negative {
			denied |= r
		} else {
			granted |= r
		}
	}
	return granted &^ denied
}

// domainTenant returns the tenant that owns domain.
func domainTenant(r reader, domain string) (string, bool, error) {
	t, found, err := getRaw(r, domainKey(domain))
	return string(t), found, err
}

// ownerTenant returns the tenant of a mailbox owner: the tenant of a pseudo-owner, or
// the one owning the account's domain.
func ownerTenant(r reader, owner string) (string, bool, error) {
	if tenant, isTenant := cutTenantOwner(owner); isTenant {
		return tenant, true, nil
	}
	return domainTenant(r, emailDomain(owner))
}

// sameTenant reports whether user belongs to the tenant of owner. An account's tenant is
// the one owning its domain (a domain moves only while no account uses it).
func sameTenant(r reader, user, owner string) (bool, error) {
	if _, isTenant := cutTenantOwner(owner); !isTenant && emailDomain(owner) == emailDomain(user) {
		return true, nil
	}
	userTenant, found, err := domainTenant(r, emailDomain(user))
	if err != nil || !found {
		return false, err
	}
	tenant, found, err := ownerTenant(r, owner)
	return found && tenant == userTenant, err
}

// isOwner reports whether user holds the owner's implicit rights on owner's mailboxes: the
// admin (empty user) and the account itself (RFC 4314 2.1: the owner's rights are fixed).
func isOwner(user, owner string) bool { return user == "" || user == owner }

// mailboxRights returns user's rights on the mailbox rec.
func mailboxRights(r reader, user string, rec *metadatapb.MailboxRecord) (rights, error) {
	if isOwner(user, rec.GetAccount()) {
		return allRights, nil
	}
	same, err := sameTenant(r, user, rec.GetAccount())
	if err != nil || !same {
		// RFC 4314 2: "anyone" is anyone of the owner's tenant; no ACL entry reaches
		// another tenant.
		return 0, err
	}
	return aclRights(rec.GetMailbox().GetAcl(), user), nil
}

// presentMailbox shapes box for a response to user, who has granted on it: its owner, the
// user's rights, the ACL only for those who may read it (RFC 4314 3.3: a), and nothing of
// its contents without r (RFC 4314 4: STATUS needs r). subscribed is the user's own
// subscription state, false on another owner's mailbox.
func presentMailbox(box *metadatapb.Mailbox, owner, user string, granted rights) *metadatapb.Mailbox {
	pinRecentMark(box)
	box.Owner = owner
	if box.GetObjectId() == "" && !box.GetNoselect() {
		// A mailbox stored before MAILBOXIDs were minted (objectid.go).
		box.ObjectId = mailboxObjectID(owner, box.GetId(), box.GetUidValidity(), 0)
	}
	if user != "" {
		box.MyRights = granted.String()
	}
	if !granted.has(rightAdminister) {
		box.Acl = nil
	}
	if !isOwner(user, owner) {
		box.Subscribed = false
	}
	if !granted.has(rightRead) {
		box.UidValidity, box.UidNext, box.HighestModseq = 0, 0, 0
		box.Messages, box.Unseen, box.Recent, box.Size, box.FirstRecentUid = 0, 0, 0, 0, 0
	}
	return box
}

// requireRights returns user's rights on the mailbox rec when they include need: NotFound
// when user may not see the mailbox (RFC 4314 6: the same answer as for a missing one),
// PermissionDenied naming the missing rights otherwise.
func requireRights(r reader, user string, rec *metadatapb.MailboxRecord, need rights) (rights, error) {
	granted, err := mailboxRights(r, user, rec)
	if err != nil {
		return 0, err
	}
	if !granted.visible() {
		return 0, errNoMailbox()
	}
	if !granted.has(need) {
		return 0, errNoRight(need &^ granted)
	}
	return granted, nil
}

// access loads the mailbox id of owner for user and checks that user has need on it:
// NotFound when it is missing or invisible to user (RFC 4314 6), PermissionDenied when a
// right is missing.
func (c *cmdCtx) access(user, owner string, id uint64, need rights) (*mailboxState, rights, error) {
	ms, err := c.loadMailbox(owner, id)
	if err != nil {
		return nil, 0, err
	}
	granted, err := requireRights(c.tx, user, ms.rec, need)
	if err != nil {
		return nil, 0, err
	}
	return ms, granted, nil
}

// accessName is access for a mailbox named in owner's space.
func (c *cmdCtx) accessName(user, owner, name string, need rights) (*mailboxState, rights, error) {
	id, err := lookupName(c.tx, owner, name)
	if err != nil {
		return nil, 0, err
	}
	if id == 0 {
		return nil, 0, errNoMailbox()
	}
	return c.access(user, owner, id, need)
}

// aclTarget resolves the mailbox of SetAcl and DeleteAcl (by id, or by name when id is 0)
// and checks the a right (RFC 4314 4).
func (c *cmdCtx) aclTarget(user, owner string, id uint64, rawName string) (*mailboxState, error) {
	if id == 0 {
		name, err := validMailboxName(rawName)
		if err != nil {
			return nil, err
		}
		ms, _, err := c.accessName(user, owner, name, rightAdminister)
		return ms, err
	}
	ms, _, err := c.access(user, owner, id, rightAdminister)
	return ms, err
}

// parseIdentifier checks the shape of an ACL identifier (RFC 4314 2): "anyone" or an
// account address, either possibly negated with a leading "-". It returns it as stored
// (lower-case) and the account or "anyone" it names.
func parseIdentifier(raw string) (identifier, subject string, err error) {
	id := strings.ToLower(raw)
	subject, negative := strings.CutPrefix(id, "-")
	if subject == anyoneIdentifier {
		return id, subject, nil
	}
	email, valid := NormalizeEmail(subject)
	if !valid || email != subject {
		return "", "", errInvalid("malformed ACL identifier %q: want anyone or an account address, optionally with a leading -", raw)
	}
	if negative {
		return "-" + email, email, nil
	}
	return email, email, nil
}

// checkIdentifierTenant refuses an identifier that names an account outside the owner's
// tenant, or the owner itself, whose rights are fixed (RFC 4314 2.1).
func (c *cmdCtx) checkIdentifierTenant(owner, identifier, subject string) error {
	if subject == anyoneIdentifier {
		return nil
	}
	if subject == owner {
		return errInvalid("the owner of a mailbox always has every right; no ACL entry can name it")
	}
	tenant, found, err := ownerTenant(c.tx, owner)
	if err != nil {
		return err
	}
	idTenant, idFound, err := domainTenant(c.tx, emailDomain(subject))
	if err != nil {
		return err
	}
	if !found || !idFound || idTenant != tenant {
		return errInvalid("ACL identifier %q is not an account of the mailbox owner's tenant", identifier)
	}
	return nil
}

// setACL implements SETACL (RFC 4314 3.1): rights replace, or with a mode are added to or
// removed from, those of the identifier; an entry left without rights is removed.
func (c *cmdCtx) setACL(req *metadatapb.SetAclRequest) (*metadatapb.CommandResult, error) {
	granted, valid := parseRights(req.GetRights())
	if !valid {
		return nil, errInvalid("unknown right in %q (RFC 4314 2.1)", req.GetRights())
	}
	identifier, subject, err := parseIdentifier(req.GetIdentifier())
	if err != nil {
		return nil, err
	}
	ms, err := c.aclTarget(req.GetUser(), req.GetAccount(), req.GetMailboxId(), req.GetName())
	if err != nil {
		return nil, err
	}
	if err := c.checkIdentifierTenant(ms.rec.GetAccount(), identifier, subject); err != nil {
		return nil, err
	}
	entries := ms.box().GetAcl()
	i := slices.IndexFunc(entries, func(e *metadatapb.AclEntry) bool { return e.GetIdentifier() == identifier })
	var current rights
	if i >= 0 {
		current, _ = parseRights(entries[i].GetRights())
	}
	switch req.GetMode() {
	case metadatapb.AclMode_ACL_MODE_ADD:
		granted |= current
	case metadatapb.AclMode_ACL_MODE_REMOVE:
		granted = current &^ granted
	}
	if err := c.writeACLEntry(ms, identifier, granted); err != nil {
		return nil, err
	}
	return aclResult(ms), nil
}

// deleteACL implements DELETEACL (RFC 4314 3.2); removing an absent entry succeeds.
func (c *cmdCtx) deleteACL(req *metadatapb.DeleteAclRequest) (*metadatapb.CommandResult, error) {
	identifier, subject, err := parseIdentifier(req.GetIdentifier())
	if err != nil {
		return nil, err
	}
	ms, err := c.aclTarget(req.GetUser(), req.GetAccount(), req.GetMailboxId(), req.GetName())
	if err != nil {
		return nil, err
	}
	if err := c.checkIdentifierTenant(ms.rec.GetAccount(), identifier, subject); err != nil {
		return nil, err
	}
	if err := c.writeACLEntry(ms, identifier, 0); err != nil {
		return nil, err
	}
	return aclResult(ms), nil
}

// writeACLEntry sets the identifier's entry to granted (none: removed), keeping the ACL
// sorted by identifier.
func (c *cmdCtx) writeACLEntry(ms *mailboxState, identifier string, granted rights) error {
	box := ms.box()
	i, found := slices.BinarySearchFunc(box.Acl, identifier, func(e *metadatapb.AclEntry, id string) int {
		return strings.Compare(e.GetIdentifier(), id)
	})
	switch {
	case granted == 0 && !found:
		return nil
	case granted == 0:
		box.Acl = slices.Delete(box.Acl, i, i+1)
	case found:
		box.Acl[i].Rights = granted.String()
	default:
		box.Acl = slices.Insert(box.Acl, i, &metadatapb.AclEntry{Identifier: identifier, Rights: granted.String()})
	}
	if !ms.aclChanged {
		// One new version per command that changes the ACL (Mailbox.acl_version).
		box.AclVersion++
	}
	ms.dirty = true
	ms.aclChanged = true
	return nil
}

func aclResult(ms *mailboxState) *metadatapb.CommandResult {
	resp := &metadatapb.AclResponse{MailboxId: ms.box().GetId(), AclVersion: ms.box().GetAclVersion()}
	for _, e := range ms.box().GetAcl() {
		resp.Acl = append(resp.Acl, proto.Clone(e).(*metadatapb.AclEntry))
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Acl{Acl: resp}}
}

// access reads the mailbox id (or, when id is 0, the one named name) of owner for user and
// checks need, with the answers of cmdCtx.access.
func (v *view) access(user, owner string, id uint64, name string, need rights) (*metadatapb.MailboxRecord, rights, error) {
	if id == 0 {
		var err error
		if id, err = lookupName(v.r, owner, name); err != nil {
			return nil, 0, err
		}
		if id == 0 {
			return nil, 0, errNoMailbox()
		}
	}
	rec := &metadatapb.MailboxRecord{}
	found, err := getProto(v.r, mailboxKey(id), rec)
	if err != nil {
		return nil, 0, err
	}
	if !found || rec.GetAccount() != owner {
		return nil, 0, errNoMailbox()
	}
	granted, err := requireRights(v.r, user, rec, need)
	if err != nil {
		return nil, 0, err
	}
	return rec, granted, nil
}

// present returns the mailbox of rec as user, who has granted on it, sees it, with the
// owner's subscription state when user may know it.
func (v *view) present(rec *metadatapb.MailboxRecord, user string, granted rights) (*metadatapb.Mailbox, error) {
	box, owner := rec.GetMailbox(), rec.GetAccount()
	if isOwner(user, owner) {
		_, subscribed, err := getRaw(v.r, subscriptionKey(owner, box.GetName()))
		if err != nil {
			return nil, err
		}
		box.Subscribed = subscribed
	} else {
		// The user's own unseen count (privateseen.go).
		seen, err := seenCount(v.r, user, box.GetId())
		if err != nil {
			return nil, err
		}
		box.Unseen = uint32(uint64(box.GetMessages()) - min(seen, uint64(box.GetMessages())))
	}
	return presentMailbox(box, owner, user, granted), nil
}

// readStatus turns an error of a read into a gRPC status: a refusal keeps its code and
// message, anything else is a storage failure.
func readStatus(err error) error {
	var ce *cmdError
	if errors.As(err, &ce) {
		return status.Error(ce.code, ce.msg)
	}
	return storageStatus(err)
}

// actingUser normalises the acting user of a request; empty is a trusted admin call.
func actingUser(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	user, valid := NormalizeEmail(raw)
	if !valid {
		return "", status.Errorf(codes.InvalidArgument, "invalid acting user %q", raw)
	}
	return user, nil
}

// normalizeActor normalises the acting user and the owner of a write request in place,
// as the FSM compares them.
func normalizeActor(user, owner *string) error {
	u, err := actingUser(*user)
	if err != nil {
		return err
	}
	*user, *owner = u, normalizeOwner(*owner)
	return nil
}

// ownerExists reports whether owner is an account, or a tenant's pseudo-owner of an
// existing tenant.
func ownerExists(r reader, owner string) (bool, error) {
	key := accountKey(owner)
	if tenant, isTenant := cutTenantOwner(owner); isTenant {
		key = tenantKey(tenant)
	}
	_, found, err := getRaw(r, key)
	return found, err
}

// listMailboxes lists owner's mailboxes as user sees them: all of them with the
// subscription list for the owner and admin calls, those with l for any other user (RFC
// 4314 4: LIST), whatever the owner (an unknown one has none); with a user, also the
// mailboxes of other owners shared with it.
func (v *view) listMailboxes(owner, user string) (*metadatapb.ListMailboxesResponse, error) {
	resp := &metadatapb.ListMailboxesResponse{}
	if isOwner(user, owner) {
		if exists, err := ownerExists(v.r, owner); err != nil {
			return nil, err
		} else if !exists {
			return nil, errNotFound("owner %q not found", owner)
		}
		var err error
		if resp.Subscriptions, err = v.subscriptions(owner); err != nil {
			return nil, err
		}
	}
	if user != "" {
		var err error
		if resp.Shared, err = v.sharedMailboxes(user, owner); err != nil {
			return nil, err
		}
	}
	names, err := listMailboxNames(v.r, owner, mailboxNamesPrefix(owner))
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		rec := &metadatapb.MailboxRecord{}
		if found, err := getProto(v.r, mailboxKey(n.id), rec); err != nil {
			return nil, err
		} else if !found {
			continue
		}
		granted, err := mailboxRights(v.r, user, rec)
		if err != nil {
			return nil, err
		}
		if !granted.has(rightLookup) {
			continue
		}
		box, err := v.present(rec, user, granted)
		if err != nil {
			return nil, err
		}
		resp.Mailboxes = append(resp.Mailboxes, box)
	}
	return resp, nil
}

// watchAccess checks on v that the user of a Watch stream may still read its mailbox (RFC
// 4314 4: r), and records the user's rights and the ACL version they are as of in w. gone
// reports that the mailbox was deleted: its id belonged to the owner when the stream
// started, and ids are never reused. A cursor below the mailbox's journal floor
// (history.go) cannot be replayed: OutOfRange.
func (v *view) watchAccess(w *watchState) (gone bool, err error) {
	rec := &metadatapb.MailboxRecord{}
	found, err := getProto(v.r, mailboxKey(w.mailbox), rec)
	if err != nil {
		return false, storageStatus(err)
	}
	if !found || rec.GetAccount() != w.owner {
		return true, nil
	}
	granted, err := mailboxRights(v.r, w.user, rec)
	if err != nil {
		return false, storageStatus(err)
	}
	switch {
	case !granted.visible():
		return false, readStatus(errNoMailbox())
	case !granted.has(rightRead):
		return false, readStatus(errNoRight(rightRead))
	case w.cursor < rec.GetMailbox().GetJournalFloor():
		return false, status.Errorf(codes.OutOfRange, "the changes of mailbox %d after MODSEQ %d are no longer kept", w.mailbox, w.cursor)
	}
	w.granted, w.aclVersion = granted, rec.GetMailbox().GetAclVersion()
	return false, nil
}

// deletedJournalEnd returns, for a deleted mailbox with journal entries after the cursor,
// one batch that holds only MAILBOX_DELETED at the journal's last MODSEQ.
func (v *view) deletedJournalEnd(mailbox, after uint64) ([]*metadatapb.ChangeBatch, error) {
	it, err := v.r.NewIter(&pebble.IterOptions{
		LowerBound: journalKey(mailbox, after+1),
		UpperBound: mailboxPrefixEnd(prefixJournal, mailbox),
	})
	if err != nil {
		return nil, fmt.Errorf("new iterator: %w", err)
	}
	var last uint64
	if it.Last() {
		last = modseqFromJournalKey(it.Key())
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("iterate journal of mailbox %d: %w", mailbox, err)
	}
	if last == 0 {
		return nil, nil
	}
	return []*metadatapb.ChangeBatch{{
		Changes:       []*metadatapb.Change{{Kind: metadatapb.ChangeKind_CHANGE_KIND_MAILBOX_DELETED, Modseq: last}},
		HighestModseq: last,
	}}, nil
}

// aclIdentifiers returns the identifiers of an ACL, in its (sorted) order.
func aclIdentifiers(acl []*metadatapb.AclEntry) []string {
	ids := make([]string, 0, len(acl))
	for _, e := range acl {
		ids = append(ids, e.GetIdentifier())
	}
	return ids
}

// ensureTenant looks up the tenant of the mailbox's owner once per command.
func (c *cmdCtx) ensureTenant(ms *mailboxState) error {
	if ms.tenantKnown {
		return nil
	}
	tenant, found, err := ownerTenant(c.tx, ms.rec.GetAccount())
	if err != nil {
		return err
	}
	if !found {
		return newCmdError(codes.Internal, "mailbox %d: owner %q has no tenant", ms.box().GetId(), ms.rec.GetAccount())
	}
	ms.tenant, ms.tenantKnown = tenant, true
	return nil
}

// reindexACLs brings the ACL index from the stored state of every mailbox the command
// touched to its final one: entries of a deleted mailbox, of a renamed one's old name and
// of removed identifiers go, those of new mailboxes, new names and new identifiers come.
// All removals come before all additions, so that a \Noselect placeholder that takes its
// deleted mailbox's name keeps the entries.
func (c *cmdCtx) reindexACLs() error {
	type entry struct{ key, id []byte }
	var remove [][]byte
	var add []entry
	for _, id := range c.touchedIDs() {
		ms := c.mailboxes[id]
		owner, name := ms.rec.GetAccount(), ms.box().GetName()
		var current []string
		if !ms.deleted {
			current = aclIdentifiers(ms.box().GetAcl())
		}
		if ms.stored && ms.storedName == name && slices.Equal(ms.storedACL, current) {
			continue
		}
		if len(ms.storedACL) == 0 && len(current) == 0 {
			continue
		}
		if err := c.ensureTenant(ms); err != nil {
			return err
		}
		for _, identifier := range ms.storedACL {
			if ms.storedName != name || !slices.Contains(current, identifier) {
				remove = append(remove, aclIndexKey(ms.tenant, identifier, owner, ms.storedName))
			}
		}
		for _, identifier := range current {
			if !ms.stored || ms.storedName != name || !slices.Contains(ms.storedACL, identifier) {
				add = append(add, entry{aclIndexKey(ms.tenant, identifier, owner, name), encodeUint64(id)})
			}
		}
	}
	for _, k := range remove {
		c.tx.mustDelete(k)
	}
	for _, e := range add {
		c.tx.mustSet(e.key, e.id)
	}
	return nil
}

// aclIndexHit is one ACL index entry: a mailbox of owner named name.
type aclIndexHit struct {
	owner, name string
	id          uint64
}

// scanACLIndex returns the index entries of identifier in tenant, sorted by owner, then
// name.
func scanACLIndex(r reader, tenant, identifier string) ([]aclIndexHit, error) {
	prefix := aclIndexPrefix(tenant, identifier)
	var hits []aclIndexHit
	err := scan(r, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		owner, name, found := strings.Cut(string(k[len(prefix):]), "\x00")
		if !found {
			return false, fmt.Errorf("malformed ACL index key %q", k)
		}
		hits = append(hits, aclIndexHit{owner: owner, name: name, id: decodeUint64(v)})
		return true, nil
	})
	return hits, err
}

// removeGrantsTo removes the ACL entries that name email, positive or negative, from the
// mailboxes of its tenant, so that a deleted account's rights never pass to an account
// created later with the same address.
func (c *cmdCtx) removeGrantsTo(tenant, email string) error {
	for _, identifier := range []string{email, "-" + email} {
		hits, err := scanACLIndex(c.tx, tenant, identifier)
		if err != nil {
			return err
		}
		for _, h := range hits {
			ms, err := c.loadMailbox(h.owner, h.id)
			if err != nil {
				return newCmdError(codes.Internal, "ACL index names mailbox %d of %q, which is not there: %v", h.id, h.owner, err)
			}
			if err := c.writeACLEntry(ms, identifier, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// sharedMailboxes lists the mailboxes of other owners of user's tenant on which user has l
// (RFC 4314 4: LIST), sorted by owner then name, leaving out user's own and except's. The
// candidates are the index entries of user and of "anyone"; the rights are then computed
// from each mailbox's whole ACL, which negative entries may reduce.
func (v *view) sharedMailboxes(user, except string) ([]*metadatapb.Mailbox, error) {
	tenant, found, err := domainTenant(v.r, emailDomain(user))
	if err != nil || !found {
		return nil, err
	}
	mine, err := scanACLIndex(v.r, tenant, user)
	if err != nil {
		return nil, err
	}
	anyone, err := scanACLIndex(v.r, tenant, anyoneIdentifier)
	if err != nil {
		return nil, err
	}
	hits := append(mine, anyone...)
	slices.SortFunc(hits, func(a, b aclIndexHit) int {
		if c := strings.Compare(a.owner, b.owner); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	var out []*metadatapb.Mailbox
	for i, h := range hits {
		if h.owner == user || h.owner == except || (i > 0 && hits[i-1].id == h.id) {
			continue
		}
		rec := &metadatapb.MailboxRecord{}
		if found, err := getProto(v.r, mailboxKey(h.id), rec); err != nil {
			return nil, err
		} else if !found || rec.GetAccount() != h.owner {
			return nil, fmt.Errorf("ACL index names mailbox %d of %q, which is not there", h.id, h.owner)
		}
		granted, err := mailboxRights(v.r, user, rec)
		if err != nil {
			return nil, err
		}
		if !granted.has(rightLookup) {
			continue
		}
		box, err := v.present(rec, user, granted)
		if err != nil {
			return nil, err
		}
		out = append(out, box)
	}
	return out, nil
}
