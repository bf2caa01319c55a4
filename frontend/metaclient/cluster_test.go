package metaclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/metaclient"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

const testWait = 20 * time.Second

// member is one metadata node of a test group: a Raft node, its FSM (behind a gate that
// can pause its apply) and the Metadata service with the consistency interceptors on a
// real gRPC listener, which counts the calls it takes.
type member struct {
	id     string
	fsm    *metadata.FSM
	gate   *applyGate
	node   *replication.Node
	srv    *grpc.Server
	ln     net.Listener
	served chan error
	dead   bool
	calls  callCounter
	stall  callStall
}

// group is a 3-voter metadata group in this process, on 127.0.0.1.
type group struct {
	t       testing.TB
	members []*member
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startGroup bootstraps member 1, adds members 2 and 3 as voters and serves the Metadata
// service on every member.
func startGroup(t testing.TB) *group {
	t.Helper()
	return startGroupTimed(t, fastElections)
}

// raftTiming is the election timing of a test group.
type raftTiming struct{ heartbeat, election, leaderLease time.Duration }

var (
	// fastElections make failover tests quick.
	fastElections = raftTiming{100 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond}
	// defaultElections are those of `strata metadata`: benchmarks that load the machine
	// do not make the group change leader.
	defaultElections = raftTiming{}
)

// startGroupTimed is startGroup with the given election timing.
func startGroupTimed(t testing.TB, timing raftTiming) *group {
	t.Helper()
	g := &group{t: t}
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	defer cancel()
	for i := range 3 {
		dir := t.TempDir()
		m := &member{id: "meta-" + strconv.Itoa(i+1), served: make(chan error, 1)}
		var err error
		if m.fsm, err = metadata.OpenFSM(filepath.Join(dir, "fsm"), quietLogger()); err != nil {
			t.Fatalf("open fsm: %v", err)
		}
		m.gate = &applyGate{FSM: m.fsm}
		m.node, err = replication.Open(replication.Config{
			NodeID:             m.id,
			DataDir:            filepath.Join(dir, "raft"),
			RaftBind:           "127.0.0.1:0",
			Bootstrap:          i == 0,
			FSM:                m.gate,
			Logger:             quietLogger(),
			HeartbeatTimeout:   timing.heartbeat,
			ElectionTimeout:    timing.election,
			LeaderLeaseTimeout: timing.leaderLease,
			CommitTimeout:      2 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("open raft node %s: %v", m.id, err)
		}
		if i == 0 {
			if err := m.node.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := g.addVoter(ctx, m); err != nil {
			t.Fatalf("add voter %s: %v", m.id, err)
		}
		if m.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		svc := metadata.NewService(m.node, m.fsm, quietLogger())
		opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(m.stall.unary), grpc.ChainStreamInterceptor(m.stall.stream)}
		opts = append(opts, svc.ConsistencyOptions()...)
		opts = append(opts, grpc.ChainUnaryInterceptor(m.calls.unary), grpc.ChainStreamInterceptor(m.calls.stream))
		m.srv = grpc.NewServer(opts...)
		metadatapb.RegisterMetadataServer(m.srv, svc)
		go func() { m.served <- m.srv.Serve(m.ln) }()
		g.members = append(g.members, m)
	}
	t.Cleanup(func() {
		for _, m := range g.members {
			g.kill(m)
		}
	})
	return g
}

// addVoter adds m through whichever member leads, again after a leader change (on a loaded
// machine the young group may elect another leader while it grows).
func (g *group) addVoter(ctx context.Context, m *member) error {
	for {
		var err error
		for _, l := range g.members {
			if l.node.IsLeader() {
				if err = l.node.AddVoter(ctx, m.id, m.node.Addr()); err == nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader added it: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// nodes lists the members as a directory would.
func (g *group) nodes() []metaclient.Node {
	var out []metaclient.Node
	for _, m := range g.members {
		out = append(out, metaclient.Node{ID: m.id, GRPCAddr: m.ln.Addr().String(), RaftAddr: m.node.Addr()})
	}
	return out
}

// leader waits until a live member leads the group and returns it.
func (g *group) leader() *member {
	g.t.Helper()
	var leader *member
	testwait.Until(g.t, testWait, func() error {
		for _, m := range g.members {
			if !m.dead && m.node.IsLeader() {
				leader = m
				return nil
			}
		}
		return errors.New("no leader elected")
	})
	return leader
}

// kill stops m as a crash would: its gRPC server drops every connection and Raft stops
// without handing leadership over.
func (g *group) kill(m *member) {
	if m.dead {
		return
	}
	m.dead = true
	m.stall.resume()
	m.gate.resume()
	m.srv.Stop()
	if err := <-m.served; err != nil {
		g.t.Errorf("grpc serve on %s: %v", m.id, err)
	}
	if err := m.node.Raft().Shutdown().Error(); err != nil {
		g.t.Errorf("shut down raft on %s: %v", m.id, err)
	}
	if err := m.node.Close(); err != nil {
		g.t.Errorf("close raft node %s: %v", m.id, err)
	}
	if err := m.fsm.Close(); err != nil {
		g.t.Errorf("close fsm on %s: %v", m.id, err)
	}
}

// newClient returns a metaclient over nodes, closed when the test ends.
func newClient(t testing.TB, nodes []metaclient.Node) *metaclient.Client {
	t.Helper()
	return newClientReads(t, nodes, false)
}

// newClientReads is newClient with follower reads on or off.
func newClientReads(t testing.TB, nodes []metaclient.Node, followerReads bool) *metaclient.Client {
	t.Helper()
	c, err := metaclient.New(metaclient.Config{
		Nodes:         nodes,
		DialOptions:   []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Logger:        quietLogger(),
		FollowerReads: followerReads,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// createDemo creates the demo tenant and account through md.
func createDemo(t testing.TB, md metadatapb.MetadataClient) {
	t.Helper()
	if err := embedded.EnsureDemo(t.Context(), md); err != nil {
		t.Fatalf("create demo account: %v", err)
	}
}

// applyGate is the member's real FSM with a switch that holds Raft's apply of new entries,
// as a stalled disk or a stopped process would: the node keeps its log and votes, its
// state machine falls behind.
type applyGate struct {
	*metadata.FSM
	mu     sync.Mutex
	paused chan struct{} // closed by resume; nil while applying
}

func (g *applyGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused == nil {
		g.paused = make(chan struct{})
	}
}

func (g *applyGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused != nil {
		close(g.paused)
		g.paused = nil
	}
}

func (g *applyGate) wait() {
	g.mu.Lock()
	paused := g.paused
	g.mu.Unlock()
	if paused != nil {
		<-paused
	}
}

func (g *applyGate) Apply(l *raft.Log) any {
	g.wait()
	return g.FSM.Apply(l)
}

func (g *applyGate) ApplyBatch(logs []*raft.Log) []any {
	g.wait()
	return g.FSM.ApplyBatch(logs)
}

// callCounter counts, by full method name, the calls a member took and those it served
// (a unary call or a stream that ended without error, or a stream that sent a message).
type callCounter struct {
	mu     sync.Mutex
	taken  map[string]int
	served map[string]int
}

func (c *callCounter) add(counts *map[string]int, method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *counts == nil {
		*counts = map[string]int{}
	}
	(*counts)[method]++
}

// count returns how many calls of method the member took and served.
func (c *callCounter) count(method string) (taken, served int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.taken[method], c.served[method]
}

func (c *callCounter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c.add(&c.taken, info.FullMethod)
	resp, err := handler(ctx, req)
	if err == nil {
		c.add(&c.served, info.FullMethod)
	}
	return resp, err
}

func (c *callCounter) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c.add(&c.taken, info.FullMethod)
	counted := &countedStream{ServerStream: ss}
	err := handler(srv, counted)
	if err == nil || counted.sent {
		c.add(&c.served, info.FullMethod)
	}
	return err
}

type countedStream struct {
	grpc.ServerStream
	sent bool
}

func (s *countedStream) SendMsg(m any) error {
	s.sent = true
	return s.ServerStream.SendMsg(m)
}

// callStall holds every new call before the service sees it, as a hung process would
// (its connections stay open; nothing answers).
type callStall struct {
	mu      sync.Mutex
	stalled chan struct{} // closed by resume; nil while calls go through
	held    int           // calls held so far
}

// heldCalls returns how many calls the stall has held.
func (s *callStall) heldCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *callStall) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled == nil {
		s.stalled = make(chan struct{})
	}
}

func (s *callStall) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
}

func (s *callStall) wait(ctx context.Context) error {
	s.mu.Lock()
	stalled := s.stalled
	if stalled != nil {
		s.held++
	}
	s.mu.Unlock()
	if stalled == nil {
		return nil
	}
	select {
	case <-stalled:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (s *callStall) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *callStall) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.wait(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}
