package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/jepsen/checker"
	"github.com/strata-mail/strata/jepsen/history"
	"github.com/strata-mail/strata/jepsen/report"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func op(id int64, kind string, start, end int, outcome history.Outcome) history.Op {
	return history.Op{ID: id, Kind: kind, Invoke: ms(start), Complete: ms(end), Outcome: outcome}
}

// A partition from 1 s to 3 s: writes stop from 0.9 s until 3.5 s, reads keep going; one
// write inside fails, one is unknown.
func TestReport(t *testing.T) {
	h := &history.History{Seed: 5, Ops: []history.Op{
		op(1, history.KindAppend, 800, 900, history.OK),
		op(2, history.KindAppend, 1100, 1200, history.Fail),
		op(3, history.KindStore, 1500, 2500, history.Unknown),
		op(4, history.KindFetch, 1500, 1510, history.OK),
		op(5, history.KindFetch, 2000, 2040, history.OK),
		op(6, history.KindAppend, 3400, 3500, history.OK),
		op(7, history.KindFetch, 3600, 3601, history.OK),
		op(8, history.KindNoop, 1500, 1501, history.OK),
	}, Faults: []history.Fault{{Kind: "partition-leader", Target: "n1", Start: ms(1000), End: ms(3000)}}}
	res := checker.Check(h)
	anomalous := &checker.Result{Ops: 1, Checks: map[string]int{checker.KindLostAck: 1}, Anomalies: []checker.Anomaly{{Kind: checker.KindLostAck, Message: "lost it", Ops: []history.Op{h.Ops[0]}}}}
	var b strings.Builder
	if err := report.Write(&b, "Jepsen", "Made by a test.", []report.Run{{History: h, Result: res}, {History: &history.History{Seed: 6}, Result: anomalous}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log(out)
	for _, want := range []string{
		"# Jepsen\n\nMade by a test.\n\n2 seeds, 9 operations checked, 1 anomalies.",
		"| lost-ack |",
		// writes inside: ops 2 and 3; reads: 4 and 5; longest without a write 900ms -> 3.5s.
		"| partition-leader | 1 | 2 (1 / 1) | 2 (0 / 0) | 2.6s | 1.56s |",
		"- seed 6, lost-ack: lost it (ops 1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
