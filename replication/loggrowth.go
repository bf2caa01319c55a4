package replication

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Raft snapshots on the count of entries since the last one (SnapshotThreshold), but an
// entry may be one small STORE or an Append of 64 messages' metadata: a store filled by an
// import holds GBs of log in a few thousand entries, below the threshold, and raft reads
// and hands the state machine every entry after the last snapshot at each start (the
// state machine skips them; doc.go). The node therefore also asks for a snapshot once the
// entries stored after the last one take SnapshotBytes, and keeps about TrailingBytes of
// entries behind a snapshot rather than TrailingLogs of whatever size.
const (
	// DefaultSnapshotBytes bounds the log a start reads back (docs/benchmarks.md,
	// "Restart replay"): about 1.5 s of CPU per start at most. Each snapshot streams the
	// whole store, so a lower bound slows a large import (128 MiB made a 200,000-message
	// import snapshot at every 60,000 messages); at 512 MiB a day's ordinary traffic (small
	// entries, snapshotted by count) never reaches it, and an import of a million messages
	// (2 GiB of log) snapshots four times.
	DefaultSnapshotBytes = 512 << 20
	// minTrailingLogs is the fewest entries a byte-bounded compaction keeps.
	minTrailingLogs = 64
	// replayPoll is how often a node that starts looks whether raft has replayed the log.
	replayPoll = 100 * time.Millisecond
	// retrailInterval is how often TrailingLogs follows the mean size of recent entries.
	retrailInterval = time.Minute
	// snapshotRetryDelay spaces byte-triggered snapshots after a failed one.
	snapshotRetryDelay = 10 * time.Second
)

// logGrowth counts the bytes (their encoding, before compression) and the entries the log
// store has stored, and how much of that lies after the latest snapshot; it signals over
// once that passes threshold.
type logGrowth struct {
	threshold uint64
	over      chan struct{} // capacity 1: a pending signal

	mu sync.Mutex
	// marks are the running totals at the last index of each write after the snapshot,
	// in index order; base is the totals at the snapshot's index.
	marks []growthMark
	base  growthMark
	total growthMark
}

// growthMark is running totals of what the store has stored, up to index.
type growthMark struct {
	index, bytes, entries uint64
}

func newLogGrowth(threshold uint64) *logGrowth {
	return &logGrowth{threshold: threshold, over: make(chan struct{}, 1)}
}

// stored counts entries stored, the last of them at index.
func (g *logGrowth) stored(index, bytes, entries uint64) {
	g.mu.Lock()
	g.total = growthMark{index: index, bytes: g.total.bytes + bytes, entries: g.total.entries + entries}
	g.marks = append(g.marks, g.total)
	over := g.total.bytes-g.base.bytes >= g.threshold
	g.mu.Unlock()
	if over {
		g.signal()
	}
}

// signal leaves a signal on over unless one is pending.
func (g *logGrowth) signal() {
	select {
	case g.over <- struct{}{}:
	default:
	}
}

// snapshotAt takes off what a snapshot up to index covers: every write whose last entry
// is at or below it.
func (g *logGrowth) snapshotAt(index uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	covered := 0
	for covered < len(g.marks) && g.marks[covered].index <= index {
		g.base = g.marks[covered]
		covered++
	}
	g.marks = append(g.marks[:0], g.marks[covered:]...)
}

// sinceSnapshot is the bytes and entries stored after the latest snapshot.
func (g *logGrowth) sinceSnapshot() (bytes, entries uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total.bytes - g.base.bytes, g.total.entries - g.base.entries
}

// snapshotOnGrowth asks raft for a snapshot each time the log after the latest one has
// grown to SnapshotBytes. After a snapshot that took d it waits d before the next, so that
// snapshots of a large store under a heavy import take at most half the time. It takes
// none before raft has handed the state machine the log stored at the start (up to
// storedAtStart): one taken during that replay would cover only part of it.
//
// Between snapshots it keeps raft's TrailingLogs at about trailingBytes of entries of the
// mean size of those after the latest snapshot, so that the snapshots raft takes on its
// own count compact to the same bound, and a log of small entries after large ones keeps
// more of them again.
func (n *Node) snapshotOnGrowth(growth *logGrowth, storedAtStart, trailingBytes, maxTrailing uint64) {
	defer n.wg.Done()
	retrail := time.NewTicker(retrailInterval)
	defer retrail.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-retrail.C:
			growth.snapshotAt(n.lastSnapshotIndex())
			if bytes, entries := growth.sinceSnapshot(); entries >= minTrailingLogs {
				if err := n.boundTrailingLogs(bytes/entries, trailingBytes, maxTrailing); err != nil {
					n.logger.Warn("bound the raft log kept behind a snapshot", "err", err)
				}
			}
			continue
		case <-growth.over:
		}
		if n.raft.AppliedIndex() < storedAtStart {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(replayPoll):
			}
			growth.signal()
			continue
		}
		// Raft snapshots on its own too (SnapshotThreshold), and a follower installs the
		// leader's: count from the latest.
		growth.snapshotAt(n.lastSnapshotIndex())
		bytes, entries := growth.sinceSnapshot()
		if bytes < growth.threshold {
			continue
		}
		if err := n.boundTrailingLogs(bytes/max(entries, 1), trailingBytes, maxTrailing); err != nil {
			n.logger.Warn("bound the raft log kept behind a snapshot", "err", err)
		}
		start := time.Now()
		err := n.await(n.ctx, n.raft.Snapshot())
		took := time.Since(start)
		wait := took
		switch {
		case n.ctx.Err() != nil:
			return
		case err == nil:
			growth.snapshotAt(n.lastSnapshotIndex())
			n.logger.Info("raft snapshot taken: the log after the last one passed its byte threshold",
				"log_bytes", bytes, "log_entries", entries, "threshold", growth.threshold, "took", took)
		case errors.Is(err, raft.ErrNothingNewToSnapshot):
		default:
			n.logger.Warn("raft snapshot on log growth failed", "log_bytes", bytes, "err", err)
			wait = max(wait, snapshotRetryDelay)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		// Writes during the snapshot and the wait may have passed the threshold again;
		// their signal was taken meanwhile, or there were none, and a node that goes
		// quiet must not keep more than the threshold until its next write.
		growth.snapshotAt(n.lastSnapshotIndex())
		if bytes, _ := growth.sinceSnapshot(); bytes >= growth.threshold {
			growth.signal()
		}
	}
}

// lastSnapshotIndex is the index of raft's latest snapshot, 0 if it has none.
func (n *Node) lastSnapshotIndex() uint64 {
	index, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	return index
}

// boundTrailingLogs sets raft's TrailingLogs, for the compaction after the next snapshot,
// to about trailingBytes of entries of meanEntry bytes, within minTrailingLogs and
// maxTrailing (Config.TrailingLogs).
func (n *Node) boundTrailingLogs(meanEntry, trailingBytes, maxTrailing uint64) error {
	trailing := min(maxTrailing, max(minTrailingLogs, trailingBytes/max(meanEntry, 1)))
	rc := n.raft.ReloadableConfig()
	if rc.TrailingLogs == trailing {
		return nil
	}
	rc.TrailingLogs = trailing
	if err := n.raft.ReloadConfig(rc); err != nil {
		return fmt.Errorf("set TrailingLogs to %d: %w", trailing, err)
	}
	return nil
}

// countGrowthAfterSnapshot counts, for a node that starts, what its log store holds after
// the latest snapshot: the entries exactly, the bytes as estimated from a sample
// (logStore.estimateBytes).
func countGrowthAfterSnapshot(growth *logGrowth, store *logStore, snaps raft.SnapshotStore) error {
	var snapshotIndex uint64
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(metas) > 0 {
		snapshotIndex = metas[0].Index
	}
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	from := max(first, snapshotIndex+1)
	if first == 0 || from > last {
		return nil
	}
	bytes, err := store.estimateBytes(from, last)
	if err != nil {
		return err
	}
	growth.stored(last, bytes, last-from+1)
	return nil
}
