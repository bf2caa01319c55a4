package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Defaults of a Lease.
const (
	DefaultVerifyWindow  = time.Second
	DefaultDeleteTimeout = 10 * time.Second
	// handoverSlack covers scheduling and clock-rate differences between the nodes.
	handoverSlack = time.Second
	// leaderPoll is how often a Lease looks at the node's leadership.
	leaderPoll = 50 * time.Millisecond
)

// Leader is the Raft node a cluster's collector runs beside (replication.Node).
type Leader interface {
	// LeaderTerm returns the current term and whether this node leads in it.
	LeaderTerm() (term uint64, leading bool)
	// VerifyLeader returns once a quorum confirmed, after the call began, that this node
	// leads.
	VerifyLeader(ctx context.Context) error
	// Leader names the leader this node knows of, for the NOT_LEADER answer.
	Leader() (id, addr string)
}

// Lease confines a Collector to the Raft leader (package comment: one collector at a time).
type Lease struct {
	Node Leader
	// VerifyWindow: a deletion starts at most this long after the start of the last
	// successful VerifyLeader. DefaultVerifyWindow if zero.
	VerifyWindow time.Duration
	// DeleteTimeout bounds one deletion (its Stat and Delete). DefaultDeleteTimeout if zero.
	DeleteTimeout time.Duration

	mu       sync.Mutex
	term     uint64    // the last term this node was seen leading in
	since    time.Time // when the handover of term began
	verified time.Time // start of the last successful VerifyLeader in term
}

func (l *Lease) verifyWindow() time.Duration  { return cmpOr(l.VerifyWindow, DefaultVerifyWindow) }
func (l *Lease) deleteTimeout() time.Duration { return cmpOr(l.DeleteTimeout, DefaultDeleteTimeout) }

// Handover is how long a new leader waits before its first mark: the longest a deposed
// leader's deletions can still run.
func (l *Lease) Handover() time.Duration {
	return l.verifyWindow() + l.deleteTimeout() + handoverSlack
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// observe records leadership as seen now and returns the term and whether this node leads
// in it. A term won right after one this node led (term+1: no other node led in between,
// as a term has one leader) keeps the handover that began in the earlier one; passes of
// the earlier term were this collector's own, which Collector.mu keeps from overlapping.
// So a leader re-elected in the next term (a busy machine's missed heartbeats) need not
// wait again.
func (l *Lease) observe() (uint64, bool) {
	term, leading := l.Node.LeaderTerm()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !leading {
		l.verified = time.Time{}
		return term, false
	}
	if term != l.term {
		if term != l.term+1 || l.since.IsZero() {
			l.since = time.Now()
		}
		l.term, l.verified = term, time.Time{}
	}
	return term, true
}

// readyAt is when the handover of the term last seen leading ends.
func (l *Lease) readyAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.since.Add(l.Handover())
}

// errNotLeader is the NOT_LEADER refusal (metadatapb.NotLeaderReason) that admin clients
// follow to the leader.
func (l *Lease) errNotLeader() error {
	id, addr := l.Node.Leader()
	st := status.New(codes.Unavailable, "blob gc runs on the metadata leader; this node does not lead")
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   metadatapb.NotLeaderReason,
		Domain:   "strata.metadata",
		Metadata: map[string]string{"leader_id": id, "leader_addr": addr},
	}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// hold returns a context that ends when this node stops leading in the current term, once
// the handover since it began leading is over; NOT_LEADER if it does not lead.
func (l *Lease) hold(ctx context.Context) (context.Context, context.CancelFunc, error) {
	term, leading := l.observe()
	if !leading {
		return nil, nil, l.errNotLeader()
	}
	if wait := time.Until(l.readyAt()); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		ticker := time.NewTicker(leaderPoll)
		defer ticker.Stop()
		for {
			if now, leading := l.observe(); !leading || now != term {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	if now, leading := l.observe(); !leading || now != term {
		cancel()
		return nil, nil, l.errNotLeader()
	}
	return ctx, cancel, nil
}

// confirm returns once a deletion may start: within VerifyWindow of the start of a
// successful VerifyLeader in the term the pass began in.
func (l *Lease) confirm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("leadership ended: %w", err)
	}
	l.mu.Lock()
	fresh := !l.verified.IsZero() && time.Since(l.verified) < l.verifyWindow()
	term := l.term
	l.mu.Unlock()
	if fresh {
		return nil
	}
	start := time.Now()
	vctx, cancel := context.WithTimeout(ctx, l.verifyWindow())
	err := l.Node.VerifyLeader(vctx)
	cancel()
	if err != nil {
		return errors.Join(l.errNotLeader(), err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term != term {
		return l.errNotLeader()
	}
	l.verified = start
	return nil
}

// RunWhileLeader runs a pass every interval while this node leads (the first one a
// handover after it won leadership) until ctx ends; a pass stops as soon as leadership
// ends. It is the cluster form of RunEvery.
func (c *Collector) RunWhileLeader(ctx context.Context, interval, grace time.Duration) {
	ticker := time.NewTicker(leaderPoll)
	defer ticker.Stop()
	var term uint64
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		now, leading := c.Lease.observe()
		if !leading {
			term = 0
			continue
		}
		if now != term {
			term = now
			next = c.Lease.readyAt()
			c.Logger.Info("blob gc: this node leads; collecting after the handover", "term", term, "from", next)
		}
		if time.Now().Before(next) {
			continue
		}
		next = time.Now().Add(interval)
		c.runLogged(ctx, grace)
	}
}
