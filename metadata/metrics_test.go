package metadata

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// sampleCount returns the sample count of the histogram name whose labels are labels (name,
// value pairs), gathered from reg; -1 when there is none.
func sampleCount(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != len(labels)/2 {
				continue
			}
			for i := 0; i < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// TestMetrics writes through the gRPC service of a real single-node group and checks the
// FSM apply histogram by command type, the Raft commit latency of every write (a refused
// one too: it was committed), and the snapshot persist histogram after a Raft snapshot.
func TestMetrics(t *testing.T) {
	m := NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	s := startServiceWith(t, m)
	s.setupAlice()
	_, err := s.client.CreateTenant(s.ctx(), &metadatapb.CreateTenantRequest{RequestId: s.reqID(), Name: "example", Domains: []string{"example.org"}})
	wantCode(t, err, codes.AlreadyExists)
	inbox := s.mailbox("INBOX")
	must(s.client.Append(s.ctx(), &metadatapb.AppendRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(), Messages: newMessages(1, "m")}))
	must(s.client.StoreFlags(s.ctx(), &metadatapb.StoreFlagsRequest{RequestId: s.reqID(), Account: alice, MailboxId: inbox.GetId(),
		Uids: []*metadatapb.UidRange{uidRange(1, 1)}, Op: metadatapb.FlagOp_FLAG_OP_ADD, Flags: []string{`\Seen`}}))

	for _, c := range []struct {
		command string
		want    float64
	}{{"create_tenant", 2}, {"create_account", 1}, {"append", 1}, {"store_flags", 1}, {"expunge", -1}} {
		if got := sampleCount(t, reg, "strata_metadata_fsm_apply_duration_seconds", "command", c.command); got != c.want {
			t.Errorf("applies of %s = %v, want %v", c.command, got, c.want)
		}
	}
	if got := sampleCount(t, reg, "strata_metadata_raft_commit_duration_seconds"); got != 5 {
		t.Errorf("Raft commits = %v, want 5", got)
	}
	if got := sampleCount(t, reg, "strata_metadata_fsm_batch_apply_duration_seconds"); got < 1 {
		t.Errorf("FSM batches = %v", got)
	}
	if got := sampleCount(t, reg, "strata_metadata_snapshot_persist_duration_seconds"); got != 0 {
		t.Errorf("snapshots before one was taken = %v", got)
	}
	if err := s.node.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if got := sampleCount(t, reg, "strata_metadata_snapshot_persist_duration_seconds"); got != 1 {
		t.Errorf("snapshots persisted = %v, want 1", got)
	}
	if got := sampleCount(t, reg, "strata_metadata_snapshot_persist_failures_total"); got != 0 {
		t.Errorf("snapshot failures = %v", got)
	}

	// Watch batches carry the log time of their first change, from which frontends measure
	// the change feed's lag.
	w := s.watch(inbox.GetId(), 0)
	select {
	case b := <-w.batches:
		ts := time.Unix(0, b.GetTimestampUnixNano())
		if b.GetTimestampUnixNano() == 0 || ts.After(time.Now()) {
			t.Errorf("Watch batch log time %v", ts)
		}
	case err := <-w.done:
		t.Fatalf("watch: %v", err)
	case <-time.After(rpcTimeout):
		t.Fatal("no Watch batch")
	}
}
