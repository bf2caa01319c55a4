package checker_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/strata-mail/strata/jepsen/checker"
	"github.com/strata-mail/strata/jepsen/history"
)

const acct = "a@x"

// at turns a step of a hand-written history into its time.
func at(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// hist numbers ops, sets their times (in milliseconds; end 0 means never completed) and
// fills the account and an OK outcome unless given.
type hist struct{ ops []history.Op }

func (h *hist) add(start, end int, op history.Op) *hist {
	op.ID = int64(len(h.ops) + 1)
	op.Invoke, op.Complete = at(start), at(end)
	if op.Account == "" {
		op.Account = acct
	}
	if op.Outcome == "" {
		op.Outcome = history.OK
	}
	h.ops = append(h.ops, op)
	return h
}

func (h *hist) history() *history.History { return &history.History{Seed: 1, Ops: h.ops} }

func msg(seq, uid uint32, mid string, modseq uint64, flags ...string) history.Message {
	if flags == nil {
		flags = []string{}
	}
	return history.Message{Seq: seq, UID: uid, MessageID: mid, Flags: flags, ModSeq: modseq}
}

func sel(p int, s int64, exists, uidnext uint32, hms uint64) history.Op {
	return history.Op{Process: p, Session: s, Kind: history.KindSelect, Mailbox: "INBOX", UIDValidity: 7, Exists: exists, HasExists: true, UIDNext: uidnext, HighestModSeq: hms}
}

func connect(p int, s int64) history.Op {
	return history.Op{Process: p, Session: s, Kind: history.KindConnect}
}

func appendOp(p int, s int64, uid uint32, mid string, flags ...string) history.Op {
	op := history.Op{Process: p, Session: s, Kind: history.KindAppend, Mailbox: "INBOX", MessageID: mid, Flags: flags, UIDValidity: 7}
	if uid != 0 {
		op.UIDs = []uint32{uid}
	}
	return op
}

func listing(p int, s int64, msgs ...history.Message) history.Op {
	return history.Op{Process: p, Session: s, Kind: history.KindFetch, Mailbox: "INBOX", UIDValidity: 7, ByUID: true, All: true, Messages: msgs}
}

func store(p int, s int64, mode string, uid uint32, flags ...string) history.Op {
	return history.Op{Process: p, Session: s, Kind: history.KindStore, Mailbox: "INBOX", UIDValidity: 7, ByUID: true, Targets: []uint32{uid}, StoreMode: mode, Flags: flags, Silent: true}
}

// base is a clean history: process 1 appends <m1> and lists it, process 2 selects later and
// lists it too.
func base() *hist {
	h := &hist{}
	h.add(0, 1, connect(1, 1)).
		add(2, 3, sel(1, 1, 0, 1, 1))
	ap := appendOp(1, 1, 1, "<m1>", `\Seen`)
	ap.Updates = []history.Update{{Kind: history.UpdateExists, Count: 1}}
	h.add(4, 5, ap).
		add(6, 7, listing(1, 1, msg(1, 1, "<m1>", 2, `\Seen`))).
		add(10, 11, connect(2, 2)).
		add(12, 13, sel(2, 2, 1, 2, 2)).
		add(14, 15, listing(2, 2, msg(1, 1, "<m1>", 2, `\Seen`)))
	return h
}

func kinds(r *checker.Result) []string {
	set := map[string]bool{}
	for _, a := range r.Anomalies {
		set[a.Kind] = true
	}
	return slices.Sorted(maps.Keys(set))
}

func TestViolations(t *testing.T) {
	for name, tc := range map[string]struct {
		want string
		h    func() *hist
	}{
		"lost acknowledged append": {checker.KindLostAck, func() *hist {
			h := &hist{}
			return h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 0, 1, 1)).
				add(4, 5, appendOp(1, 1, 1, "<m1>")).
				add(10, 11, connect(2, 2)).add(12, 13, sel(2, 2, 0, 2, 2)).
				add(14, 15, listing(2, 2))
		}},
		"UID reused": {checker.KindUIDReuse, func() *hist {
			h := &hist{}
			return h.add(0, 10, appendOp(1, 1, 1, "<m1>")).add(1, 11, appendOp(2, 2, 1, "<m2>"))
		}},
		"UID going back": {checker.KindUIDBack, func() *hist {
			h := &hist{}
			return h.add(0, 10, appendOp(1, 1, 5, "<m1>")).add(20, 30, appendOp(2, 2, 4, "<m2>"))
		}},
		"expunged UID returns": {checker.KindExpungedReturned, func() *hist {
			h := &hist{}
			h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 1, 2, 2)).
				add(4, 5, listing(1, 1, msg(1, 1, "<m1>", 2)))
			x := history.Op{Process: 1, Session: 1, Kind: history.KindUIDExpunge, Mailbox: "INBOX", UIDValidity: 7, Targets: []uint32{1}, ExpungedSeqs: []uint32{1}}
			return h.add(6, 7, x).
				add(10, 11, connect(2, 2)).add(12, 13, sel(2, 2, 1, 2, 3)).
				add(14, 15, listing(2, 2, msg(1, 1, "<m1>", 2)))
		}},
		"HIGHESTMODSEQ goes back": {checker.KindModSeqBack, func() *hist {
			h := &hist{}
			return h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 0, 5, 10)).
				add(10, 11, connect(1, 2)).add(12, 13, sel(1, 2, 0, 5, 8))
		}},
		"stale read after own write": {checker.KindStaleOwnRead, func() *hist {
			h := &hist{}
			return h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 0, 1, 1)).
				add(4, 5, appendOp(1, 1, 1, "<m1>")).
				add(6, 7, listing(1, 1))
		}},
		"flags not linearizable": {checker.KindFlags, func() *hist {
			h := &hist{}
			read := listing(2, 2, msg(1, 1, "<m1>", 2))
			read.All, read.Targets = false, []uint32{1}
			return h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 1, 2, 1)).
				add(5, 10, store(1, 1, history.StoreAdd, 1, `\Flagged`)).
				add(18, 19, connect(2, 2)).add(20, 21, sel(2, 2, 1, 2, 2)).
				add(22, 25, read)
		}},
		"EXPUNGE during FETCH": {checker.KindExpungeInCommand, func() *hist {
			h := &hist{}
			f := listing(1, 1)
			f.ByUID, f.All, f.Targets = false, false, []uint32{2}
			f.Updates = []history.Update{{Kind: history.UpdateExpunge, Seq: 1}}
			return h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 2, 3, 1)).add(4, 5, f)
		}},
		"sequence numbers past EXISTS": {checker.KindSeqInconsistent, func() *hist {
			h := &hist{}
			return h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 2, 4, 1)).
				add(4, 5, listing(1, 1, msg(1, 1, "<a>", 1), msg(2, 2, "<b>", 1), msg(3, 3, "<c>", 1)))
		}},
		"EXISTS shrinks without EXPUNGE": {checker.KindSeqInconsistent, func() *hist {
			h := &hist{}
			n := history.Op{Process: 1, Session: 1, Kind: history.KindNoop, Updates: []history.Update{{Kind: history.UpdateExists, Count: 1}}}
			return h.add(0, 1, connect(1, 1)).add(2, 3, sel(1, 1, 2, 4, 1)).add(4, 5, n)
		}},
		"failed append visible": {checker.KindFailedVisible, func() *hist {
			h := &hist{}
			failed := appendOp(1, 1, 0, "<m1>")
			failed.Outcome = history.Fail
			return h.add(0, 1, failed).
				add(10, 11, connect(2, 2)).add(12, 13, sel(2, 2, 1, 2, 2)).
				add(14, 15, listing(2, 2, msg(1, 1, "<m1>", 2)))
		}},
		"delivery applied twice": {checker.KindDuplicate, func() *hist {
			h := &hist{}
			d := history.Op{Process: 9, Session: 9, Kind: history.KindDeliver, Mailbox: "INBOX", MessageID: "<d1>"}
			return h.add(0, 1, d).
				add(10, 11, connect(2, 2)).add(12, 13, sel(2, 2, 2, 3, 2)).
				add(14, 15, listing(2, 2, msg(1, 1, "<d1>", 2), msg(2, 2, "<d1>", 2)))
		}},
	} {
		t.Run(name, func(t *testing.T) {
			res := checker.Check(tc.h().history())
			if got := kinds(res); !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("anomaly kinds %v, want exactly [%s]: %+v", got, tc.want, res.Anomalies)
			}
			for _, a := range res.Anomalies {
				if len(a.Ops) == 0 || a.Message == "" {
					t.Fatalf("anomaly without its ops or message: %+v", a)
				}
			}
			if res.Checks[tc.want] == 0 {
				t.Fatalf("no %s check counted: %v", tc.want, res.Checks)
			}
		})
	}
}

func TestCleanHistories(t *testing.T) {
	for name, h := range map[string]func() *hist{
		"base": base,
		"unknown append that applied": func() *hist {
			h := base()
			u := appendOp(1, 1, 0, "<m2>")
			u.Outcome = history.Unknown
			return h.add(20, 21, u).
				add(30, 31, connect(3, 3)).add(32, 33, sel(3, 3, 2, 3, 3)).
				add(34, 35, listing(3, 3, msg(1, 1, "<m1>", 2, `\Seen`), msg(2, 2, "<m2>", 3)))
		},
		"unknown append that did not apply": func() *hist {
			h := base()
			u := appendOp(1, 1, 0, "<m2>")
			u.Outcome = history.Unknown
			return h.add(20, 21, u).
				add(30, 31, connect(3, 3)).add(32, 33, sel(3, 3, 1, 3, 3)).
				add(34, 35, listing(3, 3, msg(1, 1, "<m1>", 2, `\Seen`)))
		},
		"unknown store, applied late": func() *hist {
			h := base()
			s := store(1, 1, history.StoreAdd, 1, "$x")
			s.Outcome = history.Unknown
			read := func(p int, sess int64, flags ...string) history.Op {
				return listing(p, sess, msg(1, 1, "<m1>", 3, flags...))
			}
			return h.add(20, 0, s).
				add(30, 31, connect(3, 3)).add(32, 33, sel(3, 3, 1, 2, 2)).
				add(34, 35, read(3, 3, `\Seen`)).
				add(40, 41, connect(4, 4)).add(42, 43, sel(4, 4, 1, 2, 3)).
				add(44, 45, read(4, 4, `\Seen`, "$x"))
		},
		"unknown store that never applied": func() *hist {
			h := base()
			s := store(1, 1, history.StoreSet, 1, "$x")
			s.Outcome = history.Unknown
			return h.add(20, 25, s).
				add(30, 31, connect(3, 3)).add(32, 33, sel(3, 3, 1, 2, 2)).
				add(34, 35, listing(3, 3, msg(1, 1, "<m1>", 2, `\Seen`)))
		},
		"expunge sent with the SELECT response": func() *hist {
			// Found in a real run: EXISTS 3, then two EXPUNGEs the feed had queued, in the
			// SELECT's response; the session's view has one message after them, so the
			// EXISTS 2 of its next APPEND is no shrink.
			h := base()
			s := sel(3, 3, 3, 4, 3)
			s.Updates = []history.Update{{Kind: history.UpdateExpunge, Seq: 3}, {Kind: history.UpdateExpunge, Seq: 2}}
			a := appendOp(3, 3, 4, "<m3>")
			a.Updates = []history.Update{{Kind: history.UpdateExists, Count: 2}}
			return h.add(30, 31, connect(3, 3)).add(32, 33, s).
				add(34, 35, listing(3, 3, msg(1, 1, "<m1>", 2, `\Seen`))).
				add(36, 37, a)
		},
		"message announced in the SELECT response": func() *hist {
			// Seed 67 of make jepsen: EXISTS 1 (the reply's count), then a message appended
			// meanwhile, EXISTS 2, before the tagged OK; the session's listing has both.
			h := base()
			a := appendOp(1, 1, 2, "<m2>")
			s := sel(3, 3, 1, 2, 2)
			s.Updates = []history.Update{{Kind: history.UpdateExists, Count: 2}}
			return h.add(30, 33, a).add(31, 32, connect(3, 3)).add(32, 34, s).
				add(35, 36, listing(3, 3, msg(1, 1, "<m1>", 2, `\Seen`), msg(2, 2, "<m2>", 3)))
		},
		"failed append never seen": func() *hist {
			h := base()
			f := appendOp(1, 1, 0, "<m2>")
			f.Outcome = history.Fail
			return h.add(20, 21, f).
				add(30, 31, connect(3, 3)).add(32, 33, sel(3, 3, 1, 2, 2)).
				add(34, 35, listing(3, 3, msg(1, 1, "<m1>", 2, `\Seen`)))
		},
		"delivery, then moved away": func() *hist {
			h := base()
			d := history.Op{Process: 9, Session: 9, Kind: history.KindDeliver, Mailbox: "INBOX", MessageID: "<d1>"}
			mv := history.Op{Process: 2, Session: 2, Kind: history.KindMove, Mailbox: "INBOX", UIDValidity: 7, ByUID: true, Targets: []uint32{2}, Dest: "Archive",
				DestUIDValidity: 8, SourceUIDs: []uint32{2}, UIDs: []uint32{1}, Updates: []history.Update{{Kind: history.UpdateExpunge, Seq: 2}}}
			arch := history.Op{Process: 3, Session: 3, Kind: history.KindSelect, Mailbox: "Archive", UIDValidity: 8, Exists: 1, HasExists: true, UIDNext: 2, HighestModSeq: 4}
			archList := listing(3, 3, msg(1, 1, "<d1>", 4))
			archList.Mailbox, archList.UIDValidity = "Archive", 8
			noop := history.Op{Process: 2, Session: 2, Kind: history.KindNoop, Updates: []history.Update{{Kind: history.UpdateExists, Count: 2}}}
			return h.add(20, 21, d).
				add(22, 23, noop).
				add(24, 25, listing(2, 2, msg(1, 1, "<m1>", 2, `\Seen`), msg(2, 2, "<d1>", 3))).
				add(26, 27, mv).
				add(28, 29, listing(2, 2, msg(1, 1, "<m1>", 2, `\Seen`))).
				add(30, 31, connect(3, 3)).add(32, 33, arch).add(34, 35, archList)
		},
		"flags read in a lagging session": func() *hist {
			// Session 2 selected before the STORE: its view may lag until the change
			// feed catches up (RFC 9051 7: updates come at command boundaries).
			h := base()
			read := listing(2, 2, msg(1, 1, "<m1>", 2, `\Seen`))
			return h.add(20, 21, store(1, 1, history.StoreRemove, 1, `\Seen`)).add(22, 23, read)
		},
	} {
		t.Run(name, func(t *testing.T) {
			res := checker.Check(h().history())
			if len(res.Anomalies) != 0 {
				t.Fatalf("anomalies in a clean history: %+v", res.Anomalies)
			}
			if res.Checks[checker.KindFlags] == 0 || res.Checks[checker.KindLostAck] == 0 {
				t.Fatalf("checks did not run: %v", res.Checks)
			}
		})
	}
}
