package e2e

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/jepsen/nemesis"
)

// jepsenFaultsSeed picks the fault schedule of TestJepsenClusterFaults (nemesis.Schedule): a
// loop over seeds tries other orders and timings of the same fault kinds.
var jepsenFaultsSeed = flag.Int64("jepsen.faults-seed", 1, "the seed of TestJepsenClusterFaults's fault schedule")

// faultLog is a nemesis.Recorder that keeps the fault windows.
type faultLog struct {
	mu     sync.Mutex
	start  time.Time
	open   map[int64]string
	closed []string
}

func (f *faultLog) FaultStart(kind, target, detail string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := int64(len(f.open) + len(f.closed) + 1)
	f.open[id] = fmt.Sprintf("%s on %s (%s) from %v", kind, target, detail, time.Since(f.start).Round(time.Millisecond))
	return id
}

func (f *faultLog) FaultEnd(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, f.open[id]+fmt.Sprintf(" to %v", time.Since(f.start).Round(time.Millisecond)))
	delete(f.open, id)
}

// TestJepsenClusterFaults runs every fault kind of the nemesis once against the Jepsen
// cluster while IMAP clients append through both frontends, and checks that each fault was
// injected and healed, that the partitions which should depose the leader did, that a
// follower cut off long enough was brought back by a snapshot install, that the cluster
// converged, and that every acknowledged APPEND is in INBOX exactly once. The full checker
// (jepsen/checker) judges the histories of TestJepsen; this test proves the faults are real.
func TestJepsenClusterFaults(t *testing.T) {
	seed := *jepsenFaultsSeed
	c := startJepsenCluster(t, seed)

	l := newLedger()
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for i, addr := range append(c.IMAPAddrs(), c.IMAPAddrs()...) {
		writers.Add(1)
		go func() { defer writers.Done(); imapWriter(i+1, addr, l, stop) }()
	}
	stopWriters := sync.OnceFunc(func() { close(stop); writers.Wait() })
	t.Cleanup(stopWriters)

	steps := nemesis.Schedule(seed, 60*time.Second, nemesis.AllKinds)
	rec := &faultLog{start: time.Now(), open: map[int64]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	runStart := time.Now() // a moment before Run's own start, which Outcome times count from
	outcomes, err := nemesis.Run(ctx, c, steps, rec, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	stopWriters()

	kinds := map[string]bool{}
	for _, o := range outcomes {
		kinds[o.Step.Kind] = true
		t.Logf("%-18s %-8s %-70s leader %s -> %s, %v to %v", o.Step.Kind, o.Target, o.Detail, o.LeaderBefore, o.LeaderDuring,
			o.Start.Round(time.Millisecond), o.End.Round(time.Millisecond))
		if o.Err != nil {
			t.Errorf("%s on %s was not injected: %v", o.Step.Kind, o.Target, o.Err)
			continue
		}
		switch o.Step.Kind {
		case nemesis.PartitionLeader, nemesis.PartitionOneWay:
			if o.LeaderDuring == o.LeaderBefore || o.LeaderDuring == "none" {
				t.Errorf("%s did not depose leader %s (leader during the fault: %s)", o.Step.Kind, o.LeaderBefore, o.LeaderDuring)
			}
		case nemesis.TransferLeader, nemesis.ClockJump:
			if o.LeaderDuring != o.Target {
				t.Errorf("%s: leader during the fault is %s, want %s", o.Step.Kind, o.LeaderDuring, o.Target)
			}
		case nemesis.S3Outage:
			// Bodies go to S3 before metadata commits, so no APPEND can be sent and
			// acknowledged inside an S3 outage (50ms margin for the clocks' offset).
			from, to := runStart.Add(o.Start+50*time.Millisecond), runStart.Add(o.End)
			l.mu.Lock()
			for _, a := range l.acks {
				if !a.sent.Before(from) && !a.acked.After(to) {
					t.Errorf("an APPEND sent %v into the S3 outage was acknowledged before it ended", a.sent.Sub(from))
				}
			}
			l.mu.Unlock()
		case nemesis.SnapshotInstall:
			if !strings.Contains(c.node(o.Target).logs(), "Installed remote snapshot") {
				t.Errorf("snapshot-install: %s never installed a snapshot (%s)", o.Target, o.Detail)
			}
		}
	}
	for _, k := range nemesis.AllKinds {
		if !kinds[k] {
			t.Errorf("fault kind %s never ran", k)
		}
	}
	rec.mu.Lock()
	if len(rec.open) > 0 {
		t.Errorf("fault windows never closed: %v", rec.open)
	}
	rec.mu.Unlock()
	t.Logf("strata cluster status after the faults:\n%s", c.clusterStatus())

	l.mu.Lock()
	t.Logf("IMAP: %d APPENDs OK, %d outcome unknown, %d UID EXPUNGEs OK; %d NO [UNAVAILABLE] %v, %d disconnects; other errors: %v",
		len(l.acked), len(l.unknown), len(l.expunged), l.unavailable, l.unavailableOps, l.disconnects, l.failures)
	acked := len(l.acked)
	l.mu.Unlock()
	// How often a writer's APPEND was answered before its frontend's feed of INBOX had
	// delivered it, the case in which its UID STORE and UID EXPUNGE must wait for the feed
	// (frontend/imap awaitOwnAdditions) or answer NO [UNAVAILABLE].
	for _, f := range c.frontends {
		t.Logf("frontend %s: %d changes of its own a session's feed had not delivered at the response, %d UID commands refused for it",
			f.name, strings.Count(f.logs(), "change feed is behind this session's own change"), strings.Count(f.logs(), "UID command refused"))
	}
	if acked == 0 {
		t.Fatal("no APPEND was acknowledged")
	}
	got, err := fetchMessageIDs(c.IMAPAddrs()[1], "INBOX")
	if err != nil {
		t.Fatalf("UID FETCH of INBOX: %v", err)
	}
	l.check(t, got)
}
