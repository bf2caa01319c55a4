package imap

import (
	"context"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// cmdStore: STORE (RFC 9051 6.4.6) and UID STORE (6.4.9).
func (c *conn) cmdStore(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.StoreArgs)
	s := c.sel
	if s.readOnly {
		return no(imapresp.CodeReadOnly, "Mailbox is read-only") // RFC 9051 6.3.3
	}
	if args.UnchangedSince != 0 {
		c.enableCondStore() // RFC 7162 3.1
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
			return no(imapresp.CodeNoPerm, "STORE needs the s, t or w right")
		}
	} else if permitted := s.rights.permitted(flags); len(permitted) < len(flags) {
		if len(permitted) == 0 {
			return no(imapresp.CodeNoPerm, "STORE of these flags needs rights the session lacks")
		}
		flags = permitted
	}
	uids := make([]uint32, len(idx))
	for k, i := range idx {
		uids[k] = s.msgs.uid(i)
	}
	changed, modified, err := c.storeFlags(uids, op, flags, args.UnchangedSince)
	if err != nil {
		return err
	}
	c.learnStored(op, flags, changed)
	uidCmd := cmd.UID
	switch {
	case !args.Flags.Silent:
		// RFC 9051 6.4.6: the flags of every message in the set, after the change, but for
		// those that failed UNCHANGEDSINCE (RFC 7162 3.1.3).
		for _, i := range idx {
			if !slices.Contains(modified, s.msgs.uid(i)) {
				c.bw.Write(c.flagsFetch(i+1, uidCmd))
			}
		}
	case c.condStore:
		// RFC 7162 3.1.3: with .SILENT the messages whose MODSEQ moved are still reported,
		// with UID and MODSEQ only.
		for _, uid := range changed {
			if seq := s.seqOf(uid); seq > 0 {
				num, uidFetch := c.fetchNum(seq - 1)
				itemUID := uid
				if c.uidOnly {
					itemUID = 0
				}
				c.bw.Write(imapresp.AppendModSeqFetch(make([]byte, 0, 64), num, uidFetch, itemUID, s.msgs.modseq(seq-1)))
			}
		}
	}
	if len(modified) == 0 {
		return nil
	}
	// RFC 7162 3.1.3: the messages that failed UNCHANGEDSINCE, as message numbers for
	// STORE and UIDs for UID STORE.
	nums := make([]uint32, 0, len(modified))
	for _, uid := range modified {
		if uidCmd {
			nums = append(nums, uid)
		} else if seq := s.seqOf(uid); seq > 0 {
			nums = append(nums, uint32(seq))
		}
	}
	slices.Sort(nums)
	return ok(imapresp.ModifiedCode(imapresp.NumSet(nums)), "Conditional STORE failed for some messages")
}

// storeFlags changes the flags of uids in the selected mailbox, only of those whose MODSEQ
// is at most unchangedSince when it is not 0 (RFC 7162 3.1.3), and applies the result to
// the session's view at once, so that the same change from the feed is not reported again.
// It returns the UIDs whose flags changed and those that failed UNCHANGEDSINCE.
func (c *conn) storeFlags(uids []uint32, op metadatapb.FlagOp, flags []string, unchangedSince uint64) (changed, modified []uint32, err error) {
	s := c.sel
	requestID := newRequestID()
	var resp *metadatapb.StoreFlagsResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.StoreFlags(ctx, &metadatapb.StoreFlagsRequest{
			RequestId: requestID, Account: s.owner, MailboxId: s.mailboxID,
			Uids: uidRanges(uids), Op: op, Flags: flags, User: c.accountName(),
			UnchangedSince: unchangedSince,
		})
		return err
	})
	if err != nil {
		return nil, nil, rpcStatus(err, imapresp.CodeNonExistent, "store flags")
	}
	changed = make([]uint32, 0, len(resp.GetUpdated()))
	for _, u := range resp.GetUpdated() {
		seq := s.seqOf(u.GetUid())
		if seq == 0 || u.GetModseq() <= s.msgs.modseq(seq-1) {
			continue
		}
		c.announceKeywords(u.GetFlags())
		s.msgs.setFlags(seq-1, u.GetFlags(), u.GetModseq())
		s.noteContextFlags(u.GetUid())
		changed = append(changed, u.GetUid())
	}
	s.msgs.compactSets()
	return changed, resp.GetModified(), nil
}
