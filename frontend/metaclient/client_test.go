package metaclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/metaclient"
	"github.com/strata-mail/strata/proto/metadatapb"
)

func rpcContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	t.Cleanup(cancel)
	return ctx
}

// appendOne appends one message with requestID to INBOX and returns its UID.
func appendOne(t testing.TB, md metadatapb.MetadataClient, inbox uint64, requestID, key string) uint32 {
	t.Helper()
	resp, err := md.Append(rpcContext(t), &metadatapb.AppendRequest{
		RequestId: requestID, Account: embedded.DemoAccount, MailboxId: inbox,
		Messages: []*metadatapb.NewMessage{{BlobKey: key, Size: 10, InternalDateUnix: 1793534400}},
	})
	if err != nil {
		t.Fatalf("append %s: %v", key, err)
	}
	return resp.GetUids()[0]
}

func inboxID(t testing.TB, md metadatapb.MetadataClient) uint64 {
	t.Helper()
	mb, err := md.GetMailbox(rpcContext(t), &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: "INBOX"})
	if err != nil {
		t.Fatalf("get INBOX: %v", err)
	}
	return mb.GetId()
}

func listUIDs(t testing.TB, md metadatapb.MetadataClient, inbox uint64) []uint32 {
	t.Helper()
	resp, err := md.ListMessages(rpcContext(t), &metadatapb.ListMessagesRequest{Account: embedded.DemoAccount, MailboxId: inbox})
	if err != nil {
		t.Fatalf("list messages: %v", err)
	}
	return resp.GetUids()
}

// TestRoutesToLeaderByHint starts the client on a follower: the follower's NOT_LEADER
// refusal names the leader, and the client goes there and keeps it.
func TestRoutesToLeaderByHint(t *testing.T) {
	g := startGroup(t)
	leader := g.leader()
	nodes := g.nodes()
	// Followers first, so the first attempt is refused.
	slices.SortStableFunc(nodes, func(a, b metaclient.Node) int {
		switch {
		case a.ID == leader.id:
			return 1
		case b.ID == leader.id:
			return -1
		}
		return 0
	})
	c := newClient(t, nodes[:1])
	md := metadatapb.NewMetadataClient(c)
	// With only the follower listed the hint cannot be mapped to a gRPC address: the
	// client gives up at once with the follower's NOT_LEADER answer instead of waiting
	// out the caller's deadline.
	ctx := rpcContext(t)
	_, err := md.ListTenants(ctx, &metadatapb.ListTenantsRequest{})
	if code := status.Code(err); code != codes.Unavailable || ctx.Err() != nil {
		t.Fatalf("ListTenants on a follower alone: %v (context: %v), want Unavailable before the deadline", err, ctx.Err())
	}
	if err := c.SetNodes(nodes); err != nil {
		t.Fatal(err)
	}
	createDemo(t, md)
	// The leader now: on a loaded machine the group may have elected another meanwhile.
	if got, want := c.Leader(), g.leader().ln.Addr().String(); got != want {
		t.Errorf("client's leader = %s, want %s", got, want)
	}
}

// TestFailoverKeepsWorking kills the leader between calls and while a Watch is open; with
// only static gRPC addresses (no IDs to map hints), calls find the new leader by trying the
// other nodes, and a retried write with the same request ID is applied once.
func TestFailoverKeepsWorking(t *testing.T) {
	g := startGroup(t)
	var static []metaclient.Node
	for _, n := range g.nodes() {
		static = append(static, metaclient.Node{GRPCAddr: n.GRPCAddr})
	}
	c := newClient(t, static)
	md := metadatapb.NewMetadataClient(c)
	createDemo(t, md)
	inbox := inboxID(t, md)
	first := appendOne(t, md, inbox, "req-1", "blob-1")

	watchCtx, stopWatch := context.WithCancel(t.Context())
	defer stopWatch()
	stream, err := md.Watch(watchCtx, &metadatapb.WatchRequest{Account: embedded.DemoAccount, MailboxId: inbox})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	batch, err := stream.Recv()
	if err != nil {
		t.Fatalf("watch: first batch: %v", err)
	}
	cursor := batch.GetHighestModseq()

	old := g.leader()
	g.kill(old)
	start := time.Now()
	second := appendOne(t, md, inbox, "req-2", "blob-2")
	t.Logf("first write after killing leader %s took %s (new leader %s)", old.id, time.Since(start), c.Leader())
	if again := appendOne(t, md, inbox, "req-2", "blob-2"); again != second {
		t.Errorf("retried append got UID %d, first attempt %d", again, second)
	}
	if got, want := listUIDs(t, md, inbox), []uint32{first, second}; !slices.Equal(got, want) {
		t.Errorf("UIDs after failover = %v, want %v", got, want)
	}

	// The stream on the dead leader ends with a retryable error after it delivered; the
	// caller resumes from its cursor, as the frontend's change feed does.
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("watch on killed leader: %v, want Unavailable", err)
	}
	stream, err = md.Watch(watchCtx, &metadatapb.WatchRequest{Account: embedded.DemoAccount, MailboxId: inbox, SinceModseq: cursor})
	if err != nil {
		t.Fatalf("watch again: %v", err)
	}
	batch, err = stream.Recv()
	if err != nil {
		t.Fatalf("watch again: %v", err)
	}
	var appended []uint32
	for _, ch := range batch.GetChanges() {
		if ch.GetKind() == metadatapb.ChangeKind_CHANGE_KIND_APPEND {
			appended = append(appended, ch.GetUid())
		}
	}
	if !slices.Equal(appended, []uint32{second}) {
		t.Errorf("resumed watch delivered appends %v, want [%d]", appended, second)
	}
}

// TestStreamMovesBeforeFirstMessage opens FetchMessages through a follower: the refusal
// arrives on the first Recv, and the stream is sent again to the leader.
func TestStreamMovesBeforeFirstMessage(t *testing.T) {
	g := startGroup(t)
	leader := g.leader()
	var nodes []metaclient.Node
	for _, n := range g.nodes() {
		if n.ID != leader.id {
			nodes = append([]metaclient.Node{n}, nodes...)
		} else {
			nodes = append(nodes, n)
		}
	}
	c := newClient(t, nodes)
	md := metadatapb.NewMetadataClient(c)
	createDemo(t, md)
	inbox := inboxID(t, md)
	for i := range 3 {
		appendOne(t, md, inbox, fmt.Sprint("req-", i), fmt.Sprint("blob-", i))
	}
	// Forget the leader so the stream starts on the first (follower) node.
	if err := c.SetNodes(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SetNodes(nodes); err != nil {
		t.Fatal(err)
	}
	stream, err := md.FetchMessages(rpcContext(t), &metadatapb.FetchMessagesRequest{Account: embedded.DemoAccount, MailboxId: inbox})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var uids []uint32
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("fetch: recv: %v", err)
		}
		uids = append(uids, rec.GetUid())
	}
	if !slices.Equal(uids, []uint32{1, 2, 3}) {
		t.Errorf("fetched UIDs %v, want [1 2 3]", uids)
	}
	// The leader now: on a loaded machine the group may have elected another meanwhile.
	if got, want := c.Leader(), g.leader().ln.Addr().String(); got != want {
		t.Errorf("client's leader = %s, want %s", got, want)
	}
}

// TestLargeMailboxView lists a mailbox whose view (UIDs, flags, MODSEQs) is larger than
// gRPC's default 4 MiB receive limit, as SELECT of a mailbox with hundreds of thousands of
// messages does through `strata frontend`.
func TestLargeMailboxView(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 200,000 messages")
	}
	g := startGroup(t)
	md := metadatapb.NewMetadataClient(newClient(t, g.nodes()))
	createDemo(t, md)
	inbox := inboxID(t, md)
	// With two flags each, a message takes ~25 bytes of the view.
	const total, batch = 200_000, 10_000
	for b := range total / batch {
		msgs := make([]*metadatapb.NewMessage, batch)
		for i := range msgs {
			msgs[i] = &metadatapb.NewMessage{BlobKey: fmt.Sprintf("big/%07d", b*batch+i), Size: 10, InternalDateUnix: 1793534400, Flags: []string{`\Seen`, `\Flagged`}}
		}
		if _, err := md.Append(rpcContext(t), &metadatapb.AppendRequest{
			RequestId: fmt.Sprintf("big-%d", b), Account: embedded.DemoAccount, MailboxId: inbox, Messages: msgs,
		}); err != nil {
			t.Fatalf("append batch %d: %v", b, err)
		}
	}
	resp, err := md.ListMessages(rpcContext(t), &metadatapb.ListMessagesRequest{Account: embedded.DemoAccount, MailboxId: inbox})
	if err != nil {
		t.Fatalf("list %d messages: %v", total, err)
	}
	if size := proto.Size(resp); size <= 4<<20 {
		t.Fatalf("the view of %d messages is %d bytes, not above the 4 MiB default the test is about", total, size)
	}
	if n := len(resp.GetUids()); n != total {
		t.Fatalf("listed %d messages, want %d", n, total)
	}
}
