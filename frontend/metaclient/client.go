// Package metaclient is the frontend's client of a replicated metadata group: one
// grpc.ClientConnInterface over connections to every metadata node that sends each call to
// the group's current Raft leader (DESIGN.md "Errors that route").
//
// Invariants:
//
//   - A call is retried only with the identical request message, so a write keeps its
//     request_id and the metadata FSM applies it at most once even when a timed-out
//     attempt did commit ("outcome unknown, retry with the same request_id").
//   - Retries stay within the caller's deadline: attempts back off exponentially with full
//     jitter and stop when the context ends; the last error is returned.
//   - The leader is learned from the NOT_LEADER details of a refusal (leader_id, mapped to
//     the node's gRPC address through the node list) and from any node that answers; with
//     no usable hint the next node of the list is tried.
//   - A server stream (Watch, FetchMessages) is moved to another node only while it has
//     delivered nothing, by sending the same request again; once a message was delivered its
//     error goes to the caller, which resumes from what it received (the frontend's change
//     feed reconnects from its MODSEQ cursor), so no position is ever tracked twice.
package metaclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/metadata"
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
	// DialOptions are passed to grpc.NewClient for every node (transport credentials).
	DialOptions []grpc.DialOption
	// AttemptTimeout bounds one attempt of a unary call, so that a node that hangs costs
	// one attempt, not the caller's whole deadline. Default 5s.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts when no leader is known.
	// Defaults 20ms and 1s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	Logger     *slog.Logger
}

// Defaults of Config.
const (
	DefaultAttemptTimeout = 5 * time.Second
	DefaultMinBackoff     = 20 * time.Millisecond
	DefaultMaxBackoff     = time.Second
)

// Client routes gRPC calls to the leader of one metadata group. Use it as the connection of
// a generated client: metadatapb.NewMetadataClient(c).
type Client struct {
	cfg    Config
	logger *slog.Logger

	mu     sync.Mutex
	nodes  []Node
	conns  map[string]*grpc.ClientConn // by gRPC address
	leader string                      // gRPC address of the presumed leader; "" if unknown
	next   int                         // round-robin position when no leader is known
	closed bool
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{cfg: cfg, logger: cfg.Logger.With("component", "metaclient"), conns: map[string]*grpc.ClientConn{}}
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

// pick returns the node to try next and its connection: the leader if known, else the next
// node in round-robin order.
func (c *Client) pick() (string, *grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", nil, status.Error(codes.Canceled, "metadata client closed")
	}
	if len(c.nodes) == 0 {
		return "", nil, ErrNoNodes
	}
	addr := c.leader
	if addr == "" {
		c.next %= len(c.nodes)
		addr = c.nodes[c.next].GRPCAddr
		c.next++
	}
	conn := c.conns[addr]
	if conn == nil {
		var err error
		conn, err = grpc.NewClient(addr, c.cfg.DialOptions...)
		if err != nil {
			return "", nil, fmt.Errorf("dial metadata node %s: %w", addr, err)
		}
		c.conns[addr] = conn
	}
	return addr, conn, nil
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

// leaderHint reads the leader named by a NOT_LEADER refusal (metadata.NotLeaderReason).
func leaderHint(err error) leaderRef {
	st, ok := status.FromError(err)
	if !ok {
		return leaderRef{}
	}
	for _, d := range st.Details() {
		if info, isInfo := d.(*errdetails.ErrorInfo); isInfo && info.GetReason() == metadata.NotLeaderReason {
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

// Invoke runs a unary call on the leader, retrying retryable failures on the leader that
// the refusal names, or the next node, until ctx ends.
func (c *Client) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	for attempt := 0; ; attempt++ {
		addr, conn, err := c.pick()
		if err != nil {
			return err
		}
		attemptCtx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		err = conn.Invoke(attemptCtx, method, args, reply, opts...)
		cancel()
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

// NewStream opens a stream on the leader. A server stream that fails retryably before it
// delivered anything is opened again, with the same request, on the next leader.
func (c *Client) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s := &routedStream{client: c, ctx: ctx, desc: desc, method: method, opts: opts}
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
	sent              []any  // messages sent, replayed on a new node
	halfClosed        bool
	delivered         bool
}

func (s *routedStream) open() error {
	addr, conn, err := s.client.pick()
	if err != nil {
		return err
	}
	s.addr = addr
	stream, err := conn.NewStream(s.ctx, s.desc, s.method, s.opts...)
	if err != nil {
		return err
	}
	s.ClientStream = stream
	return nil
}

func (s *routedStream) SendMsg(m any) error {
	s.sent = append(s.sent, m)
	return s.ClientStream.SendMsg(m)
}

func (s *routedStream) CloseSend() error {
	s.halfClosed = true
	return s.ClientStream.CloseSend()
}

// RecvMsg receives from the current attempt; while nothing was delivered, a retryable
// failure (the node is gone or not the leader) moves the stream to another node.
func (s *routedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	for attempt := 1; err != nil; attempt++ {
		if s.delivered || s.desc.ClientStreams || !retryable(err) || s.ctx.Err() != nil {
			return err
		}
		redirected := s.client.refused(s.addr, err)
		s.client.logger.Debug("metadata stream refused; reopening", "method", s.method, "node", s.addr, "attempt", attempt, "err", err)
		if s.client.backoff(s.ctx, attempt, redirected) != nil {
			return err
		}
		if err = s.reopen(); err == nil {
			err = s.ClientStream.RecvMsg(m)
		}
	}
	if !s.delivered {
		s.delivered = true
		s.client.answered(s.addr)
	}
	return nil
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
