package imap

import (
	"context"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// CONDSTORE and QRESYNC (RFC 7162). Every mailbox keeps MODSEQs (metadata/doc.go), so no
// mailbox answers NOMODSEQ (3.1.2.2). The session's view (sync.go) holds each message's
// MODSEQ; the metadata journal answers VANISHED (EARLIER) in O(changes).
//
// The switches live on the connection: condStore once any CONDSTORE enabling command ran
// (RFC 7162 3.1: ENABLE CONDSTORE or QRESYNC, SELECT/EXAMINE (CONDSTORE), STATUS
// HIGHESTMODSEQ, FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ), after
// which every untagged FETCH that reports flags carries UID and MODSEQ; qresync after
// ENABLE QRESYNC (3.2.3), after which expunges are reported as VANISHED (3.2.10).

// enableCondStore records a CONDSTORE enabling command (RFC 7162 3.1). A session that
// enables it while a mailbox is selected gets HIGHESTMODSEQ once (3.1.2.1), so that it
// knows where it stands.
func (c *conn) enableCondStore() {
	if c.condStore {
		return
	}
	c.condStore = true
	if s := c.sel; s != nil && c.cmd != nil && c.cmd.Name != "SELECT" && c.cmd.Name != "EXAMINE" {
		c.untaggedOK(imapresp.HighestModSeqCode(s.highestModSeq), "Highest")
	}
}

// listVanished asks the metadata service for the UIDs in ranges (all when empty) of the
// selected mailbox expunged after modseq (RFC 7162 3.2.5.1, 3.2.6). When the service no
// longer keeps every expunge since modseq (metadata/history.go), it answers every UID in
// ranges, at or above from, that the view lacks: the client may have known any of them
// (RFC 7162 3.2.6 allows reporting UIDs that do not exist), and none that is gone is ever
// left out.
func (c *conn) listVanished(ranges []*metadatapb.UidRange, modseq uint64, from uint32) ([]*metadatapb.UidRange, error) {
	s := c.sel
	var resp *metadatapb.ListVanishedResponse
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.ListVanished(ctx, &metadatapb.ListVanishedRequest{
			Account: s.owner, MailboxId: s.mailboxID, User: c.accountName(), SinceModseq: modseq, Uids: ranges,
		})
		return err
	})
	if err != nil {
		return nil, rpcStatus(err, imapresp.CodeNonExistent, "list vanished messages")
	}
	if resp.GetComplete() {
		return resp.GetVanished(), nil
	}
	if len(ranges) == 0 {
		ranges = []*metadatapb.UidRange{{First: 1, Last: s.uidNext - 1}}
	}
	return s.missingUIDs(ranges, from), nil
}

// missingUIDs returns the UIDs in ranges, at or above from and below UIDNEXT, that are not in
// the view, as ascending ranges.
func (s *selected) missingUIDs(ranges []*metadatapb.UidRange, from uint32) []*metadatapb.UidRange {
	var set imap.UIDSet
	for _, r := range ranges {
		first, last := max(min(r.GetFirst(), r.GetLast()), from, 1), min(max(r.GetFirst(), r.GetLast()), s.uidNext-1)
		if first > last {
			continue
		}
		i, _ := s.msgs.search(first)
		// next is the lowest UID not yet placed: past 2^32-1 after a message with the
		// highest UID (RFC 9051 2.3.1.1), so it does not fit a uint32.
		next := uint64(first)
		for _, uid := range s.msgs.uids(i) {
			if uid > last {
				break
			}
			if uint64(uid) > next {
				set.AddRange(imap.UID(next), imap.UID(uid-1))
			}
			next = uint64(uid) + 1
		}
		if next <= uint64(last) {
			set.AddRange(imap.UID(next), imap.UID(last))
		}
	}
	out := make([]*metadatapb.UidRange, 0, len(set))
	for _, r := range set {
		out = append(out, &metadatapb.UidRange{First: uint32(r.Start), Last: uint32(r.Stop)})
	}
	return out
}

// seqMatchFloor returns the UID below which, by the client's message sequence match data
// (RFC 7162 3.2.5.2), no message the client knew was expunged: the UID of the last pair, in
// order, whose message number is still the UID's number in the view, with every pair before
// it matching too. 1 when none matches.
func (s *selected) seqMatchFloor(q *imapwire.QResyncParams) uint32 {
	seqs, _ := q.SeqMatchSeqs.Nums()
	uids, _ := q.SeqMatchUIDs.Nums()
	floor := uint32(1)
	for i := 0; i < len(seqs) && i < len(uids); i++ {
		if s.seqOf(uint32(uids[i])) != int(seqs[i]) {
			break
		}
		floor = uint32(uids[i]) + 1
	}
	return floor
}

// sendVanishedEarlier sends "* VANISHED (EARLIER) uids" (RFC 7162 3.2.10) when there are any.
func (c *conn) sendVanishedEarlier(vanished []*metadatapb.UidRange) {
	if len(vanished) == 0 {
		return
	}
	c.bw.Write(imapresp.AppendVanished(nil, true, rangesSet(vanished)))
}

// rangesSet turns UID ranges into a sequence-set.
func rangesSet(ranges []*metadatapb.UidRange) imap.UIDSet {
	var set imap.UIDSet
	for _, r := range ranges {
		set.AddRange(imap.UID(r.GetFirst()), imap.UID(r.GetLast()))
	}
	return set
}

// uidSetRanges turns a UID set without "*" into the ranges of the metadata API.
func uidSetRanges(set imap.UIDSet) []*metadatapb.UidRange {
	ranges := make([]*metadatapb.UidRange, 0, len(set))
	for _, r := range set {
		ranges = append(ranges, &metadatapb.UidRange{First: uint32(r.Start), Last: uint32(r.Stop)})
	}
	return ranges
}

// qresyncSelect sends what a client that last knew the mailbox at q.ModSeq missed (RFC 7162
// 3.2.5): the expunges since, as VANISHED (EARLIER), then FETCH (UID FLAGS MODSEQ) of every
// message changed since; both only for q.KnownUIDs when given (3.2.5.1). A UIDVALIDITY that
// differs means the client's cache is void and nothing is sent. When the client's MODSEQ is
// older than the expunges the metadata service keeps, the message sequence match data
// (3.2.5.2) narrows what listVanished must report.
func (c *conn) qresyncSelect(q *imapwire.QResyncParams) error {
	s := c.sel
	if q.UIDValidity != s.uidValidity {
		return nil
	}
	var known []*metadatapb.UidRange
	if q.KnownUIDs != nil {
		known = uidSetRanges(q.KnownUIDs)
	}
	vanished, err := c.listVanished(known, q.ModSeq, s.seqMatchFloor(q))
	if err != nil {
		return err
	}
	c.sendVanishedEarlier(vanished)
	for at, run := range s.msgs.runs(0, s.msgs.len()) {
		for j, uid := range run.uids {
			if run.modseqs[j] <= q.ModSeq || (q.KnownUIDs != nil && !q.KnownUIDs.Contains(imap.UID(uid))) {
				continue
			}
			c.bw.Write(c.flagsFetchFor(at+j+1, true))
		}
	}
	return nil
}

// matchModSeq reports whether message i passes a MODSEQ search key (RFC 7162 3.1.5): its
// MODSEQ is at least the key's. The entry name and type do not narrow it: every change of a
// message's flags moves the message's one MODSEQ.
func (s *selected) matchModSeq(m *imap.SearchCriteriaModSeq, i int) bool {
	return m == nil || s.msgs.modseq(i) >= m.ModSeq
}

// highestModSeqOf returns the highest MODSEQ among the messages at indexes idx (RFC 7162
// 3.1.6: the MODSEQ of a SEARCH result).
func (s *selected) highestModSeqOf(idx []int) uint64 {
	var highest uint64
	for _, i := range idx {
		highest = max(highest, s.msgs.modseq(i))
	}
	return highest
}

// expungeUIDs removes the messages uids from the view and tells the client: in a QRESYNC
// or UIDONLY session one VANISHED response (RFC 7162 3.2.10, RFC 9586 3), otherwise an EXPUNGE per message from
// the highest number down, so that each number sent is the message's number at that point
// (RFC 9051 7.5.1).
func (c *conn) expungeUIDs(uids []uint32) {
	s := c.sel
	idx := s.msgs.indexesOf(uids)
	if len(idx) == 0 {
		return
	}
	c.contextsExpunged(idx) // RFC 5267 4.3.4: REMOVEFROM before EXPUNGE
	if c.qresync || c.uidOnly {
		gone := make([]uint32, len(idx))
		for k, i := range idx {
			gone[k] = s.msgs.uid(i)
		}
		c.bw.Write(imapresp.AppendVanished(nil, false, imapresp.NumSet(gone)))
	} else {
		// From the highest down: removing a message renumbers only those above it.
		for k := len(idx) - 1; k >= 0; k-- {
			c.bw.Write(imapresp.AppendExpunge(make([]byte, 0, 32), idx[k]+1))
		}
	}
	s.msgs.remove(idx)
}

// uidSetBounds turns a UID set into metadata ranges, "*" being the highest UID in the
// mailbox (RFC 9051 9), or any UID when the mailbox is empty; the ranges reach past the
// last message so that expunged UIDs above it count (RFC 7162 3.2.6).
func (c *conn) uidSetBounds(set imap.UIDSet) []*metadatapb.UidRange {
	s := c.sel
	if imap.IsSearchRes(set) {
		return uidRanges(s.searchRes) // RFC 5182 2: "$" is the saved result's UIDs
	}
	last := s.uidNext - 1
	if s.msgs.len() > 0 {
		last = s.msgs.last()
	}
	ranges := make([]*metadatapb.UidRange, 0, len(set))
	for _, r := range set {
		start, stop := starBounds(uint32(r.Start), uint32(r.Stop), last)
		ranges = append(ranges, &metadatapb.UidRange{First: max(start, 1), Last: max(stop, 1)})
	}
	return ranges
}
