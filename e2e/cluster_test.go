package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication/cluster"
)

// clusterNodeFlags make snapshots frequent and keep few trailing entries, so a node that is
// down for a few seconds can only catch up by snapshot install.
var clusterNodeFlags = []string{"--snapshot-threshold", "200", "--snapshot-interval", "500ms",
	"--trailing-logs", "50", "--promote-stable", "1s", "--log-level", "info"}

// TestCluster runs etcd and three `strata metadata` processes, writes through the leader
// while it kills the leader, freezes a follower, removes a node and adds a new one, and
// checks that every replica ends with the same state holding each acknowledged write once.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd, nodes := startVoters(t, ctx)
	t.Logf("group of 3 voters formed")

	lc := newLeaderClient(t, nodes...)
	mailbox := setupAccount(t, ctx, lc)
	w := &writers{lc: lc, account: "u@acme.test", mailbox: mailbox}

	// Throughput: one client, then 64 clients, APPENDs of one message each.
	for _, clients := range []int{1, 64} {
		n, d := w.burst(ctx, t, clients, 2*time.Second)
		t.Logf("APPEND throughput, %d client(s): %d in %v = %.0f/s", clients, n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	}

	// Continuous writers for the rest of the test.
	stopWriters := w.start(ctx, t, 4)

	// SIGKILL the leader; measure how long no write is acknowledged.
	leader := leaderOf(t, ctx, nodes)
	time.Sleep(300 * time.Millisecond)
	killedAt := time.Now()
	ackedBefore := w.acked.Load()
	leader.signal(syscall.SIGKILL)
	firstAck := w.waitAckAfter(t, killedAt)
	t.Logf("writes unavailable after SIGKILL of leader %s: %v", leader.id, firstAck.Sub(killedAt).Round(time.Millisecond))
	// Keep it down until the others have moved well past the log it has and had the time to
	// snapshot and compact it: raft checks every --snapshot-interval to twice that, and with
	// fast APPENDs the 800 writes alone can take less than one check.
	for w.acked.Load() < ackedBefore+800 || time.Since(killedAt) < 3*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	leader.waitReady(leader.start())
	waitCaughtUp(t, ctx, nodes)
	if !strings.Contains(strings.ToLower(leader.logs()), "installed remote snapshot") {
		t.Errorf("restarted node %s did not catch up by snapshot install", leader.id)
	}

	// SIGSTOP a follower for 3 s, then let it go on.
	follower := followerOf(t, ctx, nodes)
	follower.signal(syscall.SIGSTOP)
	time.Sleep(3 * time.Second)
	follower.signal(syscall.SIGCONT)
	waitCaughtUp(t, ctx, nodes)

	// Remove a follower with `strata cluster remove`, then add a new node in its place.
	removed := followerOf(t, ctx, nodes)
	out, err := exec.Command(strataBin, append([]string{"cluster", "remove", removed.id, "--etcd", etcd}, adminTLSArgs(t)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("strata cluster remove %s: %v\n%s", removed.id, err, out)
	}
	removed.signal(syscall.SIGTERM)
	var rest []*metaNode
	var ids []string
	for _, n := range nodes {
		if n != removed {
			rest = append(rest, n)
			ids = append(ids, n.id)
		}
	}
	waitVoters(t, ctx, rest, ids...)
	n4 := newMetaNode(t, "n4", etcd, clusterNodeFlags...)
	t.Cleanup(func() {
		n4.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("node n4 log:\n%s", tail(n4.logs(), 60))
		}
	})
	n4.waitReady(n4.start())
	lc.add(t, n4)
	nodes = append(rest, n4)
	waitVoters(t, ctx, nodes, append(ids, "n4")...)
	out, err = exec.Command(strataBin, append([]string{"cluster", "status", "--etcd", etcd, "--digest"}, adminTLSArgs(t)...)...).CombinedOutput()
	if err != nil || strings.Count(string(out), "voter") != 3 {
		t.Fatalf("strata cluster status: %v\n%s", err, out)
	}
	t.Logf("strata cluster status:\n%s", out)

	// SIGTERM the leader: it hands leadership over before exiting, so writes pause briefly.
	leader = leaderOf(t, ctx, nodes)
	termAt := time.Now()
	leader.signal(syscall.SIGTERM)
	t.Logf("SIGTERM of leader %s: exited after %v, writes unavailable for %v", leader.id,
		time.Since(termAt).Round(time.Millisecond), w.waitAckAfter(t, termAt).Sub(termAt).Round(time.Millisecond))
	if !strings.Contains(leader.logs(), "handed over raft leadership") {
		t.Errorf("leader %s exited on SIGTERM without handing leadership over", leader.id)
	}
	leader.waitReady(leader.start())
	waitCaughtUp(t, ctx, nodes)

	stopWriters()
	if errs := w.errors(); len(errs) > 0 {
		t.Fatalf("writers saw errors: %v", errs)
	}
	waitCaughtUp(t, ctx, nodes)
	compareDigests(t, ctx, nodes)
	w.verify(t, ctx)
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// waitVoters waits until the nodes' leader reports exactly ids as voters and no other member.
func waitVoters(t *testing.T, ctx context.Context, nodes []*metaNode, ids ...string) {
	t.Helper()
	want := append([]string(nil), ids...)
	sort.Strings(want)
	var last string
	testwait.Until(t, 60*time.Second, func() error {
		for _, n := range nodes {
			st, err := n.status(ctx, false)
			if err != nil || st.GetState() != "Leader" {
				continue
			}
			var got []string
			all := true
			for _, s := range st.GetServers() {
				got = append(got, s.GetId())
				all = all && s.GetSuffrage() == "voter"
			}
			sort.Strings(got)
			last = fmt.Sprint(st.GetServers())
			if all && fmt.Sprint(got) == fmt.Sprint(want) {
				return nil
			}
		}
		return fmt.Errorf("voters are not %v; last membership seen: %s", want, last)
	})
}

func leaderOf(t *testing.T, ctx context.Context, nodes []*metaNode) *metaNode {
	t.Helper()
	for range 100 {
		for _, n := range nodes {
			if st, err := n.status(ctx, false); err == nil && st.GetState() == "Leader" {
				return n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

func followerOf(t *testing.T, ctx context.Context, nodes []*metaNode) *metaNode {
	t.Helper()
	leader := leaderOf(t, ctx, nodes)
	for _, n := range nodes {
		if n != leader {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

// waitCaughtUp waits until every node has applied what the leader has committed.
func waitCaughtUp(t *testing.T, ctx context.Context, nodes []*metaNode) {
	t.Helper()
	testwait.Until(t, 60*time.Second, func() error {
		leader := leaderOf(t, ctx, nodes)
		lst, err := leader.status(ctx, false)
		if err != nil {
			return fmt.Errorf("status of the leader %s: %w", leader.id, err)
		}
		for _, n := range nodes {
			st, err := n.status(ctx, false)
			if err != nil || st.GetLastIndex()+5 < lst.GetCommitIndex() || st.GetAppliedIndex() == 0 {
				return fmt.Errorf("%s has not caught up with the leader (commit index %d): %v (err %v)", n.id, lst.GetCommitIndex(), st, err)
			}
		}
		return nil
	})
}

// compareDigests checks that every node's state machine digest is the same once they all
// applied the same index (writes have stopped), as `strata cluster status --digest` judges.
func compareDigests(t *testing.T, ctx context.Context, nodes []*metaNode) {
	t.Helper()
	testwait.Until(t, 30*time.Second, func() error {
		var replicas []*clusterpb.StatusResponse
		for _, n := range nodes {
			st, err := n.status(ctx, true)
			if err != nil {
				t.Fatalf("status of %s: %v", n.id, err)
			}
			replicas = append(replicas, st)
		}
		switch verdict, why := cluster.CompareDigests(replicas); verdict {
		case cluster.DigestsEqual:
			t.Logf("replica digests: %s", why)
			return nil
		case cluster.DigestsNotComparable:
			return errors.New(why)
		default:
			t.Fatalf("replica digests: %s", why)
			return nil
		}
	})
}

func setupAccount(t *testing.T, ctx context.Context, lc *leaderClient) uint64 {
	t.Helper()
	err := lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
		_, err := c.CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: "tenant-acme", Name: "acme", Domains: []string{"acme.test"}})
		return err
	})
	if err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	err = lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
		_, err := c.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: "account-u", Email: "u@acme.test", Password: "pw"})
		return err
	})
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	var id uint64
	err = lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
		mb, err := c.CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{RequestId: "mailbox-cluster", Account: "u@acme.test", Name: "Cluster"})
		id = mb.GetId()
		return err
	})
	if err != nil {
		t.Fatalf("create mailbox: %v", err)
	}
	return id
}

// writers append messages with unique blob keys and remember every acknowledged one.
type writers struct {
	lc      *leaderClient
	account string
	mailbox uint64
	seq     atomic.Uint64
	acked   atomic.Int64

	mu   sync.Mutex
	keys map[string]uint32 // acknowledged blob key -> UID
	errs []error
	acks []ack
}

// ack is one acknowledged append: when it was first sent and when it was acknowledged.
type ack struct{ sent, acked time.Time }

// appendOne appends one message, retrying with the same request ID until acknowledged.
func (w *writers) appendOne(ctx context.Context) error {
	n := w.seq.Add(1)
	key := blobstore.Key("acme", sha256.Sum256([]byte(fmt.Sprintf("message %d", n))))
	reqID := embedded.NewRequestID()
	sent := time.Now()
	var resp *metadatapb.AppendResponse
	err := w.lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
		r, err := c.Append(ctx, &metadatapb.AppendRequest{RequestId: reqID, Account: w.account, MailboxId: w.mailbox,
			Messages: []*metadatapb.NewMessage{{BlobKey: key, Size: 100, InternalDateUnix: 1700000000}}})
		resp = r
		return err
	})
	if err != nil {
		return err
	}
	now := time.Now()
	w.mu.Lock()
	if w.keys == nil {
		w.keys = map[string]uint32{}
	}
	w.keys[key] = resp.GetUids()[0]
	w.acks = append(w.acks, ack{sent: sent, acked: now})
	w.mu.Unlock()
	w.acked.Add(1)
	return nil
}

// burst runs clients appending for d and returns how many were acknowledged.
func (w *writers) burst(ctx context.Context, t *testing.T, clients int, d time.Duration) (int64, time.Duration) {
	before := w.acked.Load()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d {
				if err := w.appendOne(ctx); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return w.acked.Load() - before, time.Since(start)
}

// start runs clients appending until the returned function is called.
func (w *writers) start(ctx context.Context, t *testing.T, clients int) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := w.appendOne(ctx); err != nil {
					w.mu.Lock()
					w.errs = append(w.errs, err)
					w.mu.Unlock()
					return
				}
			}
		}()
	}
	return func() { close(stop); wg.Wait() }
}

func (w *writers) errors() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs
}

// waitAckAfter returns when the first append sent after t0 was acknowledged: until then, no
// new write got through.
func (w *writers) waitAckAfter(t *testing.T, t0 time.Time) time.Time {
	t.Helper()
	var first time.Time
	testwait.Until(t, 30*time.Second, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range w.acks {
			if a.sent.After(t0) && (first.IsZero() || a.acked.Before(first)) {
				first = a.acked
			}
		}
		if first.IsZero() {
			return errors.New("no write sent after the leader stopped was acknowledged")
		}
		return nil
	})
	return first
}

// verify checks that every acknowledged append is in the mailbox exactly once, under the UID
// it was acknowledged with, and that UIDs ascend.
func (w *writers) verify(t *testing.T, ctx context.Context) {
	t.Helper()
	byKey := map[string][]uint32{}
	var uids []uint32
	err := w.lc.do(ctx, func(ctx context.Context, c metadatapb.MetadataClient) error {
		clear(byKey)
		uids = uids[:0]
		stream, err := c.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{Account: w.account, MailboxId: w.mailbox,
			Uids: []*metadatapb.UidRange{{First: 1}}})
		if err != nil {
			return err
		}
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			byKey[m.GetBlobKey()] = append(byKey[m.GetBlobKey()], m.GetUid())
			uids = append(uids, m.GetUid())
		}
	})
	if err != nil {
		t.Fatalf("fetch messages: %v", err)
	}
	for i := 1; i < len(uids); i++ {
		if uids[i] <= uids[i-1] {
			t.Fatalf("UIDs not strictly ascending at %d: %d after %d", i, uids[i], uids[i-1])
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, uid := range w.keys {
		got := byKey[key]
		if len(got) != 1 || got[0] != uid {
			t.Errorf("acknowledged append %s (UID %d) is in the mailbox as %v", key, uid, got)
		}
	}
	for key, got := range byKey {
		if len(got) != 1 {
			t.Errorf("blob %s is in the mailbox %d times: %v", key, len(got), got)
		}
	}
	t.Logf("%d acknowledged appends, %d messages in the mailbox, each once, UIDs ascending", len(w.keys), len(uids))
}
