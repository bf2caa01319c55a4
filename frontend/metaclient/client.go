package metaclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mail/strata/internal/mutation"
	"github.com/strata-mail/strata/proto/metadatapb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Node is one metadata node as the directory lists it. Only GRPCAddr is needed; ID and
// RaftAddr let a NOT_LEADER hint (which names the leader's Raft ID and address) be turned
// into the leader's gRPC address.
type Node struct {
	ID       string
	GRPCAddr string
	RaftAddr string
}

// Config configures a Client.
type Config struct {
	// Nodes are the metadata nodes known at start; SetNodes replaces them later.
	Nodes []Node
	// DialOptions are passed to grpc.NewClient for every node (transport credentials),
	// after the client's keepalive parameters (keepaliveParams), which they may replace.
	DialOptions []grpc.DialOption
	// AttemptTimeout bounds one attempt of a unary call, so that a node that hangs costs
	// one attempt, not the caller's whole deadline. Default 5s.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts when no leader is known.
	// Defaults 20ms and 1s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// FollowerReads sends the reads of selected IMAP sessions (sessionReads) to any
	// healthy node as session-consistent reads at the client's read position, instead of
	// linearizable reads on the leader (package comment). Off, every call goes to the
	// leader.
	FollowerReads bool
	// FollowerTimeout bounds how long a node has to start answering a session read (its
	// response header) before the read goes to the leader and the node is skipped for a
	// while: the cost of one read on a node that hangs. Default 500ms.
	FollowerTimeout time.Duration
	Logger          *slog.Logger
}

// Defaults of Config.
const (
	DefaultAttemptTimeout  = 5 * time.Second
	DefaultMinBackoff      = 20 * time.Millisecond
	DefaultMaxBackoff      = time.Second
	DefaultFollowerTimeout = 500 * time.Millisecond
)

// MaxResponseBytes bounds one metadata response the client accepts. SELECT's ListMessages
// carries the whole mailbox view in one message, ~15 bytes per message (15 MB for 1,000,000
// messages), far above gRPC's default receive limit of 4 MiB, which failed SELECT above
// ~275,000 messages through `strata frontend`.
const MaxResponseBytes = 256 << 20

// keepaliveParams make the client ping a node while calls are open on its connection, so
// that a stream on a node that stopped without closing its connections (SIGSTOP, a hung
// host) fails and is resumed elsewhere instead of waiting for the node to come back.
// Metadata servers accept pings this often (metadata.Service.ConsistencyOptions).
var keepaliveParams = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}

// Client routes gRPC calls to the leader of one metadata group, and session reads to any
// healthy node. Use it as the connection of a generated client:
// metadatapb.NewMetadataClient(c).
type Client struct {
	cfg    Config
	logger *slog.Logger

	// seen is the read position: the highest applied index any response carried.
	seen atomic.Uint64

	mu     sync.Mutex
	nodes  []Node
	conns  map[string]*grpc.ClientConn // by gRPC address
	leader string                      // gRPC address of the presumed leader; "" if unknown
	next   int                         // round-robin position when no leader is known
	closed bool

	// clock orders deliveries and calls: each delivery ticks it, each call reads it when
	// sent. fences holds, by node and then by fence (a stream, or one unlabelled answer),
	// the tick of the latest delivery that no index covers yet.
	clock     uint64
	fences    map[string]map[uint64]uint64
	lastFence uint64 // the last fence id handed out
	// spread is the round-robin position of session reads; skipped holds the nodes that
	// failed one, until when and for how long the last time.
	spread  int
	skipped map[string]skip
	// attempts are the feed (Watch) attempts open, by node.
	attempts map[string]map[*attempt]struct{}
}

// skip is how long a node that failed a session read is left out of the spread.
type skip struct {
	until time.Time
	last  time.Duration
}

var _ grpc.ClientConnInterface = (*Client)(nil)

// ErrNoNodes is returned by calls while the client knows no metadata node.
var ErrNoNodes = status.Error(codes.Unavailable, "no metadata nodes known")

// New returns a client over cfg.Nodes. Connections are made lazily, on first use.
func New(cfg Config) (*Client, error) {
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.FollowerTimeout <= 0 {
		cfg.FollowerTimeout = DefaultFollowerTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{
		cfg: cfg, logger: cfg.Logger.With("component", "metaclient"), conns: map[string]*grpc.ClientConn{},
		fences: map[string]map[uint64]uint64{}, skipped: map[string]skip{}, attempts: map[string]map[*attempt]struct{}{},
	}
	c.cfg.DialOptions = append([]grpc.DialOption{
		grpc.WithKeepaliveParams(keepaliveParams),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseBytes)),
	}, cfg.DialOptions...)
	if err := c.SetNodes(cfg.Nodes); err != nil {
		return nil, err
	}
	return c, nil
}

// SetNodes replaces the node list (from static configuration or a directory watch):
// connections to nodes no longer listed are closed, and the leader is forgotten if it is
// not listed any more.
func (c *Client) SetNodes(nodes []Node) error {
	for _, n := range nodes {
		if n.GRPCAddr == "" {
			return fmt.Errorf("metadata node %q has no gRPC address", n.ID)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = slices.Clone(nodes)
	for addr, conn := range c.conns {
		if !slices.ContainsFunc(nodes, func(n Node) bool { return n.GRPCAddr == addr }) {
			delete(c.conns, addr)
			if err := conn.Close(); err != nil {
				c.logger.Warn("close connection to removed metadata node", "addr", addr, "err", err)
			}
		}
	}
	if c.leader != "" && !slices.ContainsFunc(nodes, func(n Node) bool { return n.GRPCAddr == c.leader }) {
		c.leader = ""
	}
	// A fence on a node that left stays: session reads then go to the leader, which
	// lifts it.
	for addr := range c.skipped {
		if !slices.ContainsFunc(nodes, func(n Node) bool { return n.GRPCAddr == addr }) {
			delete(c.skipped, addr)
		}
	}
	return nil
}

// Nodes returns the current node list.
func (c *Client) Nodes() []Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Leader returns the gRPC address of the presumed leader, "" if none is known.
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// ReachLeader makes the cheapest call only the leader answers, FindOAuthIssuer with no
// issuer (a linearizable read point on the leader, no storage read), and reports whether
// it succeeded before ctx ended; the leader is then known (Leader). A frontend is ready for
// traffic only then (internal/health).
func (c *Client) ReachLeader(ctx context.Context) error {
	if _, err := metadatapb.NewMetadataClient(c).FindOAuthIssuer(ctx, &metadatapb.FindOAuthIssuerRequest{}); err != nil {
		return fmt.Errorf("no metadata leader answers: %w", err)
	}
	return nil
}

// Close closes every connection; calls after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for addr, conn := range c.conns {
		if err := conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to %s: %w", addr, err))
		}
	}
	c.conns = map[string]*grpc.ClientConn{}
	return errors.Join(errs...)
}

// target is a node chosen for one attempt of a call.
type target struct {
	addr   string
	conn   *grpc.ClientConn
	sentAt uint64 // the clock when the attempt was sent
}

// pick returns the node to try next for a leader-only call: the leader if known, else the
// next node in round-robin order.
func (c *Client) pick() (target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return target{}, err
	}
	addr := c.leader
	if addr == "" {
		c.next %= len(c.nodes)
		addr = c.nodes[c.next].GRPCAddr
		c.next++
	}
	return c.targetLocked(addr)
}

func (c *Client) usableLocked() error {
	if c.closed {
		return status.Error(codes.Canceled, "metadata client closed")
	}
	if len(c.nodes) == 0 {
		return ErrNoNodes
	}
	return nil
}

// targetLocked returns addr with its connection, dialling it on first use.
func (c *Client) targetLocked(addr string) (target, error) {
	conn := c.conns[addr]
	if conn == nil {
		var err error
		conn, err = grpc.NewClient(addr, c.cfg.DialOptions...)
		if err != nil {
			return target{}, fmt.Errorf("dial metadata node %s: %w", addr, err)
		}
		c.conns[addr] = conn
	}
	return target{addr: addr, conn: conn, sentAt: c.clock}, nil
}

// onlyNode reports whether the client knows a single metadata node.
func (c *Client) onlyNode() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes) == 1
}

// answered records that addr served a call that only the leader serves.
func (c *Client) answered(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader != addr {
		c.logger.Debug("metadata leader", "addr", addr)
		c.leader = addr
	}
}

// refused records a retryable failure of addr and reports whether it named another node
// as the leader, which is then tried at once.
func (c *Client) refused(addr string, err error) (redirected bool) {
	hint := leaderHint(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == addr {
		c.leader = ""
	}
	// The next round-robin pick is the node after addr, not addr again.
	if i := slices.IndexFunc(c.nodes, func(n Node) bool { return n.GRPCAddr == addr }); i >= 0 {
		c.next = i + 1
	}
	if hint.id == "" && hint.raftAddr == "" {
		return false
	}
	for _, n := range c.nodes {
		if (hint.id != "" && n.ID == hint.id) || (hint.raftAddr != "" && n.RaftAddr == hint.raftAddr) {
			if n.GRPCAddr == addr {
				return false
			}
			c.leader = n.GRPCAddr
			return true
		}
	}
	return false
}

type leaderRef struct{ id, raftAddr string }

// leaderHint reads the leader named by a NOT_LEADER refusal (metadatapb.NotLeaderReason).
func leaderHint(err error) leaderRef {
	st, ok := status.FromError(err)
	if !ok {
		return leaderRef{}
	}
	for _, d := range st.Details() {
		if info, isInfo := d.(*errdetails.ErrorInfo); isInfo && info.GetReason() == metadatapb.NotLeaderReason {
			return leaderRef{id: info.GetMetadata()["leader_id"], raftAddr: info.GetMetadata()["leader_addr"]}
		}
	}
	return leaderRef{}
}

// retryable reports whether another attempt, maybe on another node, may succeed: the node
// is unreachable, not the leader, or timed out with an unknown outcome.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// backoff waits before attempt n (n >= 1): full jitter over min(MaxBackoff,
// MinBackoff*2^(n-1)), or not at all after a redirect to a named leader.
func (c *Client) backoff(ctx context.Context, attempt int, redirected bool) error {
	if redirected && attempt < 3 {
		return ctx.Err()
	}
	ceiling := min(c.cfg.MaxBackoff, c.cfg.MinBackoff<<min(attempt-1, 16))
	wait := time.Duration(rand.Int64N(int64(ceiling)) + 1)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Invoke runs a unary call: a session read on the node sessionRoute chooses, if follower
// reads are on; otherwise, or when that node cannot answer, on the leader, retrying
// retryable failures on the leader that the refusal names, or the next node, until ctx
// ends.
func (c *Client) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if c.cfg.FollowerReads && sessionReads[method] {
		if done, err := c.invokeSession(ctx, method, args, reply, opts); done {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		t, err := c.pick()
		if err != nil {
			return err
		}
		addr := t.addr
		var trailer grpcmd.MD
		attemptCtx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		err = t.conn.Invoke(attemptCtx, method, args, reply, append(opts[:len(opts):len(opts)], grpc.Trailer(&trailer))...)
		cancel()
		c.settle(answer{addr: addr, sentAt: t.sentAt, trailer: trailer, leaderOnly: err == nil && metadataMethod(method), state: answeredByNode(err)})
		if err == nil {
			c.answered(addr)
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		redirected := c.refused(addr, err)
		if !redirected && leaderHint(err) != (leaderRef{}) && c.onlyNode() {
			// The only node known is a follower naming a leader this client cannot reach by
			// name (static --server/--metadata addresses carry no ids): waiting cannot help.
			return err
		}
		c.logger.Debug("metadata call refused; retrying", "method", method, "node", addr, "attempt", attempt+1, "err", err)
		if c.backoff(ctx, attempt+1, redirected) != nil {
			return err
		}
	}
}

// NewStream opens a stream: a session read on the node sessionRoute chooses, if follower
// reads are on; otherwise on the leader. A server stream that fails retryably before it
// delivered anything is opened again, with the same request, on the leader (the next one,
// after a leader change).
func (c *Client) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s := &routedStream{client: c, ctx: ctx, desc: desc, method: method, opts: opts}
	if c.cfg.FollowerReads && sessionReads[method] && !desc.ClientStreams {
		t, minIndex, ok, err := c.sessionRoute()
		if err != nil {
			return nil, err
		}
		if mutation.StaleReads {
			minIndex = 0 // the broken build of the consistency checker's tests
		}
		if ok {
			if err := s.openSession(t, minIndex); err == nil {
				return s, nil
			}
			c.sessionFailed(t.addr, true)
		}
	}
	err := s.open()
	for attempt := 1; err != nil; attempt++ {
		if !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		redirected := c.refused(s.addr, err)
		if c.backoff(ctx, attempt, redirected) != nil {
			return nil, err
		}
		err = s.open()
	}
	return s, nil
}

// routedStream is a client stream that can be moved to another node until its first
// message arrives.
type routedStream struct {
	client *Client
	ctx    context.Context
	desc   *grpc.StreamDesc
	method string
	opts   []grpc.CallOption

	grpc.ClientStream        // the current attempt
	addr              string // its node
	sentAt            uint64 // the client's clock when it was opened
	sent              []any  // messages sent, replayed on a new node
	halfClosed        bool
	delivered         bool
	fence             uint64 // the id of the fence its deliveries set, 0 before the first

	// Each attempt has its own context (attempt), cancelled when it ends, when a session
	// read's node does not send the response header within FollowerTimeout (timedOut),
	// and, for a feed, when a session read finds the node not answering (sessionFailed).
	attempt    *attempt
	session    bool
	headerSeen bool
	timedOut   bool
}

// attempt is one stream attempt on one node, which the client can end from outside.
type attempt struct {
	addr    string
	cancel  context.CancelFunc
	aborted atomic.Bool
}

// open opens the stream on the node pick chooses: a leader-only call.
func (s *routedStream) open() error {
	s.endAttempt()
	s.session = false
	t, err := s.client.pick()
	if err != nil {
		return err
	}
	return s.start(t, s.ctx)
}

// openSession opens the stream on t as a session read at minIndex.
func (s *routedStream) openSession(t target, minIndex uint64) error {
	s.session, s.headerSeen, s.timedOut = true, false, false
	return s.start(t, grpcmd.AppendToOutgoingContext(s.ctx, metadatapb.MinIndexHeader, strconv.FormatUint(minIndex, 10)))
}

func (s *routedStream) start(t target, ctx context.Context) error {
	s.addr, s.sentAt = t.addr, t.sentAt
	ctx, cancel := context.WithCancel(ctx)
	a := &attempt{addr: t.addr, cancel: cancel}
	if feeds[s.method] {
		// A feed can wait on a hung node forever; sessionFailed may end it. Whoever ends
		// the attempt (the caller's context, endAttempt, sessionFailed) unlists it.
		s.client.track(a)
		context.AfterFunc(ctx, func() { s.client.untrack(a) })
	}
	s.attempt = a
	stream, err := t.conn.NewStream(ctx, s.desc, s.method, s.opts...)
	if err != nil {
		s.endAttempt()
		return err
	}
	s.ClientStream = stream
	return nil
}

func (s *routedStream) endAttempt() {
	if s.attempt != nil {
		s.attempt.cancel()
		s.attempt = nil
	}
}

func (s *routedStream) SendMsg(m any) error {
	s.sent = append(s.sent, m)
	return s.ClientStream.SendMsg(m)
}

func (s *routedStream) CloseSend() error {
	s.halfClosed = true
	return s.ClientStream.CloseSend()
}

// RecvMsg receives from the current attempt. While nothing was delivered, a session read
// that fails on its node moves to the leader, and a retryable failure on the leader (the
// node is gone or not the leader any more) moves the stream to another node. Every
// message of a feed (Watch) is a fence on its node until an index covers it; the messages
// of other streams are covered by their trailer, which arrives before the caller sees the
// end of the stream, or else the end is a fence.
func (s *routedStream) RecvMsg(m any) error {
	err := s.recv(m)
	for attempt := 1; err != nil && !s.delivered && !s.desc.ClientStreams && s.ctx.Err() == nil; attempt++ {
		if s.session {
			if !sessionRetryable(err, s.timedOut) {
				break
			}
			s.client.sessionFailed(s.addr, suspect(err, s.timedOut))
			s.client.logger.Debug("session read refused; reading from the leader", "method", s.method, "node", s.addr, "err", err)
		} else {
			if !retryable(err) {
				break
			}
			redirected := s.client.refused(s.addr, err)
			s.client.logger.Debug("metadata stream refused; reopening", "method", s.method, "node", s.addr, "attempt", attempt, "err", err)
			if s.client.backoff(s.ctx, attempt, redirected) != nil {
				break
			}
		}
		if err = s.reopen(); err == nil {
			err = s.recv(m)
		}
	}
	if err != nil {
		s.finish(err)
		return err
	}
	if !s.delivered {
		s.delivered = true
		if s.session {
			s.client.sessionServed(s.addr)
		} else {
			s.client.answered(s.addr)
		}
	}
	if feeds[s.method] {
		s.client.delivered(s.addr, &s.fence)
	}
	return nil
}

// recv receives one message; the first receive of a session read waits at most
// FollowerTimeout for the response header, which the node sends as soon as it takes the
// call (metadata/consistency.go).
func (s *routedStream) recv(m any) error {
	if s.session && !s.headerSeen {
		s.headerSeen = true
		timer := time.AfterFunc(s.client.cfg.FollowerTimeout, s.attempt.cancel)
		header, err := s.ClientStream.Header()
		s.timedOut = !timer.Stop()
		if err == nil {
			s.client.raiseSeen(header)
		}
	}
	err := s.ClientStream.RecvMsg(m)
	if err != nil && s.attempt != nil && s.attempt.aborted.Load() && s.ctx.Err() == nil {
		err = status.Errorf(codes.Unavailable, "metadata node %s stopped answering: %v", s.addr, err)
	}
	return err
}

// finish settles the end of the stream: its trailer covers every message it delivered.
func (s *routedStream) finish(err error) {
	s.client.settle(answer{
		addr: s.addr, sentAt: s.sentAt, trailer: s.ClientStream.Trailer(), fence: s.fence,
		leaderOnly: !s.session && errors.Is(err, io.EOF) && metadataMethod(s.method),
		state:      answeredByNode(err) || s.delivered,
	})
	if s.session && answeredByNode(err) {
		s.client.sessionServed(s.addr)
	}
	s.endAttempt()
}

// reopen opens the stream on the node pick chooses and sends it what the caller sent. A
// send that fails with io.EOF leaves the stream's status to RecvMsg (grpc.ClientStream).
func (s *routedStream) reopen() error {
	if err := s.open(); err != nil {
		return err
	}
	for _, m := range s.sent {
		if err := s.ClientStream.SendMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	if s.halfClosed {
		return s.ClientStream.CloseSend()
	}
	return nil
}
