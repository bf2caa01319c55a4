package replication

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// ErrNotLeader matches (errors.Is) every NotLeaderError.
var ErrNotLeader = errors.New("not the raft leader")

// ErrNotMember and ErrNotVoter refuse a leadership transfer to a server that cannot lead.
var (
	ErrNotMember = errors.New("not a member of the group")
	ErrNotVoter  = errors.New("not a voter")
)

// ErrClosed is returned by operations on a Node after Close.
var ErrClosed = errors.New("raft node closed")

// NotLeaderError reports that an operation that needs the leader reached a node that is not the
// leader. LeaderID and LeaderAddr name the leader this node knows of; both are empty when it knows
// of none (during an election or a leadership transfer), in which case callers retry with backoff.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the raft leader (leader unknown)"
	}
	return fmt.Sprintf("not the raft leader (leader is %s at %s)", e.LeaderID, e.LeaderAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold.
func (e NotLeaderError) Unwrap() error { return ErrNotLeader }

// routeError turns an error from a raft future into one callers can route on: NotLeaderError
// when another node should be asked, ErrClosed after shutdown, the raft error wrapped with op
// otherwise.
func (n *Node) routeError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		id, addr := n.Leader()
		return fmt.Errorf("%s: %w", op, NotLeaderError{LeaderID: id, LeaderAddr: addr})
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// The leader is handing over; the next one is not known yet.
		return fmt.Errorf("%s: %w", op, NotLeaderError{})
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%s: %w", op, ErrClosed)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%s: leadership lost, outcome unknown: %w", op, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}
