package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/etcdtest"
)

// TestMetadataNodeMetrics runs one `strata metadata` with --metrics-listen, writes through
// it, and scrapes its /metrics: the FSM applied the writes and the leader timed their Raft
// commits.
func TestMetadataNodeMetrics(t *testing.T) {
	etcd := etcdtest.Start(t)
	metricsAddr := freeAddr(t)
	node := newMetaNode(t, "m1", etcd, "--metrics-listen", metricsAddr)
	startNodes(t, []*metaNode{node})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setupAccount(t, ctx, newLeaderClient(t, node))

	value, _ := embeddedtest.Scrape(t, metricsAddr)
	// A retried write is applied (and answered from its stored result) again.
	if v := value(`strata_metadata_fsm_apply_duration_seconds_count{command="create_tenant"}`); v < 1 {
		t.Errorf("create_tenant applies = %v, want 1 or more", v)
	}
	if v := value("strata_metadata_raft_commit_duration_seconds_count"); v < 2 {
		t.Errorf("Raft commits = %v, want at least the tenant's and the account's", v)
	}
	if v := value("go_goroutines"); v == 0 {
		t.Error("no Go runtime metrics")
	}
}
