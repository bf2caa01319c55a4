package metadata

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Feature levels: what a build's state machine can apply, as one integer that only grows.
// A replica of an older build refuses a command type it does not know (its apply answers
// an error and writes only the request record), so its state, and its digest, part from
// the others' for good, until it restores an upgraded replica's snapshot. During a rolling
// upgrade the replicas of a group run two builds, so the leader proposes a command of a
// level only once every member of the group (voters and non-voters alike: both apply the
// log) reports that level or a higher one (clusterpb.StatusResponse.fsm_level, served by
// replication/cluster), and tries again later otherwise (docs/operations.md, "Upgrades").
//
// Bump FeatureLevel, with a named constant for the new level, whenever a command type is
// added, and gate its proposals with Service.requireFeature. A command that only the
// leader's own background work or an administrator proposes (as NumberMessagesCommand) is
// gated where it is proposed; one that clients' requests propose needs the same gate, or a
// way for an older replica to apply it.
const (
	// FeatureMessageNumbers: NumberMessagesCommand (numberfill.go).
	FeatureMessageNumbers uint32 = 1

	// FeatureSortDates: NumberMessagesCommand also fills the dates projection of a
	// numbered mailbox (sortdates.go). A command changed in what it writes needs a level
	// as a new command type does: a level-1 replica would apply it without the dates.
	FeatureSortDates uint32 = 2

	// FeatureListingColumn: NumberMessagesCommand also fills the listing column of a
	// numbered and dated mailbox (listingcolumn.go).
	FeatureListingColumn uint32 = 3

	// FeatureThreadKeys: NumberMessagesCommand also fills the thread-keys projection of a
	// numbered, dated and listed mailbox (threadkeys.go).
	FeatureThreadKeys uint32 = 4

	// FeatureLevel is the highest level this build applies.
	FeatureLevel = FeatureThreadKeys
)

// GroupFeatureLevel returns the lowest feature level the members of the group report,
// or an error if one cannot be asked (replication/cluster Admin.GroupFeatureLevel).
type GroupFeatureLevel func(ctx context.Context) (uint32, error)

// SetGroupFeatureLevel sets how the service learns the group's feature level before it
// proposes a gated command. Without it, a group of this node alone has this build's level
// and any other group level 0 (nothing gated is proposed). Call it before serving.
func (s *Service) SetGroupFeatureLevel(fn GroupFeatureLevel) { s.groupLevel = fn }

// requireFeature returns nil if every member of the group applies commands of level,
// else a FailedPrecondition error saying which level the group is at.
func (s *Service) requireFeature(ctx context.Context, level uint32) error {
	have, err := s.groupFeatureLevel(ctx)
	if err != nil {
		return status.Errorf(codes.Unavailable, "feature level of the group: %v", err)
	}
	if have < level {
		return status.Errorf(codes.FailedPrecondition,
			"a member of the group runs a build of feature level %d, below %d: finish the upgrade of the group (docs/operations.md, Upgrades)", have, level)
	}
	return nil
}

func (s *Service) groupFeatureLevel(ctx context.Context) (uint32, error) {
	if s.groupLevel != nil {
		return s.groupLevel(ctx)
	}
	servers, err := s.node.Servers(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the raft configuration: %w", err)
	}
	for _, srv := range servers {
		if string(srv.ID) != s.node.ID() {
			return 0, nil
		}
	}
	return FeatureLevel, nil
}
