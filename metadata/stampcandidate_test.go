package metadata

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mail/strata/replication"
)

// TestStampOfCandidate: a command proposed on a node that is not (yet) the leader is
// stamped 0 (stampLevel: "not proposed: the apply answers NOT_LEADER"), but
// replication.Node.Apply does not answer NOT_LEADER when the node knows no live leader: it
// waits for the election and, if this node wins, appends the same bytes. The command is
// then applied at oldestStampedLevel although every member (here the only one) is at
// FeatureLevel: the account's INBOX is created without dates_complete and listing_column.
func TestStampOfCandidate(t *testing.T) {
	dir := t.TempDir()
	open := func() (*FSM, *replication.Node) {
		f, err := OpenFSM(filepath.Join(dir, "fsm"), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		node, err := replication.Open(replication.Config{
			NodeID: "meta-1", DataDir: filepath.Join(dir, "raft"), RaftBind: "127.0.0.1:0",
			Bootstrap: true, FSM: f, Logger: testLogger(t),
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
			LeaderLeaseTimeout: 300 * time.Millisecond, CommitTimeout: 2 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return f, node
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f, node := open()
	if err := node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	svc := NewService(node, f, testLogger(t))
	if _, err := svc.propose(ctx, "tenant", cmdTenant("example", "Example.ORG")); err != nil {
		t.Fatal(err)
	}
	node.Close()
	f.Close()

	// Restarted: a client's request arrives before the election is over.
	f, node = open()
	defer func() { node.Close(); f.Close() }()
	svc = NewService(node, f, testLogger(t))
	if node.IsLeader() {
		t.Skip("the node already leads")
	}
	if _, err := svc.propose(ctx, "account", cmdAccount("Alice@Example.org")); err != nil {
		t.Fatal(err)
	}
	if !node.IsLeader() {
		t.Fatal("not leader")
	}
	v := f.view()
	box, found, err := v.mailboxByName(alice, "INBOX")
	v.close()
	if err != nil || !found {
		t.Fatalf("INBOX: %v %v", found, err)
	}
	rec := must(getMailboxRecord(f, box.GetId()))
	if !rec.GetDatesComplete() || !rec.GetListingColumn() {
		t.Fatalf("a group of one member at level %d created INBOX with dates_complete %v, listing_column %v (stamp seen %d)",
			FeatureLevel, rec.GetDatesComplete(), rec.GetListingColumn(), f.stampSeen.Load())
	}
}
