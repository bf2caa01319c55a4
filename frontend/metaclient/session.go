package metaclient

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/internal/mutation"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// sessionReads are the calls a selected IMAP session makes to build and refresh its view,
// which may be session-consistent (package comment).
var sessionReads = map[string]bool{
	metadatapb.Metadata_ListMailboxes_FullMethodName:  true,
	metadatapb.Metadata_GetMailbox_FullMethodName:     true,
	metadatapb.Metadata_ListMessages_FullMethodName:   true,
	metadatapb.Metadata_FetchMessages_FullMethodName:  true,
	metadatapb.Metadata_ReadSortColumn_FullMethodName: true,
	metadatapb.Metadata_ListVanished_FullMethodName:   true,
	metadatapb.Metadata_GetQuota_FullMethodName:       true,
	metadatapb.Metadata_Watch_FullMethodName:          true,
}

// feeds are the streams whose messages a caller acts on before the stream ends (Watch
// never ends: the frontend's change feed hands each batch to its session at once), so each
// message is a fence. The other streams are reads that callers use once they end, which
// brings the trailer that covers them (the frontend's FETCH and SEARCH collect every record
// first, and on a failure discard them and read again).
var feeds = map[string]bool{metadatapb.Metadata_Watch_FullMethodName: true}

// metadataMethod reports whether method belongs to the Metadata service, whose calls
// without a min index are served at the leader's read point or committed before they
// answer (metadata/service.go read and propose).
func metadataMethod(method string) bool {
	return strings.HasPrefix(method, "/"+metadatapb.Metadata_ServiceDesc.ServiceName+"/")
}

const (
	// Bounds of how long a node that failed a session read is left out; the time doubles
	// while it keeps failing.
	minSkip = time.Second
	maxSkip = 30 * time.Second
)

// SeenIndex is the client's read position: the highest applied Raft index a response
// carried. Session reads are served by nodes that have applied it.
func (c *Client) SeenIndex() uint64 { return c.seen.Load() }

// raiseSeen raises the read position to the index md carries, and reports whether it
// carried one.
func (c *Client) raiseSeen(md grpcmd.MD) bool {
	values := md.Get(metadatapb.AppliedIndexHeader)
	if len(values) == 0 {
		return false
	}
	index, err := strconv.ParseUint(values[len(values)-1], 10, 64)
	if err != nil {
		return false
	}
	for {
		seen := c.seen.Load()
		if index <= seen || c.seen.CompareAndSwap(seen, index) {
			return true
		}
	}
}

// answer is the end of one call on one node, as settle needs it.
type answer struct {
	addr    string
	sentAt  uint64
	trailer grpcmd.MD
	// leaderOnly: a successful leader-only Metadata call, whose index covers every node's
	// state when it was sent.
	leaderOnly bool
	// fence is the id of the fence this stream's deliveries set (0 for none).
	fence uint64
	// state: the node's answer says something about the store (a response, or an error
	// such as NotFound), as opposed to a refusal or a transport failure.
	state bool
}

// answered reports whether err, the end of a call, came from the node's handling of it
// rather than from a refusal to serve or the transport.
func answeredByNode(err error) bool {
	if err == nil || errors.Is(err, io.EOF) {
		return true
	}
	switch status.Code(err) {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable:
		return false
	}
	return true
}

// settle records what the end of a call says about the read position: its trailer's
// index raises it and lifts the fences it covers: its own stream's, those of its node
// from before the call, and after a leader-only call every fence from before the call. An
// answer with state but no index is a fence on its node.
func (c *Client) settle(a answer) {
	labelled := c.raiseSeen(a.trailer)
	if !c.cfg.FollowerReads {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !labelled {
		if a.state {
			var fence uint64
			c.fenceLocked(a.addr, &fence)
		}
		return
	}
	lift := func(addr string, own uint64) {
		for fence, tick := range c.fences[addr] {
			if fence == own || tick <= a.sentAt {
				delete(c.fences[addr], fence)
			}
		}
		if len(c.fences[addr]) == 0 {
			delete(c.fences, addr)
		}
	}
	lift(a.addr, a.fence)
	if a.leaderOnly {
		for addr := range c.fences {
			lift(addr, 0)
		}
	}
}

// delivered records a stream message from addr that no index covers yet, under the
// stream's fence (a new one when *fence is 0).
func (c *Client) delivered(addr string, fence *uint64) {
	if !c.cfg.FollowerReads {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fenceLocked(addr, fence)
}

func (c *Client) fenceLocked(addr string, fence *uint64) {
	if *fence == 0 {
		c.lastFence++
		*fence = c.lastFence
	}
	c.clock++
	if c.fences[addr] == nil {
		c.fences[addr] = map[uint64]uint64{}
	}
	c.fences[addr][*fence] = c.clock
}

// sessionRoute chooses the node of a session read and the min index to send; ok is false
// when the read must go to the leader as a linearizable read: several nodes are fenced,
// or the one that is cannot be used.
func (c *Client) sessionRoute() (t target, minIndex uint64, ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return target{}, 0, false, err
	}
	now := time.Now()
	usable := func(addr string) bool {
		sk, skipped := c.skipped[addr]
		if !skipped || now.After(sk.until) {
			if skipped {
				// Try it again, with this read alone: the next ones skip it until this
				// one has had its chance.
				sk.until = now.Add(c.cfg.FollowerTimeout)
				c.skipped[addr] = sk
			}
			return true
		}
		return false
	}
	addr := ""
	switch len(c.fences) {
	case 0:
		for range len(c.nodes) {
			c.spread = (c.spread + 1) % len(c.nodes)
			if candidate := c.nodes[c.spread].GRPCAddr; usable(candidate) {
				addr = candidate
				break
			}
		}
	case 1:
		for fenced := range c.fences {
			listed := false
			for _, n := range c.nodes {
				listed = listed || n.GRPCAddr == fenced
			}
			if listed && usable(fenced) {
				addr = fenced
			}
		}
	}
	if addr == "" {
		return target{}, 0, false, nil
	}
	t, err = c.targetLocked(addr)
	return t, c.seen.Load(), err == nil, err
}

// sessionFailed leaves addr out of session reads for a while, longer each time in a row.
// When the node is suspected of not answering at all, the feeds (Watch) open on it are
// ended too, so that their callers resume them elsewhere instead of waiting on it until
// keepalive gives up on the connection. Bounded reads keep their attempt: they make
// progress or end at their caller's deadline.
func (c *Client) sessionFailed(addr string, suspected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sk := c.skipped[addr]
	sk.last = min(max(2*sk.last, minSkip), maxSkip)
	sk.until = time.Now().Add(sk.last)
	c.skipped[addr] = sk
	if suspected {
		for a := range c.attempts[addr] {
			a.aborted.Store(true)
			a.cancel()
		}
		if n := len(c.attempts[addr]); n > 0 {
			c.logger.Warn("metadata node not answering; moving its change feeds", "node", addr, "streams", n)
		}
	}
}

// suspect reports whether a failed session read says its node does not answer at all:
// no header in time, or a transport failure rather than a refusal.
func suspect(err error, timedOut bool) bool {
	if timedOut || status.Code(err) == codes.DeadlineExceeded {
		return true
	}
	return status.Code(err) == codes.Unavailable && !refusedAsNotLeader(err)
}

// refusedAsNotLeader reports whether err is a NOT_LEADER refusal, which only a node that
// answers sends.
func refusedAsNotLeader(err error) bool {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == metadatapb.NotLeaderReason {
			return true
		}
	}
	return false
}

// track registers a feed attempt, so that sessionFailed can end it.
func (c *Client) track(a *attempt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attempts[a.addr] == nil {
		c.attempts[a.addr] = map[*attempt]struct{}{}
	}
	c.attempts[a.addr][a] = struct{}{}
}

func (c *Client) untrack(a *attempt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.attempts[a.addr], a)
	if len(c.attempts[a.addr]) == 0 {
		delete(c.attempts, a.addr)
	}
}

// sessionServed puts addr back into the spread after it answered a session read.
func (c *Client) sessionServed(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.skipped, addr)
}

// sessionRetryable reports whether a session read that failed with err goes to the
// leader: the node is behind (NOT_LEADER), unreachable, or did not start answering in
// time (timedOut, which cancelled the attempt). Other errors are the node's answer.
func sessionRetryable(err error, timedOut bool) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	case codes.Canceled:
		return timedOut
	}
	return false
}

// unaryDesc describes a unary call opened as a stream, so that its header can be awaited.
var unaryDesc = grpc.StreamDesc{}

// invokeSession runs a unary session read on the node sessionRoute chooses. done is false
// when the read must go to the leader instead (no usable node, or the node failed it).
func (c *Client) invokeSession(ctx context.Context, method string, args, reply any, opts []grpc.CallOption) (done bool, err error) {
	t, minIndex, ok, err := c.sessionRoute()
	if err != nil {
		return true, err
	}
	if mutation.StaleReads {
		minIndex = 0 // the broken build of the consistency checker's tests
	}
	if !ok {
		return false, nil
	}
	attemptCtx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	attemptCtx = grpcmd.AppendToOutgoingContext(attemptCtx, metadatapb.MinIndexHeader, strconv.FormatUint(minIndex, 10))
	timedOut := false
	err = func() error {
		cs, err := t.conn.NewStream(attemptCtx, &unaryDesc, method, opts...)
		if err != nil {
			return err
		}
		// A send that fails with io.EOF leaves the status to RecvMsg (grpc.ClientStream).
		if err := cs.SendMsg(args); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if err := cs.CloseSend(); err != nil {
			return err
		}
		timer := time.AfterFunc(c.cfg.FollowerTimeout, cancel)
		if header, herr := cs.Header(); herr == nil {
			c.raiseSeen(header)
		}
		timedOut = !timer.Stop()
		err = cs.RecvMsg(reply)
		if answeredByNode(err) {
			c.settle(answer{addr: t.addr, sentAt: t.sentAt, trailer: cs.Trailer(), state: true})
		}
		return err
	}()
	switch {
	case err == nil:
		c.sessionServed(t.addr)
		return true, nil
	case ctx.Err() != nil || !sessionRetryable(err, timedOut):
		return true, err
	}
	c.sessionFailed(t.addr, suspect(err, timedOut))
	c.logger.Debug("session read refused; reading from the leader", "method", method, "node", t.addr, "err", err)
	return false, nil
}
