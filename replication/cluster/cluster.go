// Package cluster runs the membership side of a metadata node in a cluster: the ClusterAdmin
// gRPC service (Join, Remove, Status, TransferLeadership), the leader's promotion of caught-up non-voters to
// voters, the leader hint in etcd, and the client helpers that find the leader and follow
// NOT_LEADER redirects.
//
// Invariants:
//
//   - Only the leader changes membership. A follower answers Join and Remove with
//     UNAVAILABLE and an errdetails.ErrorInfo (reason NOT_LEADER) naming the leader it knows
//     of, with its gRPC address when etcd has it; callers retry there.
//   - A joining node enters as a non-voter, so it never counts towards a quorum before it
//     holds the log. The leader promotes it once its last log index has stayed within
//     MaxLag entries of the leader's for Stable.
//   - Join is idempotent: a member with the same Raft address is left as it is (a voter stays
//     a voter).
//   - Status reports the node's state machine feature level (SetFeatureLevel), and
//     GroupFeatureLevel is the lowest of all members' or an error, never a guess: a member
//     that cannot be asked closes the gate of the commands its level would decide.
package cluster

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/internal/buildinfo"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/replication"
	"github.com/strata-mail/strata/replication/directory"
)

const (
	// NotLeaderReason and ErrorDomain are the ErrorInfo of a not-leader refusal; the same as
	// the metadata service's, so one client rule routes both.
	NotLeaderReason = "NOT_LEADER"
	ErrorDomain     = "metadata.strata-mail"

	// DefaultMaxLag and DefaultStable are the promotion rule's defaults.
	DefaultMaxLag = 256
	DefaultStable = 2 * time.Second

	promoteInterval = 250 * time.Millisecond
	hintInterval    = 100 * time.Millisecond
	peerRPCTimeout  = time.Second
	adminRPCTimeout = 30 * time.Second
)

// Admin is one node's ClusterAdmin service and its leader-side loops.
type Admin struct {
	clusterpb.UnimplementedClusterAdminServer

	node   *replication.Node
	digest func() ([]byte, uint64, error)
	dir    *directory.Directory // nil without etcd
	creds  credentials.TransportCredentials
	logger *slog.Logger

	// fsmLevel is the state machine feature level this node reports (SetFeatureLevel).
	fsmLevel atomic.Uint32

	mu        sync.Mutex
	grpcAddrs map[string]string // gRPC addresses learnt from Join and CaughtUp, for when etcd does not list them
	// leaderConn is CaughtUp's connection to the leader it last asked; nil before.
	leaderConn *grpc.ClientConn
	// peerConns are GroupFeatureLevel's connections to the other members, by node id.
	peerConns map[string]*grpc.ClientConn
}

// NewAdmin returns the admin service of node. digest hashes the state machine; dir may be
// nil (no etcd: gRPC addresses come only from Join requests); creds are the transport
// credentials the leader dials the other nodes with (cluster mTLS, or insecure ones).
func NewAdmin(node *replication.Node, digest func() ([]byte, uint64, error), dir *directory.Directory, creds credentials.TransportCredentials, logger *slog.Logger) *Admin {
	if logger == nil {
		logger = slog.Default()
	}
	return &Admin{node: node, digest: digest, dir: dir, creds: creds, logger: logger, grpcAddrs: map[string]string{}, peerConns: map[string]*grpc.ClientConn{}}
}

// SetFeatureLevel sets the state machine feature level this node reports in its Status
// (metadata.FeatureLevel for the state machine it runs); 0 until set, the level of a build
// from before the report.
func (a *Admin) SetFeatureLevel(level uint32) { a.fsmLevel.Store(level) }

// GroupFeatureLevel returns the lowest state machine feature level that the members of
// the group (voters and non-voters: all apply the log) report in their Status, this node's
// own included; an error if one does not answer. The leader proposes a command of a level
// only when this is at least that level (metadata.FeatureLevel).
func (a *Admin) GroupFeatureLevel(ctx context.Context) (uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, peerRPCTimeout)
	defer cancel()
	servers, err := a.node.Servers(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the raft configuration: %w", err)
	}
	lowest := a.fsmLevel.Load()
	for _, s := range servers {
		id := string(s.ID)
		if id == a.node.ID() {
			continue
		}
		conn, err := a.peerConn(ctx, id)
		if err != nil {
			return 0, err
		}
		st, err := clusterpb.NewClusterAdminClient(conn).Status(ctx, &clusterpb.StatusRequest{})
		if err != nil {
			return 0, fmt.Errorf("ask %s for its feature level: %w", id, err)
		}
		lowest = min(lowest, st.GetFsmLevel())
	}
	return lowest, nil
}

// peerConn returns a connection to member id's gRPC address, made on first use and kept
// until its address changes.
func (a *Admin) peerConn(ctx context.Context, id string) (*grpc.ClientConn, error) {
	addr := a.grpcAddr(ctx, id)
	if addr == "" {
		return nil, fmt.Errorf("the gRPC address of %s is not known", id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if conn := a.peerConns[id]; conn != nil {
		if conn.Target() == addr {
			return conn, nil
		}
		_ = conn.Close()
		delete(a.peerConns, id)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(a.creds))
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", id, addr, err)
	}
	a.peerConns[id] = conn
	return conn, nil
}

// grpcAddr returns node id's gRPC address from etcd, or from an earlier Join.
func (a *Admin) grpcAddr(ctx context.Context, id string) string {
	if a.dir != nil {
		// etcd only adds an address to the answer; an etcd outage must not hold it up.
		ctx, cancel := context.WithTimeout(ctx, peerRPCTimeout)
		defer cancel()
		if info, ok, err := a.dir.Node(ctx, id); err == nil && ok {
			return info.GRPCAddr
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.grpcAddrs[id]
}

// routeStatus turns a replication error into a gRPC status, NOT_LEADER with the leader's
// addresses when another node must be asked.
func (a *Admin) routeStatus(ctx context.Context, op string, err error) error {
	var nl replication.NotLeaderError
	if !errors.As(err, &nl) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, replication.ErrClosed) {
			return status.Errorf(codes.Unavailable, "%s: %v", op, err)
		}
		return status.Errorf(codes.Internal, "%s: %v", op, err)
	}
	st := status.New(codes.Unavailable, fmt.Sprintf("%s: %v", op, nl))
	md := map[string]string{"leader_id": nl.LeaderID, "leader_addr": nl.LeaderAddr}
	if nl.LeaderID != "" {
		md["leader_grpc_addr"] = a.grpcAddr(ctx, nl.LeaderID)
	}
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: NotLeaderReason, Domain: ErrorDomain, Metadata: md}); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// notLeader is the NotLeaderError for a membership change asked of a follower.
func (a *Admin) notLeader() error {
	id, addr := a.node.Leader()
	return replication.NotLeaderError{LeaderID: id, LeaderAddr: addr}
}

// Join adds the node as a non-voter (or a voter when asked), unless it is already a member at
// that address.
func (a *Admin) Join(ctx context.Context, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	if req.GetId() == "" || req.GetRaftAddr() == "" {
		return nil, status.Error(codes.InvalidArgument, "join: id and raft_addr are required")
	}
	if !a.node.IsLeader() {
		return nil, a.routeStatus(ctx, "join", a.notLeader())
	}
	if req.GetGrpcAddr() != "" {
		a.mu.Lock()
		a.grpcAddrs[req.GetId()] = req.GetGrpcAddr()
		a.mu.Unlock()
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	servers, err := a.node.Servers(ctx)
	if err != nil {
		return nil, a.routeStatus(ctx, "join", err)
	}
	for _, s := range servers {
		if string(s.ID) == req.GetId() && string(s.Address) == req.GetRaftAddr() &&
			(!req.GetVoter() || s.Suffrage == raft.Voter) {
			return &clusterpb.JoinResponse{}, nil
		}
	}
	if req.GetVoter() {
		err = a.node.AddVoter(ctx, req.GetId(), req.GetRaftAddr())
	} else {
		err = a.node.AddNonvoter(ctx, req.GetId(), req.GetRaftAddr())
	}
	if err != nil {
		return nil, a.routeStatus(ctx, "join "+req.GetId(), err)
	}
	a.logger.Info("node joined the group", "node", req.GetId(), "raft_addr", req.GetRaftAddr(), "voter", req.GetVoter())
	return &clusterpb.JoinResponse{}, nil
}

// Remove takes the node out of the group.
func (a *Admin) Remove(ctx context.Context, req *clusterpb.RemoveRequest) (*clusterpb.RemoveResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "remove: id is required")
	}
	if !a.node.IsLeader() {
		return nil, a.routeStatus(ctx, "remove", a.notLeader())
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	servers, err := a.node.Servers(ctx)
	if err != nil {
		return nil, a.routeStatus(ctx, "remove", err)
	}
	member := false
	for _, s := range servers {
		member = member || string(s.ID) == req.GetId()
	}
	if !member {
		return nil, status.Errorf(codes.NotFound, "remove: %s is not a member of the group", req.GetId())
	}
	if err := a.node.RemoveServer(ctx, req.GetId()); err != nil {
		return nil, a.routeStatus(ctx, "remove "+req.GetId(), err)
	}
	a.logger.Info("node removed from the group", "node", req.GetId())
	return &clusterpb.RemoveResponse{}, nil
}

// TransferLeadership hands leadership to the requested voter (any up-to-date voter if none).
func (a *Admin) TransferLeadership(ctx context.Context, req *clusterpb.TransferLeadershipRequest) (*clusterpb.TransferLeadershipResponse, error) {
	if !a.node.IsLeader() {
		return nil, a.routeStatus(ctx, "transfer leadership", a.notLeader())
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	err := a.node.TransferLeadership(ctx, req.GetId())
	if errors.Is(err, replication.ErrNotMember) || errors.Is(err, replication.ErrNotVoter) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, a.routeStatus(ctx, "transfer leadership", err)
	}
	leaderID, _ := a.node.Leader()
	a.logger.Info("handed raft leadership over on request", "requested", req.GetId(), "leader", leaderID)
	return &clusterpb.TransferLeadershipResponse{}, nil
}

// Status reports this node's view of the group.
func (a *Admin) Status(ctx context.Context, req *clusterpb.StatusRequest) (*clusterpb.StatusResponse, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	r := a.node.Raft()
	leaderID, leaderAddr := a.node.Leader()
	resp := &clusterpb.StatusResponse{
		Id:             a.node.ID(),
		State:          r.State().String(),
		LeaderId:       leaderID,
		LeaderRaftAddr: leaderAddr,
		Term:           r.CurrentTerm(),
		LastIndex:      r.LastIndex(),
		CommitIndex:    r.CommitIndex(),
		AppliedIndex:   a.node.AppliedIndex(),
		Version:        buildinfo.Version(),
		FsmLevel:       a.fsmLevel.Load(),
	}
	servers, err := a.node.Servers(ctx)
	if err != nil {
		return nil, a.routeStatus(ctx, "status", err)
	}
	addrs := map[string]string{}
	if a.dir != nil {
		// gRPC addresses only decorate the status; an etcd outage must not hold it up (the
		// addresses learnt from Join still fill in).
		dctx, cancel := context.WithTimeout(ctx, peerRPCTimeout)
		nodes, err := a.dir.Nodes(dctx)
		cancel()
		if err == nil {
			for _, n := range nodes {
				addrs[n.ID] = n.GRPCAddr
			}
		}
	}
	a.mu.Lock()
	for id, addr := range a.grpcAddrs {
		if addrs[id] == "" {
			addrs[id] = addr
		}
	}
	a.mu.Unlock()
	for _, s := range servers {
		resp.Servers = append(resp.Servers, &clusterpb.Server{
			Id:       string(s.ID),
			RaftAddr: string(s.Address),
			GrpcAddr: addrs[string(s.ID)],
			Suffrage: suffrage(s.Suffrage),
			Leader:   string(s.ID) == leaderID,
		})
	}
	if req.GetDigest() {
		d, applied, err := a.digest()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "status: digest: %v", err)
		}
		// The applied index of the hashed state itself, not the one read above: a batch
		// applied in between would pair an index with a later state.
		resp.Digest, resp.AppliedIndex = hex.EncodeToString(d), applied
	}
	return resp, nil
}

func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	default:
		return "staging"
	}
}

func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, adminRPCTimeout)
}

// Promotion is the rule for promoting a non-voter: its last log index within MaxLag entries of
// the leader's, continuously for Stable.
type Promotion struct {
	MaxLag uint64        // DefaultMaxLag if 0
	Stable time.Duration // DefaultStable if 0
}

// RunPromoter promotes caught-up non-voters while this node leads, until ctx ends. It asks
// each non-voter for its progress through its ClusterAdmin.Status, since raft does not expose
// the leader's per-follower match index.
func (a *Admin) RunPromoter(ctx context.Context, rule Promotion) {
	if rule.MaxLag == 0 {
		rule.MaxLag = DefaultMaxLag
	}
	if rule.Stable == 0 {
		rule.Stable = DefaultStable
	}
	caughtUpSince := map[string]time.Time{}
	conns := map[string]*grpc.ClientConn{}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	ticker := time.NewTicker(promoteInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if !a.node.IsLeader() {
			clear(caughtUpSince)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, peerRPCTimeout)
		servers, err := a.node.Servers(sctx)
		cancel()
		if err != nil {
			continue
		}
		seen := map[string]bool{}
		for _, s := range servers {
			id := string(s.ID)
			if s.Suffrage != raft.Nonvoter {
				continue
			}
			seen[id] = true
			lag, ok := a.followerLag(ctx, conns, id)
			if !ok || lag > rule.MaxLag {
				delete(caughtUpSince, id)
				continue
			}
			since, ok := caughtUpSince[id]
			if !ok {
				caughtUpSince[id] = time.Now()
				continue
			}
			if time.Since(since) < rule.Stable {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, adminRPCTimeout)
			err := a.node.AddVoter(pctx, id, string(s.Address))
			cancel()
			if err != nil {
				a.logger.Warn("promote caught-up non-voter", "node", id, "err", err)
				continue
			}
			delete(caughtUpSince, id)
			a.logger.Info("promoted non-voter to voter", "node", id, "lag", lag)
		}
		for id := range caughtUpSince {
			if !seen[id] {
				delete(caughtUpSince, id)
			}
		}
	}
}

// followerLag asks node id how far its log is behind this leader's.
func (a *Admin) followerLag(ctx context.Context, conns map[string]*grpc.ClientConn, id string) (uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, peerRPCTimeout)
	defer cancel()
	addr := a.grpcAddr(ctx, id)
	if addr == "" {
		return 0, false
	}
	conn := conns[id]
	if conn == nil || conn.Target() != addr {
		if conn != nil {
			_ = conn.Close()
		}
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(a.creds))
		if err != nil {
			return 0, false
		}
		conns[id], conn = c, c
	}
	st, err := clusterpb.NewClusterAdminClient(conn).Status(ctx, &clusterpb.StatusRequest{})
	if err != nil {
		return 0, false
	}
	last := a.node.Raft().LastIndex()
	if st.GetLastIndex() >= last {
		return 0, true
	}
	return last - st.GetLastIndex(), true
}

// Member reports whether this node is in its group's Raft configuration (it joined, or
// rejoined with its state) and knows a leader: part of its readiness (internal/health).
func (a *Admin) Member(ctx context.Context) error {
	servers, err := a.node.Servers(ctx)
	if err != nil {
		return fmt.Errorf("read the raft configuration: %w", err)
	}
	member := false
	for _, s := range servers {
		member = member || string(s.ID) == a.node.ID()
	}
	if !member {
		return errors.New("not a member of the group yet")
	}
	if id, _ := a.node.Leader(); id == "" {
		return errors.New("no leader known")
	}
	return nil
}

// CaughtUp reports whether this node has applied what the leader had committed when
// asked: its readiness to serve reads (internal/health). The leader takes a linearizable
// read point; a follower asks the leader's ClusterAdmin.Status for its commit index and
// waits, until ctx ends, to have applied that far. A node installing a snapshot or
// replaying a long log is therefore unready until it is within one check's time of the
// leader, while one that keeps up under load is not made unready by the entries
// committed since it asked.
func (a *Admin) CaughtUp(ctx context.Context) error {
	if a.node.IsLeader() {
		return a.node.ReadBarrier(ctx)
	}
	leaderID, _ := a.node.Leader()
	if leaderID == "" {
		return errors.New("no leader known")
	}
	addr := a.grpcAddr(ctx, leaderID)
	if addr == "" {
		return fmt.Errorf("the gRPC address of leader %s is not known yet", leaderID)
	}
	// Kept as a fallback, so that an etcd outage does not make every follower unready.
	a.mu.Lock()
	a.grpcAddrs[leaderID] = addr
	a.mu.Unlock()
	conn, err := a.dialLeader(addr)
	if err != nil {
		return err
	}
	st, err := clusterpb.NewClusterAdminClient(conn).Status(ctx, &clusterpb.StatusRequest{})
	if err != nil {
		return fmt.Errorf("ask leader %s for its commit index: %w", leaderID, err)
	}
	if err := a.node.WaitApplied(ctx, st.GetCommitIndex()); err != nil {
		return fmt.Errorf("applied index %d, behind leader %s's commit index %d", a.node.AppliedIndex(), leaderID, st.GetCommitIndex())
	}
	return nil
}

// dialLeader returns a connection to the leader at addr, made on first use and kept until
// the leader moves.
func (a *Admin) dialLeader(addr string) (*grpc.ClientConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leaderConn != nil && a.leaderConn.Target() == addr {
		return a.leaderConn, nil
	}
	if a.leaderConn != nil {
		_ = a.leaderConn.Close()
		a.leaderConn = nil
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(a.creds))
	if err != nil {
		return nil, fmt.Errorf("dial leader at %s: %w", addr, err)
	}
	a.leaderConn = conn
	return conn, nil
}

// Close closes the connections CaughtUp and GroupFeatureLevel keep.
func (a *Admin) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for id, conn := range a.peerConns {
		errs = append(errs, conn.Close())
		delete(a.peerConns, id)
	}
	if a.leaderConn != nil {
		errs = append(errs, a.leaderConn.Close())
		a.leaderConn = nil
	}
	return errors.Join(errs...)
}

// RunLeaderHint keeps group's leader hint in etcd in step with this node's leadership until
// ctx ends, then withdraws it if this node holds it.
func (a *Admin) RunLeaderHint(ctx context.Context, reg *directory.Registration, group string) {
	ticker := time.NewTicker(hintInterval)
	defer ticker.Stop()
	published := false
	for {
		leading := a.node.IsLeader()
		if leading != published {
			sctx, cancel := context.WithTimeout(ctx, peerRPCTimeout)
			err := reg.SetLeader(sctx, group, leading)
			cancel()
			if err == nil {
				published = leading
				a.logger.Info("leader hint in etcd", "group", group, "leading", leading)
			} else if ctx.Err() == nil {
				a.logger.Warn("update leader hint in etcd", "group", group, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			if published {
				wctx, cancel := context.WithTimeout(context.Background(), peerRPCTimeout)
				_ = reg.SetLeader(wctx, group, false)
				cancel()
			}
			return
		case <-ticker.C:
		}
	}
}

// LeaderRedirect returns the leader's gRPC address named by a NOT_LEADER refusal ("" when
// the refusal names none) and whether err is one.
func LeaderRedirect(err error) (grpcAddr string, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return "", false
	}
	for _, d := range st.Details() {
		if info, isInfo := d.(*errdetails.ErrorInfo); isInfo && info.GetReason() == NotLeaderReason {
			return info.GetMetadata()["leader_grpc_addr"], true
		}
	}
	return "", false
}

// OnLeader calls fn with a ClusterAdmin client of the node at addr, dialled with creds, and,
// while the answer is NOT_LEADER or the node is unreachable, again on the leader it names or
// the next of fallbacks, with backoff, until fn succeeds, fails otherwise, or ctx ends.
func OnLeader(ctx context.Context, creds credentials.TransportCredentials, addr string, fallbacks func(context.Context) []string, fn func(context.Context, clusterpb.ClusterAdminClient) error) error {
	backoff := 50 * time.Millisecond
	var next []string
	for {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		err = fn(ctx, clusterpb.NewClusterAdminClient(conn))
		_ = conn.Close()
		if err == nil {
			return nil
		}
		leader, redirected := LeaderRedirect(err)
		if !redirected && status.Code(err) != codes.Unavailable {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error from %s: %v)", ctx.Err(), addr, err)
		}
		switch {
		case leader != "" && leader != addr:
			addr = leader
			continue // a redirect to a known leader is worth trying at once
		case len(next) == 0 && fallbacks != nil:
			next = fallbacks(ctx)
		}
		if len(next) > 0 {
			addr, next = next[0], next[1:]
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}
