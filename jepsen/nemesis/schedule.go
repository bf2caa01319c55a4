// Package nemesis injects faults into a running Strata cluster on a seeded schedule: process
// crashes and pauses, network partitions between metadata nodes, leadership transfers, voter
// removal, snapshot installs on a lagging node, S3 and etcd outages and a clock jump. Schedule
// turns a seed into steps; Run executes them against a Cluster (the e2e harness implements
// it) and records every fault window in a Recorder.
//
// Invariants:
//
//   - Schedule is a pure function of its arguments: the same seed, duration and kinds give
//     the same steps. Steps never overlap, so one fault is active at a time, and each names
//     its kind's targets by role (the leader, a follower) resolved when it runs; Step.Pick
//     chooses among the candidates, so a run is repeatable as far as the cluster's own timing
//     allows.
//   - Every fault Run injects is healed before the next step starts and before Run returns,
//     whatever happened meanwhile (a cancelled context included), and Run ends by waiting for
//     the cluster to converge: every process running, a leader, every voter back, every node
//     caught up.
//   - A fault window is recorded from just before the fault is injected to just after it is
//     healed, so no client operation affected by a fault falls outside its window.
//
// Clocks. Raft timing, leader contact and every timeout in Strata use Go's monotonic clock,
// and etcd leases are TTLs kept by etcd, so a wall-clock jump does not touch them. The wall
// clock matters in one place: the leader stamps each command with its wall clock when it
// proposes it, and the state machine's log clock (the largest stamp seen, never going back)
// drives the request ID retention that makes retried commands idempotent (10 minutes), LMTP
// dedup windows, blob GC grace, journal and tombstone retention. ClockJump therefore restarts
// a follower with its clock off (the hidden --clock-offset flag of `strata metadata`) and
// hands it leadership; a forward jump moves the log clock forward for good (a later correct
// leader cannot move it back), a backward one freezes it until real time catches up.
package nemesis

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Fault kinds.
const (
	KillMeta          = "kill-meta"          // SIGKILL a metadata node (the leader or a follower), restart it
	KillFrontend      = "kill-frontend"      // SIGKILL a frontend, restart it on the same ports
	PauseMeta         = "pause-meta"         // SIGSTOP a metadata node, SIGCONT it
	PauseFrontend     = "pause-frontend"     // SIGSTOP a frontend, SIGCONT it
	PartitionMinority = "partition-minority" // one follower cut off from the other two nodes
	PartitionLeader   = "partition-leader"   // the leader cut off from the other two nodes
	PartitionBridge   = "partition-bridge"   // two nodes cut from each other, the third talks to both
	PartitionOneWay   = "partition-oneway"   // everything the leader sends to the others is lost
	TransferLeader    = "transfer-leader"    // hand leadership to a follower
	RemoveVoter       = "remove-voter"       // remove a follower from the group, add it back
	SnapshotInstall   = "snapshot-install"   // cut a follower off until the log it misses is compacted away
	S3Outage          = "s3-outage"          // S3 refuses or swallows every request
	S3Slow            = "s3-slow"            // S3 answers late
	EtcdOutage        = "etcd-outage"        // etcd refuses every request
	ClockJump         = "clock-jump"         // a node restarts with its clock off and leads
)

// AllKinds lists every fault kind.
var AllKinds = []string{
	KillMeta, KillFrontend, PauseMeta, PauseFrontend,
	PartitionMinority, PartitionLeader, PartitionBridge, PartitionOneWay,
	TransferLeader, RemoveVoter, SnapshotInstall,
	S3Outage, S3Slow, EtcdOutage, ClockJump,
}

// Step is one fault of a schedule.
type Step struct {
	At       time.Duration // earliest start, from the start of the run
	Duration time.Duration // how long the fault lasts before it is healed (at least)
	Kind     string
	// Pick chooses the target among the candidates the kind has when the step runs (which
	// follower, the leader or a follower, which frontend) and the variant of the fault.
	Pick uint64
}

// Bounds of a schedule: quiet time at the start and the end, and the shortest and longest
// fault window.
const (
	leadIn      = 2 * time.Second
	leadOut     = 2 * time.Second
	minDuration = time.Second
	maxDuration = 10 * time.Second
)

// Schedule returns the steps of a run of the given duration: kinds in a seeded order, each
// once before any repeats, with seeded fault windows and quiet gaps sized so that every kind
// fits once in the duration when it can (a window takes 40 to 70% of its share of the
// duration, between 1 and 10 seconds, and a share is at most 13 seconds, so few kinds
// over a long run repeat; the rest of the share is the gap after it). Unknown
// kinds are kept; Run refuses them.
func Schedule(seed int64, duration time.Duration, kinds []string) []Step {
	if len(kinds) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973)) // "nemesis"
	share := (duration - leadIn - leadOut) / time.Duration(len(kinds))
	share = min(max(share, 2*minDuration), maxDuration+3*time.Second)
	var steps []Step
	at := leadIn
	for {
		order := slices.Clone(kinds)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, kind := range order {
			frac := 0.4 + 0.3*rng.Float64()
			d := time.Duration(float64(share) * frac).Round(10 * time.Millisecond)
			d = min(max(d, minDuration), maxDuration)
			if at+d > duration-leadOut {
				return steps
			}
			steps = append(steps, Step{At: at, Duration: d, Kind: kind, Pick: rng.Uint64()})
			at += max(share, d+minDuration)
		}
	}
}
