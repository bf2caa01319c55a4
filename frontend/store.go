package frontend

import (
	"context"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdStore: STORE (RFC 9051 6.4.6) and UID STORE (6.4.9).
func (c *conn) cmdStore(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.StoreArgs)
	s := c.sel
	if s.readOnly {
		return no(codeReadOnly, "Mailbox is read-only") // RFC 9051 6.3.3
	}
	if args.UnchangedSince != 0 {
		return bad("", "UNCHANGEDSINCE requires CONDSTORE, which is not enabled")
	}
	idx, err := c.resolve(args.Set)
	if err != nil {
		return err
	}
	if len(idx) == 0 {
		return nil
	}
	op := map[imap.StoreFlagsOp]metadatapb.FlagOp{
		imap.StoreFlagsAdd: metadatapb.FlagOp_FLAG_OP_ADD,
		imap.StoreFlagsDel: metadatapb.FlagOp_FLAG_OP_REMOVE,
		imap.StoreFlagsSet: metadatapb.FlagOp_FLAG_OP_REPLACE,
	}[args.Flags.Op]
	var flags []string
	for _, f := range args.Flags.Flags {
		// \Recent is not a flag a client can set (RFC 3501 2.3.2); IMAP4rev2 has none.
		if !strings.EqualFold(string(f), `\Recent`) {
			flags = append(flags, string(f))
		}
	}
	// RFC 4314 4: s for \Seen, t for \Deleted, w for the others. Flags the session may not
	// change are left alone (the metadata service does so for FLAGS, which replaces them
	// all), and the command fails only when it may change none of them.
	if op == metadatapb.FlagOp_FLAG_OP_REPLACE {
		if !s.rights.hasAny("stw") {
			return no(codeNoPerm, "STORE needs the s, t or w right")
		}
	} else if permitted := s.rights.permitted(flags); len(permitted) < len(flags) {
		if len(permitted) == 0 {
			return no(codeNoPerm, "STORE of these flags needs rights the session lacks")
		}
		flags = permitted
	}
	uids := make([]uint32, len(idx))
	for k, i := range idx {
		uids[k] = s.uids[i]
	}
	if _, err := c.storeFlags(uids, op, flags); err != nil {
		return err
	}
	if args.Flags.Silent {
		return nil
	}
	// RFC 9051 6.4.6: the flags of every message in the set, after the change.
	uidCmd := cmd.Name == "UID STORE"
	for _, i := range idx {
		c.untaggedBytes(c.flagsFetch(i+1, uidCmd))
	}
	return nil
}

// storeFlags changes the flags of uids in the selected mailbox and applies the result to the
// session's view at once, so that the same change from the feed is not reported again. It
// returns the UIDs whose flags changed.
func (c *conn) storeFlags(uids []uint32, op metadatapb.FlagOp, flags []string) ([]uint32, error) {
	s := c.sel
	requestID := newRequestID()
	var resp *metadatapb.StoreFlagsResponse
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{
			RequestId: requestID, Account: s.owner, MailboxId: s.mailboxID,
			Uids: uidRanges(uids), Op: op, Flags: flags, User: c.accountName(),
		})
		return err
	})
	if err != nil {
		return nil, rpcStatus(err, codeNonExistent, "store flags")
	}
	changed := make([]uint32, 0, len(resp.GetUpdated()))
	for _, u := range resp.GetUpdated() {
		seq := s.seqOf(u.GetUid())
		if seq == 0 || u.GetModseq() <= s.modseqs[seq-1] {
			continue
		}
		c.announceKeywords(u.GetFlags())
		s.flags[seq-1] = u.GetFlags()
		s.modseqs[seq-1] = u.GetModseq()
		changed = append(changed, u.GetUid())
	}
	return changed, nil
}
