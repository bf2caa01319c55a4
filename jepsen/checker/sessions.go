package checker

import (
	"fmt"
	"slices"

	"github.com/strata-mail/strata/jepsen/history"
)

// view is the checker's model of one session's message sequence numbers: uids[n-1] is the
// UID of message n, 0 while the session has not been told it. valid is false when the model
// lost track (a connection ended, or updates whose relative order the client library hides),
// until the next SELECT.
type view struct {
	uids []uint32
	// valid reports whether uids follows the session: when it is false no sequence rule is
	// checked.
	valid bool
	// from is the op that last changed the view, shown with an anomaly.
	from int
}

// walkSessions replays each session's ops against its view: it checks the sequence rules and
// collects the removals sessions were told of.
func (c *run) walkSessions() {
	views := map[int64]*view{}
	for i := range c.ops {
		op := &c.ops[i]
		if op.Kind == history.KindDeliver {
			continue
		}
		v := views[op.Session]
		if v == nil {
			v = &view{}
			views[op.Session] = v
		}
		switch op.Kind {
		case history.KindConnect:
			*v = view{}
			continue
		case history.KindSelect:
			*v = view{from: i}
			if op.Outcome == history.OK && op.HasExists {
				v.uids = make([]uint32, op.Exists)
				v.valid = true
			}
			// What followed the SELECT's EXISTS in its response: expunges, new messages and
			// flag changes the session's feed had queued by then (RFC 9051 7: untagged updates
			// may come with any response), or the VANISHED of QRESYNC (RFC 7162 3.2.5.1).
			for _, u := range op.Updates {
				switch u.Kind {
				case history.UpdateVanished:
					c.removed(i, u.UIDs)
					if !u.Earlier {
						c.vanished(i, v, u.UIDs)
					}
				case history.UpdateExpunge:
					c.expunge(i, v, u.Seq)
				case history.UpdateExists:
					// Messages that arrived while the SELECT ran, announced before its OK.
					c.exists(i, v, u.Count)
				case history.UpdateFetch:
					if u.Message != nil {
						c.fetched(i, v, *u.Message)
					}
				}
			}
			continue
		}
		if op.Kind == history.KindMove && op.Outcome == history.OK {
			// RFC 6851 4.3: the moved messages are expunged from the source.
			c.removed(i, op.SourceUIDs)
		}
		if c.ctx[i].selected < 0 {
			continue
		}
		c.replay(i, v)
		if op.Outcome == history.Unknown {
			v.valid = false
		}
	}
}

// removed records that op i proved the UIDs of its session's selected mailbox gone.
func (c *run) removed(i int, uids []uint32) {
	for _, u := range uids {
		c.removals = append(c.removals, removal{key: mkey{c.ctx[i].sel, u}, op: i, session: c.ops[i].Session})
	}
}

// replay applies op i's updates and results to the session's view v.
func (c *run) replay(i int, v *view) {
	op := &c.ops[i]
	hasExpunge := len(op.ExpungedSeqs) > 0
	grows := false
	for _, u := range op.Updates {
		switch {
		case u.Kind == history.UpdateExpunge, u.Kind == history.UpdateVanished && !u.Earlier:
			hasExpunge = true
		case u.Kind == history.UpdateExists:
			grows = true
		}
	}
	if !hasExpunge {
		// Only EXISTS can move the sequence numbers: apply them, then check what the op was
		// told about messages against the resulting view (EXISTS precedes any FETCH of a
		// message it announces, so the final view bounds them all).
		for _, u := range op.Updates {
			if u.Kind == history.UpdateExists {
				c.exists(i, v, u.Count)
			}
		}
		for _, u := range op.Updates {
			if u.Kind == history.UpdateFetch && u.Message != nil {
				c.fetched(i, v, *u.Message)
			}
		}
		c.results(i, v)
		return
	}
	for _, u := range op.Updates {
		switch u.Kind {
		case history.UpdateExists:
			c.exists(i, v, u.Count)
		case history.UpdateExpunge:
			c.expunge(i, v, u.Seq)
		case history.UpdateVanished:
			c.removed(i, u.UIDs)
			if !u.Earlier {
				c.vanished(i, v, u.UIDs)
			}
		case history.UpdateFetch:
			if u.Message != nil {
				c.fetched(i, v, *u.Message)
			}
		}
	}
	if len(op.ExpungedSeqs) > 0 {
		if grows {
			// The library hands the EXPUNGEs of an EXPUNGE command over apart from the
			// other updates, so their order against EXISTS is lost.
			v.valid = false
		}
		for _, s := range op.ExpungedSeqs {
			c.expunge(i, v, s)
		}
	}
	// Results of an op that also expunged cannot be placed among the expunges, so they are
	// not compared with the view.
}

// results checks the FETCH and SEARCH results of op i (which saw no expunge) against v.
func (c *run) results(i int, v *view) {
	op := &c.ops[i]
	if op.Outcome != history.OK {
		return
	}
	switch op.Kind {
	case history.KindFetch, history.KindStore:
		for _, m := range op.Messages {
			c.fetched(i, v, m)
		}
		if !op.All || !v.valid {
			return
		}
		// A message expunged by another session but still in this one's view may be left
		// out until its EXPUNGE can be sent (RFC 2180 4.1.3; Strata does so), so a
		// listing may skip numbers, but it names each at most once, in order.
		c.checks[KindSeqInconsistent]++
		for j := 1; j < len(op.Messages); j++ {
			if op.Messages[j].Seq <= op.Messages[j-1].Seq {
				c.report(KindSeqInconsistent, fmt.Sprintf("FETCH 1:* in session %d returned message %d after message %d", op.Session, op.Messages[j].Seq, op.Messages[j-1].Seq), c.ctx[i].selected, i)
				v.valid = false
				return
			}
		}
	case history.KindSearch:
		if op.ByUID || !v.valid {
			return
		}
		for _, n := range op.Nums {
			c.checks[KindSeqInconsistent]++
			if n == 0 || int(n) > len(v.uids) {
				c.report(KindSeqInconsistent, fmt.Sprintf("SEARCH in session %d returned message %d, past the %d the session was told of", op.Session, n, len(v.uids)), c.ctx[i].selected, v.from, i)
				v.valid = false
				return
			}
		}
	}
}

// exists applies "* n EXISTS": RFC 9051 7.4.1 / 7.5.1: only an EXPUNGE lowers the count.
func (c *run) exists(i int, v *view, n uint32) {
	if !v.valid {
		return
	}
	c.checks[KindSeqInconsistent]++
	if int(n) < len(v.uids) {
		c.report(KindSeqInconsistent, fmt.Sprintf("session %d was sent %d EXISTS after it was told of %d messages and no expunge", c.ops[i].Session, n, len(v.uids)), c.ctx[i].selected, v.from, i)
		v.valid = false
		return
	}
	for len(v.uids) < int(n) {
		v.uids = append(v.uids, 0)
	}
	v.from = i
}

// expunge applies "* n EXPUNGE" (RFC 9051 7.5.1).
func (c *run) expunge(i int, v *view, seq uint32) {
	if !v.valid {
		return
	}
	c.checks[KindSeqInconsistent]++
	if seq == 0 || int(seq) > len(v.uids) {
		c.report(KindSeqInconsistent, fmt.Sprintf("session %d was sent %d EXPUNGE with %d messages in its view", c.ops[i].Session, seq, len(v.uids)), c.ctx[i].selected, v.from, i)
		v.valid = false
		return
	}
	if uid := v.uids[seq-1]; uid != 0 {
		c.removed(i, []uint32{uid})
	}
	v.uids = slices.Delete(v.uids, int(seq-1), int(seq))
	v.from = i
}

// vanished applies "* VANISHED uids" (RFC 7162 3.2.10): each UID the view holds leaves it.
func (c *run) vanished(i int, v *view, uids []uint32) {
	if !v.valid {
		return
	}
	for _, u := range uids {
		if j := slices.Index(v.uids, u); j >= 0 {
			v.uids = slices.Delete(v.uids, j, j+1)
			v.from = i
		} else if slices.Contains(v.uids, 0) {
			// The UID may sit at a sequence number the session was never told the UID
			// of: which one left is unknown.
			v.valid = false
			return
		}
	}
}

// fetched checks one FETCH response (seq, UID) against v and records the UID at seq.
func (c *run) fetched(i int, v *view, m history.Message) {
	if !v.valid || m.Seq == 0 {
		return
	}
	op := &c.ops[i]
	c.checks[KindSeqInconsistent]++
	if int(m.Seq) > len(v.uids) {
		c.report(KindSeqInconsistent, fmt.Sprintf("session %d got a FETCH of message %d with %d messages in its view", op.Session, m.Seq, len(v.uids)), c.ctx[i].selected, v.from, i)
		v.valid = false
		return
	}
	if m.UID == 0 {
		return
	}
	j := int(m.Seq) - 1
	if have := v.uids[j]; have != 0 && have != m.UID {
		c.report(KindSeqInconsistent, fmt.Sprintf("session %d got message %d as UID %d, it was UID %d", op.Session, m.Seq, m.UID, have), c.ctx[i].selected, v.from, i)
		v.valid = false
		return
	}
	// RFC 9051 2.3.1.2: sequence numbers and UIDs ascend together.
	for k := j - 1; k >= 0; k-- {
		if v.uids[k] != 0 {
			if v.uids[k] >= m.UID {
				c.report(KindSeqInconsistent, fmt.Sprintf("session %d has UID %d at message %d but UID %d at message %d", op.Session, v.uids[k], k+1, m.UID, m.Seq), c.ctx[i].selected, v.from, i)
				v.valid = false
				return
			}
			break
		}
	}
	for k := j + 1; k < len(v.uids); k++ {
		if v.uids[k] != 0 {
			if v.uids[k] <= m.UID {
				c.report(KindSeqInconsistent, fmt.Sprintf("session %d has UID %d at message %d but UID %d at message %d", op.Session, v.uids[k], k+1, m.UID, m.Seq), c.ctx[i].selected, v.from, i)
				v.valid = false
				return
			}
			break
		}
	}
	v.uids[j] = m.UID
}

// checkExpungeInCommand: RFC 9051 7.5.1: "An EXPUNGE response MUST NOT be sent ... while
// responding to a FETCH, STORE, or SEARCH command"; the UID forms may carry one.
func (c *run) checkExpungeInCommand() {
	for i := range c.ops {
		op := &c.ops[i]
		if op.ByUID || (op.Kind != history.KindFetch && op.Kind != history.KindStore && op.Kind != history.KindSearch) {
			continue
		}
		c.checks[KindExpungeInCommand]++
		for _, u := range op.Updates {
			if u.Kind == history.UpdateExpunge || (u.Kind == history.UpdateVanished && !u.Earlier) {
				c.report(KindExpungeInCommand, fmt.Sprintf("session %d was sent %s during %s", op.Session, describeUpdate(u), op.Kind), i)
				break
			}
		}
	}
}

func describeUpdate(u history.Update) string {
	if u.Kind == history.UpdateExpunge {
		return fmt.Sprintf("* %d EXPUNGE", u.Seq)
	}
	return fmt.Sprintf("* VANISHED %v", u.UIDs)
}
