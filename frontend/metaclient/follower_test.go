package metaclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/metaclient"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// newFollowerClient returns a metaclient with follower reads on, closed when the test ends.
func newFollowerClient(t testing.TB, nodes []metaclient.Node) *metaclient.Client {
	t.Helper()
	return newClientReads(t, nodes, true)
}

// startFollowerGroup starts a group with the demo account and a client with follower reads
// on, and returns them with the client's API and the demo INBOX.
func startFollowerGroup(t testing.TB) (*group, *metaclient.Client, metadatapb.MetadataClient, uint64) {
	t.Helper()
	g := startGroup(t)
	c := newFollowerClient(t, g.nodes())
	md := metadatapb.NewMetadataClient(c)
	createDemo(t, md)
	return g, c, md, inboxID(t, md)
}

// follower returns a member that does not lead the group, the last in g.members.
func (g *group) follower() *member {
	g.t.Helper()
	leader := g.leader()
	var follower *member
	for _, m := range g.members {
		if m != leader {
			follower = m
		}
	}
	if follower == nil {
		g.t.Fatal("no follower in the group")
	}
	return follower
}

// fetchUIDs fetches the records of uids (all when empty) and returns their UIDs.
func fetchUIDs(t testing.TB, md metadatapb.MetadataClient, inbox uint64, uids ...uint32) []uint32 {
	t.Helper()
	got, err := tryFetchUIDs(rpcContext(t), md, inbox, uids...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func tryFetchUIDs(ctx context.Context, md metadatapb.MetadataClient, inbox uint64, uids ...uint32) ([]uint32, error) {
	req := &metadatapb.FetchMessagesRequest{Account: embedded.DemoAccount, MailboxId: inbox}
	for _, uid := range uids {
		req.Uids = append(req.Uids, &metadatapb.UidRange{First: uid, Last: uid})
	}
	stream, err := md.FetchMessages(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	var got []uint32
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fetch: recv: %w", err)
		}
		got = append(got, rec.GetUid())
	}
}

// served sums, over members, the calls of the methods each served.
func served(members []*member, methods ...string) []int {
	out := make([]int, len(members))
	for i, m := range members {
		for _, method := range methods {
			_, n := m.calls.count(method)
			out[i] += n
		}
	}
	return out
}

var sessionMethods = []string{
	metadatapb.Metadata_ListMessages_FullMethodName,
	metadatapb.Metadata_FetchMessages_FullMethodName,
	metadatapb.Metadata_GetMailbox_FullMethodName,
	metadatapb.Metadata_ListMailboxes_FullMethodName,
}

// waitApplied waits until m's state machine has applied index.
func waitApplied(t testing.TB, m *member, index uint64) {
	t.Helper()
	testwait.Until(t, testWait, func() error {
		if applied := m.node.AppliedIndex(); applied < index {
			return fmt.Errorf("%s applied %d, want %d", m.id, applied, index)
		}
		return nil
	})
}

// TestFollowerReadsSpreadOverNodes: with follower reads on, the session reads of one
// client are served by every member, each answer holding every message appended before.
func TestFollowerReadsSpreadOverNodes(t *testing.T) {
	g, _, md, inbox := startFollowerGroup(t)
	var want []uint32
	for i := range 3 {
		want = append(want, appendOne(t, md, inbox, fmt.Sprint("req-", i), fmt.Sprint("blob-", i)))
	}
	before := served(g.members, sessionMethods...)
	for range 30 {
		if got := listUIDs(t, md, inbox); !slices.Equal(got, want) {
			t.Fatalf("ListMessages = %v, want %v", got, want)
		}
		if got := fetchUIDs(t, md, inbox); !slices.Equal(got, want) {
			t.Fatalf("FetchMessages = %v, want %v", got, want)
		}
	}
	after := served(g.members, sessionMethods...)
	leader := g.leader()
	for i, m := range g.members {
		n := after[i] - before[i]
		t.Logf("%s (leader %v) served %d of 60 session reads", m.id, m == leader, n)
		if n == 0 {
			t.Errorf("%s served no session read", m.id)
		}
	}
}

// TestFollowerBehindDoesNotAnswer pauses a follower's apply; reads at the client's
// position never come from it while it is behind (they go to the leader or the other
// follower), and it serves again once it has caught up.
func TestFollowerBehindDoesNotAnswer(t *testing.T) {
	g, c, md, inbox := startFollowerGroup(t)
	behind := g.follower()
	behind.gate.pause()
	var want []uint32
	for i := range 5 {
		want = append(want, appendOne(t, md, inbox, fmt.Sprint("req-", i), fmt.Sprint("blob-", i)))
	}
	if applied, seen := behind.node.AppliedIndex(), c.SeenIndex(); applied >= seen {
		t.Fatalf("paused follower applied %d, client's position %d: it is not behind", applied, seen)
	}
	list := metadatapb.Metadata_ListMessages_FullMethodName
	takenBefore, servedBefore := behind.calls.count(list)
	for range 30 {
		if got := listUIDs(t, md, inbox); !slices.Equal(got, want) {
			t.Fatalf("ListMessages with %s behind = %v, want %v", behind.id, got, want)
		}
	}
	taken, servedBehind := behind.calls.count(list)
	if taken == takenBefore {
		t.Errorf("the paused follower was never asked: the test proves nothing")
	}
	if servedBehind != servedBefore {
		t.Errorf("the paused follower served %d reads while behind", servedBehind-servedBefore)
	}

	behind.gate.resume()
	waitApplied(t, behind, c.SeenIndex())
	testwait.Until(t, testWait, func() error {
		if got := listUIDs(t, md, inbox); !slices.Equal(got, want) {
			t.Fatalf("ListMessages after catching up = %v, want %v", got, want)
		}
		if _, n := behind.calls.count(list); n <= servedBefore {
			return fmt.Errorf("%s serves no read after catching up", behind.id)
		}
		return nil
	})
}

// TestReadYourWritesUnderFollowerReads: several writers share one client (one frontend);
// right after each append, the writer's list and fetch hold its message, and the UIDs a
// writer sees never go backwards, while followers serve reads.
func TestReadYourWritesUnderFollowerReads(t *testing.T) {
	g, _, md, inbox := startFollowerGroup(t)
	before := served(g.members, sessionMethods...)
	const writers, rounds = 4, 15
	ctx := rpcContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			var highest uint32
			for r := range rounds {
				appended, err := md.Append(ctx, &metadatapb.AppendRequest{
					RequestId: fmt.Sprintf("req-%d-%d", w, r), Account: embedded.DemoAccount, MailboxId: inbox,
					Messages: []*metadatapb.NewMessage{{BlobKey: fmt.Sprintf("blob-%d-%d", w, r), Size: 10, InternalDateUnix: 1793534400}},
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d: append: %w", w, err)
					return
				}
				uid := appended.GetUids()[0]
				listed, err := md.ListMessages(ctx, &metadatapb.ListMessagesRequest{Account: embedded.DemoAccount, MailboxId: inbox})
				if err != nil {
					errs <- fmt.Errorf("writer %d: list: %w", w, err)
					return
				}
				uids := listed.GetUids()
				if !slices.Contains(uids, uid) {
					errs <- fmt.Errorf("writer %d: list after appending UID %d lacks it: %v", w, uid, uids)
					return
				}
				if top := uids[len(uids)-1]; top < highest {
					errs <- fmt.Errorf("writer %d: highest UID went back from %d to %d", w, highest, top)
					return
				} else {
					highest = top
				}
				if got, err := tryFetchUIDs(ctx, md, inbox, uid); err != nil || !slices.Equal(got, []uint32{uid}) {
					errs <- fmt.Errorf("writer %d: fetch of UID %d just appended = %v, %v", w, uid, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	after := served(g.members, sessionMethods...)
	leader := g.leader()
	followers := 0
	for i, m := range g.members {
		if m != leader {
			followers += after[i] - before[i]
		}
	}
	t.Logf("followers served %d of %d session reads", followers, 2*writers*rounds)
	if followers == 0 {
		t.Errorf("followers served no read")
	}
}

// TestFollowerReadsOff: with follower reads off every read goes to the leader.
func TestFollowerReadsOff(t *testing.T) {
	g := startGroup(t)
	c := newClient(t, g.nodes())
	md := metadatapb.NewMetadataClient(c)
	createDemo(t, md)
	inbox := inboxID(t, md)
	uid := appendOne(t, md, inbox, "req-1", "blob-1")
	leader := g.leader()
	before := served(g.members, sessionMethods...)
	for range 20 {
		if got := listUIDs(t, md, inbox); !slices.Equal(got, []uint32{uid}) {
			t.Fatalf("ListMessages = %v", got)
		}
		if got := fetchUIDs(t, md, inbox); !slices.Equal(got, []uint32{uid}) {
			t.Fatalf("FetchMessages = %v", got)
		}
		inboxID(t, md)
	}
	after := served(g.members, sessionMethods...)
	for i, m := range g.members {
		n := after[i] - before[i]
		switch {
		case m == leader && n != 60:
			t.Errorf("leader %s served %d of 60 reads", m.id, n)
		case m != leader && n != 0:
			t.Errorf("follower %s served %d reads with follower reads off", m.id, n)
		}
	}
}

// TestWatchBatchFencesReads: a Watch batch announces a message that another frontend
// appended, beyond this client's read position. A fetch of it must not go to a follower
// that has reached the position but not the message: the batch fences its node.
func TestWatchBatchFencesReads(t *testing.T) {
	g, c, md, inbox := startFollowerGroup(t)
	other := metadatapb.NewMetadataClient(newClient(t, g.nodes()))
	first := appendOne(t, md, inbox, "req-1", "blob-1")
	mb, err := md.GetMailbox(rpcContext(t), &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Id: inbox})
	if err != nil {
		t.Fatal(err)
	}
	behind := g.follower()
	waitApplied(t, behind, c.SeenIndex())
	behind.gate.pause()
	defer behind.gate.resume()

	// One watch per member: session streams go round the healthy nodes.
	watchCtx, stopWatches := context.WithCancel(t.Context())
	announced := make(chan uint32, 3)
	var watches sync.WaitGroup
	defer func() {
		stopWatches()
		watches.Wait()
	}()
	for range g.members {
		stream, err := md.Watch(watchCtx, &metadatapb.WatchRequest{Account: embedded.DemoAccount, MailboxId: inbox, SinceModseq: mb.GetHighestModseq()})
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		watches.Go(func() {
			batch, err := stream.Recv()
			if err == nil && len(batch.GetChanges()) > 0 {
				announced <- batch.GetChanges()[0].GetUid()
			}
		})
	}
	second := appendOne(t, other, inbox, "req-2", "blob-2")
	select {
	case uid := <-announced:
		if uid != second {
			t.Fatalf("watch announced UID %d, want %d", uid, second)
		}
	case <-time.After(testWait):
		t.Fatal("no watch announced the append")
	}
	if applied, seen := behind.node.AppliedIndex(), c.SeenIndex(); applied < seen {
		t.Fatalf("paused follower applied %d, below the client's position %d: it would not answer anyway", applied, seen)
	}

	list := metadatapb.Metadata_ListMessages_FullMethodName
	fetch := metadatapb.Metadata_FetchMessages_FullMethodName
	_, listBefore := behind.calls.count(list)
	_, fetchBefore := behind.calls.count(fetch)
	// Reads started together, before any answer raises the client's position: without the
	// fence the round robin would give one to every member, the paused one included.
	ctx := rpcContext(t)
	var reads sync.WaitGroup
	errs := make(chan error, 12)
	for range 6 {
		reads.Go(func() {
			if got, err := tryFetchUIDs(ctx, md, inbox, second); err != nil || !slices.Equal(got, []uint32{second}) {
				errs <- fmt.Errorf("fetch of the announced UID %d = %v, %v", second, got, err)
			}
		})
		reads.Go(func() {
			listed, err := md.ListMessages(ctx, &metadatapb.ListMessagesRequest{Account: embedded.DemoAccount, MailboxId: inbox})
			if got := listed.GetUids(); err != nil || !slices.Equal(got, []uint32{first, second}) {
				errs <- fmt.Errorf("list after the announcement = %v, %v; want [%d %d]", got, err, first, second)
			}
		})
	}
	reads.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, listAfter := behind.calls.count(list)
	_, fetchAfter := behind.calls.count(fetch)
	if listAfter != listBefore || fetchAfter != fetchBefore {
		t.Errorf("the follower behind the announcement served %d lists and %d fetches", listAfter-listBefore, fetchAfter-fetchBefore)
	}
}

// TestStalledNodeStreamsMove: a follower hangs (its apply stops and new calls get no
// answer; its connections stay open, so keepalive sees nothing). A session read that
// finds it not answering ends the Watch streams open on it: one that delivered nothing yet
// moves to the leader by itself, one that did ends with Unavailable and the watcher
// resumes it from its cursor, as the frontend's change feed does. Either way the next
// change arrives from another member instead of waiting for the hung one.
func TestStalledNodeStreamsMove(t *testing.T) {
	g, _, md, inbox := startFollowerGroup(t)
	other := metadatapb.NewMetadataClient(newClient(t, g.nodes()))
	mb, err := md.GetMailbox(rpcContext(t), &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Id: inbox})
	if err != nil {
		t.Fatal(err)
	}
	hung := g.follower()

	// One watcher per member: session streams go round the healthy nodes.
	ctx := rpcContext(t)
	announced := make(chan uint32, 3)
	reopened := make(chan error, 16)
	var watchers sync.WaitGroup
	defer watchers.Wait()
	watchCtx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	opened := make(chan struct{}, 3)
	for range g.members {
		watchers.Go(func() {
			first := true
			for watchCtx.Err() == nil {
				stream, err := md.Watch(watchCtx, &metadatapb.WatchRequest{Account: embedded.DemoAccount, MailboxId: inbox, SinceModseq: mb.GetHighestModseq()})
				if first {
					opened <- struct{}{}
					first = false
				}
				if err == nil {
					var batch *metadatapb.ChangeBatch
					if batch, err = stream.Recv(); err == nil {
						announced <- batch.GetChanges()[0].GetUid()
						return
					}
				}
				select {
				case reopened <- err:
				default:
				}
			}
		})
		<-opened
	}
	testwait.Until(t, testWait, func() error {
		if taken, _ := hung.calls.count(metadatapb.Metadata_Watch_FullMethodName); taken == 0 {
			return fmt.Errorf("no watch went to %s: the test proves nothing", hung.id)
		}
		return nil
	})
	hung.gate.pause()
	hung.stall.pause()
	defer hung.gate.resume()
	defer hung.stall.resume()
	uid := appendOne(t, other, inbox, "req-2", "blob-2")

	// Reads find the hung node out (each still answers, from another member).
	for hung.stall.heldCalls() == 0 {
		if got := listUIDs(t, md, inbox); !slices.Contains(got, uid) {
			t.Fatalf("list after the append = %v, want UID %d", got, uid)
		}
		if ctx.Err() != nil {
			t.Fatal("no read went to the hung node")
		}
	}
	for range g.members {
		select {
		case got := <-announced:
			if got != uid {
				t.Errorf("watch announced UID %d, want %d", got, uid)
			}
		case <-ctx.Done():
			t.Fatalf("a watcher never got the append: its stream stayed on the hung node")
		}
	}
	stopWatchers()
	watchers.Wait()
	close(reopened)
	for err := range reopened {
		t.Logf("watch ended and resumed: %v", err)
	}
}
