package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/internal/authz"
	"github.com/strata-mail/strata/internal/health"
	"github.com/strata-mail/strata/internal/inproc"
	"github.com/strata-mail/strata/internal/promexport"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
	"github.com/strata-mail/strata/replication/cluster"
	"github.com/strata-mail/strata/replication/directory"
	"github.com/strata-mail/strata/searchindex/fsmfeed"
)

// defaultGroup is the name of the metadata Raft group in etcd.
const defaultGroup = "metadata"

func newMetadataCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metadata",
		Short: "Run a metadata node: one member of the Raft-replicated metadata group",
		Long: `metadata runs one member of the metadata Raft group and serves the metadata and
cluster admin gRPC APIs on --grpc-listen. It registers itself in etcd under a lease. The
first node of a new group bootstraps it (an etcd election makes sure only one does); every
later node asks the leader to add it, enters as a non-voter and is promoted to a voter once
it has caught up. A restarted node rejoins with the state in --data. SIGTERM makes
/readyz answer 503, hands leadership over, withdraws the node's etcd registration and
exits.

With --metrics-listen, GET /healthz answers 200 while raft and the gRPC server run, and
GET /readyz 200 once the node is a member of the group and has caught up with the
leader's commit index (503 naming the check that fails otherwise).

gRPC and Raft traffic is mutual TLS with certificates of the cluster CA (--cluster-tls-ca,
--cluster-tls-cert, --cluster-tls-key, made by 'strata cert'); SIGHUP reads the files again.
Only --insecure-plaintext-cluster turns it off.

Given the frontends' blob store (--blob-dir, or --blob s3 with the --s3-* flags), the node
deletes unreferenced bodies while it leads (--blob-gc-interval) and keeps the text-search
index (--search-index, on by default then), reading each new message's body once. Without
the blob flags it does neither, and logs a warning saying so; SEARCH then reads every
message of a mailbox, and frontends do not announce SEARCH=FUZZY to the sessions it logs in.`,
		Args: cobra.NoArgs,
		RunE: runMetadata,
	}
	f := cmd.Flags()
	f.String("node-id", "", "this node's ID, stable across restarts (required)")
	f.String("data", "./data", "data directory (Raft log, snapshots, metadata state)")
	f.String("grpc-listen", "127.0.0.1:7400", "metadata and cluster admin gRPC listen address")
	f.String("grpc-advertise", "", "gRPC address other nodes and frontends dial (default: the bound --grpc-listen address)")
	f.String("raft-listen", "127.0.0.1:7300", "Raft listen address; when it names a specific IP, peers are also dialed from that IP")
	f.String("raft-advertise", "", "Raft address peers dial (default: the bound --raft-listen address)")
	f.String("etcd", "127.0.0.1:2379", "comma-separated etcd endpoints")
	f.String("group", defaultGroup, "name of the Raft group in etcd")
	f.Int64("etcd-ttl", directory.DefaultTTL, "seconds the etcd registration outlives this node")
	f.Uint64("snapshot-threshold", 8192, "Raft log entries since the last snapshot that trigger one")
	f.Duration("snapshot-interval", 2*time.Minute, "how often the snapshot threshold is checked")
	f.Uint64("trailing-logs", 10240, "Raft log entries kept after a snapshot for followers that are behind; one further behind gets the snapshot")
	f.Uint64("snapshot-bytes", replication.DefaultSnapshotBytes, "bytes of Raft log entries since the last snapshot that trigger one, however few the entries: bounds the log a start reads back")
	f.Uint64("trailing-bytes", 0, "about how many bytes of Raft log entries a snapshot keeps behind it, at most --trailing-logs of them (0: --snapshot-bytes)")
	f.Duration("raft-heartbeat-timeout", replication.DefaultHeartbeatTimeout, "a follower that has not heard from the leader for this long (raft randomises up to twice it) starts an election, and the leader sends heartbeats ten times as often; the default suits a LAN, raise it for slow or distant networks")
	f.Duration("raft-election-timeout", 0, "a candidate without a result after this long (randomised up to twice it) starts a new election (0: --raft-heartbeat-timeout)")
	f.Duration("raft-leader-lease-timeout", 0, "a leader that has not heard from a quorum for this long steps down; at most --raft-heartbeat-timeout (0: --raft-heartbeat-timeout)")
	f.Duration("raft-commit-timeout", replication.DefaultCommitTimeout, "an idle leader tells followers the commit index after this long")
	f.Uint64("promote-max-lag", cluster.DefaultMaxLag, "a non-voter is promoted once its log is within this many entries of the leader's ...")
	f.Duration("promote-stable", cluster.DefaultStable, "... for this long")
	f.String("metrics-listen", "", "address for Prometheus metrics at /metrics and the probes /healthz and /readyz, e.g. 127.0.0.1:9465 (empty: off)")
	addAuthGuardFlags(f)
	f.String("cpu-profile", "", "write a CPU profile of the whole run to this file at shutdown (go tool pprof reads it)")
	addScramFlags(f)
	f.StringSlice("admin-token-keys", nil, "files of Ed25519 public keys (strata admin token keygen) whose admin tokens this node accepts")
	addAuditLogFlag(f)
	// For fault injection only (jepsen/nemesis clock-jump): a node whose wall clock is wrong.
	f.Duration("clock-offset", 0, "added to the wall clock that stamps this node's commands (fault injection tests only)")
	_ = f.MarkHidden("clock-offset")
	addClusterTLSFlags(f)
	f.Bool("search-index", true, "keep the text-search index beside the metadata (package searchindex), so SEARCH's text keys read only candidate messages and SEARCH=FUZZY gets fuzzy answers; it reads every new message's body from the blob store the --blob flags name (the frontends' one), so it is on only when they are given: without them the node starts without the index and logs why. Each node indexes every account: it costs each metadata node about 12 to 15 % more CPU per APPEND (docs/benchmarks.md \"Search index: header fields folded once\") and one blob store read per new message; --search-index=false turns it off")
	// The blob store of the frontends, for the blob garbage collector that runs on the
	// leader (blobstore/gc/lease.go) and for the search index: the same flags as
	// `strata frontend`.
	f.String("blob-dir", "", "shared directory of message bodies (--blob fs); without it, and without --blob s3, no bodies are ever deleted")
	addBlobStoreFlags(f, "the directory --blob-dir, shared with the frontends")
	addBlobGCFlags(f)
	return cmd
}

func runMetadata(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	level, _ := f.GetString("log-level")
	logger, err := newLogger(level)
	if err != nil {
		return err
	}
	nodeID, _ := f.GetString("node-id")
	if nodeID == "" {
		return errors.New("--node-id is required")
	}
	dataDir, _ := f.GetString("data")
	grpcListen, _ := f.GetString("grpc-listen")
	grpcAdvertise, _ := f.GetString("grpc-advertise")
	raftListen, _ := f.GetString("raft-listen")
	raftAdvertise, _ := f.GetString("raft-advertise")
	endpoints, _ := f.GetString("etcd")
	group, _ := f.GetString("group")
	ttl, _ := f.GetInt64("etcd-ttl")
	snapThreshold, _ := f.GetUint64("snapshot-threshold")
	snapInterval, _ := f.GetDuration("snapshot-interval")
	trailing, _ := f.GetUint64("trailing-logs")
	snapBytes, _ := f.GetUint64("snapshot-bytes")
	trailingBytes, _ := f.GetUint64("trailing-bytes")
	heartbeatTimeout, _ := f.GetDuration("raft-heartbeat-timeout")
	electionTimeout, _ := f.GetDuration("raft-election-timeout")
	leaseTimeout, _ := f.GetDuration("raft-leader-lease-timeout")
	commitTimeout, _ := f.GetDuration("raft-commit-timeout")
	maxLag, _ := f.GetUint64("promote-max-lag")
	stable, _ := f.GetDuration("promote-stable")
	metricsListen, _ := f.GetString("metrics-listen")
	clockOffset, _ := f.GetDuration("clock-offset")
	logger = logger.With("node", nodeID)
	identity, err := clusterTLSFromFlags(f)
	if err != nil {
		return err
	}
	logRefusals(identity, logger)
	creds := clusterClientCreds(identity)

	if path, _ := f.GetString("cpu-profile"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	etcd, err := directory.Dial(endpoints)
	if err != nil {
		return err
	}
	defer etcd.Close()
	dir := directory.New(etcd, logger)

	if err := os.MkdirAll(filepath.Join(dataDir, "fsm"), 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	fsm, err := metadata.OpenFSM(filepath.Join(dataDir, "fsm"), logger)
	if err != nil {
		return fmt.Errorf("open metadata state: %w", err)
	}
	defer fsm.Close()
	metrics := metadata.NewMetrics()
	fsm.SetMetrics(metrics)
	node, err := replication.Open(replication.Config{
		NodeID:            nodeID,
		DataDir:           dataDir,
		RaftBind:          raftListen,
		RaftAdvertise:     raftAdvertise,
		FSM:               fsm,
		Logger:            logger,
		TLS:               identity,
		SnapshotThreshold: snapThreshold,
		SnapshotInterval:  snapInterval,
		TrailingLogs:      trailing,
		SnapshotBytes:     snapBytes,
		TrailingBytes:     trailingBytes,

		HeartbeatTimeout:   heartbeatTimeout,
		ElectionTimeout:    electionTimeout,
		LeaderLeaseTimeout: leaseTimeout,
		CommitTimeout:      commitTimeout,
	})
	if err != nil {
		return fmt.Errorf("open raft: %w", err)
	}
	defer node.Close() // after the explicit Close below it does nothing

	collector, err := openCollector(ctx, f, node, logger)
	if err != nil {
		return err
	}

	guardCfg, err := authGuardFromFlags(cmd.Flags())
	if err != nil {
		return err
	}
	guard := metadata.NewAuthGuard(guardCfg)
	logger.Info("brute-force guard", "config", guardCfg.String())
	admin := cluster.NewAdmin(node, fsm.DigestAt, dir, creds, logger)
	defer admin.Close()
	admin.SetFeatureLevel(metadata.FeatureLevel)
	// /readyz: a member of the group that has caught up with the leader (until then, and
	// while joining, 503); /healthz: raft and the gRPC server run.
	probes := health.New(0, 0)
	probes.Ready("raft-member", admin.Member)
	probes.Ready("caught-up", admin.CaughtUp)
	probes.Live("raft", func() error {
		if st := node.Raft().State(); st == raft.Shutdown {
			return fmt.Errorf("raft is %s", st)
		}
		return nil
	})
	if metricsListen != "" {
		var blobs blobstore.Store
		collectors := []prometheus.Collector{metrics, guard}
		if collector != nil {
			blobs = collector.Blobs
			collectors = append(collectors, collector.Metrics)
		}
		endpoint, err := promexport.Listen(metricsListen, blobs, probes, logger, collectors...)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := endpoint.Shutdown(sctx); err != nil {
				logger.Warn("stop metrics endpoint", "err", err)
			}
		}()
	}
	ln, err := net.Listen("tcp", grpcListen)
	if err != nil {
		return fmt.Errorf("listen for gRPC on %s: %w", grpcListen, err)
	}
	if grpcAdvertise == "" {
		grpcAdvertise = ln.Addr().String()
	}
	svc := metadata.NewService(node, fsm, logger)
	svc.SetAuthGuard(guard)
	svc.SetGroupFeatureLevel(admin.GroupFeatureLevel)
	if clockOffset != 0 {
		logger.Warn("stamping commands with a wrong clock on purpose", "clock_offset", clockOffset)
		svc.SetClockOffset(clockOffset)
	}
	svc.SetScram(scramConfig(f))
	if collector != nil {
		// The collector drives this node's service in the process; on a follower its
		// commands are refused, and it runs only on the leader anyway.
		local := inproc.New()
		metadatapb.RegisterMetadataServer(local, svc)
		collector.Metadata = metadatapb.NewMetadataClient(local)
	}
	tokens, err := tokenVerifier(f)
	if err != nil {
		return err
	}
	audit, closeAudit, err := openAuditLog(f, logger)
	if err != nil {
		return err
	}
	defer closeAudit()
	// With cluster mTLS every caller is identified by its certificate (or a token) and
	// authorized by internal/authz; a node serving plaintext (--insecure-plaintext-cluster)
	// trusts its callers as before authorization existed (docs/admin-authorization.md),
	// and a token, when sent, still narrows a call.
	authorizer := authz.New(authz.Config{Tenancy: svc, Tokens: tokens, AllowPlaintext: identity == nil, Audit: audit})
	serverOpts := append(authorizer.ServerOptions(), svc.ConsistencyOptions()...)
	if identity != nil {
		serverOpts = append(serverOpts, grpc.Creds(identity.ServerCredentials()))
		reloadTLSOnSIGHUP(ctx, logger, identity)
	}
	if on, err := searchIndexOn(f, collector != nil, logger); err != nil {
		return err
	} else if on {
		// The indexer role beside the FSM, fed by its change feed, reading through this
		// node's own service in the process (searchindex: "Where it runs"), and the bodies
		// from the frontends' blob store (the collector's, opened from the blob flags).
		self := inproc.New()
		metadatapb.RegisterMetadataServer(self, svc)
		ix, err := fsmfeed.Start(dataDir, fsm, svc, metadatapb.NewMetadataClient(self), collector.Blobs, logger)
		if err != nil {
			return err
		}
		defer ix.Close()
	}
	srv := grpc.NewServer(serverOpts...)
	metadatapb.RegisterMetadataServer(srv, svc)
	clusterpb.RegisterClusterAdminServer(srv, admin)
	metadatapb.RegisterBlobAdminServer(srv, blobAdminServer(f, collector))
	metadatapb.RegisterBackupServer(srv, metadata.BackupServer{Service: svc})
	serveErr := make(chan error, 1)
	grpcEnded := probes.Loop("grpc")
	go func() {
		err := srv.Serve(ln)
		grpcEnded(err)
		serveErr <- err
	}()
	defer srv.Stop()

	info := directory.NodeInfo{ID: nodeID, GRPCAddr: grpcAdvertise, RaftAddr: node.Addr()}
	regCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	reg, err := dir.Register(regCtx, info, ttl)
	cancel()
	if err != nil {
		return err
	}
	// deregister revokes the node's etcd lease, which deletes its key: frontends drop it
	// from their node lists, and joining nodes stop naming it. Once only.
	deregister := sync.OnceFunc(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := reg.Close(cctx); err != nil {
			logger.Warn("withdraw etcd registration", "err", err)
			return
		}
		logger.Info("withdrew etcd registration")
	})
	defer deregister()

	if err := enterGroup(ctx, node, dir, creds, info, group, logger); err != nil {
		return err
	}

	loops, stopLoops := context.WithCancel(context.Background())
	hintDone := make(chan struct{})
	go func() { defer close(hintDone); admin.RunLeaderHint(loops, reg, group) }()
	go admin.RunPromoter(loops, cluster.Promotion{MaxLag: maxLag, Stable: stable})
	gcDone := make(chan struct{})
	go func() { defer close(gcDone); runCollector(loops, f, collector) }()
	numbered := make(chan struct{})
	go func() { defer close(numbered); svc.RunMessageNumbering(loops, metadata.DefaultMessageNumbering) }()

	logger.Info("metadata node running", "grpc", grpcAdvertise, "raft", node.Addr(), "group", group)
	fmt.Fprintf(cmd.OutOrStdout(), "Strata metadata node %s is ready. gRPC on %s, Raft on %s\n", nodeID, grpcAdvertise, node.Addr())

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		logger.Error("gRPC server stopped", "err", err)
	}
	logger.Info("shutting down")
	// Unready at once: a load balancer or a Service stops routing here.
	probes.Drain()
	stopLoops()
	<-hintDone
	<-gcDone
	<-numbered
	// Hand leadership over while registered and while the gRPC port still answers, so
	// clients are redirected to the new leader; then leave the registry so that nothing
	// picks this node again; then stop raft (and, deferred, the gRPC server).
	if err := node.HandOverLeadership(); err != nil {
		logger.Warn("hand over leadership", "err", err)
	}
	deregister()
	if err := node.Close(); err != nil {
		logger.Warn("close raft", "err", err)
	}
	return nil
}

// searchIndexOn decides whether a metadata node keeps the text-search index: by default
// when it has the frontends' blob store (haveBlobs: --blob s3 or --blob-dir), whose bodies
// the indexer reads; without it the node starts without the index and says why, so that a
// node started before the index was on by default still starts. An explicit
// --search-index without the blob flags is refused; --search-index=false is off.
func searchIndexOn(f *pflag.FlagSet, haveBlobs bool, logger *slog.Logger) (bool, error) {
	on, _ := f.GetBool("search-index")
	switch {
	case !on:
		logger.Info("no text-search index (--search-index=false): SEARCH reads every message of a mailbox, and FUZZY keys match exactly")
		return false, nil
	case haveBlobs:
		return true, nil
	case f.Changed("search-index"):
		return false, errors.New("--search-index reads the frontends' bodies: give --blob s3 or --blob-dir")
	}
	logger.Warn("no text-search index: it reads message bodies from the frontends' blob store, and this node has none; give the frontends' --blob-dir or --blob s3 and --s3-* flags to turn it on (or --search-index=false to silence this)")
	return false, nil
}

// enterGroup makes this node a member of the group: a node with Raft state already is one; a
// new node bootstraps the group if it wins the bootstrap election and the group was never
// bootstrapped, and otherwise asks the leader to add it.
func enterGroup(ctx context.Context, node *replication.Node, dir *directory.Directory, creds credentials.TransportCredentials, self directory.NodeInfo, group string, logger *slog.Logger) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	servers, err := node.Servers(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	if len(servers) > 0 {
		logger.Info("rejoining the group with existing raft state", "members", len(servers))
		// A node seeded by `strata restore` is the first of a new cluster whose etcd has
		// no bootstrap marker yet: record it, so that the nodes started after it join it
		// instead of bootstrapping a group of their own. Any other node finds the marker.
		mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		marked, err := dir.Bootstrap(mctx, group, self.ID, func(context.Context) error { return nil })
		if err != nil {
			return err
		}
		if marked {
			logger.Info("recorded the group as bootstrapped by this node's existing state (a restored node)", "group", group)
		}
		return nil
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	booted, err := dir.Bootstrap(bctx, group, self.ID, func(ctx context.Context) error {
		cfg := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(self.ID), Address: raft.ServerAddress(self.RaftAddr),
		}}}
		if err := node.Raft().BootstrapCluster(cfg).Error(); err != nil {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
		return node.WaitLeader(ctx)
	})
	if err != nil {
		return err
	}
	if booted {
		logger.Info("bootstrapped a new group as its single voter", "group", group)
		return nil
	}
	logger.Info("group exists; asking its leader to add this node", "group", group)
	peers := func(ctx context.Context) []string {
		var addrs []string
		if l, ok, err := dir.Leader(ctx, group); err == nil && ok && l.ID != self.ID {
			addrs = append(addrs, l.GRPCAddr)
		}
		nodes, _ := dir.Nodes(ctx)
		for _, n := range nodes {
			if n.ID != self.ID {
				addrs = append(addrs, n.GRPCAddr)
			}
		}
		return addrs
	}
	for {
		first := peers(bctx)
		if len(first) > 0 {
			err = cluster.OnLeader(bctx, creds, first[0], peers, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_, err := c.Join(rctx, &clusterpb.JoinRequest{Id: self.ID, RaftAddr: self.RaftAddr, GrpcAddr: self.GRPCAddr})
				return err
			})
			if err == nil {
				logger.Info("joined the group as a non-voter", "group", group)
				return nil
			}
			logger.Warn("join the group", "err", err)
		}
		if bctx.Err() != nil {
			return fmt.Errorf("join group %s: no member accepted this node: %w", group, bctx.Err())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
