package cluster

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/internal/clustertls"
	"github.com/strata-mail/strata/internal/clustertls/clustertlstest"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/replication"
)

type member struct {
	node  *replication.Node
	admin *Admin
	addr  string // gRPC
}

// startMember runs a member whose Raft transport and gRPC server are mutual TLS with a node
// identity of ca, as `strata metadata` runs them.
func startMember(t *testing.T, ca *clustertlstest.CA, id string, bootstrap bool) *member {
	t.Helper()
	identity := ca.Identity(t, clustertls.RoleNode, id)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := t.TempDir()
	fsm, err := metadata.OpenFSM(filepath.Join(dir, "fsm"), logger)
	if err != nil {
		t.Fatal(err)
	}
	node, err := replication.Open(replication.Config{
		NodeID: id, DataDir: dir, RaftBind: "127.0.0.1:0", Bootstrap: bootstrap, FSM: fsm, Logger: logger, TLS: identity,
		// Raft's default timeouts: shorter ones let a loaded machine depose the leader in the
		// middle of a membership change.
		CommitTimeout: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := NewAdmin(node, fsm.DigestAt, nil, identity.ClientCredentials(), logger)
	srv := grpc.NewServer(grpc.Creds(identity.ServerCredentials()))
	clusterpb.RegisterClusterAdminServer(srv, admin)
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	go admin.RunPromoter(ctx, Promotion{MaxLag: 64, Stable: 200 * time.Millisecond})
	t.Cleanup(func() {
		cancel()
		srv.Stop()
		_ = node.Close()
		_ = fsm.Close()
	})
	return &member{node: node, admin: admin, addr: ln.Addr().String()}
}

func suffrages(t *testing.T, ctx context.Context, m *member) map[string]string {
	t.Helper()
	st, err := m.admin.Status(ctx, &clusterpb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range st.GetServers() {
		out[s.GetId()] = s.GetSuffrage()
	}
	return out
}

func waitSuffrages(t *testing.T, ctx context.Context, m *member, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got map[string]string
	for time.Now().Before(deadline) {
		got = suffrages(t, ctx, m)
		if len(got) == len(want) {
			same := true
			for id, s := range want {
				same = same && got[id] == s
			}
			if same {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("membership %v, want %v", got, want)
}

func TestJoinPromoteRemove(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ca := clustertlstest.New(t)
	creds := ca.Identity(t, clustertls.RoleAdmin, "ops").ClientCredentials()
	m1 := startMember(t, ca, "m1", true)
	if err := m1.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	m2 := startMember(t, ca, "m2", false)
	m3 := startMember(t, ca, "m3", false)
	join := func(m *member, id string) func(context.Context, clusterpb.ClusterAdminClient) error {
		return func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
			_, err := c.Join(ctx, &clusterpb.JoinRequest{Id: id, RaftAddr: m.node.Addr(), GrpcAddr: m.addr})
			return err
		}
	}
	all := func(context.Context) []string { return []string{m1.addr, m2.addr, m3.addr} }

	// m2 joins through the leader, enters as a non-voter, and is promoted once caught up.
	if err := OnLeader(ctx, creds, m1.addr, all, join(m2, "m2")); err != nil {
		t.Fatal(err)
	}
	if got := suffrages(t, ctx, m1)["m2"]; got != "nonvoter" && got != "voter" {
		t.Fatalf("m2 after join: %q", got)
	}
	waitSuffrages(t, ctx, m1, map[string]string{"m1": "voter", "m2": "voter"})

	// A follower refuses Join with NOT_LEADER; OnLeader finds the leader.
	_, err := m2.admin.Join(ctx, &clusterpb.JoinRequest{Id: "m3", RaftAddr: m3.node.Addr()})
	if _, ok := LeaderRedirect(err); !ok {
		t.Fatalf("Join on a follower: %v, want NOT_LEADER", err)
	}
	if err := OnLeader(ctx, creds, m2.addr, all, join(m3, "m3")); err != nil {
		t.Fatal(err)
	}
	waitSuffrages(t, ctx, m1, map[string]string{"m1": "voter", "m2": "voter", "m3": "voter"})
	// Joining again changes nothing.
	if err := OnLeader(ctx, creds, m1.addr, all, join(m3, "m3")); err != nil {
		t.Fatal(err)
	}
	waitSuffrages(t, ctx, m1, map[string]string{"m1": "voter", "m2": "voter", "m3": "voter"})

	// Leadership transfer: a follower redirects, a stranger is refused, m3 takes over.
	if _, err := m2.admin.TransferLeadership(ctx, &clusterpb.TransferLeadershipRequest{Id: "m3"}); err == nil {
		t.Fatal("TransferLeadership on a follower succeeded")
	} else if _, ok := LeaderRedirect(err); !ok {
		t.Fatalf("TransferLeadership on a follower: %v, want NOT_LEADER", err)
	}
	transfer := func(id string) error {
		return OnLeader(ctx, creds, m2.addr, all, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
			_, err := c.TransferLeadership(ctx, &clusterpb.TransferLeadershipRequest{Id: id})
			return err
		})
	}
	if err := transfer("m9"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("transfer to a stranger: %v, want FAILED_PRECONDITION", err)
	}
	if err := transfer("m3"); err != nil {
		t.Fatalf("transfer to m3: %v", err)
	}

	// Remove through a follower, redirected to the leader.
	err = OnLeader(ctx, creds, m3.addr, all, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
		_, err := c.Remove(ctx, &clusterpb.RemoveRequest{Id: "m2"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitSuffrages(t, ctx, m1, map[string]string{"m1": "voter", "m3": "voter"})

	// Digests of the remaining replicas agree.
	conn, err := grpc.NewClient(m3.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s1, err1 := m1.admin.Status(ctx, &clusterpb.StatusRequest{Digest: true})
		s3, err3 := clusterpb.NewClusterAdminClient(conn).Status(ctx, &clusterpb.StatusRequest{Digest: true})
		if err1 != nil || err3 != nil {
			t.Fatal(err1, err3)
		}
		if s1.GetVersion() == "" || s1.GetVersion() != s3.GetVersion() {
			t.Fatalf("versions %q and %q, want this build's twice", s1.GetVersion(), s3.GetVersion())
		}
		if verdict, why := CompareDigests([]*clusterpb.StatusResponse{s1, s3}); verdict != DigestsNotComparable {
			if s1.GetDigest() == "" || verdict != DigestsEqual {
				t.Fatalf("digests at index %d: %s", s1.GetAppliedIndex(), why)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m3 never reached m1's applied index %d (at %d)", s1.GetAppliedIndex(), s3.GetAppliedIndex())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadiness: a node that has not joined is not a member and not caught up; once it
// has joined it is a member; the leader is caught up. (A follower's catching up with the
// leader's commit index, which needs the leader's gRPC address from etcd, is tested with
// real processes in e2e/health_test.go.)
func TestReadiness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ca := clustertlstest.New(t)
	creds := ca.Identity(t, clustertls.RoleAdmin, "ops").ClientCredentials()
	m1 := startMember(t, ca, "m1", true)
	if err := m1.node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m1.admin.Member(ctx); err != nil {
		t.Fatalf("the bootstrapped leader: %v", err)
	}
	if err := m1.admin.CaughtUp(ctx); err != nil {
		t.Fatalf("the leader: %v", err)
	}
	m2 := startMember(t, ca, "m2", false)
	if err := m2.admin.Member(ctx); err == nil || err.Error() != "not a member of the group yet" {
		t.Fatalf("before joining: %v, want not a member", err)
	}
	if err := m2.admin.CaughtUp(ctx); err == nil {
		t.Fatal("a node that has not joined is caught up")
	}
	err := OnLeader(ctx, creds, m1.addr, nil, func(ctx context.Context, c clusterpb.ClusterAdminClient) error {
		_, err := c.Join(ctx, &clusterpb.JoinRequest{Id: "m2", RaftAddr: m2.node.Addr(), GrpcAddr: m2.addr})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, func() error { return m2.admin.Member(ctx) })
}
