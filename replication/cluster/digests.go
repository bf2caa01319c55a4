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
// and says why in a line for an operator. Replicas are grouped by the build they run: two
// replicas of one build with different digests at one applied index diverged, whatever
// replicas of other builds hold. A replica whose build reports no version (one from
// before StatusResponse.version) counts as a build of its own.
func CompareDigests(replicas []*clusterpb.StatusResponse) (DigestVerdict, string) {
	line := func(of []*clusterpb.StatusResponse, show func(*clusterpb.StatusResponse) string) string {
		var parts []string
		for _, r := range of {
			parts = append(parts, r.GetId()+"="+show(r))
		}
		return strings.Join(parts, " ")
	}
	shortDigest := func(r *clusterpb.StatusResponse) string { return fmt.Sprintf("%.16s", r.GetDigest()) }
	indexes := map[uint64]bool{}
	digests := map[string]bool{}
	var builds []string
	byBuild := map[string][]*clusterpb.StatusResponse{}
	for i, r := range replicas {
		indexes[r.GetAppliedIndex()] = true
		digests[r.GetDigest()] = true
		build := r.GetVersion()
		if build == "" {
			build = fmt.Sprintf("\x00unreported %d", i) // a build of its own
		}
		if byBuild[build] == nil {
			builds = append(builds, build)
		}
		byBuild[build] = append(byBuild[build], r)
	}
	switch {
	case len(replicas) == 0:
		return DigestsNotComparable, "digests not comparable: no replica answered"
	case len(indexes) > 1:
		return DigestsNotComparable, "digests not comparable: the replicas applied different indexes (" +
			line(replicas, func(r *clusterpb.StatusResponse) string { return fmt.Sprint(r.GetAppliedIndex()) }) + "); compare once they caught up"
	case len(digests) <= 1:
		return DigestsEqual, fmt.Sprintf("digests equal at applied index %d", replicas[0].GetAppliedIndex())
	}
	for _, build := range builds {
		same := byBuild[build]
		own := map[string]bool{}
		for _, r := range same {
			own[r.GetDigest()] = true
		}
		if len(own) > 1 {
			return DigestsDiverged, fmt.Sprintf("DIVERGED: replicas of version %s at applied index %d have %d different digests (%s)",
				versionOf(same[0]), same[0].GetAppliedIndex(), len(own), line(same, shortDigest))
		}
	}
	return DigestsOfVersions, "digests differ, but the replicas run different versions (" + line(replicas, versionOf) +
		"): a stored layout may differ between versions, so this is not a divergence; upgrade the replicas of a group together, then compare"
}

// versionOf is a replica's build as an operator reads it.
func versionOf(r *clusterpb.StatusResponse) string {
	if r.GetVersion() == "" {
		return "(unreported)"
	}
	return r.GetVersion()
}
