package imap

import (
	"strings"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Namespaces (RFC 2342, RFC 9051 6.3.10). A session sees three:
//
//   - personal, prefix "": the account's own mailboxes, by their stored names;
//   - other users, prefix "Other Users/": a mailbox Projects of alice@example.com that
//     alice shared with the session's account is "Other Users/alice@example.com/Projects";
//   - shared, prefix "Shared/": the mailboxes of the account's tenant, whose owner in the
//     metadata service is the pseudo-account "tenant:NAME" (proto/metadata.proto, "access
//     control").
//
// locate maps every mailbox name a command carries to its owner and its name in the
// owner's space, and external maps back; every command goes through them, and every
// metadata call carries the session's account as the acting user, so the metadata
// service decides what the session may see and do (RFC 4314).
const (
	otherUsersNamespace = "Other Users"
	sharedNamespace     = "Shared"
	tenantOwnerPrefix   = "tenant:"
)

// mailboxRef is a mailbox name resolved to its owner's space.
type mailboxRef struct {
	full  string // the session's name of the mailbox
	owner string // an account's e-mail address, or "tenant:NAME"
	name  string // the name in the owner's space
	// node marks a name that is a namespace level and never a mailbox: "Other Users",
	// "Other Users/alice@example.com", "Shared", or an "Other Users/" name whose owner
	// cannot be an account of the session's tenant.
	node bool
}

// locate resolves a session mailbox name (UTF-8, as mailboxIn returns it). The prefixes
// are case-sensitive, like any name but INBOX (RFC 9051 5.1); in other users' spaces
// INBOX is case-insensitive as in the personal one.
func (c *conn) locate(name string) mailboxRef {
	first, rest, nested := strings.Cut(name, string(delimiter))
	switch first {
	case otherUsersNamespace:
		owner, inOwner, nested := strings.Cut(rest, string(delimiter))
		owner = strings.ToLower(owner)
		if !nested || inOwner == "" || !isAccountOwner(owner) || owner == c.accountName() {
			// The session's own mailboxes are in the personal namespace only, so each
			// mailbox has one name.
			return mailboxRef{full: name, owner: owner, name: inOwner, node: true}
		}
		return mailboxRef{full: name, owner: owner, name: canonicalInbox(inOwner)}
	case sharedNamespace:
		owner := tenantOwnerPrefix + c.account.GetTenant()
		if !nested || rest == "" {
			return mailboxRef{full: name, owner: owner, node: true}
		}
		return mailboxRef{full: name, owner: owner, name: rest}
	}
	return mailboxRef{full: name, owner: c.accountName(), name: name}
}

// mailboxRefIn decodes a mailbox name from the client (mailboxIn) and locates it.
func (c *conn) mailboxRefIn(raw string) (mailboxRef, error) {
	name, err := c.mailboxIn(raw)
	if err != nil {
		return mailboxRef{}, err
	}
	return c.locate(name), nil
}

// refOf returns the reference of a mailbox the metadata service listed with its owner.
func (c *conn) refOf(mb *metadatapb.Mailbox) mailboxRef {
	owner := mb.GetOwner()
	if owner == "" {
		owner = c.accountName()
	}
	return mailboxRef{full: c.external(owner, mb.GetName()), owner: owner, name: mb.GetName()}
}

// isAccountOwner reports whether an "Other Users/" level can name an account: an e-mail
// address, never a "tenant:" pseudo-owner, which only "Shared/" reaches (and only the
// session's own tenant).
func isAccountOwner(owner string) bool {
	return strings.IndexByte(owner, '@') > 0 && !strings.ContainsRune(owner, ':')
}

// ownerInTenant reports whether an owner of a listed mailbox belongs to the session's
// tenant: its tenant's pseudo-owner, or an account, which the metadata service lists only
// from the session's tenant.
func (c *conn) ownerInTenant(owner string) bool {
	if strings.HasPrefix(owner, tenantOwnerPrefix) {
		return owner == tenantOwnerPrefix+c.account.GetTenant()
	}
	return isAccountOwner(owner)
}

// canonicalInbox writes INBOX, as the first level of a name in any case, as INBOX (RFC 9051
// 5.1), the form the metadata service stores.
func canonicalInbox(name string) string {
	first, rest, nested := strings.Cut(name, string(delimiter))
	if !strings.EqualFold(first, "INBOX") {
		return name
	}
	if nested {
		return "INBOX" + string(delimiter) + rest
	}
	return "INBOX"
}

// external returns the session name of a mailbox of owner named name in its space.
func (c *conn) external(owner, name string) string {
	switch {
	case owner == "" || owner == c.accountName():
		return name
	case strings.HasPrefix(owner, tenantOwnerPrefix):
		return sharedNamespace + string(delimiter) + name
	}
	return otherUsersNamespace + string(delimiter) + owner + string(delimiter) + name
}

// personal reports whether ref is one of the session's own mailboxes.
func (c *conn) personal(ref mailboxRef) bool {
	return ref.owner == c.accountName()
}

// hiddenPersonal reports whether a stored personal name falls in another namespace, so
// that no session name reaches it (one created before the namespaces existed).
func hiddenPersonal(name string) bool {
	first, _, _ := strings.Cut(name, string(delimiter))
	return first == otherUsersNamespace || first == sharedNamespace
}

// isNamespaceNode reports whether a session name is a level of the other users' or shared
// namespace that holds mailboxes but is none: LIST shows it \Noselect.
func isNamespaceNode(name string) bool {
	if name == sharedNamespace || name == otherUsersNamespace {
		return true
	}
	rest, ok := strings.CutPrefix(name, otherUsersNamespace+string(delimiter))
	return ok && rest != "" && !strings.ContainsRune(rest, delimiter)
}

// cmdNamespace: NAMESPACE (RFC 2342 5, RFC 9051 6.3.10): the personal, other users' and
// shared namespaces, "/"-delimited.
func (c *conn) cmdNamespace(cmd *imapwire.Command) error {
	c.bw.Write(imapresp.AppendNamespace(nil, c.encoder(),
		[]imapresp.Namespace{{Prefix: "", Delimiter: delimiter}},
		[]imapresp.Namespace{{Prefix: otherUsersNamespace + string(delimiter), Delimiter: delimiter}},
		[]imapresp.Namespace{{Prefix: sharedNamespace + string(delimiter), Delimiter: delimiter}}))
	return nil
}
