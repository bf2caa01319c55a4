package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strata-mail/strata/internal/clustertls"
	"github.com/strata-mail/strata/internal/fsync"
)

const (
	// snapshotsRetained is how many snapshots the file snapshot store keeps.
	snapshotsRetained = 2
	// logCacheSize is how many recent log entries are kept in memory, so that replication to a
	// follower that is slightly behind and ReadBarrier's look at the committed tail do not read
	// the log store.
	logCacheSize = 1024
	// leaderBarrierTimeout bounds the Barrier a new leader issues before serving reads.
	leaderBarrierTimeout = 10 * time.Second
	// storeOpenTimeout bounds waiting for the lock of a raft-boltdb file being migrated.
	storeOpenTimeout = time.Second
	// logStoreDir, under DataDir/raft, holds the Pebble log and stable store.
	logStoreDir = "log"
	// waitLeaderPoll is how often WaitLeader and awaitLeader look for a leader.
	waitLeaderPoll = 5 * time.Millisecond
)

// Raft timeouts tuned for a LAN (nodes a fraction of a millisecond apart), where a dead
// leader should cost well under a second of writes: a follower starts an election after
// DefaultHeartbeatTimeout to twice that without contact (raft randomises it), and the leader
// sends heartbeats every tenth of it. Pre-vote (always on) keeps the short timeout from
// deposing a healthy leader: a node that lost contact on its own, or rejoins after a
// partition, asks first whether it could win and is refused while the others hear from the
// leader, so it never raises the term. Raise them for slow or distant networks.
const (
	DefaultHeartbeatTimeout = 200 * time.Millisecond
	DefaultCommitTimeout    = 10 * time.Millisecond
)

// Config describes one member of one Raft group. The tuning fields are optional: zero means the
// default given beside each. Raft's BatchApplyCh is always on (Apply honours its context itself).
type Config struct {
	NodeID        string // raft server ID, stable across restarts
	DataDir       string // holds raft/ (log, stable, snapshots)
	RaftBind      string // listen address, e.g. 127.0.0.1:0 or 127.0.0.1:7300
	RaftAdvertise string // host:port peers dial; defaults to the bound address; port 0 means the bound port
	Bootstrap     bool   // bootstrap a new single-voter group if this node has no state
	FSM           StateMachine
	Logger        *slog.Logger // defaults to slog.Default()
	// TLS, when set, makes the Raft transport mutual TLS with node identities of the
	// cluster CA (transport.go); nil is plaintext (the embedded mode, on loopback).
	TLS *clustertls.Identity
	// BeforeSnapshot, when set, runs before every snapshot of the state machine is taken
	// (and so before raft compacts the log up to it); its error fails that snapshot. The
	// embedded server makes the bodies its blob store staged durable here (blobstore.Stager).
	BeforeSnapshot func() error

	SnapshotThreshold uint64        // log entries since the last snapshot that trigger one; 8192
	SnapshotInterval  time.Duration // how often the threshold is checked; 2m
	TrailingLogs      uint64        // entries kept after a snapshot, for slow followers; 10240
	MaxAppendEntries  int           // entries per AppendEntries RPC and per FSM batch; 512 (raft caps it at 1024)
	// SnapshotBytes: bytes of log entries stored since the last snapshot that trigger one
	// at once, whatever their count; DefaultSnapshotBytes (loggrowth.go).
	SnapshotBytes uint64
	// TrailingBytes: about how many bytes of entries a snapshot leaves behind it, at most
	// TrailingLogs of them and at least 64; SnapshotBytes.
	TrailingBytes uint64

	// Timeouts (DefaultHeartbeatTimeout explains the defaults).
	HeartbeatTimeout   time.Duration // follower without contact before an election; DefaultHeartbeatTimeout
	ElectionTimeout    time.Duration // candidate without a result before a new election; HeartbeatTimeout
	LeaderLeaseTimeout time.Duration // leader without quorum contact before stepping down; HeartbeatTimeout
	CommitTimeout      time.Duration // idle time before the leader tells followers the commit index; DefaultCommitTimeout
}

func (c *Config) check() error {
	switch {
	case c.NodeID == "":
		return errors.New("raft config: NodeID is empty")
	case c.DataDir == "":
		return errors.New("raft config: DataDir is empty")
	case c.RaftBind == "":
		return errors.New("raft config: RaftBind is empty")
	case c.FSM == nil:
		return errors.New("raft config: FSM is nil")
	}
	return nil
}

// raftConfig fills in the defaults and returns the hashicorp/raft configuration.
func (c *Config) raftConfig(logger *slogHCLogger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.Logger = logger
	// Open restores the snapshot itself, and only when the FSM is behind it (package comment).
	rc.NoSnapshotRestoreOnStart = true
	// Apply honours its context itself, so the weaker enqueue timeout of a buffered apply
	// channel does not matter, and batching is what makes many concurrent clients fast.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = orDefault(c.MaxAppendEntries, 512)
	rc.SnapshotThreshold = orDefault(c.SnapshotThreshold, 8192)
	rc.SnapshotInterval = orDefault(c.SnapshotInterval, 2*time.Minute)
	rc.TrailingLogs = orDefault(c.TrailingLogs, 10240)
	rc.HeartbeatTimeout = orDefault(c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	rc.ElectionTimeout = orDefault(c.ElectionTimeout, rc.HeartbeatTimeout)
	// As long as raft allows (the heartbeat timeout): on a loaded machine a follower that
	// has just joined answers 100 ms late now and then, and a leader that stepped down for
	// that costs an election. A leader cut off from a quorum that steps down later commits
	// nothing meanwhile: commits and linearizable reads (VerifyLeader) need a quorum anyway.
	rc.LeaderLeaseTimeout = orDefault(c.LeaderLeaseTimeout, rc.HeartbeatTimeout)
	rc.CommitTimeout = orDefault(c.CommitTimeout, DefaultCommitTimeout)
	// Pre-vote (raft >= v1.7, on by default; said here so that no one turns it off): a node
	// becomes a candidate and raises the term only once a quorum says it could win, and a
	// voter that hears from a leader refuses. A node coming back from a partition thus
	// rejoins as a follower instead of forcing the healthy leader to step down.
	rc.PreVoteDisabled = false
	return rc
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Node is this process's member of one Raft group.
type Node struct {
	id        string
	addr      string
	logger    *slog.Logger
	raft      *raft.Raft
	fsm       *stateMachineAdapter
	logs      raft.LogStore
	store     *logStore
	growth    *logGrowth
	transport *raft.NetworkTransport

	// configScanSkipped is how many entries raft.NewRaft's configuration scan got from the
	// log store without a read (configscan.go).
	configScanSkipped uint64

	// leaderWait bounds how long a refusal on a node that knows no live leader waits for one
	// (awaitLeader): long enough for an election, short enough for a group without quorum.
	leaderWait time.Duration
	// leaderSilence is how long without contact makes a follower doubt the leader it knows.
	leaderSilence time.Duration
	// handOver asks raft for one leadership transfer to the most up-to-date other voter
	// (raft.LeadershipTransfer; tests put a transfer that reports a timeout in front).
	handOver func() raft.Future

	// readyTerm is the latest term in which this node, as leader, completed a Barrier: in that
	// term its commit index covers everything earlier leaders committed.
	readyTerm atomic.Uint64

	ctx       context.Context // cancelled by Close
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open starts this node's member of the group: it opens the stores under DataDir/raft, brings
// the FSM up to the latest snapshot if it is behind it, binds the transport, bootstraps a
// single-voter group if asked to and there is no state, and starts raft.
func Open(cfg Config) (n *Node, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("raft_node", cfg.NodeID)
	hcl := newSlogHCLogger(logger, "raft")
	rc := cfg.raftConfig(hcl)

	var cleanups []func() error
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				_ = cleanups[i]()
			}
		}
	}()

	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft directory: %w", err)
	}

	// Log and stable store: a Pebble instance of its own (logstore.go), whose synced batch costs
	// one WAL fdatasync where bbolt's commit costs two in series. A data directory written
	// before it holds raft.db (raft-boltdb), copied over here once.
	logDir := filepath.Join(raftDir, logStoreDir)
	if err := migrateBoltLogStore(raftDir, logDir, logger); err != nil {
		return nil, err
	}
	store, err := openLogStore(logDir, logger)
	if err != nil {
		return nil, err
	}
	// A new log directory's entry must be durable before the first log in it is acknowledged.
	if err := fsync.Dir(raftDir); err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("sync raft directory: %w", err)
	}
	cleanups = append(cleanups, store.Close)
	if err := store.trackConfigurations(); err != nil {
		return nil, err
	}
	logs, err := raft.NewLogCache(logCacheSize, store)
	if err != nil {
		return nil, fmt.Errorf("create raft log cache: %w", err)
	}

	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, snapshotsRetained, hcl.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("open raft snapshot store in %s: %w", raftDir, err)
	}
	peek := func(id string) (io.ReadCloser, error) {
		// raft.FileSnapshotStore's layout: DIR/snapshots/ID/state.bin.
		return os.Open(filepath.Join(raftDir, "snapshots", id, "state.bin"))
	}
	if err := restoreIfBehind(snaps, cfg.FSM, logger, peek); err != nil {
		return nil, err
	}
	growth := newLogGrowth(orDefault(cfg.SnapshotBytes, DefaultSnapshotBytes))
	if err := countGrowthAfterSnapshot(growth, store, snaps); err != nil {
		return nil, err
	}
	store.growth = growth
	storedAtStart, _ := store.LastIndex()

	layer, err := listenRaft(cfg.RaftBind, cfg.RaftAdvertise, cfg.TLS)
	if err != nil {
		return nil, err
	}
	transport := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  hcl.Named("net"),
	})
	cleanups = append(cleanups, transport.Close)

	if cfg.Bootstrap {
		if err := bootstrapIfNew(rc, logs, store, snaps, transport); err != nil {
			return nil, err
		}
	}

	fsm := newStateMachineAdapter(cfg.FSM, cfg.BeforeSnapshot)
	// NewRaft reads every entry after the snapshot for configuration entries; the store
	// answers for the plain ones it knows without reading them (configscan.go).
	if err := store.beginConfigScan(fsm.applied.load()); err != nil {
		return nil, err
	}
	r, err := raft.NewRaft(rc, fsm, logs, store, snaps, transport)
	scanSkipped := store.endConfigScan()
	if err != nil {
		return nil, fmt.Errorf("start raft node %s: %w", cfg.NodeID, err)
	}

	ctx, stop := context.WithCancel(context.Background())
	n = &Node{
		id:        cfg.NodeID,
		addr:      string(transport.LocalAddr()),
		logger:    logger,
		raft:      r,
		fsm:       fsm,
		logs:      logs,
		store:     store,
		growth:    growth,
		transport: transport,
		ctx:       ctx,

		configScanSkipped: scanSkipped,
		stop:              stop,

		leaderWait:    2 * (rc.HeartbeatTimeout + rc.ElectionTimeout),
		leaderSilence: rc.HeartbeatTimeout / 2,
		handOver:      r.LeadershipTransfer,
	}
	n.wg.Add(2)
	go n.watchLeadership()
	go n.snapshotOnGrowth(growth, storedAtStart, orDefault(cfg.TrailingBytes, growth.threshold), rc.TrailingLogs)
	grownBytes, grownEntries := growth.sinceSnapshot()
	logger.Info("raft node started", "addr", n.addr, "fsm_applied_index", fsm.applied.load(),
		"log_entries_after_snapshot", grownEntries, "log_bytes_after_snapshot", grownBytes,
		"configuration_scan_skipped", scanSkipped)
	return n, nil
}

// restoreIfBehind restores the latest snapshot into sm when sm has not applied up to it, so that
// sm is never behind the first entry of a compacted log. Raft itself does not restore on start
// (NoSnapshotRestoreOnStart) and replays only the entries after the snapshot.
//
// peek, if not nil, opens a snapshot's state without raft's check of the whole file's CRC
// (FileSnapshotStore.Open reads all of it first: 2 s for a 2 GiB snapshot at every start)
// for the header SnapshotApplied reads; a restore still goes through snaps.Open.
func restoreIfBehind(snaps raft.SnapshotStore, sm StateMachine, logger *slog.Logger, peek func(id string) (io.ReadCloser, error)) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(metas) == 0 {
		return nil
	}
	latest := metas[0] // List returns the newest first; it is the one raft starts from
	applied := sm.AppliedIndex()
	if latest.Index <= applied {
		logger.Info("state machine is at or past the latest snapshot; not restoring it",
			"snapshot_index", latest.Index, "fsm_applied_index", applied)
		return nil
	}
	if sa, ok := sm.(SnapshotApplied); ok {
		// The snapshot's index is raft's, which counts the entries that never reach the
		// state machine (a new leader's no-op, barriers): a snapshot taken after them has
		// nothing the state machine lacks when it has applied what the snapshot had. Without
		// this, every start after such a snapshot restored the whole store (11 s of CPU at a
		// million messages), and restored it to the same index, so the next start did again.
		var source io.ReadCloser
		if peek != nil {
			source, err = peek(latest.ID)
		}
		if peek == nil || err != nil {
			if _, source, err = snaps.Open(latest.ID); err != nil {
				return fmt.Errorf("open raft snapshot %s: %w", latest.ID, err)
			}
		}
		had, err := sa.SnapshotAppliedIndex(source)
		_ = source.Close()
		if err != nil {
			return fmt.Errorf("read raft snapshot %s: %w", latest.ID, err)
		}
		if had <= applied {
			logger.Info("state machine holds everything the latest snapshot does; not restoring it",
				"snapshot_index", latest.Index, "snapshot_fsm_applied_index", had, "fsm_applied_index", applied)
			return nil
		}
	}
	logger.Info("state machine is behind the latest snapshot; restoring it",
		"snapshot", latest.ID, "snapshot_index", latest.Index, "fsm_applied_index", applied)
	_, source, err := snaps.Open(latest.ID)
	if err != nil {
		return fmt.Errorf("open raft snapshot %s: %w", latest.ID, err)
	}
	defer func() { _ = source.Close() }()
	if err := sm.Restore(source); err != nil {
		return fmt.Errorf("restore state machine from snapshot %s: %w", latest.ID, err)
	}
	// The snapshot holds the state machine as it was at raft's last applied index, and its
	// own applied index is that of the last entry it saw: lower when the log ended with
	// entries raft keeps from it (the no-op a new leader appends, barriers). So the restored
	// index may be below the snapshot's, never below what the state machine had. Found by
	// the consistency checker: a node restarted right after a snapshot taken just after an
	// election refused to start.
	if got := sm.AppliedIndex(); got < applied || got > latest.Index {
		return fmt.Errorf("state machine restored from snapshot %s reports applied index %d, outside %d (before the restore) to %d (the snapshot's)",
			latest.ID, got, applied, latest.Index)
	}
	return nil
}

// bootstrapIfNew writes a configuration with this node as the only voter, unless the node
// already has raft state (it was bootstrapped before, or joined a group).
func bootstrapIfNew(rc *raft.Config, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, transport raft.Transport) error {
	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("check for existing raft state: %w", err)
	}
	if hasState {
		return nil
	}
	configuration := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       rc.LocalID,
		Address:  transport.LocalAddr(),
	}}}
	if err := raft.BootstrapCluster(rc, logs, stable, snaps, transport, configuration); err != nil {
		return fmt.Errorf("bootstrap raft group: %w", err)
	}
	return nil
}

// watchLeadership issues a Barrier each time this node wins leadership, so that linearizable
// reads can be served without paying for it on the first read.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case isLeader := <-n.raft.LeaderCh():
			if !isLeader {
				n.logger.Info("lost raft leadership")
				continue
			}
			n.logger.Info("won raft leadership", "term", n.raft.CurrentTerm())
			ctx, cancel := context.WithTimeout(n.ctx, leaderBarrierTimeout)
			err := n.leaderBarrier(ctx)
			cancel()
			if err != nil && n.ctx.Err() == nil {
				n.logger.Warn("barrier after winning leadership failed; the next linearizable read retries it", "err", err)
			}
		}
	}
}

// leaderBarrier returns once a Barrier has completed in this leader's current term, issuing one
// if none has.
func (n *Node) leaderBarrier(ctx context.Context) error {
	for {
		term := n.raft.CurrentTerm()
		if n.raft.State() != raft.Leader {
			if n.awaitLeader(ctx) {
				continue
			}
			return n.routeError("leadership barrier", raft.ErrNotLeader)
		}
		if n.readyTerm.Load() >= term {
			return nil
		}
		timeout, err := enqueueTimeout(ctx)
		if err != nil {
			return fmt.Errorf("leadership barrier: %w", err)
		}
		if err := n.await(ctx, n.raft.Barrier(timeout)); err != nil {
			return n.routeError("leadership barrier", err)
		}
		// A barrier that straddled a change of term proves nothing about the new term: go round.
		if n.raft.CurrentTerm() == term {
			n.markReadReady(term)
			return nil
		}
	}
}

func (n *Node) markReadReady(term uint64) {
	for {
		old := n.readyTerm.Load()
		if term <= old || n.readyTerm.CompareAndSwap(old, term) {
			return
		}
	}
}

// enqueueTimeout turns ctx's deadline into the timeout raft takes for enqueueing a command; 0
// (no deadline) waits as long as it takes.
func enqueueTimeout(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	timeout := time.Until(deadline)
	if timeout <= 0 {
		return 0, context.DeadlineExceeded
	}
	return timeout, nil
}

// await waits for a raft future, or for ctx. Raft resolves every future eventually (on commit,
// on losing leadership, on shutdown), so the goroutine left behind by a cancelled wait ends.
func (n *Node) await(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Apply replicates cmd and returns the FSM's response for its entry once this node has applied
// it. It fails with NotLeaderError on a follower. When ctx ends first the outcome is unknown:
// the entry may still commit.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	for {
		timeout, err := enqueueTimeout(ctx)
		if err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
		f := n.raft.Apply(cmd, timeout)
		err = n.await(ctx, f)
		if err == nil {
			return f.Response(), nil
		}
		// Raft answers ErrNotLeader only for a command it did not append (a follower's or
		// candidate's refusal, or a leader's that stepped down before dispatching it), so
		// the command goes in again once this node has become the leader.
		if errors.Is(err, raft.ErrNotLeader) && n.awaitLeader(ctx) {
			continue
		}
		return nil, n.applyError(err)
	}
}

// applyError sorts a failed Apply by what the caller may do about it.
func (n *Node) applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrEnqueueTimeout):
		// Never enqueued, so never applied.
		return fmt.Errorf("apply: %w: %w", context.DeadlineExceeded, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("apply: outcome unknown: %w", err)
	}
	return n.routeError("apply", err)
}

// awaitLeader is called when an operation found this node not leading. While the node knows
// of no leader it has heard from within leaderSilence (an election is on, or the leader it
// knows has gone quiet), the refusal would send the client to a dead node or nowhere, and
// the client would poll with backoff; instead it waits, for at most leaderWait, until the
// node leads or hears from a leader, so that the refusal names a live one (or the operation
// runs here). It reports whether this node is now the leader.
func (n *Node) awaitLeader(ctx context.Context) bool {
	return n.pollLeader(ctx, n.leaderWait, func() (found, done bool) {
		if n.IsLeader() {
			return true, true
		}
		id, _ := n.Leader()
		return false, id != "" && time.Since(n.raft.LastContact()) < n.leaderSilence
	})
}

// pollLeader calls check every waitLeaderPoll until check is done, d has passed, or ctx or
// the node ends, and returns what check found when done (false otherwise).
func (n *Node) pollLeader(ctx context.Context, d time.Duration, check func() (found, done bool)) bool {
	deadline := time.Now().Add(d)
	ticker := time.NewTicker(waitLeaderPoll)
	defer ticker.Stop()
	for {
		if found, done := check(); done {
			return found
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-n.ctx.Done():
			return false
		case <-ticker.C:
		}
	}
}

// ReadBarrier returns once a read of this node's FSM is linearizable: this node is the leader,
// it has completed a Barrier in its term, a quorum still confirms it as leader, and its FSM has
// applied everything committed when the read began. It fails with NotLeaderError on a follower.
//
// The leader of a group whose only voter it is (the embedded mode) skips the quorum check
// and the wait: no other node can win an election, and every write acknowledged before the
// read began was applied here before Apply returned, so the FSM as it is holds them all.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if err := n.leaderBarrier(ctx); err != nil {
		return fmt.Errorf("read barrier: %w", err)
	}
	if n.soleVoter() {
		return nil
	}
	commit := n.raft.CommitIndex()
	if err := n.await(ctx, n.raft.VerifyLeader()); err != nil {
		return n.routeError("read barrier: verify leadership", err)
	}
	target, err := n.lastStateIndex(commit)
	if err != nil {
		return fmt.Errorf("read barrier: %w", err)
	}
	if err := n.WaitApplied(ctx, target); err != nil {
		return fmt.Errorf("read barrier: %w", err)
	}
	return nil
}

// lastStateIndex returns the index the FSM must reach to hold every entry up to commit: the
// highest index <= commit of an entry raft hands to the FSM (a command or a configuration
// change). No-op and barrier entries never reach the FSM, so waiting for commit itself could wait
// forever when the log ends with them, as it does right after an election.
func (n *Node) lastStateIndex(commit uint64) (uint64, error) {
	applied := n.fsm.applied.load()
	var entry raft.Log
	for index := commit; index > applied; index-- {
		err := n.logs.GetLog(index, &entry)
		if errors.Is(err, raft.ErrLogNotFound) {
			// Compacted into a snapshot, so the FSM already holds it and everything before it.
			return applied, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read raft log entry %d: %w", index, err)
		}
		if entry.Type == raft.LogCommand || entry.Type == raft.LogConfiguration {
			return index, nil
		}
	}
	return applied, nil
}

// WaitApplied returns once this node's FSM has applied index. Serving a read after it gives
// session consistency: a client that passes the index it last saw reads its own writes on any
// member of the group.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if err := n.fsm.applied.wait(ctx, index, n.ctx.Done()); err != nil {
		return fmt.Errorf("wait for index %d to be applied: %w", index, err)
	}
	return nil
}

// AppliedIndex is the index of the last entry this node's FSM has applied.
func (n *Node) AppliedIndex() uint64 { return n.fsm.applied.load() }

// WaitLeader waits until the group has a leader this node knows of (this node itself in a
// single-node group).
func (n *Node) WaitLeader(ctx context.Context) error {
	ticker := time.NewTicker(waitLeaderPoll)
	defer ticker.Stop()
	for {
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leader: %w", ctx.Err())
		case <-n.ctx.Done():
			return fmt.Errorf("wait for raft leader: %w", ErrClosed)
		case <-ticker.C:
		}
	}
}

// LastLeaderContact is when this node last heard from a leader; the zero time if it never
// has. On the leader itself it says nothing.
func (n *Node) LastLeaderContact() time.Time { return n.raft.LastContact() }

// IsLeader reports whether this node currently believes it is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderTerm returns the current Raft term and whether this node believes it leads in it.
// A node that lost and won leadership between two calls shows a new term.
func (n *Node) LeaderTerm() (term uint64, leading bool) {
	term = n.raft.CurrentTerm()
	leading = n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term
	return term, leading
}

// VerifyLeader returns once a quorum has confirmed, after the call began, that this node
// leads; NotLeaderError if it does not.
func (n *Node) VerifyLeader(ctx context.Context) error {
	if err := n.await(ctx, n.raft.VerifyLeader()); err != nil {
		return n.routeError("verify leadership", err)
	}
	return nil
}

// soleVoter reports whether this node is the leader and the only voter of the latest
// configuration it knows (which a leader itself appends: a voter being added counts from
// then on, before it commits). GetConfiguration reads it without a round trip to raft.
func (n *Node) soleVoter() bool {
	if n.raft.State() != raft.Leader {
		return false
	}
	self := false
	for _, s := range n.raft.GetConfiguration().Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		if s.ID != raft.ServerID(n.id) {
			return false
		}
		self = true
	}
	return self
}

// Leader returns the server ID and address of the leader this node knows of, or empty strings.
func (n *Node) Leader() (id, addr string) {
	leaderAddr, leaderID := n.raft.LeaderWithID()
	return string(leaderID), string(leaderAddr)
}

// ID is this node's raft server ID.
func (n *Node) ID() string { return n.id }

// Addr is the address this node advertises to its peers.
func (n *Node) Addr() string { return n.addr }

// EachCommand calls fn with the data of every command entry (raft.LogCommand) the log
// store holds, from its first index to its last, in order; it stops at fn's first error
// and returns it. It reads what is stored, committed or not: the embedded server's staging
// recovery uses it at startup, before any client is served.
func (n *Node) EachCommand(fn func(index uint64, data []byte) error) error {
	first, err := n.logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	last, err := n.logs.LastIndex()
	if err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	if first == 0 {
		return nil // an empty log
	}
	var entry raft.Log
	for index := first; index <= last; index++ {
		if err := n.logs.GetLog(index, &entry); err != nil {
			return fmt.Errorf("raft log entry %d: %w", index, err)
		}
		if entry.Type != raft.LogCommand {
			continue
		}
		if err := fn(index, entry.Data); err != nil {
			return err
		}
	}
	return nil
}

// Raft exposes the underlying raft instance (for stats, observers and tests). Do not read its
// LeaderCh: the Node consumes it.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Stats returns raft's statistics plus this node's identity and FSM progress.
func (n *Node) Stats() map[string]string {
	stats := n.raft.Stats()
	stats["node_id"] = n.id
	stats["advertise_addr"] = n.addr
	stats["fsm_applied_index"] = strconv.FormatUint(n.fsm.applied.load(), 10)
	stats["read_ready_term"] = strconv.FormatUint(n.readyTerm.Load(), 10)
	return stats
}

// Close stops the node gracefully: a leader with other voters first hands leadership over so
// the group does not wait out an election timeout; then raft shuts down and the transport and
// stores close. Close is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

// HandOverLeadership makes a leader with other voters hand leadership to one of them, and
// returns once it has or the transfer failed; elsewhere it does nothing. Close does it
// first; a node that has more to do between losing leadership and stopping (withdraw its
// registration while its gRPC port still redirects callers) calls it before. It is
// TransferLeadership to any voter (which asks again after a transfer that timed out),
// bounded to about handOverAttempts rounds of a transfer (an election timeout) and a wait
// for the new leader (leaderWait, more than twice the election timeout).
func (n *Node) HandOverLeadership() error {
	if !n.IsLeader() || !n.hasOtherVoters() {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, handOverAttempts*3*n.leaderWait/2)
	defer cancel()
	if err := n.TransferLeadership(ctx, ""); err != nil {
		return fmt.Errorf("hand over raft leadership: %w", err)
	}
	n.logger.Info("handed over raft leadership")
	return nil
}

// handOverAttempts bounds HandOverLeadership: about how many transfers it may ask for.
const handOverAttempts = 3

func (n *Node) close() error {
	if err := n.HandOverLeadership(); err != nil {
		n.logger.Warn("leadership transfer before shutdown failed", "err", err)
	}
	n.stop()
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("shut down raft: %w", err))
	}
	n.wg.Wait()
	if err := n.transport.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft transport: %w", err))
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft log store: %w", err))
	}
	n.logger.Info("raft node stopped")
	return errors.Join(errs...)
}

func (n *Node) hasOtherVoters() bool {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.logger.Warn("read raft configuration before shutdown", "err", err)
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != raft.ServerID(n.id) {
			return true
		}
	}
	return false
}
