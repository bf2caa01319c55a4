package metadata

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
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
//
// The layouts a level adds (the dates projection at 2, the listing column at 3) are also
// written by the commands clients propose (APPEND, COPY, MOVE, STORE, EXPUNGE, CREATE),
// and a replica of an older build applying those writes none of them. So the apply adopts
// a layout only at the level of the command (Command.feature_level, commandLevel): the
// leader stamps each command with the group's level as it last learned it (stampLevel:
// the lowest level the members report, asked again in the background every
// groupLevelMaxAge), and at a level below a layout's the command neither marks a mailbox
// it creates complete in that layout nor writes the layout for a mailbox that is not
// complete in it (or filled past the UID: dated_through_uid, listed_through_uid), exactly
// as a build of that level does. A mailbox already complete in a layout keeps it
// maintained whatever the stamp: only a group that once ran at that level has one, and
// an older build then joining it is a downgrade (docs/operations.md). Mailboxes created
// below a level are filled, through the log, by the background NumberMessagesCommands
// (numberfill.go) once every member has it. So what the apply writes is a function of
// the log, whichever build applies it; the reads fall back for a mailbox not complete in
// a layout (ListMessages lists from the records, ReadSortColumn derives the dates from
// the column).
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

	// FeatureSubjectNumbers: the commands that add a message to a mailbox complete in it
	// number its base subject (subjectnumbers.go), a mailbox is complete in it from its
	// creation, and NumberMessagesCommand also numbers the subjects of a mailbox filled in
	// the four layouts before.
	FeatureSubjectNumbers uint32 = 5

	// FeatureSubjectRecords: the commands that add or remove a message of a mailbox
	// complete in it keep its record in the subject projection (subjectrecords.go), a
	// mailbox is complete in it from its creation, and NumberMessagesCommand also fills
	// the projection of a mailbox filled in the five layouts before.
	FeatureSubjectRecords uint32 = 6

	// FeatureLevel is the highest level this build applies.
	FeatureLevel = FeatureSubjectRecords

	// unstampedLevel is the level of a command without Command.feature_level: one that a
	// build from before the stamp proposed, the last of which applied level 3.
	unstampedLevel = FeatureListingColumn

	// oldestStampedLevel is the lowest level whose writes this build reproduces: a lower
	// stamp (0: a member of a build from before the level report, which wrote the numbers
	// but reported nothing) is applied as this one.
	oldestStampedLevel = FeatureMessageNumbers
)

// commandLevel is the level at which this build applies cmd: its stamp, at least
// oldestStampedLevel and at most FeatureLevel; unstampedLevel without one.
func commandLevel(cmd *metadatapb.Command) uint32 {
	if cmd.FeatureLevel == nil {
		return unstampedLevel
	}
	return min(max(cmd.GetFeatureLevel(), oldestStampedLevel), FeatureLevel)
}

// levelsOf returns what f writes for cmd: the level of its build (FeatureLevel, or that of
// the build from before the stamp f plays, preStampBuild) and the command's level within
// it.
func (f *FSM) levelsOf(cmd *metadatapb.Command) (build, level uint32) {
	if played := f.preStampBuild.Load(); played != 0 {
		return played, played
	}
	level = commandLevel(cmd)
	if cmd.FeatureLevel != nil && cmd.GetFeatureLevel() > f.stampSeen.Load() {
		f.stampSeen.Store(cmd.GetFeatureLevel()) // only the apply goroutine stores it
	}
	return FeatureLevel, level
}

// writesDates reports whether a command writes the dates projection's record of ms's uid
// (sortdates.go): at FeatureSortDates, as every build of that level writes it; below,
// only for a mailbox complete in it or filled past uid.
func (c *cmdCtx) writesDates(ms *mailboxState, uid uint32) bool {
	return c.build >= FeatureSortDates &&
		(c.level >= FeatureSortDates || ms.rec.GetDatesComplete() || uid <= ms.rec.GetDatedThroughUid())
}

// writesListing reports whether a command writes the listing column's entry of ms's uid
// (listingcolumn.go): for a mailbox complete in it or filled past uid (listsUID), as
// every build of FeatureListingColumn does.
func (c *cmdCtx) writesListing(ms *mailboxState, uid uint32) bool {
	return c.build >= FeatureListingColumn && listsUID(ms.rec, uid)
}

// writesThreadKeys reports whether a command writes the thread-keys projection's entry of
// ms's uid (threadkeys.go): for a mailbox complete in it or filled past uid, as every
// build of FeatureThreadKeys does (a mailbox is complete in it from its creation only
// by a command of that level, newMailbox).
func (c *cmdCtx) writesThreadKeys(ms *mailboxState, uid uint32) bool {
	return c.build >= FeatureThreadKeys &&
		(ms.rec.GetThreadKeysComplete() || uid <= ms.rec.GetThreadKeyedThroughUid())
}

// writesSubjectNumbers reports whether a command numbers the subject of the column entry
// of ms's uid (subjectnumbers.go): for a mailbox complete in the numbers or filled past
// uid, as every build of FeatureSubjectNumbers does (a mailbox is complete from its
// creation only by a command of that level, newMailbox).
func (c *cmdCtx) writesSubjectNumbers(ms *mailboxState, uid uint32) bool {
	return c.build >= FeatureSubjectNumbers &&
		(ms.rec.GetSubjectsComplete() || uid <= ms.rec.GetSubjectsNumberedThroughUid())
}

// writesSubjectRecords reports whether a command writes the subject projection's record
// of ms's uid (subjectrecords.go): for a mailbox complete in it or filled past uid, as
// every build of FeatureSubjectRecords does (a mailbox is complete in it from its
// creation only by a command of that level, newMailbox).
func (c *cmdCtx) writesSubjectRecords(ms *mailboxState, uid uint32) bool {
	return c.build >= FeatureSubjectRecords &&
		(ms.rec.GetSubjectRecordsComplete() || uid <= ms.rec.GetSubjectRecordedThroughUid())
}

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
	have, err := s.learnGroupLevel(ctx)
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

// groupLevelMaxAge is how long a leader stamps its commands with the group's level it
// learned before it asks the members again (in the background, stamping the old value
// meanwhile). A member that joins or is restarted on another build is seen within it.
const groupLevelMaxAge = 5 * time.Second

// groupLevelCache is the group's feature level as this node last learned it.
type groupLevelCache struct {
	level  atomic.Uint32
	known  atomic.Bool
	asked  atomic.Int64 // when the last ask began, unix nanoseconds
	asking atomic.Bool  // an ask in the background is under way
}

// learnGroupLevel asks the members for the group's level and keeps the answer for
// stampLevel.
func (s *Service) learnGroupLevel(ctx context.Context) (uint32, error) {
	s.groupLevelCache.asked.Store(time.Now().UnixNano())
	level, err := s.groupFeatureLevel(ctx)
	if err == nil {
		s.groupLevelCache.level.Store(level)
		s.groupLevelCache.known.Store(true)
	}
	return level, err
}

// stampLevel is the level this node stamps on a command it proposes (Command.feature_level):
// the group's level as it last learned it, asked again in the background once older than
// groupLevelMaxAge. Until an ask answered, it is the highest stamp this node's state machine
// applied (the previous leader's, after an election), else it asks at once; when a member
// does not answer, oldestStampedLevel. It never goes below the highest stamp applied: a
// level learned before an election may be older than the one the next leader stamped.
// A stamp below the group's level leaves new mailboxes for the backfill, and would have a
// replica of a build from before the stamp write more than the others; one above it would
// have a replica of an older build write less, so a member that does not answer never
// raises it.
//
// A node that is not the leader stamps as well: its proposal waits in the replication
// node for an election when no leader is known, and goes into the log as stamped here if
// this node wins it (review of gate22: a stamp of 0 there made the mailboxes created
// during an election incomplete in every layout).
func (s *Service) stampLevel(ctx context.Context) uint32 {
	c := &s.groupLevelCache
	if c.known.Load() || s.fsm.stampSeen.Load() != 0 {
		if time.Since(time.Unix(0, c.asked.Load())) > groupLevelMaxAge && c.asking.CompareAndSwap(false, true) {
			go func() {
				defer c.asking.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), defaultRPCTimeout)
				defer cancel()
				if _, err := s.learnGroupLevel(ctx); err != nil {
					s.logger.Debug("feature level of the group", "err", err)
				}
			}()
		}
		if c.known.Load() {
			return max(c.level.Load(), s.fsm.stampSeen.Load())
		}
		return s.fsm.stampSeen.Load()
	}
	level, err := s.learnGroupLevel(ctx)
	if err != nil {
		return oldestStampedLevel
	}
	return level
}
