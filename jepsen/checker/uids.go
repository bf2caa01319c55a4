package checker

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/strata-mail/strata/jepsen/history"
)

// uidSighting is a UID some op showed to exist (or, from UIDNEXT, to have been reached) in a
// mailbox by the time the op completed.
type uidSighting struct {
	at  time.Duration
	uid uint32
	op  int
}

// sightings returns, per mailbox, every UID the history shows with the time it was known.
func (c *run) sightings() map[mbox][]uidSighting {
	out := map[mbox][]uidSighting{}
	add := func(mb mbox, i int, uids ...uint32) {
		if mb.uidValidity == 0 {
			return
		}
		for _, u := range uids {
			if u != 0 {
				out[mb] = append(out[mb], uidSighting{c.ops[i].End(), u, i})
			}
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		mb := c.ctx[i].mb
		for _, u := range op.Updates {
			if u.Kind == history.UpdateFetch && u.Message != nil {
				add(c.ctx[i].sel, i, u.Message.UID)
			}
		}
		if op.Outcome != history.OK {
			continue
		}
		switch op.Kind {
		case history.KindAppend:
			add(mb, i, op.UIDs...)
		case history.KindCopy, history.KindMove:
			add(mb, i, op.SourceUIDs...)
			add(mbox{op.Account, op.Dest, op.DestUIDValidity}, i, op.UIDs...)
		case history.KindFetch, history.KindStore:
			for _, m := range op.Messages {
				add(mb, i, m.UID)
			}
		case history.KindSearch:
			if op.ByUID {
				add(mb, i, op.Nums...)
			}
		case history.KindSelect, history.KindStatus:
			if op.UIDNext > 1 {
				add(mb, i, op.UIDNext-1)
			}
		}
	}
	for mb := range out {
		slices.SortStableFunc(out[mb], func(a, b uidSighting) int { return cmp.Compare(a.at, b.at) })
	}
	return out
}

// checkUIDs: RFC 9051 2.3.1.1: UIDs are assigned strictly ascending and never reused, so a
// new UID is above every UID seen before the assigning op began.
func (c *run) checkUIDs() {
	seen := c.sightings()
	// best[mb][k] is the sighting with the largest UID among seen[mb][:k+1].
	best := map[mbox][]int{}
	for mb, s := range seen {
		b := make([]int, len(s))
		for k := range s {
			b[k] = k
			if k > 0 && s[b[k-1]].uid >= s[k].uid {
				b[k] = b[k-1]
			}
		}
		best[mb] = b
	}
	assigned := func(i int, mb mbox, uids []uint32) {
		op := &c.ops[i]
		for k := 1; k < len(uids); k++ {
			c.checks[KindUIDBack]++
			if uids[k] <= uids[k-1] {
				c.report(KindUIDBack, fmt.Sprintf("op %d was assigned UIDs %v in %s, not ascending", op.ID, uids, mb), i)
				return
			}
		}
		s := seen[mb]
		n, _ := slices.BinarySearchFunc(s, op.Invoke, func(x uidSighting, t time.Duration) int { return cmp.Compare(x.at, t) })
		if n == 0 || len(uids) == 0 {
			return
		}
		c.checks[KindUIDBack]++
		top := s[best[mb][n-1]]
		if lowest := slices.Min(uids); lowest <= top.uid {
			c.report(KindUIDBack, fmt.Sprintf("op %d was assigned UID %d in %s after op %d had seen UID %d there", op.ID, lowest, mb, c.ops[top.op].ID, top.uid), top.op, i)
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		if op.Outcome != history.OK {
			continue
		}
		switch op.Kind {
		case history.KindAppend:
			assigned(i, c.ctx[i].mb, op.UIDs)
		case history.KindCopy, history.KindMove:
			assigned(i, mbox{op.Account, op.Dest, op.DestUIDValidity}, op.UIDs)
		}
	}
}
