package metadata_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

const consistencyWait = 20 * time.Second

// pairMember is one member of a two-voter group serving Metadata with the consistency
// interceptors on a real gRPC listener.
type pairMember struct {
	id     string
	node   *replication.Node
	fsm    *metadata.FSM
	client metadatapb.MetadataClient
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startPair starts a two-voter group and returns its leader first.
func startPair(t *testing.T) [2]*pairMember {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), consistencyWait)
	defer cancel()
	var pair [2]*pairMember
	for i := range pair {
		dir := t.TempDir()
		m := &pairMember{id: "meta-" + strconv.Itoa(i)}
		var err error
		if m.fsm, err = metadata.OpenFSM(filepath.Join(dir, "fsm"), quiet()); err != nil {
			t.Fatalf("open fsm: %v", err)
		}
		m.node, err = replication.Open(replication.Config{
			NodeID: m.id, DataDir: filepath.Join(dir, "raft"), RaftBind: "127.0.0.1:0",
			// Default election timing: a two-voter group loses its leader whenever one
			// heartbeat is late, and the shared test machine is often loaded.
			Bootstrap: i == 0, FSM: m.fsm, Logger: quiet(), CommitTimeout: 2 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("open raft node: %v", err)
		}
		if i == 0 {
			if err := m.node.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := pair[0].node.AddVoter(ctx, m.id, m.node.Addr()); err != nil {
			t.Fatalf("add voter: %v", err)
		}
		svc := metadata.NewService(m.node, m.fsm, quiet())
		srv := grpc.NewServer(svc.ConsistencyOptions()...)
		metadatapb.RegisterMetadataServer(srv, svc)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		m.client = metadatapb.NewMetadataClient(conn)
		t.Cleanup(func() {
			conn.Close()
			srv.Stop()
			m.node.Close()
			m.fsm.Close()
		})
		pair[i] = m
	}
	// On a loaded machine the young group may have changed leader: name them by role.
	testwait.Until(t, consistencyWait, func() error {
		if !pair[0].node.IsLeader() && pair[1].node.IsLeader() {
			pair[0], pair[1] = pair[1], pair[0]
		}
		if !pair[0].node.IsLeader() {
			return errors.New("no leader")
		}
		return nil
	})
	return pair
}

func appliedIndex(t *testing.T, md grpcmd.MD) uint64 {
	t.Helper()
	values := md.Get(metadata.AppliedIndexHeader)
	if len(values) != 1 {
		t.Fatalf("response metadata %v: want one %s", md, metadata.AppliedIndexHeader)
	}
	index, err := strconv.ParseUint(values[0], 10, 64)
	if err != nil {
		t.Fatalf("%s %q: %v", metadata.AppliedIndexHeader, values[0], err)
	}
	return index
}

func withMin(ctx context.Context, index uint64) context.Context {
	return grpcmd.AppendToOutgoingContext(ctx, metadata.MinIndexHeader, strconv.FormatUint(index, 10))
}

// TestSessionReadsOnFollower checks the contract of consistency.go on a real two-voter
// group: writes are labelled with an index that covers them; a follower answers a read
// whose min index it has applied, refuses one it cannot reach with NOT_LEADER naming the
// leader, and refuses a read without the header as before; streams carry the index too.
func TestSessionReadsOnFollower(t *testing.T) {
	pair := startPair(t)
	leader, follower := pair[0], pair[1]
	ctx, cancel := context.WithTimeout(t.Context(), consistencyWait)
	defer cancel()

	var header, trailer grpcmd.MD
	if _, err := leader.client.CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: "t1", Name: "example", Domains: []string{"example.com"}},
		grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	if _, err := leader.client.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: "a1", Email: "demo@example.com", Password: "demo"},
		grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
		t.Fatalf("create account: %v", err)
	}
	written := appliedIndex(t, trailer)
	if written == 0 || written > leader.node.AppliedIndex() {
		t.Fatalf("write's trailer index %d, leader applied %d", written, leader.node.AppliedIndex())
	}
	if h := appliedIndex(t, header); h > written {
		t.Errorf("header index %d above trailer index %d", h, written)
	}

	// At the write's index the follower has the account (it waits for it if needed).
	resp, err := follower.client.ListMailboxes(withMin(ctx, written), &metadatapb.ListMailboxesRequest{Account: "demo@example.com"}, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatalf("session read on follower at %d: %v", written, err)
	}
	if len(resp.GetMailboxes()) == 0 {
		t.Errorf("follower listed no mailboxes for the new account")
	}
	if got := appliedIndex(t, trailer); got < written {
		t.Errorf("follower answered with trailer index %d below the min index %d", got, written)
	}

	// An index the group has not reached: refused after the bounded wait, naming the leader.
	_, err = follower.client.ListMailboxes(withMin(ctx, written+1000), &metadatapb.ListMailboxesRequest{Account: "demo@example.com"}, grpc.Trailer(&trailer))
	if id := notLeaderHint(err); id != leader.id {
		t.Errorf("session read beyond the follower's index: %v (leader hint %q), want NOT_LEADER naming %s", err, id, leader.id)
	}
	if got := appliedIndex(t, trailer); got >= written+1000 {
		t.Errorf("refusal labelled with index %d", got)
	}
	// The leader answers the same read once it gets there: here, at once with its barrier.
	if _, err := leader.client.ListMailboxes(withMin(ctx, written), &metadatapb.ListMailboxesRequest{Account: "demo@example.com"}); err != nil {
		t.Errorf("session read on the leader: %v", err)
	}

	// Without the header a follower still refuses: reads default to linearizable.
	if _, err := follower.client.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: "demo@example.com"}); notLeaderHint(err) != leader.id {
		t.Errorf("linearizable read on follower: %v, want NOT_LEADER naming %s", err, leader.id)
	}
	// A malformed header is refused, never read as linearizable or as index 0.
	badCtx := grpcmd.AppendToOutgoingContext(ctx, metadata.MinIndexHeader, "seven")
	if _, err := follower.client.ListMailboxes(badCtx, &metadatapb.ListMailboxesRequest{Account: "demo@example.com"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("malformed %s: %v, want InvalidArgument", metadata.MinIndexHeader, err)
	}

	// Streams: the header arrives before any message (Watch of a quiet mailbox sends
	// none), the trailer at the end.
	inbox, err := follower.client.GetMailbox(withMin(ctx, written), &metadatapb.GetMailboxRequest{Account: "demo@example.com", Name: "INBOX"})
	if err != nil {
		t.Fatalf("get INBOX on follower: %v", err)
	}
	watchCtx, stopWatch := context.WithCancel(withMin(ctx, written))
	defer stopWatch()
	watch, err := follower.client.Watch(watchCtx, &metadatapb.WatchRequest{Account: "demo@example.com", MailboxId: inbox.GetId(), SinceModseq: inbox.GetHighestModseq()})
	if err != nil {
		t.Fatalf("watch on follower: %v", err)
	}
	if h, err := watch.Header(); err != nil {
		t.Fatalf("watch header: %v", err)
	} else if appliedIndex(t, h) < written {
		t.Errorf("watch header index %d below %d", appliedIndex(t, h), written)
	}
	appended, err := leader.client.Append(ctx, &metadatapb.AppendRequest{RequestId: "m1", Account: "demo@example.com", MailboxId: inbox.GetId(),
		Messages: []*metadatapb.NewMessage{{BlobKey: "blob-1", Size: 10, InternalDateUnix: 1793534400}}}, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	appendIndex := appliedIndex(t, trailer)
	batch, err := watch.Recv()
	if err != nil {
		t.Fatalf("watch on follower: %v", err)
	}
	if len(batch.GetChanges()) != 1 || batch.GetChanges()[0].GetUid() != appended.GetUids()[0] {
		t.Errorf("follower's watch delivered %v, want the append of UID %d", batch.GetChanges(), appended.GetUids()[0])
	}
	fetch, err := follower.client.FetchMessages(withMin(ctx, appendIndex), &metadatapb.FetchMessagesRequest{Account: "demo@example.com", MailboxId: inbox.GetId()})
	if err != nil {
		t.Fatalf("fetch on follower: %v", err)
	}
	var uids []uint32
	for {
		rec, err := fetch.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("fetch on follower: %v", err)
		}
		uids = append(uids, rec.GetUid())
	}
	if len(uids) != 1 || uids[0] != appended.GetUids()[0] {
		t.Errorf("follower fetched %v at the append's index, want [%d]", uids, appended.GetUids()[0])
	}
	if got := appliedIndex(t, fetch.Trailer()); got < appendIndex {
		t.Errorf("fetch trailer index %d below %d", got, appendIndex)
	}
}

// notLeaderHint returns the leader_id of a NOT_LEADER refusal, "" for anything else.
func notLeaderHint(err error) string {
	id, _ := notLeader(err)
	return id
}

// notLeader reports whether err is a NOT_LEADER refusal, and the leader it names.
func notLeader(err error) (leaderID string, refused bool) {
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable {
		return "", false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == metadata.NotLeaderReason {
			return info.GetMetadata()["leader_id"], true
		}
	}
	return "", false
}

// TestCutOffFollowerEndsStreams: when the leader of a two-voter group stops, the follower
// (which cannot win an election alone) ends the Watch it serves with NOT_LEADER instead of
// going on quietly from a state that no longer moves, and refuses session reads.
func TestCutOffFollowerEndsStreams(t *testing.T) {
	pair := startPair(t)
	leader, follower := pair[0], pair[1]
	ctx, cancel := context.WithTimeout(t.Context(), consistencyWait)
	defer cancel()
	var trailer grpcmd.MD
	// On a loaded machine the two voters may lose each other's heartbeats and hold a new
	// election before the writes below: retried with the same request IDs (applied once)
	// while the group answers Unavailable.
	testwait.Until(t, consistencyWait, func() error {
		_, err := leader.client.CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: "t1", Name: "example", Domains: []string{"example.com"}})
		return unavailableOnly(t, "create tenant", err)
	})
	testwait.Until(t, consistencyWait, func() error {
		_, err := leader.client.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: "a1", Email: "demo@example.com", Password: "demo"}, grpc.Trailer(&trailer))
		return unavailableOnly(t, "create account", err)
	})
	written := appliedIndex(t, trailer)
	inbox, err := follower.client.GetMailbox(withMin(ctx, written), &metadatapb.GetMailboxRequest{Account: "demo@example.com", Name: "INBOX"})
	if err != nil {
		t.Fatalf("get INBOX on follower: %v", err)
	}
	watch, err := follower.client.Watch(withMin(ctx, written), &metadatapb.WatchRequest{Account: "demo@example.com", MailboxId: inbox.GetId(), SinceModseq: inbox.GetHighestModseq()})
	if err != nil {
		t.Fatalf("watch on follower: %v", err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatalf("watch header: %v", err)
	}

	if err := leader.node.Raft().Shutdown().Error(); err != nil {
		t.Fatalf("stop the leader: %v", err)
	}
	_, err = watch.Recv()
	if _, refused := notLeader(err); !refused {
		t.Fatalf("watch on the cut-off follower ended with %v, want Unavailable NOT_LEADER", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("watch ended only with the test's deadline")
	}
	_, err = follower.client.ListMailboxes(withMin(ctx, written), &metadatapb.ListMailboxesRequest{Account: "demo@example.com"})
	if _, refused := notLeader(err); !refused {
		t.Errorf("session read on the cut-off follower: %v, want NOT_LEADER", err)
	}
}

// unavailableOnly returns err when it is Unavailable (the group is electing a leader: worth
// another try) and fails the test on any other error.
func unavailableOnly(t *testing.T, what string, err error) error {
	t.Helper()
	if err != nil && status.Code(err) != codes.Unavailable {
		t.Fatalf("%s: %v", what, err)
	}
	return err
}
