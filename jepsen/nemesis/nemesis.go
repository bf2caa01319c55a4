package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Link is the traffic one metadata node sends another over Raft.
type Link struct{ From, To string }

// CutMode is how a partition cuts its links.
type CutMode string

const (
	// Blackhole swallows the link's traffic and keeps connections open, as a cut cable does.
	Blackhole CutMode = "blackhole"
	// Drop closes the link's connections and refuses new ones, as a node that went away
	// does; it cuts both directions of a link.
	Drop CutMode = "drop"
)

// ServiceFault is what an outside service (S3, etcd) does to requests while faulty.
type ServiceFault struct {
	Mode  string        // "drop" (refused), "blackhole" (swallowed) or "delay"
	Delay time.Duration // each way, for "delay"
}

// Cluster is what the nemesis needs of a running cluster. Targets are node IDs (metadata
// nodes) and frontend names. Methods are called from one goroutine, one at a time; each
// returns once its change has taken effect (a restarted process is ready).
type Cluster interface {
	MetaNodes() []string
	Frontends() []string
	// Leader returns the current Raft leader, waiting for one.
	Leader(ctx context.Context) (string, error)
	Kill(ctx context.Context, target string) error
	// Restart starts a killed target again; a metadata node's commands are stamped with its
	// wall clock plus clockOffset (zero for frontends).
	Restart(ctx context.Context, target string, clockOffset time.Duration) error
	Pause(ctx context.Context, target string) error
	Resume(ctx context.Context, target string) error
	// Cut makes the links lose their traffic; HealLinks restores every link.
	Cut(ctx context.Context, links []Link, mode CutMode) error
	HealLinks(ctx context.Context) error
	TransferLeader(ctx context.Context, to string) error
	RemoveVoter(ctx context.Context, id string) error
	// AddVoter adds a removed node back and waits until it is a voter again.
	AddVoter(ctx context.Context, id string) error
	// LastIndex is the last Raft log index of node id.
	LastIndex(ctx context.Context, id string) (uint64, error)
	// SnapshotGap is how many entries the leader must append while a follower is cut off
	// before the entries it misses are compacted away (snapshot threshold + trailing logs).
	SnapshotGap() uint64
	// ServiceFault makes service ("s3" or "etcd") faulty; HealService restores it.
	ServiceFault(ctx context.Context, service string, f ServiceFault) error
	HealService(ctx context.Context, service string) error
	// Converge waits until every process runs, the group has a leader and all its voters,
	// and every node has applied what the leader had committed.
	Converge(ctx context.Context) error
}

// Recorder receives the fault windows (jepsen/history's Recorder through an adapter).
type Recorder interface {
	FaultStart(kind, target, detail string) (id int64)
	FaultEnd(id int64)
}

// Outcome is what one step did.
type Outcome struct {
	Step   Step
	Target string
	Detail string
	// LeaderBefore and LeaderDuring are the leader when the fault was injected and just
	// before it was healed.
	LeaderBefore, LeaderDuring string
	Start, End                 time.Duration // from the start of the run
	Err                        error         // the fault could not be injected (it was still healed)
}

// Run executes steps against c, recording each fault window in rec (may be nil). It returns
// what every step did; its error is a heal or the final convergence that failed, after which
// the cluster may not be whole. logf (may be nil) narrates.
func Run(ctx context.Context, c Cluster, steps []Step, rec Recorder, logf func(format string, args ...any)) ([]Outcome, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	var outcomes []Outcome
	for _, step := range steps {
		if !slices.Contains(AllKinds, step.Kind) {
			return outcomes, fmt.Errorf("nemesis: unknown fault kind %q", step.Kind)
		}
		if wait := time.Until(start.Add(step.At)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		o, err := runStep(ctx, c, step, rec, start, logf)
		outcomes = append(outcomes, o)
		if err != nil {
			return outcomes, err
		}
	}
	cctx, cancel := healContext()
	defer cancel()
	if err := c.Converge(cctx); err != nil {
		return outcomes, fmt.Errorf("nemesis: cluster did not converge after the faults: %w", err)
	}
	return outcomes, nil
}

// healTimeout bounds healing one fault and the final convergence; heals use their own
// context so that a cancelled run still leaves the cluster whole.
const healTimeout = 2 * time.Minute

func healContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), healTimeout)
}

// fault is one injected fault: how to heal it.
type fault struct {
	heal func(ctx context.Context) error
	// hold, if set, replaces waiting out the step's duration.
	hold func(ctx context.Context, d time.Duration) string
}

func runStep(ctx context.Context, c Cluster, step Step, rec Recorder, start time.Time, logf func(string, ...any)) (Outcome, error) {
	o := Outcome{Step: step}
	ictx, cancel := context.WithTimeout(ctx, healTimeout)
	defer cancel()
	leader, err := c.Leader(ictx)
	if err != nil {
		o.Err = fmt.Errorf("find the leader: %w", err)
		return o, nil
	}
	o.LeaderBefore = leader
	plan, err := planFault(c, step, leader)
	if err != nil {
		o.Err = err
		return o, nil
	}
	o.Target, o.Detail = plan.target, plan.detail
	var id int64
	if rec != nil {
		id = rec.FaultStart(step.Kind, plan.target, plan.detail)
	}
	o.Start = time.Since(start)
	logf("nemesis: %s on %s (%s) for %v", step.Kind, plan.target, plan.detail, step.Duration)
	f, injectErr := plan.inject(ictx)
	if injectErr != nil {
		o.Err = injectErr
		logf("nemesis: %s on %s failed: %v", step.Kind, plan.target, injectErr)
	}
	if injectErr == nil {
		if f.hold != nil {
			if more := f.hold(ctx, step.Duration); more != "" {
				o.Detail += "; " + more
			}
		} else {
			select {
			case <-time.After(step.Duration):
			case <-ctx.Done():
			}
		}
	}
	// Still inside the fault: the leader it left. An election on a loaded machine (CI
	// shares 2 cores with the whole suite) can take seconds past the step's end, so this
	// waits up to 10 s for one before it reports none.
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	o.LeaderDuring = leaderNow(lctx, c)
	lcancel()
	var healErr error
	if f.heal != nil {
		hctx, cancel := healContext()
		healErr = f.heal(hctx)
		cancel()
	}
	o.End = time.Since(start)
	if rec != nil {
		rec.FaultEnd(id)
	}
	if healErr != nil {
		return o, fmt.Errorf("nemesis: heal %s on %s: %w", step.Kind, plan.target, healErr)
	}
	logf("nemesis: healed %s on %s (leader before %s, during %s)", step.Kind, plan.target, o.LeaderBefore, o.LeaderDuring)
	return o, nil
}

func leaderNow(ctx context.Context, c Cluster) string {
	l, err := c.Leader(ctx)
	if err != nil {
		return "none"
	}
	return l
}

// plan is a fault resolved against the cluster, not yet injected. inject returns the fault
// with its heal even when it fails part way, so what was done is undone.
type plan struct {
	target, detail string
	inject         func(ctx context.Context) (fault, error)
}

// pick returns candidates[p % len], or "" if there are none.
func pick(candidates []string, p uint64) string {
	if len(candidates) == 0 {
		return ""
	}
	return candidates[p%uint64(len(candidates))]
}

func without(all []string, drop ...string) []string {
	var out []string
	for _, x := range all {
		if !slices.Contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}

// metaTarget picks the leader when the low bit of p is 0, a follower otherwise.
func metaTarget(nodes []string, leader string, p uint64) (string, string) {
	if p&1 == 0 {
		return leader, "leader"
	}
	return pick(without(nodes, leader), p>>1), "follower"
}

func planFault(c Cluster, step Step, leader string) (plan, error) {
	nodes, frontends := c.MetaNodes(), c.Frontends()
	p := step.Pick
	followers := without(nodes, leader)
	if len(followers) < 2 && strings.HasPrefix(step.Kind, "partition") {
		return plan{}, errors.New("partitions need at least three metadata nodes")
	}
	switch step.Kind {
	case KillMeta, KillFrontend:
		target, role := metaTarget(nodes, leader, p)
		if step.Kind == KillFrontend {
			target, role = pick(frontends, p), "frontend"
		}
		return plan{target: target, detail: role, inject: func(ctx context.Context) (fault, error) {
			f := fault{heal: func(ctx context.Context) error { return c.Restart(ctx, target, 0) }}
			return f, c.Kill(ctx, target)
		}}, nil

	case PauseMeta, PauseFrontend:
		target, role := metaTarget(nodes, leader, p)
		if step.Kind == PauseFrontend {
			target, role = pick(frontends, p), "frontend"
		}
		return plan{target: target, detail: role, inject: func(ctx context.Context) (fault, error) {
			f := fault{heal: func(ctx context.Context) error { return c.Resume(ctx, target) }}
			return f, c.Pause(ctx, target)
		}}, nil

	case PartitionMinority, PartitionLeader, PartitionBridge, PartitionOneWay:
		links, target, detail := partitionLinks(step.Kind, nodes, leader, p)
		mode := Blackhole
		if step.Kind != PartitionOneWay && p&(1<<8) != 0 {
			mode = Drop
		}
		return plan{target: target, detail: detail + ", " + string(mode), inject: func(ctx context.Context) (fault, error) {
			f := fault{heal: c.HealLinks}
			return f, c.Cut(ctx, links, mode)
		}}, nil

	case SnapshotInstall:
		target := pick(followers, p)
		var links []Link
		for _, n := range without(nodes, target) {
			links = append(links, Link{target, n}, Link{n, target})
		}
		return plan{target: target, detail: "follower cut off until the log it misses is compacted", inject: func(ctx context.Context) (fault, error) {
			from, err := c.LastIndex(ctx, leader)
			f := fault{heal: c.HealLinks}
			if err != nil {
				return f, err
			}
			if err := c.Cut(ctx, links, Blackhole); err != nil {
				return f, err
			}
			f.hold = func(ctx context.Context, d time.Duration) string {
				return holdForGap(ctx, c, leader, from, d)
			}
			return f, nil
		}}, nil

	case TransferLeader:
		target := pick(followers, p)
		return plan{target: target, detail: "from " + leader, inject: func(ctx context.Context) (fault, error) {
			return fault{}, c.TransferLeader(ctx, target)
		}}, nil

	case RemoveVoter:
		target := pick(followers, p)
		return plan{target: target, detail: "follower removed, then added back", inject: func(ctx context.Context) (fault, error) {
			f := fault{heal: func(ctx context.Context) error { return c.AddVoter(ctx, target) }}
			return f, c.RemoveVoter(ctx, target)
		}}, nil

	case S3Outage, S3Slow, EtcdOutage:
		service := "s3"
		if step.Kind == EtcdOutage {
			service = "etcd"
		}
		sf := ServiceFault{Mode: "drop"}
		switch {
		case step.Kind == S3Slow:
			sf = ServiceFault{Mode: "delay", Delay: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, time.Second}[p%3]}
		case p&1 == 1:
			sf.Mode = "blackhole"
		}
		detail := sf.Mode
		if sf.Mode == "delay" {
			detail += " " + sf.Delay.String()
		}
		return plan{target: service, detail: detail, inject: func(ctx context.Context) (fault, error) {
			f := fault{heal: func(ctx context.Context) error { return c.HealService(ctx, service) }}
			return f, c.ServiceFault(ctx, service, sf)
		}}, nil

	case ClockJump:
		target := pick(followers, p)
		offset := []time.Duration{20 * time.Minute, 2 * time.Hour, -time.Hour}[p%3]
		return plan{target: target, detail: fmt.Sprintf("restarted with its clock %+v off, then made leader", offset), inject: func(ctx context.Context) (fault, error) {
			f := fault{heal: func(ctx context.Context) error {
				if err := c.Kill(ctx, target); err != nil {
					return err
				}
				return c.Restart(ctx, target, 0)
			}}
			if err := c.Kill(ctx, target); err != nil {
				return f, err
			}
			if err := c.Restart(ctx, target, offset); err != nil {
				return f, err
			}
			return f, c.TransferLeader(ctx, target)
		}}, nil
	}
	return plan{}, fmt.Errorf("nemesis: unknown fault kind %q", step.Kind)
}

// partitionLinks returns the links a partition kind cuts among nodes, the node it isolates (or
// the pair it separates) and a description.
func partitionLinks(kind string, nodes []string, leader string, p uint64) ([]Link, string, string) {
	followers := without(nodes, leader)
	both := func(a string, others ...string) []Link {
		var links []Link
		for _, b := range others {
			links = append(links, Link{a, b}, Link{b, a})
		}
		return links
	}
	switch kind {
	case PartitionMinority:
		f := pick(followers, p)
		return both(f, without(nodes, f)...), f, "follower isolated"
	case PartitionLeader:
		return both(leader, followers...), leader, "leader isolated"
	case PartitionBridge:
		// The leader is either the bridge or one end of the cut link.
		a := pick(followers, p)
		if p&(1<<9) != 0 {
			b := pick(without(followers, a), p>>1)
			return both(a, b), a + "|" + b, "bridge " + leader + " (leader)"
		}
		bridge := pick(without(followers, a), p>>1)
		return both(leader, a), leader + "|" + a, "bridge " + bridge + " (follower)"
	default: // PartitionOneWay
		var links []Link
		for _, f := range followers {
			links = append(links, Link{leader, f})
		}
		return links, leader, "everything the leader sends is lost"
	}
}

// holdForGap keeps a follower cut off for at least d and until the leader's log has grown by
// the snapshot gap since from (the follower then needs a snapshot), but no longer than 6×d.
func holdForGap(ctx context.Context, c Cluster, leader string, from uint64, d time.Duration) string {
	gap := c.SnapshotGap()
	begin := time.Now()
	for {
		elapsed := time.Since(begin)
		idx, err := c.LastIndex(ctx, leader)
		if err == nil && idx >= from+gap && elapsed >= d {
			return fmt.Sprintf("leader log grew by %d (gap %d)", idx-from, gap)
		}
		if elapsed >= 6*d || ctx.Err() != nil {
			return fmt.Sprintf("leader log grew by %d only (gap %d): maybe no snapshot install", idx-min(idx, from), gap)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}
