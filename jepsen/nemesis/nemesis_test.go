package nemesis

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestScheduleIsDeterministicAndCoversEveryKind(t *testing.T) {
	const duration = 60 * time.Second
	for seed := range int64(5) {
		a := Schedule(seed, duration, AllKinds)
		b := Schedule(seed, duration, AllKinds)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two schedules differ:\n%v\n%v", seed, a, b)
		}
		var kinds []string
		var end time.Duration
		for i, s := range a {
			if s.At < end {
				t.Errorf("seed %d: step %d (%s at %v) overlaps the one before, which ends at %v", seed, i, s.Kind, s.At, end)
			}
			if s.Duration < minDuration || s.Duration > maxDuration {
				t.Errorf("seed %d: step %d lasts %v", seed, i, s.Duration)
			}
			end = s.At + s.Duration
			kinds = append(kinds, s.Kind)
		}
		if end > duration {
			t.Errorf("seed %d: the last fault ends at %v, after the run's %v", seed, end, duration)
		}
		for _, k := range AllKinds {
			if !slices.Contains(kinds, k) {
				t.Errorf("seed %d: schedule lacks %s: %v", seed, k, kinds)
			}
		}
		if seed > 0 && reflect.DeepEqual(a, Schedule(seed-1, duration, AllKinds)) {
			t.Errorf("seeds %d and %d give the same schedule", seed-1, seed)
		}
	}
	if s := Schedule(1, 30*time.Second, []string{KillMeta}); len(s) < 2 {
		t.Errorf("one kind over 30s is scheduled %d times, want it repeated", len(s))
	}
	if s := Schedule(1, time.Second, AllKinds); len(s) != 0 {
		t.Errorf("a 1s run got %d steps", len(s))
	}
}

func TestPartitionLinks(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	has := func(links []Link, l Link) bool { return slices.Contains(links, l) }
	for p := range uint64(1 << 10) {
		links, _, _ := partitionLinks(PartitionLeader, nodes, "n2", p)
		if len(links) != 4 || !has(links, Link{"n2", "n1"}) || !has(links, Link{"n3", "n2"}) || has(links, Link{"n1", "n3"}) {
			t.Fatalf("leader isolated: %v", links)
		}
		links, target, _ := partitionLinks(PartitionMinority, nodes, "n2", p)
		if target == "n2" || len(links) != 4 {
			t.Fatalf("minority: isolated %s with %v", target, links)
		}
		links, _, _ = partitionLinks(PartitionOneWay, nodes, "n2", p)
		if !reflect.DeepEqual(links, []Link{{"n2", "n1"}, {"n2", "n3"}}) {
			t.Fatalf("one way: %v", links)
		}
		links, _, detail := partitionLinks(PartitionBridge, nodes, "n2", p)
		if len(links) != 2 || links[0].From != links[1].To || links[0].To != links[1].From {
			t.Fatalf("bridge: %v", links)
		}
		bridge := strings.Fields(detail)[1]
		if bridge == links[0].From || bridge == links[0].To {
			t.Fatalf("bridge %s is cut: %v", bridge, links)
		}
	}
}

// journal is a Cluster that performs nothing and writes down what it was asked, to check the
// executor's bookkeeping: every fault healed, in order, each window recorded. The real
// cluster is the e2e harness (e2e/jepsen_harness_test.go).
type journal struct {
	mu      sync.Mutex
	leader  string
	calls   []string
	open    map[int64]string
	next    int64
	windows []string
}

func (j *journal) note(format string, args ...any) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, fmt.Sprintf(format, args...))
	return nil
}

func (j *journal) MetaNodes() []string                            { return []string{"n1", "n2", "n3"} }
func (j *journal) Frontends() []string                            { return []string{"A", "B"} }
func (j *journal) Leader(context.Context) (string, error)         { return j.leader, nil }
func (j *journal) Kill(_ context.Context, t string) error         { return j.note("kill %s", t) }
func (j *journal) Pause(_ context.Context, t string) error        { return j.note("pause %s", t) }
func (j *journal) Resume(_ context.Context, t string) error       { return j.note("resume %s", t) }
func (j *journal) HealLinks(context.Context) error                { return j.note("heal links") }
func (j *journal) RemoveVoter(_ context.Context, id string) error { return j.note("remove %s", id) }
func (j *journal) AddVoter(_ context.Context, id string) error    { return j.note("add %s", id) }
func (j *journal) SnapshotGap() uint64                            { return 0 }
func (j *journal) Converge(context.Context) error                 { return j.note("converge") }
func (j *journal) Restart(_ context.Context, t string, off time.Duration) error {
	return j.note("restart %s %v", t, off)
}
func (j *journal) Cut(_ context.Context, links []Link, mode CutMode) error {
	return j.note("cut %d links %s", len(links), mode)
}
func (j *journal) TransferLeader(_ context.Context, to string) error {
	j.leader = to
	return j.note("transfer %s", to)
}
func (j *journal) LastIndex(context.Context, string) (uint64, error) { return 0, nil }
func (j *journal) ServiceFault(_ context.Context, s string, f ServiceFault) error {
	return j.note("fault %s %s", s, f.Mode)
}
func (j *journal) HealService(_ context.Context, s string) error { return j.note("heal %s", s) }

func (j *journal) FaultStart(kind, target, detail string) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next++
	if j.open == nil {
		j.open = map[int64]string{}
	}
	j.open[j.next] = kind
	j.calls = append(j.calls, "start "+kind)
	return j.next
}

func (j *journal) FaultEnd(id int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.windows = append(j.windows, j.open[id])
	j.calls = append(j.calls, "end "+j.open[id])
	delete(j.open, id)
}

func TestRunHealsEveryFaultAndRecordsItsWindow(t *testing.T) {
	var steps []Step
	for i, k := range AllKinds {
		steps = append(steps, Step{At: time.Duration(i) * time.Millisecond, Duration: time.Millisecond, Kind: k, Pick: uint64(i)})
	}
	j := &journal{leader: "n1"}
	outcomes, err := Run(context.Background(), j, steps, j, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != len(AllKinds) || len(j.open) != 0 || !reflect.DeepEqual(j.windows, AllKinds) {
		t.Fatalf("outcomes %d, open windows %v, windows %v", len(outcomes), j.open, j.windows)
	}
	for _, o := range outcomes {
		if o.Err != nil {
			t.Errorf("%s: %v", o.Step.Kind, o.Err)
		}
	}
	// Each injection is undone before the next fault starts.
	undo := map[string]string{"kill": "restart", "pause": "resume", "cut": "heal links", "remove": "add", "fault": "heal"}
	var pending []string
	for _, call := range j.calls {
		verb := strings.Fields(call)[0]
		if u, ok := undo[verb]; ok {
			pending = append(pending, u)
			continue
		}
		if len(pending) > 0 && strings.HasPrefix(call, pending[len(pending)-1]) {
			pending = pending[:len(pending)-1]
		}
		if verb == "start" && len(pending) > 0 {
			t.Fatalf("%s while %v is not undone; calls:\n%s", call, pending, strings.Join(j.calls, "\n"))
		}
	}
	if len(pending) > 0 || j.calls[len(j.calls)-1] != "converge" {
		t.Fatalf("not undone: %v; calls:\n%s", pending, strings.Join(j.calls, "\n"))
	}

	if _, err := Run(context.Background(), j, []Step{{Kind: "flood"}}, nil, nil); err == nil {
		t.Error("an unknown kind ran")
	}
}
