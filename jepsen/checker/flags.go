package checker

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/strata-mail/strata/jepsen/history"
)

// flagState is what is known of one message's flags: with complete, present is the whole
// set; without, present flags are set, absent ones are not, and the rest are unknown (a
// message COPYed or delivered starts so). Sets are sorted and joined with spaces, so the
// state compares with ==.
type flagState struct {
	complete        bool
	present, absent string
}

// flagOp is one porcupine operation on a message's flags: a write (mode "+", "-", "=") or,
// with mode "", a read whose output is the flag set seen.
type flagOp struct {
	mode  string
	flags []string
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

func join(set []string) string {
	set = slices.Clone(set)
	slices.Sort(set)
	return strings.Join(slices.Compact(set), " ")
}

func without(set, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(set), func(f string) bool { return slices.Contains(drop, f) })
}

// flagModel is the sequential specification of one message's flags (RFC 9051 6.4.6).
var flagModel = porcupine.Model{
	Init: func() interface{} { return flagState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		s := state.(flagState)
		in := input.(flagOp)
		present, absent := split(s.present), split(s.absent)
		switch in.mode {
		case history.StoreAdd:
			return true, flagState{s.complete, join(append(present, in.flags...)), join(without(absent, in.flags))}
		case history.StoreRemove:
			if s.complete {
				return true, flagState{true, join(without(present, in.flags)), ""}
			}
			return true, flagState{false, join(without(present, in.flags)), join(append(absent, in.flags...))}
		case history.StoreSet:
			return true, flagState{true, join(in.flags), ""}
		}
		seen := output.([]string)
		for _, f := range present {
			if !slices.Contains(seen, f) {
				return false, s
			}
		}
		for _, f := range seen {
			if slices.Contains(absent, f) || (s.complete && !slices.Contains(present, f)) {
				return false, s
			}
		}
		return true, flagState{true, join(seen), ""}
	},
	// Hash keeps porcupine's cache of visited (linearized set, state) pairs to one entry per
	// bucket; without it every state of one linearized set shares a bucket, searched linearly.
	Hash: func(state interface{}) uint64 {
		s := state.(flagState)
		h := fnv.New64a()
		if s.complete {
			h.Write([]byte{1})
		}
		h.Write([]byte(s.present))
		h.Write([]byte{0})
		h.Write([]byte(s.absent))
		return h.Sum64()
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(flagOp)
		if in.mode == "" {
			return fmt.Sprintf("read -> (%s)", strings.Join(output.([]string), " "))
		}
		return fmt.Sprintf("%sFLAGS (%s)", in.mode, strings.Join(in.flags, " "))
	},
}

// checkFlags checks each message's flag history with porcupine and shrinks a violation to a
// minimal set of ops that is still not linearizable.
func (c *run) checkFlags() {
	parts := map[mkey][]porcupine.Operation{}
	var order []mkey
	add := func(k mkey, op porcupine.Operation) {
		if k.uidValidity == 0 || k.uid == 0 {
			return
		}
		if _, ok := parts[k]; !ok {
			order = append(order, k)
		}
		parts[k] = append(parts[k], op)
	}
	end := func(op *history.Op) int64 {
		if op.Outcome == history.OK {
			return int64(op.Complete)
		}
		// Unknown: it may take effect any time after it was invoked.
		return 1<<63 - 1
	}
	// A session's reads of one message all linearize from its login, so a read whose flags an
	// earlier read of the same session saw adds nothing: it can take the earlier one's point.
	// Only the first of each is kept, which keeps the number of concurrent reads, and with it
	// porcupine's search, bounded by the flag sets a session saw rather than by its length.
	type seenKey struct {
		session int64
		key     mkey
		flags   string
	}
	seen := map[seenKey]bool{}
	read := func(i int, m history.Message) {
		if m.Flags == nil || c.ctx[i].selected < 0 || !c.ops[i].Done() {
			return
		}
		flags := normFlags(m.Flags)
		sk := seenKey{c.ops[i].Session, mkey{c.ctx[i].sel, m.UID}, strings.Join(flags, " ")}
		if seen[sk] {
			c.checks[checkFlagsSameRead]++
			return
		}
		seen[sk] = true
		add(mkey{c.ctx[i].sel, m.UID}, porcupine.Operation{ClientId: i, Input: flagOp{}, Output: flags,
			// The session's view is at least as new as its login (covered), not its SELECT.
			Call: int64(c.ctx[i].login), Return: int64(c.ops[i].Complete), Metadata: i})
	}
	for i := range c.ops {
		op := &c.ops[i]
		for _, u := range op.Updates {
			if u.Kind == history.UpdateFetch && u.Message != nil {
				read(i, *u.Message)
			}
		}
		if op.Outcome == history.Fail {
			continue
		}
		switch op.Kind {
		case history.KindAppend:
			for _, u := range op.UIDs {
				add(mkey{c.ctx[i].mb, u}, porcupine.Operation{ClientId: i, Input: flagOp{history.StoreSet, normFlags(op.Flags)},
					Call: int64(op.Invoke), Return: end(op), Metadata: i})
			}
		case history.KindStore:
			if c.ctx[i].selected < 0 {
				continue
			}
			for _, u := range op.Targets {
				add(mkey{c.ctx[i].mb, u}, porcupine.Operation{ClientId: i, Input: flagOp{op.StoreMode, normFlags(op.Flags)},
					Call: int64(op.Invoke), Return: end(op), Metadata: i})
			}
			if op.Outcome == history.OK {
				for _, m := range op.Messages {
					read(i, m)
				}
			}
		case history.KindFetch:
			if op.Outcome == history.OK {
				for _, m := range op.Messages {
					read(i, m)
				}
			}
		}
	}
	// The whole search is bounded too, so that a history porcupine finds hard cannot stall a
	// run: what is left when the budget is spent counts as unfinished.
	deadline := time.Now().Add(flagsBudget)
	for _, k := range order {
		ops := parts[k]
		c.checks[KindFlags]++
		left := time.Until(deadline)
		if left <= 0 {
			c.checks[checkFlagsUnfinished]++
			continue
		}
		res := porcupine.CheckOperationsTimeout(flagModel, ops, min(left, flagsPartitionTimeout))
		switch res {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			c.checks[checkFlagsUnfinished]++
			continue
		}
		ops = shrink(ops)
		idx := make([]int, len(ops))
		var steps []string
		for j, op := range ops {
			idx[j] = op.Metadata.(int)
			steps = append(steps, fmt.Sprintf("op %d %s", c.ops[idx[j]].ID, flagModel.DescribeOperation(op.Input, op.Output)))
		}
		c.report(KindFlags, fmt.Sprintf("flags of UID %d of %s are not linearizable: %s", k.uid, k.mbox, strings.Join(steps, "; ")), idx...)
	}
}

// shrink drops reads one by one while the rest stays non-linearizable, so what is left shows
// the violation. Only reads: a read only constrains, so a history with fewer reads that is
// not linearizable proves the whole one is not; dropping a write could make an innocent
// history look guilty.
// Proving a history illegal means exploring all of it, so each try is bounded, and so is
// the whole shrink: what is left when time runs out still shows the violation.
func shrink(ops []porcupine.Operation) []porcupine.Operation {
	deadline := time.Now().Add(shrinkBudget)
	for j := 0; j < len(ops) && time.Now().Before(deadline); {
		if ops[j].Input.(flagOp).mode != "" {
			j++
			continue
		}
		rest := slices.Delete(slices.Clone(ops), j, j+1)
		if porcupine.CheckOperationsTimeout(flagModel, rest, shrinkStepTimeout) == porcupine.Illegal {
			ops = rest
			continue
		}
		j++
	}
	return ops
}
