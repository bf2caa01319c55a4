package checker_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-mail/strata/jepsen/checker"
	"github.com/strata-mail/strata/jepsen/history"
	"github.com/strata-mail/strata/jepsen/report"
)

var (
	historyFiles = flag.String("history", "", "saved histories (JSON lines; a glob) for TestRecheck")
	reportFile   = flag.String("report", "", "with -history, write the markdown report of those histories here")
	reportTitle  = flag.String("report-title", "Consistency under faults", "the report's title")
	reportNote   = flag.String("report-preface", "", "markdown put under the report's title: how the histories were made")
)

// TestRecheck checks histories saved by runs (e2e TestJepsen keeps a failing seed's, and
// every seed's with -jepsen.histories) again, offline, and can rebuild the report from them:
//
//	go test ./jepsen/checker -run TestRecheck -args -history 'bin/jepsen/*.jsonl' [-report FILE]
//
// Without -history it has nothing to do.
func TestRecheck(t *testing.T) {
	if *historyFiles == "" {
		t.Skip("no -history given")
	}
	paths, err := filepath.Glob(*historyFiles)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no history matches %q (%v)", *historyFiles, err)
	}
	slices.Sort(paths)
	var runs []report.Run
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		h, err := history.Load(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		res := checker.Check(h)
		// The report reads only each op's kind, outcome and times (and the anomalies' own
		// copies): drop the listings and updates, so that a hundred long histories fit.
		for i := range h.Ops {
			h.Ops[i].Messages, h.Ops[i].Updates, h.Ops[i].Nums = nil, nil, nil
		}
		runs = append(runs, report.Run{History: h, Result: res})
		t.Logf("seed %d: %d ops, %d faults, %d anomalies; checks %v", h.Seed, res.Ops, len(h.Faults), len(res.Anomalies), res.Checks)
		for _, a := range res.Anomalies {
			t.Errorf("seed %d: %s: %s", h.Seed, a.Kind, a.Message)
			for _, op := range a.Ops {
				t.Logf("    %+v", op)
			}
		}
	}
	slices.SortFunc(runs, func(a, b report.Run) int { return int(a.History.Seed - b.History.Seed) })
	if *reportFile != "" {
		f, err := os.Create(*reportFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := report.Write(f, *reportTitle, *reportNote, runs); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
