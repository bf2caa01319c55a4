package metadata

// Read consistency over gRPC metadata (DESIGN.md "Metadata on Raft": "a frontend passes
// the index it last saw and any replica that has applied past it may answer").
//
// Every response of a server that registers ConsistencyOptions carries this node's
// applied Raft index twice: in the header (AppliedIndexHeader, the index when the node
// took the call: a lower bound, informational) and in the trailer (the index persisted in
// the store when the call ended). The trailer covers everything the response holds:
// every view the handler read was taken before it, and the index is read from the store
// itself, not from a counter that is advanced after the batch's commit. A client that
// passes the largest trailer index it has seen as MinIndexHeader on its next read
// therefore never reads older state than it has already seen.
//
// A request carrying MinIndexHeader asks for a session-consistent read: any member whose
// store has applied that index answers from its own state. A follower that is behind
// waits at most sessionReadWait for its state machine to catch up and otherwise refuses
// with the usual NOT_LEADER status, so the client goes to the leader. The leader serves
// such a read at once when it has applied the index, and otherwise after ReadBarrier.
// Without the header every read stays linearizable (ReadBarrier on the leader), as it is
// on a server without the interceptors.
//
// A follower cut off from the leader (no contact for maxLeaderSilence) serves no session
// read, and ends the streams it serves (Watch above all, which would otherwise go on
// quietly from a state that no longer moves) with Unavailable, so that clients resume them
// elsewhere from their cursor. A node that stops altogether (SIGSTOP, a hung host) cannot
// say so; clients find out through gRPC keepalive pings, which ConsistencyOptions permits
// every keepaliveMinTime.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

const (
	// AppliedIndexHeader and MinIndexHeader are metadatapb's (proto/metadatapb/headers.go).
	AppliedIndexHeader = metadatapb.AppliedIndexHeader
	MinIndexHeader     = metadatapb.MinIndexHeader
	// sessionReadWait bounds how long a follower behind a read's min index waits for its
	// state machine before it sends the client to the leader. Followers learn the commit
	// index within the leader's CommitTimeout (10ms by default), so a read that follows a
	// write through the same frontend rarely waits at all.
	sessionReadWait = 100 * time.Millisecond
	// maxLeaderSilence is how long a follower may go without hearing from the leader
	// before it counts as cut off; the leader contacts followers every tenth of a
	// heartbeat timeout (50ms by default).
	maxLeaderSilence = time.Second
	// leaderContactCheck is how often the streams' watch on leader contact looks.
	leaderContactCheck = 250 * time.Millisecond
	// keepaliveMinTime is the shortest interval of client keepalive pings the server
	// accepts (gRPC's default, 5 minutes, would refuse metaclient's).
	keepaliveMinTime = 5 * time.Second
)

// minIndexKey is the context key of the min index the consistency interceptors found on
// the request.
type minIndexKey struct{}

// sessionMinIndex returns the min index of a session-consistent read, and whether the
// request asked for one.
func sessionMinIndex(ctx context.Context) (uint64, bool) {
	index, ok := ctx.Value(minIndexKey{}).(uint64)
	return index, ok
}

// LocalReads returns ctx for the calls a node makes in process to its own service to
// follow its own state, such as its search indexer (searchindex, "Where it runs"): they
// are session reads at index 0, answered from this node's applied state on a follower as
// on the leader, so every replica's indexer can read what its FSM's change feed announced
// (without it a follower's reads were refused NOT_LEADER and only the leader's index was
// built). A follower cut off from the leader still refuses them (readPoint).
func LocalReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, minIndexKey{}, uint64(0))
}

// withMinIndex records the request's MinIndexHeader in ctx; an unparsable value is
// refused rather than read as linearizable.
func withMinIndex(ctx context.Context) (context.Context, bool, error) {
	values := grpcmd.ValueFromIncomingContext(ctx, MinIndexHeader)
	if len(values) == 0 {
		return ctx, false, nil
	}
	index, err := strconv.ParseUint(values[len(values)-1], 10, 64)
	if err != nil {
		return nil, false, status.Errorf(codes.InvalidArgument, "%s: %q is not a Raft index", MinIndexHeader, values[len(values)-1])
	}
	return context.WithValue(ctx, minIndexKey{}, index), true, nil
}

// ConsistencyOptions returns the server options that make this service answer
// session-consistent reads, label every response with the node's applied index, end
// streams when the node is cut off from the leader, and accept clients' keepalive pings.
// Register them on the gRPC server that serves the service:
// grpc.NewServer(svc.ConsistencyOptions()...).
func (s *Service) ConsistencyOptions() []grpc.ServerOption {
	c := &consistency{svc: s, contact: &leaderContact{svc: s}}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(c.unary),
		grpc.ChainStreamInterceptor(c.stream),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
	}
}

// consistency holds the interceptors of one service.
type consistency struct {
	svc     *Service
	contact *leaderContact
}

func appliedIndexMD(index uint64) grpcmd.MD {
	return grpcmd.Pairs(AppliedIndexHeader, strconv.FormatUint(index, 10))
}

func (c *consistency) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s := c.svc
	ctx, session, err := withMinIndex(ctx)
	if err != nil {
		return nil, err
	}
	header := appliedIndexMD(s.fsm.AppliedIndex())
	if session {
		// Sent at once: the client takes it as the sign that this node is alive and falls
		// back to the leader when it does not come.
		err = grpc.SendHeader(ctx, header)
	} else {
		err = grpc.SetHeader(ctx, header)
	}
	if err != nil {
		s.logger.Debug("send applied index header", "err", err)
	}
	resp, err := handler(ctx, req)
	s.setAppliedTrailer(func(md grpcmd.MD) error { return grpc.SetTrailer(ctx, md) })
	return resp, err
}

func (c *consistency) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	s := c.svc
	ctx, session, err := withMinIndex(ss.Context())
	if err != nil {
		return err
	}
	header := appliedIndexMD(s.fsm.AppliedIndex())
	if session {
		err = ss.SendHeader(header)
	} else {
		err = ss.SetHeader(header)
	}
	if err != nil {
		s.logger.Debug("send applied index header", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cutOff atomic.Bool
	stop := context.AfterFunc(c.contact.join(), func() {
		cutOff.Store(true)
		cancel()
	})
	err = handler(srv, &consistentStream{ServerStream: ss, ctx: ctx})
	stop()
	c.contact.leave()
	if cutOff.Load() && ss.Context().Err() == nil {
		leaderID, leaderAddr := s.node.Leader()
		err = replicationStatus("stream", fmt.Errorf("no contact with the leader for %v: %w", maxLeaderSilence,
			replication.NotLeaderError{LeaderID: leaderID, LeaderAddr: leaderAddr}))
	}
	s.setAppliedTrailer(func(md grpcmd.MD) error { ss.SetTrailer(md); return nil })
	return err
}

// cutOff reports whether this node is a follower that has not heard from the leader for
// maxLeaderSilence.
func (s *Service) cutOff() bool {
	return !s.node.IsLeader() && time.Since(s.node.LastLeaderContact()) > maxLeaderSilence
}

// leaderContact watches, while streams are open, whether the node is cut off from the
// leader, and then cancels the context the open streams joined. One goroutine checks for
// all of them, and only while there are some.
type leaderContact struct {
	svc *Service

	mu      sync.Mutex
	streams int
	lost    context.Context // cancelled when the node is found cut off
	cancel  context.CancelFunc
}

// join registers a stream and returns a context cancelled when the node is cut off.
func (w *leaderContact) join() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.streams++
	if w.lost == nil {
		w.lost, w.cancel = context.WithCancel(context.Background())
		go w.monitor(w.lost)
	}
	return w.lost
}

func (w *leaderContact) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.streams--
}

// monitor checks leader contact until no stream is open or the node is cut off; in both
// cases the next join starts a new one.
func (w *leaderContact) monitor(lost context.Context) {
	ticker := time.NewTicker(leaderContactCheck)
	defer ticker.Stop()
	for range ticker.C {
		cutOff := w.svc.cutOff()
		w.mu.Lock()
		if cutOff || w.streams == 0 {
			w.cancel()
			w.lost, w.cancel = nil, nil
			w.mu.Unlock()
			if cutOff {
				w.svc.logger.Warn("no contact with the raft leader; ending the streams this node serves",
					"silence", time.Since(w.svc.node.LastLeaderContact()).Round(time.Millisecond))
			}
			return
		}
		w.mu.Unlock()
	}
}

// setAppliedTrailer sets the trailer to the applied index persisted in the store now.
// Without it the client learns nothing from the response, which is safe: it then treats
// what it received as unlabelled and stays with this node or the leader.
func (s *Service) setAppliedTrailer(set func(grpcmd.MD) error) {
	index, err := s.fsm.storedAppliedIndex()
	if err != nil {
		s.logger.Warn("read applied index for the response trailer", "err", err)
		return
	}
	if err := set(appliedIndexMD(index)); err != nil {
		s.logger.Debug("set applied index trailer", "err", err)
	}
}

// consistentStream is a server stream whose context carries the request's min index.
type consistentStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *consistentStream) Context() context.Context { return s.ctx }

// storedAppliedIndex reads the applied index from the live store: it is at least the
// index of every batch a view taken before the call can see, which the in-memory counter
// (advanced after the commit) is not.
//
// It reads under the FSM's lock, so that a stream ending while the node shuts down reads
// before Close or gets an error after it, never a closed store (which panics in Pebble).
func (f *FSM) storedAppliedIndex() (uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return 0, errors.New("metadata store closed")
	}
	return f.gen.appliedIndex()
}

// readPoint waits until a read of this node's state machine has the consistency the
// request asked for: session consistency at its min index, or linearizability.
func (s *Service) readPoint(ctx context.Context) error {
	minIndex, session := sessionMinIndex(ctx)
	if !session {
		if err := s.node.ReadBarrier(ctx); err != nil {
			return replicationStatus("read", err)
		}
		return nil
	}
	if s.cutOff() {
		// Its state may be far behind the group's without anything saying so.
		leaderID, leaderAddr := s.node.Leader()
		return replicationStatus("session read", fmt.Errorf("no contact with the leader for %v: %w", maxLeaderSilence,
			replication.NotLeaderError{LeaderID: leaderID, LeaderAddr: leaderAddr}))
	}
	if s.node.AppliedIndex() >= minIndex {
		return nil
	}
	if s.node.IsLeader() {
		// The index was applied by some member, so it is committed, and the leader's read
		// barrier waits for everything committed.
		if err := s.node.ReadBarrier(ctx); err != nil {
			return replicationStatus("session read", err)
		}
		return nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, sessionReadWait)
	defer cancel()
	err := s.node.WaitApplied(waitCtx, minIndex)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil || errors.Is(err, replication.ErrClosed):
		return replicationStatus("session read", err)
	}
	// Behind by more than a moment (cut off from the leader, or a slow disk): the leader
	// answers instead.
	leaderID, leaderAddr := s.node.Leader()
	return replicationStatus("session read", fmt.Errorf("applied index %d is behind the read's min index %d: %w",
		s.node.AppliedIndex(), minIndex, replication.NotLeaderError{LeaderID: leaderID, LeaderAddr: leaderAddr}))
}
