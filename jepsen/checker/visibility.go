package checker

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/strata-mail/strata/jepsen/history"
)

// folder is a mailbox by name, across UIDVALIDITYs: LMTP delivers by name and reports no UID.
type folder struct{ account, name string }

// creation is a message an acknowledged or possible write put into a mailbox.
type creation struct {
	op  int
	mb  mbox // uidValidity 0 for a delivery: it names no UID
	uid uint32
	mid string
}

// removers indexes the ops that may have removed messages: the earliest invocation of a
// non-failed UID EXPUNGE or MOVE naming a message, or of an EXPUNGE of its mailbox.
type removers struct {
	byKey map[mkey]time.Duration
	// byMID is for deliveries, whose UIDs are learned only from listings.
	byMID map[folder]map[string]time.Duration
	// anyIn is the earliest EXPUNGE (all \Deleted) or removal of a UID of unknown
	// Message-ID in a folder: it may have removed any delivered message.
	anyIn    map[folder]time.Duration
	anyInBox map[mbox]time.Duration
}

func (c *run) removers() *removers {
	r := &removers{byKey: map[mkey]time.Duration{}, byMID: map[folder]map[string]time.Duration{}, anyIn: map[folder]time.Duration{}, anyInBox: map[mbox]time.Duration{}}
	earliest := func(m map[folder]time.Duration, f folder, t time.Duration) {
		if old, ok := m[f]; !ok || t < old {
			m[f] = t
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		if op.Outcome == history.Fail || c.ctx[i].selected < 0 {
			continue
		}
		mb := c.ctx[i].mb
		f := folder{mb.account, mb.name}
		switch op.Kind {
		case history.KindExpunge:
			earliest(r.anyIn, f, op.Invoke)
			if old, ok := r.anyInBox[mb]; !ok || op.Invoke < old {
				r.anyInBox[mb] = op.Invoke
			}
		case history.KindUIDExpunge, history.KindMove:
			for _, u := range op.Targets {
				k := mkey{mb, u}
				if old, ok := r.byKey[k]; !ok || op.Invoke < old {
					r.byKey[k] = op.Invoke
				}
				s, ok := c.midOf[k]
				if !ok {
					earliest(r.anyIn, f, op.Invoke)
					continue
				}
				if r.byMID[f] == nil {
					r.byMID[f] = map[string]time.Duration{}
				}
				if old, ok := r.byMID[f][s.mid]; !ok || op.Invoke < old {
					r.byMID[f][s.mid] = op.Invoke
				}
			}
		}
	}
	return r
}

// mayHaveRemoved reports whether c may have been removed by an op invoked before t.
func (r *removers) mayHaveRemoved(cr creation, t time.Duration) bool {
	f := folder{cr.mb.account, cr.mb.name}
	before := func(x time.Duration, ok bool) bool { return ok && x < t }
	if x, ok := r.anyIn[f]; before(x, ok) && cr.uid == 0 {
		return true
	}
	if cr.uid == 0 {
		x, ok := r.byMID[f][cr.mid]
		return before(x, ok)
	}
	if x, ok := r.anyInBox[cr.mb]; before(x, ok) {
		return true
	}
	x, ok := r.byKey[mkey{cr.mb, cr.uid}]
	return before(x, ok)
}

// creations lists what each write put (or may have put) where.
func (c *run) creations() []creation {
	var out []creation
	for i := range c.ops {
		op := &c.ops[i]
		switch op.Kind {
		case history.KindAppend:
			uid := uint32(0)
			if len(op.UIDs) > 0 {
				uid = op.UIDs[0]
			}
			out = append(out, creation{op: i, mb: c.ctx[i].mb, uid: uid, mid: op.MessageID})
		case history.KindDeliver:
			out = append(out, creation{op: i, mb: mbox{op.Account, op.Mailbox, 0}, mid: op.MessageID})
		case history.KindCopy, history.KindMove:
			dst := mbox{op.Account, op.Dest, op.DestUIDValidity}
			for _, u := range op.UIDs {
				out = append(out, creation{op: i, mb: dst, uid: u, mid: c.midOf[mkey{dst, u}].mid})
			}
		}
	}
	return out
}

// checkVisibility checks listings against the writes: lost-ack, stale-own-read, duplicate
// and failed-write-visible.
func (c *run) checkVisibility() {
	rm := c.removers()
	byFolder := map[folder][]creation{}
	writesOf := map[string][]int{} // Message-ID -> the appends and deliveries of it
	for _, cr := range c.creations() {
		byFolder[folder{cr.mb.account, cr.mb.name}] = append(byFolder[folder{cr.mb.account, cr.mb.name}], cr)
		if k := c.ops[cr.op].Kind; k == history.KindAppend || k == history.KindDeliver {
			writesOf[cr.mid] = append(writesOf[cr.mid], cr.op)
		}
	}
	explained, slack := c.explanations()
	unexplained := map[mbox]map[string]map[uint32]int{} // -> the first listing showing it
	for i := range c.ops {
		if !c.listing(i) {
			continue
		}
		r := &c.ops[i]
		x := c.ctx[i]
		uids := map[uint32]bool{}
		mids := map[string]bool{}
		for _, m := range r.Messages {
			c.checks[KindDuplicate]++
			if uids[m.UID] {
				c.report(KindDuplicate, fmt.Sprintf("UID %d listed twice by op %d in %s", m.UID, r.ID, x.mb), i)
			}
			uids[m.UID] = true
			if m.MessageID == "" {
				continue
			}
			mids[m.MessageID] = true
			c.checkFailedVisible(i, m, writesOf[m.MessageID])
			if !explained[mkey{x.mb, m.UID}] {
				if unexplained[x.mb] == nil {
					unexplained[x.mb] = map[string]map[uint32]int{}
				}
				if unexplained[x.mb][m.MessageID] == nil {
					unexplained[x.mb][m.MessageID] = map[uint32]int{}
				}
				if _, ok := unexplained[x.mb][m.MessageID][m.UID]; !ok {
					unexplained[x.mb][m.MessageID][m.UID] = i
				}
			}
		}
		for _, cr := range byFolder[folder{x.mb.account, x.mb.name}] {
			w := &c.ops[cr.op]
			if w.Outcome != history.OK || (cr.uid != 0 && cr.mb.uidValidity != x.mb.uidValidity) {
				continue
			}
			own := w.Session == r.Session && w.Complete < r.Invoke
			if !own && !c.covered(i, w.Complete, w.Frontend) {
				continue
			}
			kind := KindLostAck
			if w.Process == r.Process {
				kind = KindStaleOwnRead
			}
			c.checks[kind]++
			present := uids[cr.uid]
			if cr.uid == 0 {
				present = mids[cr.mid]
			}
			if present || rm.mayHaveRemoved(cr, r.End()) {
				continue
			}
			what := fmt.Sprintf("UID %d (%s)", cr.uid, cr.mid)
			if cr.uid == 0 {
				what = cr.mid
			}
			c.report(kind, fmt.Sprintf("%s, acknowledged by op %d of process %d, missing from the listing of %s by op %d of process %d (session selected at %v)", what, w.ID, w.Process, x.mb, r.ID, r.Process, x.snapshot), cr.op, x.selected, i)
		}
	}
	for mb, perMID := range unexplained {
		for mid, at := range perMID {
			if !slices.ContainsFunc(writesOf[mid], func(w int) bool { return c.ops[w].Outcome != history.Fail }) {
				// Not written in this run (or only by failed writes, which
				// failed-write-visible reports): nothing says how many there should be.
				continue
			}
			c.checks[KindDuplicate]++
			// A copy of a message of unknown Message-ID (key "") may be any message.
			allowed := slack[folder{mb.account, mb.name}][mid] + slack[folder{mb.account, mb.name}][""]
			if len(at) <= allowed {
				continue
			}
			idx := slices.Collect(maps.Values(at))
			idx = append(idx, writesOf[mid]...)
			c.report(KindDuplicate, fmt.Sprintf("%s is in %s at %d UIDs no COPYUID or APPENDUID explains, from at most %d writes that named none", mid, mb, len(at), allowed), idx...)
		}
	}
}

// explanations returns the UIDs an APPENDUID or COPYUID names, and per folder and Message-ID
// how many further messages writes that named no UID may have made (a large number when a
// COPY/MOVE without COPYUID may have copied it).
func (c *run) explanations() (map[mkey]bool, map[folder]map[string]int) {
	explained := map[mkey]bool{}
	slack := map[folder]map[string]int{}
	add := func(f folder, mid string, n int) {
		if slack[f] == nil {
			slack[f] = map[string]int{}
		}
		slack[f][mid] += n
	}
	const many = 1 << 20
	for i := range c.ops {
		op := &c.ops[i]
		if op.Outcome == history.Fail {
			continue
		}
		switch op.Kind {
		case history.KindAppend, history.KindDeliver:
			if len(op.UIDs) > 0 && op.Outcome == history.OK {
				explained[mkey{c.ctx[i].mb, op.UIDs[0]}] = true
			} else {
				add(folder{op.Account, op.Mailbox}, op.MessageID, 1)
			}
		case history.KindCopy, history.KindMove:
			dst := mbox{op.Account, op.Dest, op.DestUIDValidity}
			if op.Outcome == history.OK && len(op.UIDs) > 0 {
				for _, u := range op.UIDs {
					explained[mkey{dst, u}] = true
				}
				continue
			}
			for _, u := range op.Targets {
				s, ok := c.midOf[mkey{c.ctx[i].mb, u}]
				if !ok {
					add(folder{op.Account, op.Dest}, "", many)
					continue
				}
				add(folder{op.Account, op.Dest}, s.mid, 1)
			}
		}
	}
	return explained, slack
}

// checkFailedVisible: a write answered NO is not applied, so its message never shows.
func (c *run) checkFailedVisible(i int, m history.Message, writes []int) {
	if len(writes) == 0 {
		return
	}
	c.checks[KindFailedVisible]++
	for _, w := range writes {
		if c.ops[w].Outcome != history.Fail {
			return
		}
	}
	c.report(KindFailedVisible, fmt.Sprintf("%s, whose write op %d failed, is listed by op %d", m.MessageID, c.ops[writes[0]].ID, c.ops[i].ID), writes[0], i)
}

// checkExpungedReturned: a UID a client was told is gone is not listed by a session that
// selected after it was told, nor again by the told session (RFC 9051 2.3.1.1).
func (c *run) checkExpungedReturned() {
	type proof struct {
		at time.Duration
		op int
	}
	first := map[mkey]proof{}
	bySession := map[mkey]map[int64]proof{}
	for _, r := range c.removals {
		at := c.ops[r.op].End()
		if p, ok := first[r.key]; !ok || at < p.at {
			first[r.key] = proof{at, r.op}
		}
		if bySession[r.key] == nil {
			bySession[r.key] = map[int64]proof{}
		}
		if p, ok := bySession[r.key][r.session]; !ok || at < p.at {
			bySession[r.key][r.session] = proof{at, r.op}
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		x := c.ctx[i]
		var shown []uint32
		switch {
		case c.listing(i):
			for _, m := range op.Messages {
				shown = append(shown, m.UID)
			}
		case op.Kind == history.KindSearch && op.ByUID && op.Outcome == history.OK && x.selected >= 0:
			shown = op.Nums
		default:
			continue
		}
		for _, u := range shown {
			k := mkey{x.mb, u}
			c.checks[KindExpungedReturned]++
			p, ok := first[k]
			if ok && c.covered(i, p.at, c.ops[p.op].Frontend) {
				c.report(KindExpungedReturned, fmt.Sprintf("UID %d of %s, gone by op %d, is listed by op %d of a session that selected after it", u, x.mb, c.ops[p.op].ID, op.ID), p.op, x.selected, i)
				continue
			}
			if p, ok := bySession[k][op.Session]; ok && p.at <= op.Invoke {
				c.report(KindExpungedReturned, fmt.Sprintf("UID %d of %s, reported gone to session %d by op %d, is listed again by op %d", u, x.mb, op.Session, c.ops[p.op].ID, op.ID), p.op, i)
			}
		}
	}
}

// floors indexes values one client saw, by when it saw them, for "never goes back" checks.
type floors struct {
	at    []time.Duration
	value []uint64
	op    []int
	best  []int // best[k]: index of the largest value among [:k+1]
}

func (f *floors) add(at time.Duration, v uint64, op int) {
	f.at, f.value, f.op = append(f.at, at), append(f.value, v), append(f.op, op)
}

func (f *floors) seal() {
	idx := make([]int, len(f.at))
	for k := range idx {
		idx[k] = k
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(f.at[a], f.at[b]) })
	at, value, op := make([]time.Duration, len(idx)), make([]uint64, len(idx)), make([]int, len(idx))
	for k, j := range idx {
		at[k], value[k], op[k] = f.at[j], f.value[j], f.op[j]
	}
	f.at, f.value, f.op = at, value, op
	f.best = make([]int, len(at))
	for k := range at {
		f.best[k] = k
		if k > 0 && value[f.best[k-1]] >= value[k] {
			f.best[k] = f.best[k-1]
		}
	}
}

// before returns the largest value seen before t and the op that saw it.
func (f *floors) before(t time.Duration) (uint64, int, bool) {
	n, _ := slices.BinarySearch(f.at, t)
	if n == 0 {
		return 0, -1, false
	}
	b := f.best[n-1]
	return f.value[b], f.op[b], true
}

// checkMonotonic: HIGHESTMODSEQ (RFC 7162 3.1.2.1) and UIDNEXT (RFC 9051 2.3.1.1) that a
// client (a process, across its sessions and frontends) is told never go below what it saw
// before the asking op began.
func (c *run) checkMonotonic() {
	type pm struct {
		process int
		mb      mbox
	}
	modseq, uidnext := map[pm]*floors{}, map[pm]*floors{}
	floor := func(m map[pm]*floors, p int, mb mbox, at time.Duration, v uint64, i int) {
		if mb.uidValidity == 0 || v == 0 {
			return
		}
		k := pm{p, mb}
		if m[k] == nil {
			m[k] = &floors{}
		}
		m[k].add(at, v, i)
	}
	for i := range c.ops {
		op := &c.ops[i]
		mb := c.ctx[i].mb
		at := op.End()
		for _, u := range op.Updates {
			if u.Kind == history.UpdateFetch && u.Message != nil {
				sel := c.ctx[i].sel
				floor(modseq, op.Process, sel, at, u.Message.ModSeq, i)
				floor(uidnext, op.Process, sel, at, uint64(u.Message.UID)+1, i)
			}
		}
		if op.Outcome != history.OK {
			continue
		}
		switch op.Kind {
		case history.KindSelect, history.KindStatus:
			floor(modseq, op.Process, mb, at, op.HighestModSeq, i)
			floor(uidnext, op.Process, mb, at, uint64(op.UIDNext), i)
		case history.KindFetch, history.KindStore:
			for _, m := range op.Messages {
				floor(modseq, op.Process, mb, at, m.ModSeq, i)
				floor(uidnext, op.Process, mb, at, uint64(m.UID)+1, i)
			}
		case history.KindAppend:
			for _, u := range op.UIDs {
				floor(uidnext, op.Process, mb, at, uint64(u)+1, i)
			}
		case history.KindCopy, history.KindMove:
			for _, u := range op.UIDs {
				floor(uidnext, op.Process, mbox{op.Account, op.Dest, op.DestUIDValidity}, at, uint64(u)+1, i)
			}
		}
	}
	for _, m := range []map[pm]*floors{modseq, uidnext} {
		for _, f := range m {
			f.seal()
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		if op.Outcome != history.OK || (op.Kind != history.KindSelect && op.Kind != history.KindStatus) || op.UIDValidity == 0 {
			continue
		}
		k := pm{op.Process, c.ctx[i].mb}
		if f := modseq[k]; f != nil && op.HighestModSeq != 0 {
			c.checks[KindModSeqBack]++
			if v, j, ok := f.before(op.Invoke); ok && op.HighestModSeq < v {
				c.report(KindModSeqBack, fmt.Sprintf("process %d was told HIGHESTMODSEQ %d of %s by op %d after it saw %d in op %d", op.Process, op.HighestModSeq, k.mb, op.ID, v, c.ops[j].ID), j, i)
			}
		}
		if f := uidnext[k]; f != nil && op.UIDNext != 0 {
			c.checks[KindUIDNextBack]++
			if v, j, ok := f.before(op.Invoke); ok && uint64(op.UIDNext) < v {
				c.report(KindUIDNextBack, fmt.Sprintf("process %d was told UIDNEXT %d of %s by op %d after it saw %d in op %d", op.Process, op.UIDNext, k.mb, op.ID, v, c.ops[j].ID), j, i)
			}
		}
	}
}
