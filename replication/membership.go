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
		return n.leadershipTransfer(ctx, n.raft.LeadershipTransfer())
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
		return n.transferTo(ctx, s)
	}
	return fmt.Errorf("transfer leadership to %s: %w", id, ErrNotMember)
}

// transferTo hands leadership to voter s. raft gives the target one election timeout to
// catch up and win; a voter that was just cut off (or is installing a snapshot) can need
// longer, and the transfer then fails with raft's (unexported) "leadership transfer
// timeout" error and leaves this node leader. It is tried again until the caller's
// deadline, the target nearer each time; a target that won just after raft gave up on it
// is a success.
func (n *Node) transferTo(ctx context.Context, s raft.Server) error {
	for {
		err := n.leadershipTransfer(ctx, n.raft.LeadershipTransferToServer(s.ID, s.Address))
		if err == nil || !strings.Contains(err.Error(), "leadership transfer timeout") {
			return err
		}
		if !n.IsLeader() {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			werr := n.WaitLeader(wctx)
			cancel()
			if leader, _ := n.Leader(); werr == nil && leader == string(s.ID) {
				return nil
			}
			return err
		}
		n.logger.Info("leadership transfer timed out; retrying", "to", s.ID)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(transferRetryPause):
		}
	}
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
