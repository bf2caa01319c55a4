package imap

import (
	"context"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Access control (RFC 4314). The metadata service keeps the ACLs and decides every right
// (proto/metadata.proto, "access control"); the engine asks it with the session's account
// as the acting user and shapes the IMAP answers from Mailbox.my_rights: which flags are
// permanent, whether SELECT is read-write, which flags of a STORE or APPEND apply. A
// mailbox the session may not see is answered exactly like one that does not exist (RFC
// 4314 6); a missing right is NO [NOPERM] (RFC 5530 3).

// rights is a set of RFC 4314 2.1 rights letters.
type rights string

// ownerRights are the rights the owner of a personal mailbox always has (RFC 4314 2.1),
// whatever its ACL says.
const ownerRights rights = "lrswipkxtea"

// knownRights are the letters SETACL accepts: the rights of RFC 4314 2.1 and the obsolete
// "c" and "d" of 2.1.1, which the metadata service takes as k+x and e+t.
const knownRights = "lrswipkxteacd"

func (r rights) has(letter byte) bool { return strings.IndexByte(string(r), letter) >= 0 }

func (r rights) hasAny(letters string) bool { return strings.ContainsAny(string(r), letters) }

// mayStore reports whether r allows setting and clearing flag (RFC 4314 4, STORE): s for
// \Seen, t for \Deleted, w for every other flag.
func (r rights) mayStore(flag string) bool {
	switch {
	case strings.EqualFold(flag, `\Seen`):
		return r.has('s')
	case strings.EqualFold(flag, `\Deleted`):
		return r.has('t')
	}
	return r.has('w')
}

// permitted returns the flags of flags that r allows setting; APPEND and COPY drop the
// others silently (RFC 4314 4), as does STORE while at least one applies.
func (r rights) permitted(flags []string) []string {
	if r == ownerRights {
		return flags
	}
	var kept []string
	for _, f := range flags {
		if r.mayStore(f) {
			kept = append(kept, f)
		}
	}
	return kept
}

// rightsOut renders rights for ACL, LISTRIGHTS and MYRIGHTS responses: RFC 4314 2.1.1 has
// the server add "c" when any of k and x is there and "d" when any of e and t is (the
// "create" and "delete" sets Strata takes them for).
func rightsOut(r string) string {
	if strings.ContainsAny(r, "kx") && !strings.Contains(r, "c") {
		r += "c"
	}
	if strings.ContainsAny(r, "et") && !strings.Contains(r, "d") {
		r += "d"
	}
	return r
}

// rightsOn returns the session's rights on mb, which ref located: every right on its own
// mailboxes, and what the metadata service computed for it on the others.
func (c *conn) rightsOn(ref mailboxRef, mb *metadatapb.Mailbox) rights {
	if c.personal(ref) {
		return ownerRights
	}
	return rights(mb.GetMyRights())
}

// aclTarget resolves the mailbox of SETACL, DELETEACL or GETACL (verb); a namespace level
// has no ACL and is answered as a mailbox that does not exist (RFC 4314 6).
func (c *conn) aclTarget(raw, verb string) (mailboxRef, error) {
	ref, err := c.mailboxRefIn(raw)
	if err != nil {
		return ref, err
	}
	if ref.node {
		return ref, no(imapresp.CodeNonExistent, verb+" "+strconv.Quote(ref.full)+": mailbox does not exist")
	}
	return ref, nil
}

// aclIdentifier checks an identifier of SETACL or DELETEACL and returns it as stored:
// account addresses are lower-case. The metadata service refuses identifiers that are not
// "anyone" or an account of the owner's tenant (RFC 4314 2, proto "access control"); the
// owner's own rights are fixed, so no entry may name the owner.
func aclIdentifier(ref mailboxRef, raw string) (string, error) {
	id := strings.ToLower(raw)
	if strings.TrimPrefix(id, "-") == ref.owner {
		return "", no(imapresp.CodeCannot, "The owner of a mailbox always has every right")
	}
	return id, nil
}

// parseModRights reads SETACL's mod-rights (RFC 4314 3.1): rights letters that replace the
// identifier's, or with a leading "+" are added to them, with "-" removed from them. A
// letter that is not a right of RFC 4314 2.1 (or the obsolete c and d, 2.1.1) is a BAD.
func parseModRights(modRights string) (metadatapb.AclMode, string, error) {
	mode, letters := metadatapb.AclMode_ACL_MODE_REPLACE, modRights
	switch {
	case strings.HasPrefix(letters, "+"):
		mode, letters = metadatapb.AclMode_ACL_MODE_ADD, letters[1:]
	case strings.HasPrefix(letters, "-"):
		mode, letters = metadatapb.AclMode_ACL_MODE_REMOVE, letters[1:]
	}
	for i := 0; i < len(letters); i++ {
		if strings.IndexByte(knownRights, letters[i]) < 0 {
			return 0, "", bad("", "Unknown right "+strings.ToValidUTF8(letters[i:i+1], "?")+" (RFC 4314 2.1)")
		}
	}
	return mode, letters, nil
}

// cmdSetACL: SETACL (RFC 4314 3.1). Rights with "+" are added, with "-" removed, else
// they replace the identifier's; an unknown right letter is a BAD (RFC 4314 3.1).
func (c *conn) cmdSetACL(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.ACLArgs)
	mode, letters, err := parseModRights(args.Rights)
	if err != nil {
		return err
	}
	return c.changeACL(args, "setacl", func(ctx context.Context, ref mailboxRef, id, requestID string) (*metadatapb.AclResponse, error) {
		return c.srv.cfg.Metadata.SetAcl(ctx, &metadatapb.SetAclRequest{
			RequestId: requestID, User: c.accountName(), Account: ref.owner, Name: ref.name,
			Identifier: id, Rights: letters, Mode: mode,
		})
	})
}

// cmdDeleteACL: DELETEACL (RFC 4314 3.2).
func (c *conn) cmdDeleteACL(cmd *imapwire.Command) error {
	return c.changeACL(cmd.Args.(*imapwire.ACLArgs), "deleteacl", func(ctx context.Context, ref mailboxRef, id, requestID string) (*metadatapb.AclResponse, error) {
		return c.srv.cfg.Metadata.DeleteAcl(ctx, &metadatapb.DeleteAclRequest{
			RequestId: requestID, User: c.accountName(), Account: ref.owner, Name: ref.name, Identifier: id,
		})
	})
}

// changeACL makes the change of SETACL or DELETEACL (verb) to the entry of args.Identifier
// on args.Mailbox: change calls the metadata service, once per attempt, with the same
// request ID in every attempt so that a retry is not applied twice. The new ACL version is
// noted in this frontend's views of the mailbox before the OK, so that every session here
// uses the changed rights from its next command on (refreshRights).
func (c *conn) changeACL(args *imapwire.ACLArgs, verb string, change func(ctx context.Context, ref mailboxRef, id, requestID string) (*metadatapb.AclResponse, error)) error {
	ref, err := c.aclTarget(args.Mailbox, verb)
	if err != nil {
		return err
	}
	id, err := aclIdentifier(ref, args.Identifier)
	if err != nil {
		return err
	}
	requestID := newRequestID()
	var resp *metadatapb.AclResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = change(ctx, ref, id, requestID)
		return err
	})
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, verb+" "+strconv.Quote(ref.full))
	}
	c.srv.views.noteACLVersion(ref.owner, resp.GetMailboxId(), resp.GetAclVersion())
	return nil
}

// cmdGetACL: GETACL (RFC 4314 3.3), answered with an ACL response (3.6). The owner of a
// personal mailbox comes first with its fixed rights, then the stored entries.
func (c *conn) cmdGetACL(cmd *imapwire.Command) error {
	ref, err := c.aclTarget(cmd.Args.(*imapwire.ACLArgs).Mailbox, "getacl")
	if err != nil {
		return err
	}
	var resp *metadatapb.AclResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.GetAcl(ctx, &metadatapb.GetAclRequest{User: c.accountName(), Account: ref.owner, Name: ref.name})
		return err
	})
	if err != nil {
		return rpcStatus(err, imapresp.CodeNonExistent, "getacl "+strconv.Quote(ref.full))
	}
	entries := make([]imapresp.ACLEntry, 0, 1+len(resp.GetAcl()))
	if !strings.HasPrefix(ref.owner, tenantOwnerPrefix) {
		entries = append(entries, imapresp.ACLEntry{Identifier: ref.owner, Rights: rightsOut(string(ownerRights))})
	}
	for _, e := range resp.GetAcl() {
		entries = append(entries, imapresp.ACLEntry{Identifier: e.GetIdentifier(), Rights: rightsOut(e.GetRights())})
	}
	c.bw.Write(imapresp.AppendACL(nil, c.encoder(), c.mailboxOut(ref.full), entries))
	return nil
}

// eachRight is the optional part of LISTRIGHTS for anyone but the owner: every right may
// be granted on its own (RFC 4314 3.7).
var eachRight = []string{"l", "r", "s", "w", "i", "p", "k", "x", "t", "e", "a", "c", "d"}

// cmdListRights: LISTRIGHTS (RFC 4314 3.4), answered with LISTRIGHTS (3.7), which needs
// the a right. The owner of a personal mailbox is always granted every right; anyone
// else is granted none for sure and may be granted each right alone, as Dovecot and Cyrus
// answer.
func (c *conn) cmdListRights(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.ACLArgs)
	ref, mb, err := c.lookupMailbox(args.Mailbox)
	if err != nil {
		return err
	}
	if !c.rightsOn(ref, mb).has('a') {
		return no(imapresp.CodeNoPerm, "LISTRIGHTS needs the a right") // RFC 4314 4
	}
	required, optional := rightsOut(string(ownerRights)), []string(nil)
	if strings.ToLower(args.Identifier) != ref.owner {
		required, optional = "", eachRight
	}
	c.bw.Write(imapresp.AppendListRights(nil, c.encoder(), c.mailboxOut(ref.full), args.Identifier, required, optional))
	return nil
}

// cmdMyRights: MYRIGHTS (RFC 4314 3.5), answered with MYRIGHTS (3.8).
func (c *conn) cmdMyRights(cmd *imapwire.Command) error {
	ref, mb, err := c.lookupMailbox(cmd.Args.(*imapwire.ACLArgs).Mailbox)
	if err != nil {
		return err
	}
	c.bw.Write(imapresp.AppendMyRights(nil, c.encoder(), c.mailboxOut(ref.full), rightsOut(string(c.rightsOn(ref, mb)))))
	return nil
}

// refreshRights brings the session's rights on its selected mailbox of another owner up to
// date before each command, so that a revoked right applies from the next command on (RFC
// 4314 4 gives no other point). It reports false, after BYE, when the session may no
// longer read the mailbox: SELECT needed r, and no response can deselect a mailbox (RFC
// 9051 7.1.5).
//
// The rights come from the session's shared view, whose change feed carries them
// (mailview.go), with no call to the metadata service: exact for every ACL change made
// through this frontend before the command, since SETACL and DELETEACL note their version
// in the views before answering, and so does each SELECT's GetMailbox. Only while the view
// has not caught up with such a version (or cannot follow the mailbox) does the session
// read the mailbox as before; a metadata service that cannot answer then leaves the rights
// as they were. A change made elsewhere (another frontend, `strata acl`) applies once the
// feed delivers it; until then the metadata service still checks every read and write of
// mail against the rights in force (metadata/acl.go), and the feed sends no change after
// r is gone, so nothing the user may no longer read reaches the session meanwhile.
func (c *conn) refreshRights() bool {
	s := c.sel
	if v := s.feed.view; v != nil {
		vr := v.sessionRights()
		if vr.known && vr.version > s.aclVersion {
			s.rights, s.aclVersion = vr.rights, vr.version
		}
		switch {
		case vr.gone:
			c.closeSelected()
			c.bye(selectedGoneText)
			return false
		case vr.current && s.aclVersion >= vr.version:
			return true
		}
	}
	atTestHook("rights read")
	ctx, cancel := c.rpcContext()
	mb, err := c.srv.cfg.Metadata.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: s.owner, Id: s.mailboxID, User: c.accountName()})
	cancel()
	switch {
	case status.Code(err) == codes.NotFound:
	case err != nil:
		c.log.Debug("re-read rights on the selected mailbox", "err", err)
		return true
	default:
		if mb.GetAclVersion() >= s.aclVersion {
			s.rights, s.aclVersion = rights(mb.GetMyRights()), mb.GetAclVersion()
		}
		if s.feed.view != nil {
			s.feed.view.noteACLVersion(mb.GetAclVersion())
		}
		if s.rights.has('r') {
			return true
		}
	}
	c.closeSelected()
	c.bye(selectedGoneText)
	return false
}
