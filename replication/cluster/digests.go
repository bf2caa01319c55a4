package cluster

import (
	"fmt"
	"strings"

	"github.com/strata-mail/strata/proto/clusterpb"
)

// DigestVerdict is what the state machine digests of a group's replicas say
// (CompareDigests).
type DigestVerdict int

const (
	// DigestsEqual: every replica applied the same index and has the same digest.
	DigestsEqual DigestVerdict = iota
	// DigestsNotComparable: the replicas applied different indexes (writes are still
	// going on, or a replica is behind); compare again once they have caught up.
	DigestsNotComparable
	// DigestsOfVersions: at one applied index the digests differ, but so do the builds
	// the replicas run. A digest hashes the stored layout, which a build may change (a
	// new layout of the sort column or the search index is written by the new build's
	// commands and snapshots only), so replicas of different builds that applied the same
	// log may differ without diverging: this is not a divergence, and not a proof of
	// agreement either. Upgrade the replicas of a group together (docs/operations.md,
	// "Upgrades") and compare then.
	DigestsOfVersions
	// DigestsDiverged: replicas of one build at one applied index have different digests:
	// their state machines diverged.
	DigestsDiverged
)

// CompareDigests judges the Status answers (asked with digest) of one group's replicas,
// and says why in a line for an operator. A replica whose build reports no version (one
// from before StatusResponse.version) counts as a build of its own.
func CompareDigests(replicas []*clusterpb.StatusResponse) (DigestVerdict, string) {
	line := func(show func(*clusterpb.StatusResponse) string) string {
		var parts []string
		for _, r := range replicas {
			parts = append(parts, r.GetId()+"="+show(r))
		}
		return strings.Join(parts, " ")
	}
	indexes := map[uint64]bool{}
	digests := map[string]bool{}
	versions := map[string]bool{}
	for _, r := range replicas {
		indexes[r.GetAppliedIndex()] = true
		digests[r.GetDigest()] = true
		versions[r.GetVersion()] = true
	}
	switch {
	case len(replicas) == 0:
		return DigestsNotComparable, "digests not comparable: no replica answered"
	case len(indexes) > 1:
		return DigestsNotComparable, "digests not comparable: the replicas applied different indexes (" +
			line(func(r *clusterpb.StatusResponse) string { return fmt.Sprint(r.GetAppliedIndex()) }) + "); compare once they caught up"
	case len(digests) <= 1:
		return DigestsEqual, fmt.Sprintf("digests equal at applied index %d", replicas[0].GetAppliedIndex())
	case len(versions) > 1:
		return DigestsOfVersions, "digests differ, but the replicas run different versions (" + line(versionOf) +
			"): a stored layout may differ between versions, so this is not a divergence; upgrade the replicas of a group together, then compare"
	default:
		return DigestsDiverged, fmt.Sprintf("DIVERGED: replicas of version %s at applied index %d have %d different digests (%s)",
			versionOf(replicas[0]), replicas[0].GetAppliedIndex(), len(digests), line(func(r *clusterpb.StatusResponse) string { return fmt.Sprintf("%.16s", r.GetDigest()) }))
	}
}

// versionOf is a replica's build as an operator reads it.
func versionOf(r *clusterpb.StatusResponse) string {
	if r.GetVersion() == "" {
		return "(unreported)"
	}
	return r.GetVersion()
}
