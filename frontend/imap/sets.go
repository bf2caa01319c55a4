package imap

import (
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// resolve returns the indexes into the session's view (sequence number - 1, ascending) of
// the messages set names: message sequence numbers for an imap.SeqSet, UIDs for an
// imap.UIDSet. A sequence number past the last message is an error (RFC 9051 9: "*" is the
// largest number in use); UIDs that do not exist are ignored (RFC 9051 6.4.9), once the view
// holds the messages this session added itself (awaitOwnAdditions).
func (c *conn) resolve(set imap.NumSet) ([]int, error) {
	return c.resolveWhere(set, nil)
}

// resolveWhere is resolve keeping only the messages for which keep, when not nil, is true,
// so that a filter over a huge set (FETCH CHANGEDSINCE, RFC 7162 3.1.4.1) never lists the
// messages it drops.
func (c *conn) resolveWhere(set imap.NumSet, keep func(i int) bool) ([]int, error) {
	s := c.sel
	n := uint32(s.msgs.len())
	var idx []int
	switch set := set.(type) {
	case imap.SeqSet:
		// Sized for the set (FETCH 1:* of a large mailbox names every message), at most
		// one entry per message: a set that names messages twice grows it.
		size := 0
		for _, r := range set {
			if n > 0 {
				start, stop := starBounds(r.Start, r.Stop, n)
				size += int(min(stop, n)) - int(min(start, n)) + 1
			}
		}
		idx = make([]int, 0, min(size, int(n)))
		for _, r := range set {
			if n == 0 && (r.Start == 0 || r.Stop == 0) {
				continue // "*" in an empty mailbox names nothing
			}
			start, stop := starBounds(r.Start, r.Stop, n)
			if stop > n {
				return nil, bad("", "Invalid message sequence number")
			}
			for seq := start; seq <= stop; seq++ {
				if keep == nil || keep(int(seq-1)) {
					idx = append(idx, int(seq-1))
				}
			}
		}
	case imap.UIDSet:
		if err := c.awaitOwnAdditions(set); err != nil {
			return nil, err
		}
		n = uint32(s.msgs.len())
		if imap.IsSearchRes(set) {
			// RFC 5182 2.1: "$" is the saved result; UIDs expunged since are gone from
			// the view and drop out here.
			for _, uid := range s.searchRes {
				if i, found := s.msgs.search(uid); found && (keep == nil || keep(i)) {
					idx = append(idx, i)
				}
			}
			return idx, nil
		}
		if n == 0 {
			return nil, nil
		}
		last := s.msgs.last()
		for _, r := range set {
			start, stop := starBounds(uint32(r.Start), uint32(r.Stop), last)
			i, _ := s.msgs.search(start)
			end, found := s.msgs.search(stop)
			if found {
				end++
			}
			for ; i < end; i++ {
				if keep == nil || keep(i) {
					idx = append(idx, i)
				}
			}
		}
	}
	if !slices.IsSorted(idx) {
		slices.Sort(idx)
	}
	return slices.Compact(idx), nil
}

// starBounds returns a range's bounds in ascending order, "*" (0) standing for last, the
// largest number in use (RFC 9051 9: a range is the same whichever bound comes first).
func starBounds(start, stop, last uint32) (lo, hi uint32) {
	if start == 0 {
		start = last
	}
	if stop == 0 {
		stop = last
	}
	return min(start, stop), max(start, stop)
}

// resolveUIDs returns the UIDs of the messages set names.
func (c *conn) resolveUIDs(set imap.NumSet) ([]uint32, error) {
	idx, err := c.resolve(set)
	if err != nil {
		return nil, err
	}
	uids := make([]uint32, len(idx))
	for i, j := range idx {
		uids[i] = c.sel.msgs.uid(j)
	}
	return uids, nil
}

// uidRanges compresses ascending UIDs into the ranges of the metadata API.
func uidRanges(uids []uint32) []*metadatapb.UidRange { return metadatapb.RangesOf(uids) }
