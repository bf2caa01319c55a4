package replication

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// AddVoter adds (or promotes) server id at addr as a voting member. Only the leader can change
// membership; elsewhere it fails with NotLeaderError. It returns once the change is committed.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return fmt.Errorf("add voter %s: %w", id, err)
	}
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	return n.membershipChange(ctx, "add voter "+id, f)
}

// AddNonvoter adds server id at addr as a member that receives the log but does not vote (a
// replica catching up before promotion, or a read replica).
func (n *Node) AddNonvoter(ctx context.Context, id, addr string) error {
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return fmt.Errorf("add nonvoter %s: %w", id, err)
	}
	f := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	return n.membershipChange(ctx, "add nonvoter "+id, f)
}

// RemoveServer removes server id from the group. Removing the leader itself makes it step down.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	return n.membershipChange(ctx, "remove server "+id, f)
}

// Servers returns the group's latest membership as this node knows it.
func (n *Node) Servers(ctx context.Context) ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := n.await(ctx, f); err != nil {
		return nil, n.routeError("read raft configuration", err)
	}
	return f.Configuration().Servers, nil
}

func (n *Node) membershipChange(ctx context.Context, op string, f raft.IndexFuture) error {
	if err := n.await(ctx, f); err != nil {
		return n.routeError(op, err)
	}
	return nil
}

// TransferLeadership hands leadership to voter id, or to the most up-to-date other voter when
// id is empty, and returns once the transfer is done (raft's LeadershipTransfer: the target
// is brought up to date and told to start an election at once, so writes pause for about one
// round trip instead of an election timeout). Only the leader can do it.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.routeError("transfer leadership", raft.ErrNotLeader)
	}
	if id == "" {
		return n.transfer(ctx, "", n.handOver)
	}
	if id == n.id {
		return nil
	}
	servers, err := n.Servers(ctx)
	if err != nil {
		return err
	}
	for _, s := range servers {
		if string(s.ID) != id {
			continue
		}
		if s.Suffrage != raft.Voter {
			return fmt.Errorf("transfer leadership to %s: %w", id, ErrNotVoter)
		}
		return n.transfer(ctx, s.ID, func() raft.Future { return n.raft.LeadershipTransferToServer(s.ID, s.Address) })
	}
	return fmt.Errorf("transfer leadership to %s: %w", id, ErrNotMember)
}

// transfer asks raft for leadership transfers (ask) to target, or to any other voter when
// target is empty, until one is done or ctx ends. raft gives the target one election
// timeout to catch up and win; a voter that was just cut off (or is installing a snapshot),
// or one on a loaded machine, can need longer, and the transfer then fails (raft's
// unexported "leadership transfer timeout") and leaves this node leader, or the target
// wins just after raft gave up on it. So after a failure transfer waits up to leaderWait
// for the target (any other node when target is empty) to lead, which is a success, and
// after a timeout asks again while this node still leads, the target nearer each time.
func (n *Node) transfer(ctx context.Context, target raft.ServerID, ask func() raft.Future) error {
	for attempt := 1; ; attempt++ {
		err := n.leadershipTransfer(ctx, ask())
		if err == nil || n.ledElsewhereWithin(ctx, target, n.leaderWait) {
			if attempt > 1 {
				n.logger.Info("leadership transferred after a retry", "to", target, "attempts", attempt)
			}
			return nil
		}
		if !strings.Contains(err.Error(), "leadership transfer timeout") || !n.IsLeader() {
			return err // refused, or stepped down with no acceptable leader in sight
		}
		n.logger.Warn("leadership transfer timed out; asking again", "to", target, "attempt", attempt)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(transferRetryPause):
		}
	}
}

// ledElsewhereWithin reports whether target (any node but this one when target is empty)
// leads the group within d, polling raft's view of the leader.
func (n *Node) ledElsewhereWithin(ctx context.Context, target raft.ServerID, d time.Duration) bool {
	return n.pollLeader(ctx, d, func() (found, done bool) {
		_, id := n.raft.LeaderWithID()
		found = id != "" && string(id) != n.id && (target == "" || id == target) && !n.IsLeader()
		return found, found
	})
}

// transferRetryPause is the pause between tries of a leadership transfer whose target did
// not catch up in time.
const transferRetryPause = 100 * time.Millisecond

func (n *Node) leadershipTransfer(ctx context.Context, f raft.Future) error {
	if err := n.await(ctx, f); err != nil {
		return n.routeError("transfer leadership", err)
	}
	return nil
}
