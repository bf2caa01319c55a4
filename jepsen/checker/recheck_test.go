package checker_test

import (
	"flag"
	"os"
	"testing"

	"github.com/strata-mail/strata/jepsen/checker"
	"github.com/strata-mail/strata/jepsen/history"
)

var historyFile = flag.String("history", "", "a saved history (JSON lines) for TestRecheck")

// TestRecheck checks a history saved by a run (e2e TestJepsen keeps a failing seed's) again,
// offline: go test ./jepsen/checker -run TestRecheck -history FILE. Without -history it has
// nothing to do.
func TestRecheck(t *testing.T) {
	if *historyFile == "" {
		t.Skip("no -history given")
	}
	f, err := os.Open(*historyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := history.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	res := checker.Check(h)
	t.Logf("seed %d: %d ops, %d faults; checks %v", h.Seed, res.Ops, len(h.Faults), res.Checks)
	for _, a := range res.Anomalies {
		t.Errorf("%s: %s", a.Kind, a.Message)
		for _, op := range a.Ops {
			t.Logf("    %+v", op)
		}
	}
}
