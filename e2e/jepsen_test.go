package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/jepsen/checker"
	"github.com/strata-mail/strata/jepsen/history"
	"github.com/strata-mail/strata/jepsen/nemesis"
	"github.com/strata-mail/strata/jepsen/report"
	"github.com/strata-mail/strata/jepsen/workload"
)

// The consistency checker's run (issue 13): `make jepsen SEEDS=100 DURATION=60s` passes these
// flags for the long run; without them TestJepsen is the short seeded run of make test.
var (
	jepsenSeeds     = flag.Int("jepsen.seeds", 0, "how many seeds TestJepsen runs, from -jepsen.first-seed; 0 runs the regression seeds (jepsenRegressions)")
	jepsenFirstSeed = flag.Int64("jepsen.first-seed", 1, "the first seed TestJepsen runs")
	jepsenDuration  = flag.Duration("jepsen.duration", 30*time.Second, "the fault schedule of each seed")
	jepsenFaults    = flag.String("jepsen.faults", "", "comma-separated fault kinds (jepsen/nemesis); all when empty")
	jepsenReport    = flag.String("jepsen.report", "", "write the markdown report of TestJepsen's seeds to this file")
	jepsenHistories = flag.String("jepsen.histories", "", "keep every seed's history (JSON lines) in this directory; a failing seed's is kept in any case")
)

// jepsenRegressions are the seeds (all faults, 30 s) that found an anomaly once, run by the
// short run of make test. Timing is not seeded, so a seed makes its schedule and workload
// repeat, not its interleaving; each found its bug in most runs.
var jepsenRegressions = []struct {
	seed  int64
	found string
}{
	// An APPEND and a MOVE answered NO [UNAVAILABLE] when the leader changed under them
	// (Canceled, or retries exhausted) had committed: failed-write-visible, then lost-ack
	// and a duplicate when the client acted on the NO. Fixed: unknown outcomes are retried
	// with the same request ID and, if still unknown, end the session with BYE.
	{2, "failed-write-visible"},
	{18, "failed-write-visible"},
	// A metadata node restarted (for the clock jump) right after a snapshot whose raft index
	// was past the state machine's last entry (a new leader's no-op) refused to start:
	// replication's restoreIfBehind wanted the two equal.
	{15, "the cluster did not heal"},
}

// jepsenClients is how many IMAP clients the workload runs; a quarter of its ops are LMTP
// deliveries besides.
const jepsenClients = 6

// jepsenMailboxes are the mailboxes of every account the workload uses.
var jepsenMailboxes = []string{"INBOX", "Archive", "Work"}

// TestJepsen runs seeded workloads through both frontends of a real cluster while the nemesis
// injects faults, and checks each history (jepsen/checker). A seed with an anomaly fails
// with the anomalies and the path of its saved history, which `go test ./jepsen/checker
// -run TestRecheck -args -history FILE` checks again offline.
func TestJepsen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster per seed")
	}
	kinds := nemesis.AllKinds
	if *jepsenFaults != "" {
		kinds = strings.Split(*jepsenFaults, ",")
	}
	seeds := []int64{}
	for i := range *jepsenSeeds {
		seeds = append(seeds, *jepsenFirstSeed+int64(i))
	}
	if len(seeds) == 0 {
		for _, r := range jepsenRegressions {
			seeds = append(seeds, r.seed)
		}
	}
	var runs []report.Run
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			run := runJepsen(t, seed, *jepsenDuration, kinds)
			runs = append(runs, run)
			reportAnomalies(t, run)
		})
	}
	if *jepsenReport != "" && len(runs) > 0 {
		writeJepsenReport(t, *jepsenReport, runs)
	}
}

// runJepsen runs one seed: a cluster, the workload for the whole fault schedule and a quiet
// tail after it, final reads through every frontend, and the checker.
func runJepsen(t *testing.T, seed int64, duration time.Duration, kinds []string) report.Run {
	t.Helper()
	c := startJepsenCluster(t, seed)
	rec := history.NewRecorder(seed)
	var accounts []workload.Account
	for _, a := range c.Accounts() {
		accounts = append(accounts, workload.Account{User: a.User, Password: a.Password, Address: a.Address})
	}
	cfg := workload.Config{
		Seed:      seed,
		IMAPAddrs: c.IMAPAddrs(),
		LMTPAddrs: c.LMTPAddrs(),
		Accounts:  accounts,
		Mailboxes: jepsenMailboxes,
		Clients:   jepsenClients,
		// The workload ends when the context does: after the faults, their healing and a
		// quiet tail.
		Duration:  time.Hour,
		OpTimeout: 10 * time.Second,
		Recorder:  rec,
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	wctx, stopWorkload := context.WithCancel(ctx)
	workloadDone := make(chan error, 1)
	go func() { workloadDone <- workload.Run(wctx, cfg) }()

	outcomes, err := nemesis.Run(ctx, c, nemesis.Schedule(seed, duration, kinds), rec, t.Logf)
	for _, o := range outcomes {
		if o.Err != nil {
			t.Errorf("%s on %s was not injected: %v", o.Step.Kind, o.Target, o.Err)
		}
	}
	if err != nil {
		stopWorkload()
		<-workloadDone
		t.Fatalf("the cluster did not heal: %v", err)
	}
	// A quiet tail: writes acknowledged after the faults are read too.
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
	stopWorkload()
	if err := <-workloadDone; err != nil {
		t.Fatalf("workload: %v", err)
	}
	if err := workload.FinalReads(ctx, cfg); err != nil {
		t.Errorf("final reads: %v", err)
	}
	h := rec.History()
	res := checker.Check(h)
	t.Logf("seed %d: %d ops, %d faults, %d anomalies; checks %v", seed, res.Ops, len(h.Faults), len(res.Anomalies), res.Checks)
	if len(res.Anomalies) > 0 || *jepsenHistories != "" {
		saveHistory(t, h)
	}
	return report.Run{History: h, Result: res}
}

// reportAnomalies fails t with each anomaly and the slice of history that shows it.
func reportAnomalies(t *testing.T, run report.Run) {
	t.Helper()
	for _, a := range run.Result.Anomalies {
		var b strings.Builder
		for _, op := range a.Ops {
			fmt.Fprintf(&b, "\n    %+v", op)
		}
		t.Errorf("seed %d: %s: %s%s", run.History.Seed, a.Kind, a.Message, b.String())
	}
}

// saveHistory writes h as JSON lines into -jepsen.histories, or the test's output directory.
func saveHistory(t *testing.T, h *history.History) {
	t.Helper()
	dir := *jepsenHistories
	if dir == "" {
		dir = t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
		return
	}
	path := filepath.Join(dir, fmt.Sprintf("jepsen-seed-%d.jsonl", h.Seed))
	f, err := os.Create(path)
	if err == nil {
		err = h.Save(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Errorf("save history: %v", err)
		return
	}
	t.Logf("history of seed %d saved in %s", h.Seed, path)
}

func writeJepsenReport(t *testing.T, path string, runs []report.Run) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	title := fmt.Sprintf("Consistency under faults: %d seeds of %v", len(runs), *jepsenDuration)
	if err := report.Write(f, title, "Written by e2e TestJepsen (-jepsen.report).", runs); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("report written to %s", path)
}

// jepsenMutations are the deliberately broken builds (internal/mutation), the faults of a short
// run that expose each, and the anomaly the checker must report for it.
var jepsenMutations = []struct {
	tag    string
	seed   int64
	faults []string
	want   string
}{
	// APPENDs refused during an S3 outage are acknowledged anyway: lost.
	{"jepsen_mutation_ackuncommitted", 1, []string{nemesis.S3Outage, nemesis.PartitionLeader}, "lost-ack"},
	// A cut-off follower serves a session that just wrote without its read point.
	{"jepsen_mutation_stalereads", 1, []string{nemesis.PartitionMinority, nemesis.SnapshotInstall}, "stale-own-read"},
	// The follower that installs a snapshot hands out a UID again.
	{"jepsen_mutation_uidnextback", 1, []string{nemesis.SnapshotInstall, nemesis.KillMeta}, "uid-reuse"},
}

// TestJepsenFindsMutations checks the checker: each deliberately broken build of strata,
// run for a short seeded schedule, must be reported with an anomaly of the kinds it causes.
func TestJepsenFindsMutations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds strata three times and starts a cluster for each")
	}
	for _, m := range jepsenMutations {
		t.Run(strings.TrimPrefix(m.tag, "jepsen_mutation_"), func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "strata")
			build := exec.Command("go", "build", "-tags", m.tag, "-o", bin, "github.com/strata-mail/strata/cmd/strata")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build with -tags %s: %v\n%s", m.tag, err, out)
			}
			// The e2e harness starts strataBin; no e2e test runs in parallel.
			saved := strataBin
			strataBin = bin
			t.Cleanup(func() { strataBin = saved })
			run := runJepsen(t, m.seed, 15*time.Second, m.faults)
			found := map[string]int{}
			for _, a := range run.Result.Anomalies {
				found[a.Kind]++
			}
			t.Logf("anomalies found: %v", found)
			if found[m.want] == 0 {
				t.Errorf("the %s build ran seed %d without a %s anomaly (found %v)", m.tag, m.seed, m.want, found)
			}
		})
	}
}
