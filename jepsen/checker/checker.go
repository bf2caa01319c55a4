// Package checker checks a recorded run (jepsen/history) against a model of IMAP mailboxes
// and reports every anomaly with the minimal slice of the history that shows it. It is pure:
// no I/O and the same history gives the same anomalies; the only clock it reads bounds the
// linearizability search (a partition porcupine cannot decide in time is counted under
// "flags-timeout", not reported) and the shrinking of a flags violation.
//
// What a client may expect, and what is checked (the Checks keys count each individual
// comparison made, so a check that never ran shows as 0):
//   - flags: each message's flag operations are linearizable (porcupine, one partition per
//     message). Writes (APPEND with flags, STORE +/-/=) linearize between invocation and
//     completion, or any time after invocation when the outcome is unknown. A session's FETCH
//     FLAGS answers from its view, which the change feed keeps current at the points RFC 9051
//     7 allows, so a read linearizes between the session's SELECT and the read's completion.
//   - uid-reuse: within a UIDVALIDITY a UID names one message (one Message-ID) forever.
//   - uid-back: a UID assigned by APPEND, COPY or MOVE is above every UID any client saw
//     in that mailbox before the assigning op was invoked (RFC 9051 2.3.1.1: strictly
//     ascending, never reused).
//   - lost-ack / stale-own-read: a message whose APPEND, COPY, MOVE or LMTP delivery was
//     acknowledged is in every later listing of its mailbox (UID FETCH 1:* of a session that
//     the ack covers, see below, or of the writing session itself) unless an op that may have
//     removed it was invoked before the listing completed. stale-own-read is the same rule
//     when the reader is the writer's own client.
//   - duplicate: a message appears at most once: one UID once per listing, and one Message-ID
//     in a mailbox only at UIDs its APPEND, delivery or COPY/MOVE there explain.
//   - failed-write-visible: a write that was answered NO/BAD (or refused by LMTP) is never seen.
//   - expunged-returned: a UID a client was told is gone (EXPUNGE, VANISHED, MOVE's COPYUID)
//     is never listed again by a session that this covers, nor by the told session.
//   - modseq-back / uidnext-back: HIGHESTMODSEQ and UIDNEXT reported to one client (across its
//     reconnects) never go below what it saw earlier: an earlier HIGHESTMODSEQ or message
//     MODSEQ, an earlier UIDNEXT or UID (RFC 7162 3.1.2.1, RFC 9051 2.3.1.1).
//   - seq-inconsistent: a session's message sequence numbers follow the EXISTS, EXPUNGE and
//     VANISHED it was sent (RFC 9051 7.4.1, 7.5.1; RFC 7162 3.2.10): no sequence number past
//     EXISTS, one UID per sequence number, UIDs ascending with sequence numbers, EXISTS never
//     shrinking without an expunge.
//   - expunge-in-command: no EXPUNGE (or VANISHED) while a FETCH, STORE or SEARCH (the non-UID
//     forms) is in progress (RFC 9051 7.5.1).
//
// What a read is compared against is Strata's read guarantee, session consistency
// (frontend/metaclient/doc.go): a change acknowledged before a session logged in (LOGIN is a
// linearizable read), or acknowledged through the session's own frontend before its SELECT,
// covers the session (run.covered); one made through another frontend later reaches the
// session through its change feed when it is observed (RFC 9051 5.2), which no bound in the
// history can check. The final reads, fresh sessions through every frontend once the faults
// are healed, are covered by every acknowledged write. A session's flag reads linearize
// between its login and their completion.
package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-mail/strata/jepsen/history"
)

// Anomaly kinds.
const (
	KindFlags             = "flags"
	KindUIDReuse          = "uid-reuse"
	KindUIDBack           = "uid-back"
	KindLostAck           = "lost-ack"
	KindStaleOwnRead      = "stale-own-read"
	KindDuplicate         = "duplicate"
	KindFailedVisible     = "failed-write-visible"
	KindExpungedReturned  = "expunged-returned"
	KindModSeqBack        = "modseq-back"
	KindUIDNextBack       = "uidnext-back"
	KindSeqInconsistent   = "seq-inconsistent"
	KindExpungeInCommand  = "expunge-in-command"
	checkFlagsUnfinished  = "flags-timeout"
	checkFlagsSameRead    = "flags-repeated-read"
	maxAnomaliesPerKind   = 50
	flagsPartitionTimeout = 10 * time.Second
	flagsBudget           = 2 * time.Minute
	shrinkBudget          = 5 * time.Second
	shrinkStepTimeout     = time.Second
)

// Anomaly is one violation with the ops that show it, in invocation order.
type Anomaly struct {
	Kind    string
	Message string
	Ops     []history.Op
}

// Result is what Check found.
type Result struct {
	Ops       int
	Checks    map[string]int
	Anomalies []Anomaly
}

// Check checks h.
func Check(h *history.History) *Result {
	c := newRun(h)
	c.walkSessions()
	c.checkExpungeInCommand()
	c.checkUIDs()
	c.checkVisibility()
	c.checkExpungedReturned()
	c.checkMonotonic()
	c.checkFlags()
	// Some checks walk maps: sort so that one history always gives one Result.
	slices.SortStableFunc(c.anomalies, func(a, b Anomaly) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(firstID(a), firstID(b)), cmp.Compare(a.Message, b.Message))
	})
	return &Result{Ops: len(h.Ops), Checks: c.checks, Anomalies: c.anomalies}
}

func firstID(a Anomaly) int64 {
	if len(a.Ops) == 0 {
		return 0
	}
	return a.Ops[0].ID
}

// mbox is one incarnation of a mailbox: its UIDs mean something only with its UIDVALIDITY.
type mbox struct {
	account, name string
	uidValidity   uint32
}

func (m mbox) String() string {
	return fmt.Sprintf("%s/%s (UIDVALIDITY %d)", m.account, m.name, m.uidValidity)
}

// mkey names one message.
type mkey struct {
	mbox
	uid uint32
}

// opCtx is what the checker knows of the session an op ran in.
type opCtx struct {
	selected int  // index of the session's current SELECT/EXAMINE, -1 if none
	mb       mbox // what the op names: its own mailbox for APPEND, STATUS, SELECT, else sel
	// sel is the selected mailbox, which the updates an op receives are about.
	sel      mbox
	snapshot time.Duration // the Invoke of that SELECT
	// login is the Invoke of the session's connect op: LOGIN is a linearizable read on
	// the leader, so every read of the session is at least as new as the group then.
	login time.Duration
}

// covered reports whether a write (or expunge) acknowledged at at, through frontend, must be
// in the reads of op i's session. Strata's reads are session-consistent, not linearizable
// (frontend/metaclient/doc.go): a session sees what was committed before it logged in, and
// what its own frontend acknowledged before its SELECT (the frontend's read position covers
// it); a change acknowledged through another frontend after the login reaches the session
// through its change feed, when it is observed (RFC 9051 5.2, 7.4.1), with no bound the
// history could check. The final reads (fresh sessions after the faults) hold every
// acknowledged write to the first rule.
func (c *run) covered(i int, at time.Duration, frontend string) bool {
	x := c.ctx[i]
	return at < x.login || (frontend == c.ops[i].Frontend && at < x.snapshot)
}

type run struct {
	h         *history.History
	ops       []history.Op
	ctx       []opCtx
	checks    map[string]int
	anomalies []Anomaly
	perKind   map[string]int

	// Filled by walkSessions: what each session learned was removed, and when.
	removals []removal
	// midOf maps a message to its Message-ID with the op that showed it first.
	midOf map[mkey]sighting
}

type removal struct {
	key     mkey
	op      int // the op whose completion proves it
	session int64
}

type sighting struct {
	mid string
	op  int
}

func newRun(h *history.History) *run {
	ops := slices.Clone(h.Ops)
	slices.SortStableFunc(ops, func(a, b history.Op) int {
		return cmp.Or(cmp.Compare(a.Invoke, b.Invoke), cmp.Compare(a.ID, b.ID))
	})
	c := &run{h: h, ops: ops, ctx: make([]opCtx, len(ops)), checks: map[string]int{}, perKind: map[string]int{}, midOf: map[mkey]sighting{}}
	current := map[int64]int{}
	login := map[int64]time.Duration{}
	defer func() {
		for i := range ops {
			c.ctx[i].login = login[ops[i].Session]
		}
	}()
	for i := range ops {
		op := &ops[i]
		own := mbox{op.Account, op.Mailbox, op.UIDValidity}
		if op.Kind == history.KindConnect {
			login[op.Session] = op.Invoke
		}
		switch op.Kind {
		case history.KindConnect:
			delete(current, op.Session)
			c.ctx[i] = opCtx{selected: -1, mb: own}
			continue
		case history.KindSelect:
			if op.Outcome == history.OK {
				current[op.Session] = i
			} else {
				// RFC 9051 6.3.2: a failed SELECT leaves the session unselected.
				delete(current, op.Session)
			}
			c.ctx[i] = opCtx{selected: i, mb: own, sel: own, snapshot: op.Invoke}
			continue
		case history.KindAppend, history.KindStatus, history.KindDeliver:
			c.ctx[i] = opCtx{selected: -1, mb: own}
			if s, ok := current[op.Session]; ok && op.Kind != history.KindDeliver {
				sel := &ops[s]
				c.ctx[i].snapshot, c.ctx[i].selected = sel.Invoke, s
				c.ctx[i].sel = mbox{sel.Account, sel.Mailbox, sel.UIDValidity}
			}
			continue
		}
		if s, ok := current[op.Session]; ok {
			sel := &ops[s]
			mb := mbox{sel.Account, sel.Mailbox, sel.UIDValidity}
			c.ctx[i] = opCtx{selected: s, mb: mb, sel: mb, snapshot: sel.Invoke}
		} else {
			c.ctx[i] = opCtx{selected: -1, mb: own}
		}
	}
	c.learnMessageIDs()
	return c
}

// learnMessageIDs maps each (mailbox, UID) to the Message-ID first shown for it, by APPENDUID,
// a FETCH, or COPYUID from a source whose Message-ID is known; conflicts are uid-reuse.
func (c *run) learnMessageIDs() {
	see := func(k mkey, mid string, i int) {
		if mid == "" || k.uid == 0 {
			return
		}
		c.checks[KindUIDReuse]++
		prev, ok := c.midOf[k]
		if !ok {
			c.midOf[k] = sighting{mid, i}
			return
		}
		if prev.mid != mid {
			c.report(KindUIDReuse, fmt.Sprintf("UID %d of %s is %s in op %d and %s in op %d", k.uid, k.mbox, prev.mid, c.ops[prev.op].ID, mid, c.ops[i].ID), prev.op, i)
		}
	}
	for i := range c.ops {
		op := &c.ops[i]
		if op.Outcome != history.OK {
			continue
		}
		switch op.Kind {
		case history.KindAppend:
			for _, u := range op.UIDs {
				see(mkey{c.ctx[i].mb, u}, op.MessageID, i)
			}
		case history.KindFetch, history.KindStore:
			for _, m := range op.Messages {
				see(mkey{c.ctx[i].mb, m.UID}, m.MessageID, i)
			}
		}
	}
	// COPYUID carries Message-IDs across; a chain of copies needs as many passes as links.
	for changed := true; changed; {
		changed = false
		for i := range c.ops {
			op := &c.ops[i]
			if op.Outcome != history.OK || (op.Kind != history.KindCopy && op.Kind != history.KindMove) {
				continue
			}
			dst := mbox{op.Account, op.Dest, op.DestUIDValidity}
			for j, u := range op.UIDs {
				if j >= len(op.SourceUIDs) {
					break
				}
				src, ok := c.midOf[mkey{c.ctx[i].mb, op.SourceUIDs[j]}]
				if _, known := c.midOf[mkey{dst, u}]; ok && !known {
					see(mkey{dst, u}, src.mid, i)
					changed = true
				}
			}
		}
	}
}

// report records an anomaly with the ops at the given indexes (duplicates dropped, in
// invocation order). Past maxAnomaliesPerKind of one kind only the count grows.
func (c *run) report(kind, msg string, idx ...int) {
	c.perKind[kind]++
	if c.perKind[kind] > maxAnomaliesPerKind {
		if c.perKind[kind] == maxAnomaliesPerKind+1 {
			c.anomalies = append(c.anomalies, Anomaly{Kind: kind, Message: fmt.Sprintf("more %s anomalies not listed", kind)})
		}
		return
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	a := Anomaly{Kind: kind, Message: msg}
	for _, i := range idx {
		if i >= 0 {
			a.Ops = append(a.Ops, c.ops[i])
		}
	}
	c.anomalies = append(c.anomalies, a)
}

// listing reports whether op i is a complete listing of its session's view: an OK FETCH 1:*.
func (c *run) listing(i int) bool {
	op := &c.ops[i]
	return op.Kind == history.KindFetch && op.All && op.Outcome == history.OK && c.ctx[i].selected >= 0
}

// normFlags is the flag set compared: lower case (RFC 9051 2.3.2: flags are case-insensitive),
// sorted, without \Recent, which is a property of the session, not of the message.
func normFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		f = strings.ToLower(f)
		if f == `\recent` {
			continue
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
