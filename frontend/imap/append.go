package imap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/emersion/go-imap/v2"
	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/internal/mutation"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// defaultAppendSyncWait bounds how long APPEND, COPY or MOVE to the selected mailbox waits
// for its own change to come back on the feed, so that EXISTS goes out with the response,
// and how long a later UID command waits for those messages when it did not
// (awaitOwnAdditions, sync.go).
const defaultAppendSyncWait = 2 * time.Second

// appendSyncWait is defaultAppendSyncWait, or a test's value (SetAppendSyncWait).
var appendSyncWait atomic.Int64

func init() { appendSyncWait.Store(int64(defaultAppendSyncWait)) }

// Bounds on one MULTIAPPEND (RFC 3502), whose messages are all spooled before any is
// committed: their number, their total size on the spool, and the size of the one metadata
// Append request (message structures included), which must stay under gRPC's default 4 MiB
// message limit. Beyond them the command fails with NO [LIMIT] (RFC 5530 3).
const (
	maxAppendMessages     = 1000
	maxAppendSpoolBytes   = 1 << 30
	maxAppendRequestBytes = 3 << 20
)

// maxMemorySpoolBytes is the largest literal that the first message of an APPEND spools in
// memory rather than in a file: a file costs a create, writes and an unlink per message,
// which at the typical mail size of a few KiB cost more than the bytes. Later messages of a
// MULTIAPPEND use files, so a connection holds at most this much in memory.
const maxMemorySpoolBytes = 64 << 10

// spooledMessage is one message of an APPEND, held in a spool file until it is committed.
type spooledMessage struct {
	args  *imapwire.AppendArgs
	spool *blobstore.Spool
}

// cmdAppend: RFC 9051 6.3.12 with MULTIAPPEND (RFC 3502), LITERAL+ (RFC 7888), literal8
// (RFC 3516 4.4), the UTF8 data extension (RFC 6855 4), APPENDLIMIT (RFC 7889) and
// APPENDUID (RFC 4315 3). Every message literal
// is streamed into a spool file while it is hashed; then each is parsed once for its
// structure and stored in the blob store, and only then are all appended in metadata by one
// call, which applies them together or not at all (RFC 3502 6.3.11).
func (c *conn) cmdAppend(cmd *imapwire.Command) error {
	return c.appendTo(cmd, nil)
}

// replaced is the message of the selected mailbox that REPLACE replaces.
type replaced struct {
	uid uint32
}

// cmdReplace: REPLACE and UID REPLACE (RFC 8508): APPEND of the new message to the named
// mailbox and expunge of the replaced one from the selected mailbox, in one metadata
// command, so that neither both nor none of them are ever there. It needs the rights of
// APPEND on the target and t and e on the selected mailbox (RFC 8508 3.4).
func (c *conn) cmdReplace(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.AppendArgs)
	s := c.sel
	var err error
	var uid uint32
	switch {
	case s.readOnly:
		err = no(imapresp.CodeReadOnly, "Mailbox is read-only") // RFC 8508 3.3
	case !s.rights.has('t') || !s.rights.has('e'):
		err = no(imapresp.CodeNoPerm, cmd.Name+" needs the t and e rights") // RFC 8508 3.4
	case cmd.UID:
		uid = args.Replace
		// The UID may be this session's own APPENDUID not yet in its view (sync.go).
		if err = c.awaitOwnAdditions(imap.UIDSetNum(imap.UID(uid))); err != nil {
			break
		}
		if s = c.sel; s.seqOf(uid) == 0 {
			// RFC 8508 3.3: a UID that does not exist is a NO, not a BAD.
			err = no(imapresp.CodeNonExistent, "No message with UID "+strconv.FormatUint(uint64(uid), 10))
		}
	case int(args.Replace) > s.msgs.len():
		err = bad("", "Invalid message sequence number") // RFC 9051 9: beyond "*"
	default:
		uid = s.msgs.uid(int(args.Replace) - 1)
	}
	if err != nil {
		c.discardAppendLiteral(cmd)
		return err
	}
	return c.appendTo(cmd, &replaced{uid: uid})
}

// appendTarget is the mailbox an APPEND names, looked up, with the session's rights on it,
// or why the APPEND is refused. remembered marks one taken from conn.lastAppend, not
// looked up.
type appendTarget struct {
	ref        mailboxRef
	mb         *metadatapb.Mailbox
	granted    rights
	err        error
	remembered bool
}

// rememberedTarget is where an APPEND by name went: the next APPEND by the same name from
// the same session, with the same mailbox name encoding, goes there without a lookup (a
// metadata round trip per message). It is kept only for the account's own mailboxes, on
// which the owner always has every right (no SETACL changes what it may append). The
// Append carries the mailbox's name (AppendRequest.mailbox_name), which the metadata
// service checks, so a rename since is refused like a deletion: after such a refusal the
// name is looked up again and the APPEND retried once (appendTo), so the client sees what
// an APPEND with a lookup would have given.
type rememberedTarget struct {
	name       string
	utf8Accept bool
	target     appendTarget
}

// lookUpAppendTarget returns where the APPEND of name goes: the mailbox looked up, after
// checking that the session may append to it (the remembered target, when it applies, is
// taken before: rememberedAppendTarget). It reads nothing from the connection, so it may
// run while the message literal is read.
func (c *conn) lookUpAppendTarget(name string) appendTarget {
	ref, err := c.mailboxRefIn(name)
	if err != nil {
		return appendTarget{err: err}
	}
	mb, err := c.getMailbox(ref, imapresp.CodeTryCreate)
	if err != nil {
		return appendTarget{err: err}
	}
	if mb.GetNoselect() {
		return appendTarget{err: no(imapresp.CodeTryCreate, "Mailbox cannot hold messages")}
	}
	granted := c.rightsOn(ref, mb)
	if !granted.has('i') {
		return appendTarget{err: no(imapresp.CodeNoPerm, "APPEND needs the i right")} // RFC 4314 4
	}
	return appendTarget{ref: ref, mb: mb, granted: granted}
}

// rememberedAppendTarget is conn.lastAppend's target, when it is where the APPEND of name
// goes (unless fresh is set): known without a lookup.
func (c *conn) rememberedAppendTarget(name string, fresh bool) (appendTarget, bool) {
	last := c.lastAppend
	if fresh || last == nil || last.name != name || last.utf8Accept != c.utf8Accept {
		return appendTarget{}, false
	}
	target := last.target
	target.remembered = true
	return target, true
}

// appendTo runs APPEND, or REPLACE when replace is set.
func (c *conn) appendTo(cmd *imapwire.Command, replace *replaced) error {
	first := cmd.Args.(*imapwire.AppendArgs)
	target, remembered := c.rememberedAppendTarget(first.Mailbox, replace != nil)
	var lookedUp chan appendTarget
	switch {
	case remembered:
		// Known at once, with nothing to wait for (and nothing refused) before the literal.
	case first.Literal.NonSync:
		// RFC 7888 (LITERAL+): the client sends the message without waiting for a
		// continuation, so the mailbox is looked up while the message is read; a refusal
		// then comes after it, as it would for a literal read and dropped.
		lookedUp = make(chan appendTarget, 1)
		go func() { lookedUp <- c.lookUpAppendTarget(first.Mailbox) }()
	default:
		if target = c.lookUpAppendTarget(first.Mailbox); target.err != nil {
			// Refused before the message arrives (RFC 9051 6.3.12): no continuation
			// request for a synchronising literal.
			c.discardAppendLiteral(cmd)
			return target.err
		}
	}
	ref, mb := target.ref, target.mb
	granted := target.granted
	var msgs []*spooledMessage
	defer func() {
		for _, m := range msgs {
			m.spool.Close()
		}
	}()
	var spooled int64
	for args := first; ; {
		if len(msgs) > 0 && spooled+args.Literal.Size > maxAppendSpoolBytes {
			c.discardAppendLiteral(&imapwire.Command{Args: args})
			return no(imapresp.CodeLimit, "Messages of one APPEND too large together")
		}
		if args.UTF8 && !c.utf8Accept {
			// RFC 6855 4: the UTF8 data extension is refused with BAD until the client
			// has sent ENABLE UTF8=ACCEPT.
			c.discardAppendLiteral(&imapwire.Command{Args: args})
			return bad("", "APPEND UTF8 needs ENABLE UTF8=ACCEPT")
		}
		m, rest, err := c.readAppendMessage(args, len(msgs) == 0)
		if lookedUp != nil {
			target, lookedUp = <-lookedUp, nil
			ref, mb, granted = target.ref, target.mb, target.granted
			if target.err != nil {
				if err == nil {
					m.spool.Close()
					c.skipCommand(rest)
				} else if c.state == stateLogout {
					return err // the connection is lost
				}
				return target.err
			}
		}
		if err != nil {
			return err
		}
		if args.UTF8 {
			// RFC 6855 4: "UTF8 (" literal8 ")"; the message is stored as given.
			if len(rest) == 0 || rest[0] != ')' {
				m.spool.Close()
				c.skipCommand(rest)
				return bad("", `APPEND: expected ")" after the UTF8 message`)
			}
			rest = rest[1:]
		}
		msgs = append(msgs, m)
		spooled += m.spool.Size()
		if len(rest) == 0 {
			break
		}
		if replace != nil {
			c.skipCommand(rest)
			return bad("", "REPLACE takes one message") // RFC 8508 6
		}
		// RFC 3502 6.3.11: append-message follows for another message.
		next, perr := imapwire.ParseAppendNext(rest)
		if perr != nil {
			c.skipCommand(rest)
			return bad("", "APPEND: "+perr.Error())
		}
		if len(msgs) >= maxAppendMessages {
			c.discardAppendLiteral(&imapwire.Command{Args: next})
			return no(imapresp.CodeLimit, "Too many messages in one APPEND")
		}
		args = next
	}

	req := &metadatapb.AppendRequest{RequestId: newRequestID(), Account: ref.owner, MailboxId: mb.GetId(), User: c.accountName()}
	if target.remembered {
		req.MailboxName = mb.GetName()
	}
	if replace != nil {
		req.ReplaceUid, req.ReplaceMailboxId, req.ReplaceAccount = replace.uid, c.sel.mailboxID, c.sel.owner
	}
	askedFlags := make([][]string, len(msgs))
	for i, m := range msgs {
		nm, err := c.parseSpooled(m)
		if err != nil {
			return err
		}
		// RFC 4314 4: flags the session may not set are dropped, not refused.
		askedFlags[i], nm.Flags = nm.Flags, granted.permitted(nm.Flags)
		req.Messages = append(req.Messages, nm)
	}
	if len(req.Messages) > 1 && proto.Size(req) > maxAppendRequestBytes {
		return no(imapresp.CodeLimit, "Too many messages in one APPEND")
	}
	resp, err := c.storeAndAppend(msgs, req)
	if err != nil && target.remembered && refusesTarget(err) {
		// The remembered mailbox was renamed or deleted, or the rights changed: look the
		// name up as an APPEND without it would have, and append there once more.
		c.lastAppend = nil
		if target = c.lookUpAppendTarget(first.Mailbox); target.err != nil {
			return target.err
		}
		ref, mb, granted = target.ref, target.mb, target.granted
		req.RequestId, req.Account, req.MailboxId, req.MailboxName = newRequestID(), ref.owner, mb.GetId(), ""
		for i, nm := range req.Messages {
			nm.Flags = granted.permitted(askedFlags[i])
		}
		resp, err = c.storeAndAppend(msgs, req)
	}
	if err != nil && mutation.AckUncommitted {
		// The deliberately broken build of the consistency checker's tests: OK without a
		// commit.
		return ok("", "APPEND completed")
	}
	if err != nil {
		return rpcStatus(err, imapresp.CodeTryCreate, "append to "+strconv.Quote(ref.full))
	}
	if replace == nil && ref.owner == c.accountName() {
		c.lastAppend = &rememberedTarget{name: first.Mailbox, utf8Accept: c.utf8Accept, target: target}
		c.lastAppend.target.remembered = false
	}
	c.notifyOwnChange(ref.owner, mb.GetId(), resp.GetModseq())
	if c.sel != nil && c.sel.owner == ref.owner && c.sel.mailboxID == mb.GetId() {
		// RFC 9051 6.3.12: appending to the selected mailbox should be followed by EXISTS;
		// wait for the feed to deliver this append so run sends it now.
		c.awaitOwn(resp.GetModseq())
	}
	appendUID := ""
	if uids := resp.GetUids(); len(uids) == len(req.Messages) {
		// RFC 4315 3: APPENDUID with the UID set of all the messages (RFC 3502 6.3.11
		// appends them in order, so the set is in order too).
		appendUID = imapresp.AppendUIDCode(resp.GetUidValidity(), imapresp.NumSet(uids))
	}
	if replace == nil {
		return ok(appendUID, "APPEND completed")
	}
	// RFC 8508 3.1: APPENDUID in an untagged OK, then the replaced message's EXPUNGE (or
	// VANISHED), then the tagged OK.
	if appendUID != "" {
		c.untaggedOK(appendUID, "Replacement message ready")
	}
	c.expungeUIDs([]uint32{replace.uid})
	return nil
}

// readAppendMessage streams the literal of one APPEND message into a spool file (in memory
// when first and small), after the size check and the continuation request, and returns it
// with the rest of the command line that follows the literal.
func (c *conn) readAppendMessage(args *imapwire.AppendArgs, first bool) (*spooledMessage, []byte, error) {
	lit := args.Literal
	if lit.Size > c.srv.cfg.MaxMessageSize {
		c.discardAppendLiteral(&imapwire.Command{Args: args})
		return nil, nil, no(imapresp.CodeTooBig, "Message larger than APPENDLIMIT "+strconv.FormatInt(c.srv.cfg.MaxMessageSize, 10)) // RFC 7889 4
	}
	if !lit.NonSync {
		c.continuation(continuationText)
		if err := c.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	var spool *blobstore.Spool
	var err error
	if first && lit.Size <= maxMemorySpoolBytes {
		spool, err = blobstore.NewMemorySpool(max(lit.Size, 1))
	} else {
		spool, err = blobstore.NewSpool(c.srv.cfg.SpoolDir, max(lit.Size, 1))
	}
	if err != nil {
		c.discardAppendLiteral(&imapwire.Command{Args: args})
		return nil, nil, fmt.Errorf("append: %w", err)
	}
	body := &nulDetector{r: c.framer.LiteralReader(lit.Size)}
	if _, err := io.CopyN(spool, body, lit.Size); err != nil {
		// The connection failed mid-literal or the spool could not be written; either way
		// the command stream is lost.
		spool.Close()
		c.state = stateLogout
		return nil, nil, fmt.Errorf("append: spool message: %w", err)
	}
	rest, err := c.framer.ReadLine()
	if err != nil && !errors.Is(err, imapwire.ErrLineTooLong) {
		spool.Close()
		return nil, nil, err
	}
	if err != nil {
		spool.Close()
		c.skipCommand(rest)
		return nil, nil, bad(imapresp.CodeLimit, "APPEND line too long")
	}
	if body.sawNUL && !lit.Binary {
		// RFC 9051 4.3: a literal is CHAR8, without NUL; binary content needs literal8
		// (RFC 3516 4.4), whose content is stored as given.
		spool.Close()
		c.skipCommand(rest)
		return nil, nil, bad("", "NUL in a message literal; use a literal8 (~{n})")
	}
	return &spooledMessage{args: args, spool: spool}, rest, nil
}

// parseSpooled parses a spooled message once for its structure and returns what the
// metadata Append needs; its body is not stored yet.
func (c *conn) parseSpooled(m *spooledMessage) (*metadatapb.NewMessage, error) {
	date := m.args.Date
	if date.IsZero() {
		date = time.Now()
	}
	var flags []string
	for _, f := range m.args.Flags {
		// \Recent cannot be set by a client (RFC 3501 2.3.2).
		if !strings.EqualFold(string(f), `\Recent`) {
			flags = append(flags, string(f))
		}
	}
	nm, err := ingest.NewMessage(c.account.GetTenant(), m.spool, date, flags)
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	return nm, nil
}

// nulDetector passes a literal through and notes whether it held a NUL byte.
type nulDetector struct {
	r      io.Reader
	sawNUL bool
}

func (d *nulDetector) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if !d.sawNUL && bytes.IndexByte(p[:n], 0) >= 0 {
		d.sawNUL = true
	}
	return n, err
}

// refusesTarget reports whether the metadata service refused an Append for its target
// mailbox (gone, renamed, not selectable, or rights missing), which an APPEND to a
// remembered target answers by looking the name up again.
func refusesTarget(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied:
		return true
	}
	return false
}
