package cluster

import (
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/clusterpb"
)

// TestCompareDigests: replicas of different versions whose digests differ are reported as
// such, not as a divergence; one version with different digests is a divergence; replicas
// at different applied indexes are not compared.
func TestCompareDigests(t *testing.T) {
	replica := func(id string, applied uint64, digest, version string) *clusterpb.StatusResponse {
		return &clusterpb.StatusResponse{Id: id, AppliedIndex: applied, Digest: digest, Version: version}
	}
	for _, c := range []struct {
		name     string
		replicas []*clusterpb.StatusResponse
		want     DigestVerdict
		says     string
	}{
		{"equal", []*clusterpb.StatusResponse{replica("a", 9, "d1", "v2"), replica("b", 9, "d1", "v2")}, DigestsEqual, "equal at applied index 9"},
		{"equal across versions", []*clusterpb.StatusResponse{replica("a", 9, "d1", "v1"), replica("b", 9, "d1", "v2")}, DigestsEqual, "equal"},
		{"behind", []*clusterpb.StatusResponse{replica("a", 9, "d1", "v2"), replica("b", 8, "d2", "v2")}, DigestsNotComparable, "a=9 b=8"},
		{"versions", []*clusterpb.StatusResponse{replica("a", 9, "d1", "v1"), replica("b", 9, "d2", "v2"), replica("c", 9, "d2", "v2")}, DigestsOfVersions, "a=v1 b=v2 c=v2"},
		{"unreported version", []*clusterpb.StatusResponse{replica("a", 9, "d1", ""), replica("b", 9, "d2", "v2")}, DigestsOfVersions, "a=(unreported)"},
		{"diverged", []*clusterpb.StatusResponse{replica("a", 9, "d1", "v2"), replica("b", 9, "d2", "v2")}, DigestsDiverged, "DIVERGED: replicas of version v2 at applied index 9 have 2 different digests"},
		{"none", nil, DigestsNotComparable, "no replica"},
	} {
		got, says := CompareDigests(c.replicas)
		if got != c.want || !strings.Contains(says, c.says) {
			t.Errorf("%s: %v %q, want %v saying %q", c.name, got, says, c.want, c.says)
		}
	}
}

// TestDivergenceWithinAVersion: b and c run one build, applied one index and have
// different digests: they diverged, whatever a third replica of another build holds
// (review left20 B3).
func TestDivergenceWithinAVersion(t *testing.T) {
	replicas := []*clusterpb.StatusResponse{
		{Id: "a", AppliedIndex: 9, Digest: "d1", Version: "v1"},
		{Id: "b", AppliedIndex: 9, Digest: "d2", Version: "v2"},
		{Id: "c", AppliedIndex: 9, Digest: "d3", Version: "v2"},
	}
	got, why := CompareDigests(replicas)
	if got != DigestsDiverged || !strings.Contains(why, "version v2") {
		t.Errorf("b and c (both v2) differ: %v %q, want DigestsDiverged naming v2", got, why)
	}
}

// TestUnreportedVersionsEachTheirOwn: a replica that reports no version counts as a build
// of its own; two such replicas may run two builds (review left20 B4).
func TestUnreportedVersionsEachTheirOwn(t *testing.T) {
	replicas := []*clusterpb.StatusResponse{
		{Id: "a", AppliedIndex: 9, Digest: "d1"},
		{Id: "b", AppliedIndex: 9, Digest: "d2"},
	}
	if got, why := CompareDigests(replicas); got != DigestsOfVersions {
		t.Errorf("two replicas of unreported builds: %v %q, want DigestsOfVersions", got, why)
	}
}
