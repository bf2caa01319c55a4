package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strata-mail/strata/internal/testnet"
	"github.com/strata-mail/strata/jepsen/faultproxy"
)

// testWait bounds every wait of these tests.
const testWait = 10 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func testConfig(t testing.TB, id, dir string, fsm *kvFSM) Config {
	return Config{
		NodeID:   id,
		DataDir:  dir,
		RaftBind: "127.0.0.1:0",
		FSM:      fsm,
		Logger:   testLogger(t),
		// Raft's timeouts are the defaults: shorter ones let a loaded machine depose
		// leaders in the middle of a test.
		CommitTimeout: 5 * time.Millisecond,
	}
}

func openNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("open node %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// soleNode is a bootstrapped one-voter node n1 on a kvFSM, its log and FSM in a directory
// of the test's, that the test stops and starts again on the same files.
type soleNode struct {
	t       *testing.T
	cfg     Config
	fsmPath string
	fsm     *kvFSM
	n       *Node
}

// startSoleNode opens a soleNode, its configuration changed by edit first, and waits
// until it leads.
func startSoleNode(t *testing.T, edit func(*Config)) *soleNode {
	t.Helper()
	dir := t.TempDir()
	s := &soleNode{t: t, fsmPath: filepath.Join(dir, "fsm.db")}
	s.fsm = openKVFSM(t, s.fsmPath, false)
	s.cfg = testConfig(t, "n1", dir, s.fsm)
	s.cfg.Bootstrap = true
	edit(&s.cfg)
	s.n = openNode(t, s.cfg)
	if err := s.n.WaitLeader(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

// stop closes the node and its FSM.
func (s *soleNode) stop() {
	s.t.Helper()
	if err := s.n.Close(); err != nil {
		s.t.Fatalf("close: %v", err)
	}
	s.fsm.close()
}

// start opens the FSM and the node again, Bootstrap still set (it must not bootstrap
// again over the existing state), and waits, with a read barrier, until raft has handed
// the FSM every committed entry.
func (s *soleNode) start() {
	s.t.Helper()
	s.fsm = openKVFSM(s.t, s.fsmPath, false)
	s.cfg.FSM = s.fsm
	s.n = openNode(s.t, s.cfg)
	if err := s.n.WaitLeader(ctxFor(s.t)); err != nil {
		s.t.Fatal(err)
	}
	if err := s.n.ReadBarrier(ctxFor(s.t)); err != nil {
		s.t.Fatalf("read barrier after restart: %v", err)
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	t.Cleanup(cancel)
	return ctx
}

func apply(t testing.TB, n *Node, cmd string) any {
	t.Helper()
	resp, err := n.Apply(ctxFor(t), []byte(cmd))
	if err != nil {
		t.Fatalf("apply %q on %s: %v", cmd, n.ID(), err)
	}
	return resp
}

func wantValue(t testing.TB, f *kvFSM, key, want string) {
	t.Helper()
	if got, ok := f.get(key); !ok || got != want {
		t.Fatalf("%s = %q (present %v), want %q", key, got, ok, want)
	}
}

// waitForLeader waits until one of nodes is leader and returns it.
func waitForLeader(t testing.TB, nodes ...*Node) *Node {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no leader among %d nodes after %s", len(nodes), testWait)
	return nil
}

func TestSingleNodeBootstrapAndApply(t *testing.T) {
	dir := t.TempDir()
	fsm := openKVFSM(t, filepath.Join(dir, "fsm.db"), false)
	n := openNode(t, Config{
		NodeID: "n1", DataDir: dir, RaftBind: "127.0.0.1:0", Bootstrap: true, FSM: fsm,
		Logger: testLogger(t),
	})
	if err := n.WaitLeader(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if !n.IsLeader() {
		t.Fatal("single bootstrapped node is not the leader")
	}
	if id, addr := n.Leader(); id != "n1" || addr != n.Addr() {
		t.Fatalf("Leader() = %q %q, want n1 %q", id, addr, n.Addr())
	}
	if !strings.HasPrefix(n.Addr(), "127.0.0.1:") || strings.HasSuffix(n.Addr(), ":0") {
		t.Fatalf("advertised address %q is not the bound loopback port", n.Addr())
	}

	if resp := apply(t, n, "a=1"); resp != "" {
		t.Fatalf("first set of a responded %v, want empty previous value", resp)
	}
	if resp := apply(t, n, "a=2"); resp != "1" {
		t.Fatalf("second set of a responded %v, want previous value 1", resp)
	}
	wantValue(t, fsm, "a", "2")

	// A command the FSM rejects is its response, not a replication error.
	resp := apply(t, n, "no-equals-sign")
	if err, ok := resp.(error); !ok || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("malformed command responded %v, want the FSM's error", resp)
	}

	if err := n.ReadBarrier(ctxFor(t)); err != nil {
		t.Fatalf("read barrier on the leader: %v", err)
	}
	if got, want := n.AppliedIndex(), n.Raft().CommitIndex(); got > want || fsm.AppliedIndex() != got {
		t.Fatalf("applied index %d (fsm %d), commit index %d", got, fsm.AppliedIndex(), want)
	}

	short, cancelShort := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancelShort()
	if err := n.WaitApplied(short, n.AppliedIndex()+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for an index never reached: %v, want context.DeadlineExceeded", err)
	}

	expired, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := n.Apply(expired, []byte("b=1")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("apply with an expired deadline: %v, want context.DeadlineExceeded", err)
	}
	if _, ok := fsm.get("b"); ok {
		t.Fatal("apply with an expired deadline was applied")
	}

	stats := n.Stats()
	if stats["state"] != "Leader" || stats["node_id"] != "n1" || stats["fsm_applied_index"] == "0" {
		t.Fatalf("unexpected stats: %v", stats)
	}
}

func TestRestartSkipsAppliedEntries(t *testing.T) {
	s := startSoleNode(t, func(*Config) {})
	const entries = 20
	for i := range entries {
		apply(t, s.n, fmt.Sprintf("k%d=v%d", i, i))
	}
	if got := s.fsm.applies.Load(); got != entries {
		t.Fatalf("first run applied %d entries, want %d", got, entries)
	}
	appliedBefore := s.fsm.AppliedIndex()
	s.stop()

	reopened := openKVFSM(t, s.fsmPath, false)
	if reopened.AppliedIndex() != appliedBefore {
		t.Fatalf("reopened fsm applied index %d, want %d", reopened.AppliedIndex(), appliedBefore)
	}
	reopened.close()
	// The read barrier makes raft hand over every committed entry, the old ones included.
	s.start()
	n, fsm := s.n, s.fsm
	if got := fsm.applies.Load(); got != 0 {
		t.Fatalf("restart re-applied %d entries", got)
	}
	// The 20 commands and the bootstrap configuration entry were handed over again and skipped.
	if got := fsm.skips.Load(); got != entries+1 {
		t.Fatalf("restart skipped %d entries, want %d", got, entries+1)
	}
	if fsm.restores.Load() != 0 {
		t.Fatal("restart restored a snapshot although there is none")
	}
	for i := range entries {
		wantValue(t, fsm, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	if resp := apply(t, n, "k0=again"); resp != "v0" {
		t.Fatalf("apply after restart responded %v, want v0", resp)
	}
	if got := fsm.applies.Load(); got != 1 {
		t.Fatalf("after one new apply the fsm applied %d entries, want 1", got)
	}
}

func TestSnapshotCompactionAndRestart(t *testing.T) {
	s := startSoleNode(t, func(cfg *Config) {
		cfg.TrailingLogs = 5
		cfg.SnapshotThreshold = 1 << 20 // snapshots are taken explicitly below
	})
	n := s.n
	for i := range 50 {
		apply(t, n, fmt.Sprintf("k%d=v%d", i, i))
	}
	if err := n.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	first, err := n.store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Fatalf("log not compacted after snapshot: first index %d", first)
	}
	const afterSnapshot = 10
	for i := 50; i < 50+afterSnapshot; i++ {
		apply(t, n, fmt.Sprintf("k%d=v%d", i, i))
	}
	s.stop()

	checkAll := func(f *kvFSM) {
		t.Helper()
		for i := range 50 + afterSnapshot {
			wantValue(t, f, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
		}
		if f.len() != 50+afterSnapshot {
			t.Fatalf("fsm holds %d keys, want %d", f.len(), 50+afterSnapshot)
		}
	}
	// The FSM is ahead of the snapshot: no restore, nothing re-applied.
	s.start()
	if s.fsm.restores.Load() != 0 || s.fsm.applies.Load() != 0 {
		t.Fatalf("fsm ahead of the snapshot: %d restores, %d applies, want none", s.fsm.restores.Load(), s.fsm.applies.Load())
	}
	checkAll(s.fsm)
	s.stop()

	// The FSM lost its state (behind the snapshot, whose entries are compacted away): Open
	// restores the snapshot, and raft replays only the entries after it.
	if err := os.Remove(s.fsmPath); err != nil {
		t.Fatal(err)
	}
	s.start()
	if got := s.fsm.restores.Load(); got != 1 {
		t.Fatalf("fsm behind the snapshot: %d restores, want 1", got)
	}
	if got := s.fsm.applies.Load(); got != afterSnapshot {
		t.Fatalf("fsm behind the snapshot: %d entries applied after the restore, want %d", got, afterSnapshot)
	}
	checkAll(s.fsm)
	s.stop()
}

func TestThreeNodeGroup(t *testing.T) {
	type member struct {
		dir  string
		fsm  *kvFSM
		node *Node
	}
	open := func(m *member, id, bind string, bootstrap bool) {
		cfg := testConfig(t, id, m.dir, m.fsm)
		cfg.RaftBind = bind
		cfg.Bootstrap = bootstrap
		m.node = openNode(t, cfg)
	}
	members := make([]*member, 3)
	for i := range members {
		dir := t.TempDir()
		members[i] = &member{dir: dir, fsm: openKVFSM(t, filepath.Join(dir, "fsm.db"), false)}
		bind := "127.0.0.1:0"
		if i == 0 {
			// n1 restarts at its address below: a port outside the ephemeral range, which
			// no outgoing connection can take while it is down.
			bind = testnet.Addr(t, "127.0.0.1")
		}
		open(members[i], "n"+strconv.Itoa(i+1), bind, i == 0)
	}
	n1, n2, n3 := members[0].node, members[1].node, members[2].node
	ctx := ctxFor(t)
	if err := n1.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{n2, n3} {
		if err := n1.AddVoter(ctx, n.ID(), n.Addr()); err != nil {
			t.Fatalf("add voter %s: %v", n.ID(), err)
		}
	}
	servers, err := n1.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 3 {
		t.Fatalf("group has %d servers, want 3: %v", len(servers), servers)
	}

	apply(t, n1, "x=1")
	index := n1.AppliedIndex()
	for _, m := range members {
		if err := m.node.WaitApplied(ctx, index); err != nil {
			t.Fatalf("%s: %v", m.node.ID(), err)
		}
		wantValue(t, m.fsm, "x", "1")
	}

	// A follower refuses writes and linearizable reads, and names the leader.
	wantNotLeader := func(err error, leader *Node) {
		t.Helper()
		var nle NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
			t.Fatalf("got %v, want NotLeaderError", err)
		}
		if nle.LeaderID != leader.ID() || nle.LeaderAddr != leader.Addr() {
			t.Fatalf("NotLeaderError names %s at %s, want %s at %s", nle.LeaderID, nle.LeaderAddr, leader.ID(), leader.Addr())
		}
	}
	_, err = n2.Apply(ctx, []byte("x=2"))
	wantNotLeader(err, n1)
	wantNotLeader(n3.ReadBarrier(ctx), n1)
	if err := n1.ReadBarrier(ctx); err != nil {
		t.Fatalf("read barrier on the leader: %v", err)
	}

	// The leader dies without handing over: the others elect a new one and go on.
	if err := n1.Raft().Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	// A follower asked to write once it has stopped hearing from the dead leader does not
	// send the caller there: it waits out the election, then applies the command itself or
	// names the new leader (or none, if the election outlasts its wait).
	time.Sleep(n2.leaderSilence)
	if _, err := n2.Apply(ctx, []byte("w=1")); err != nil {
		var nle NotLeaderError
		if !errors.As(err, &nle) || nle.LeaderID == n1.ID() {
			t.Fatalf("write on n2 after the leader died: %v, want success or a refusal naming a live leader", err)
		}
	}
	leader := waitForLeader(t, n2, n3)
	follower := n2
	if leader == n2 {
		follower = n3
	}
	apply(t, leader, "y=2")
	if err := follower.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	wantValue(t, members[1].fsm, "y", "2")
	wantValue(t, members[2].fsm, "y", "2")
	if err := waitForLeaderKnown(follower, leader); err != nil {
		t.Fatal(err)
	}
	_, err = follower.Apply(ctx, []byte("y=3"))
	wantNotLeader(err, leader)

	// The old leader restarts at its address and catches up as a follower.
	oldAddr := n1.Addr()
	if err := n1.Close(); err != nil {
		t.Fatalf("close the dead leader: %v", err)
	}
	members[0].fsm.close()
	members[0].fsm = openKVFSM(t, filepath.Join(members[0].dir, "fsm.db"), false)
	open(members[0], "n1", oldAddr, false)
	n1 = members[0].node
	if err := n1.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatalf("restarted n1 catching up: %v", err)
	}
	wantValue(t, members[0].fsm, "y", "2")
	if got := members[0].fsm.applies.Load(); got == 0 {
		t.Fatal("restarted n1 applied nothing new")
	}

	// A graceful Close of the leader hands leadership over.
	if err := leader.Close(); err != nil {
		t.Fatalf("close leader: %v", err)
	}
	next := waitForLeader(t, n1, follower)
	apply(t, next, "z=3")
	if err := next.ReadBarrier(ctx); err != nil {
		t.Fatalf("read barrier on the new leader: %v", err)
	}
}

func TestNonvoterAndRemoveServer(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	fsms := []*kvFSM{openKVFSM(t, filepath.Join(dirs[0], "fsm.db"), false), openKVFSM(t, filepath.Join(dirs[1], "fsm.db"), false)}
	cfg := testConfig(t, "n1", dirs[0], fsms[0])
	cfg.Bootstrap = true
	leader := openNode(t, cfg)
	replica := openNode(t, testConfig(t, "r1", dirs[1], fsms[1]))
	ctx := ctxFor(t)
	if err := leader.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leader.AddNonvoter(ctx, replica.ID(), replica.Addr()); err != nil {
		t.Fatalf("add nonvoter: %v", err)
	}
	apply(t, leader, "a=1")
	if err := replica.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	wantValue(t, fsms[1], "a", "1")
	servers, err := leader.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 || servers[1].ID != "r1" || servers[1].Suffrage != raft.Nonvoter {
		t.Fatalf("servers after adding a nonvoter: %+v", servers)
	}
	if err := waitForLeaderKnown(replica, leader); err != nil {
		t.Fatal(err)
	}
	if err := replica.RemoveServer(ctx, "n1"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("membership change on a nonvoter: %v, want NotLeaderError", err)
	}
	if err := leader.RemoveServer(ctx, replica.ID()); err != nil {
		t.Fatalf("remove server: %v", err)
	}
	if servers, err = leader.Servers(ctx); err != nil || len(servers) != 1 {
		t.Fatalf("servers after removing the nonvoter: %+v, %v", servers, err)
	}
	// The one remaining voter still commits on its own.
	apply(t, leader, "a=2")
}

// waitForLeaderKnown waits until follower has heard from leader.
func waitForLeaderKnown(follower, leader *Node) error {
	deadline := time.Now().Add(testWait)
	for time.Now().Before(deadline) {
		if id, _ := follower.Leader(); id == leader.ID() {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s does not know %s as leader after %s", follower.ID(), leader.ID(), testWait)
}

func TestRaftLogsGoToSlog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := t.TempDir()
	cfg := testConfig(t, "n1", dir, openKVFSM(t, filepath.Join(dir, "fsm.db"), false))
	cfg.Bootstrap = true
	cfg.Logger = logger
	n := openNode(t, cfg)
	if err := n.WaitLeader(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"logger=raft ", "raft_node=n1", "entering leader state"} {
		if !strings.Contains(out, want) {
			t.Errorf("raft log output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=DEBUG") {
		t.Error("debug output passed an Info-level handler")
	}
}

func TestAdvertisedAddress(t *testing.T) {
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7300}
	wildcard := &net.TCPAddr{IP: net.IPv4zero, Port: 7300}
	for _, tc := range []struct {
		bound     *net.TCPAddr
		advertise string
		want      string // empty: an error
	}{
		{loopback, "", "127.0.0.1:7300"},
		{wildcard, "", ""},
		{wildcard, "strata-0.strata.svc:7301", "strata-0.strata.svc:7301"},
		{wildcard, "10.1.2.3:0", "10.1.2.3:7300"},
		{wildcard, "0.0.0.0:7300", ""},
		{wildcard, ":7300", ""},
		{wildcard, "strata-0", ""},
	} {
		got, err := advertisedAddress(tc.bound, tc.advertise)
		if tc.want == "" {
			if err == nil {
				t.Errorf("advertisedAddress(%s, %q) = %s, want an error", tc.bound, tc.advertise, got)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("advertisedAddress(%s, %q) = %s, %v; want %s", tc.bound, tc.advertise, got, err, tc.want)
		}
	}
}

func TestOpenRejectsIncompleteConfig(t *testing.T) {
	fsm := openKVFSM(t, filepath.Join(t.TempDir(), "fsm.db"), false)
	for _, cfg := range []Config{
		{DataDir: t.TempDir(), RaftBind: "127.0.0.1:0", FSM: fsm},
		{NodeID: "n1", RaftBind: "127.0.0.1:0", FSM: fsm},
		{NodeID: "n1", DataDir: t.TempDir(), FSM: fsm},
		{NodeID: "n1", DataDir: t.TempDir(), RaftBind: "127.0.0.1:0"},
	} {
		if n, err := Open(cfg); err == nil {
			_ = n.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// BenchmarkApply measures Apply on a single-node group with 1 and 64 concurrent clients and
// 256-byte values. The test FSM does not fsync (the raft log does), so the figures are the
// replication layer's.
//
// go test -run XXX -bench Apply -benchtime 3s -count 2 ./replication (2 cores, shared with other
// builds, November 2026; raft-boltdb log store):
//
//	BenchmarkApply/clients=1-2     378215 ns/op   433103 ns/op   (~2,500 applies/s)
//	BenchmarkApply/clients=64-2     40194 ns/op    40255 ns/op   (~25,000 applies/s)
func BenchmarkApply(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			dir := b.TempDir()
			cfg := testConfig(b, "n1", dir, openKVFSM(b, filepath.Join(dir, "fsm.db"), true))
			cfg.Bootstrap = true
			n := openNode(b, cfg)
			if err := n.WaitLeader(ctxFor(b)); err != nil {
				b.Fatal(err)
			}
			value := strings.Repeat("v", 256)
			work := make(chan int)
			errs := make(chan error, clients)
			for range clients {
				go func() {
					var err error
					for i := range work {
						if err == nil {
							ctx, cancel := context.WithTimeout(context.Background(), testWait)
							_, err = n.Apply(ctx, []byte("k"+strconv.Itoa(i)+"="+value))
							cancel()
						}
					}
					errs <- err
				}()
			}
			b.ResetTimer()
			for i := range b.N {
				work <- i
			}
			close(work)
			for range clients {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
		})
	}
}

// TestDialFromBindIP checks that a node bound to a specific IP dials its peers from that IP
// (so a peer, or a proxy in front of it, sees which node connects), and that a node bound to a
// wildcard address leaves the source to the kernel.
func TestDialFromBindIP(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.12:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	for _, tc := range []struct {
		bind, wantSource string
	}{
		{"127.0.0.11:0", "127.0.0.11"},
		{"0.0.0.0:0", "127.0.0.1"}, // the loopback route's preferred source
	} {
		layer, err := listenRaft(tc.bind, "127.0.0.99:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := layer.Dial(raft.ServerAddress(peer.Addr().String()), time.Second)
		if err != nil {
			t.Fatalf("dial from a node bound to %s: %v", tc.bind, err)
		}
		accepted, err := peer.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := accepted.RemoteAddr().(*net.TCPAddr).IP.String(); got != tc.wantSource {
			t.Errorf("node bound to %s dialed from %s, want %s", tc.bind, got, tc.wantSource)
		}
		accepted.Close()
		conn.Close()
		layer.Close()
	}
}

func TestTransferLeadership(t *testing.T) {
	var nodes []*Node
	for i := range 3 {
		dir := t.TempDir()
		cfg := testConfig(t, "n"+strconv.Itoa(i+1), dir, openKVFSM(t, filepath.Join(dir, "fsm.db"), false))
		cfg.Bootstrap = i == 0
		nodes = append(nodes, openNode(t, cfg))
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx := ctxFor(t)
	if err := n1.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n1.AddVoter(ctx, n2.ID(), n2.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := n1.AddNonvoter(ctx, n3.ID(), n3.Addr()); err != nil {
		t.Fatal(err)
	}
	apply(t, n1, "x=1")
	if err := waitForLeaderKnown(n2, n1); err != nil {
		t.Fatal(err)
	}
	if err := n2.TransferLeadership(ctx, ""); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer on a follower: %v, want NotLeaderError", err)
	}
	if err := n1.TransferLeadership(ctx, "n9"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("transfer to a stranger: %v, want ErrNotMember", err)
	}
	if err := n1.TransferLeadership(ctx, "n3"); !errors.Is(err, ErrNotVoter) {
		t.Fatalf("transfer to a nonvoter: %v, want ErrNotVoter", err)
	}
	if err := n1.TransferLeadership(ctx, "n2"); err != nil {
		t.Fatalf("transfer to n2: %v", err)
	}
	if leader := waitForLeader(t, n1, n2); leader != n2 {
		t.Fatalf("leader after the transfer is %s, want n2", leader.ID())
	}
	apply(t, n2, "x=2")
	if err := n2.TransferLeadership(ctx, ""); err != nil {
		t.Fatalf("transfer to any voter: %v", err)
	}
	if leader := waitForLeader(t, n1, n2); leader != n1 {
		t.Fatalf("leader after a transfer to any voter is %s, want n1 (the only other voter)", leader.ID())
	}
}

// TestPartitionedFollowerDoesNotDeposeLeader cuts one follower off from the other two for
// many election timeouts and heals the partition: with pre-vote the follower never becomes
// a candidate of a higher term (nobody grants it a pre-vote), so when it hears from the
// group again the leader and its term are the ones from before the partition. Each node
// binds its own loopback address and sits behind a fault proxy that tells the others apart
// by source address, so the partition is real TCP connections being dropped.
func TestPartitionedFollowerDoesNotDeposeLeader(t *testing.T) {
	_, proxies, leader, cut := proxiedGroup(t, "127.0.0.3")
	ctx := ctxFor(t)
	term := leader.Raft().CurrentTerm()

	for id, proxy := range proxies {
		if id == cut.ID() {
			proxy.Drop(faultproxy.AnySource)
		} else {
			proxy.Drop(cut.ID())
		}
	}
	// Ten times the longest a follower waits before it campaigns: several rounds of
	// (pre-)elections on the cut-off node.
	time.Sleep(20 * DefaultHeartbeatTimeout)
	apply(t, leader, "x=2")
	for id, proxy := range proxies {
		if id == cut.ID() {
			proxy.Heal(faultproxy.AnySource)
		} else {
			proxy.Heal(cut.ID())
		}
	}
	if err := cut.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatalf("%s catching up after the partition: %v", cut.ID(), err)
	}
	apply(t, leader, "x=3")
	if got := cut.Raft().CurrentTerm(); got != term {
		t.Errorf("the cut-off follower %s is in term %d after the partition, want %d: it campaigned", cut.ID(), got, term)
	}
	if !leader.IsLeader() || leader.Raft().CurrentTerm() != term {
		t.Errorf("leader %s after the partition healed: leading %v in term %d, want leading in term %d",
			leader.ID(), leader.IsLeader(), leader.Raft().CurrentTerm(), term)
	}
}

// TestSoleVoterReads: the leader of a group whose only voter it is serves linearizable
// reads without a quorum check (ReadBarrier's fast path), and stops doing so once another
// voter is in its configuration; a nonvoter does not count.
func TestSoleVoterReads(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	cfg := testConfig(t, "n1", dirs[0], openKVFSM(t, filepath.Join(dirs[0], "fsm.db"), false))
	cfg.Bootstrap = true
	leader := openNode(t, cfg)
	ctx := ctxFor(t)
	if err := leader.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	apply(t, leader, "a=1")
	if !leader.soleVoter() {
		t.Fatal("a bootstrapped single node is not its group's sole voter")
	}
	if err := leader.ReadBarrier(ctx); err != nil {
		t.Fatalf("read barrier of the sole voter: %v", err)
	}
	nonvoter := openNode(t, testConfig(t, "r1", dirs[1], openKVFSM(t, filepath.Join(dirs[1], "fsm.db"), false)))
	if err := leader.AddNonvoter(ctx, nonvoter.ID(), nonvoter.Addr()); err != nil {
		t.Fatal(err)
	}
	if !leader.soleVoter() {
		t.Fatal("a nonvoter made the leader no longer the sole voter")
	}
	if nonvoter.soleVoter() {
		t.Fatal("a nonvoter takes itself for the sole voter")
	}
	voter := openNode(t, testConfig(t, "n2", dirs[2], openKVFSM(t, filepath.Join(dirs[2], "fsm.db"), false)))
	if err := leader.AddVoter(ctx, voter.ID(), voter.Addr()); err != nil {
		t.Fatal(err)
	}
	if leader.soleVoter() {
		t.Fatal("the leader of two voters takes itself for the sole voter")
	}
	if err := leader.ReadBarrier(ctx); err != nil {
		t.Fatalf("read barrier with two voters: %v", err)
	}
}

// TestBeforeSnapshotAndEachCommand: Config.BeforeSnapshot runs before every snapshot, and
// its error fails the snapshot, so the log is not compacted; EachCommand reads every
// command entry the log holds, in order.
func TestBeforeSnapshotAndEachCommand(t *testing.T) {
	dir := t.TempDir()
	fsm := openKVFSM(t, filepath.Join(dir, "fsm.db"), false)
	cfg := testConfig(t, "n1", dir, fsm)
	cfg.Bootstrap = true
	cfg.TrailingLogs = 1
	cfg.SnapshotThreshold = 1 << 20 // snapshots are taken explicitly below
	var calls atomic.Int32
	var fail atomic.Bool
	cfg.BeforeSnapshot = func() error {
		calls.Add(1)
		if fail.Load() {
			return errors.New("bodies not synced")
		}
		return nil
	}
	n := openNode(t, cfg)
	if err := n.WaitLeader(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 10 {
		cmd := fmt.Sprintf("k%d=v%d", i, i)
		apply(t, n, cmd)
		want = append(want, cmd)
	}
	commands := func() []string {
		var got []string
		if err := n.EachCommand(func(_ uint64, data []byte) error {
			got = append(got, string(data))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := commands(); !slices.Equal(got, want) {
		t.Fatalf("EachCommand read %q, want %q", got, want)
	}
	fail.Store(true)
	if err := n.Raft().Snapshot().Error(); err == nil {
		t.Fatal("snapshot succeeded although BeforeSnapshot failed")
	}
	if calls.Load() != 1 {
		t.Fatalf("BeforeSnapshot ran %d times, want 1", calls.Load())
	}
	if got := commands(); !slices.Equal(got, want) {
		t.Fatalf("after a failed snapshot EachCommand read %q, want every command %q", got, want)
	}
	fail.Store(false)
	if err := n.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("BeforeSnapshot ran %d times, want 2", calls.Load())
	}
	if got := commands(); len(got) >= len(want) {
		t.Fatalf("after a snapshot with TrailingLogs 1 the log still holds %d commands", len(got))
	}
}

// TestTransferToCutOffVoterRetries: a transfer to a voter that cannot be reached for longer
// than raft's own transfer timeout (one election timeout) is tried again until the
// caller's deadline, and succeeds once the voter is back.
func TestTransferToCutOffVoterRetries(t *testing.T) {
	nodes, proxies, leader, cut := proxiedGroup(t, "127.0.0.4")
	ctx := ctxFor(t)
	cutOff := func(cutOff bool) {
		for id, proxy := range proxies {
			switch {
			case id == cut.ID() && cutOff:
				proxy.Drop(faultproxy.AnySource)
			case id == cut.ID():
				proxy.Heal(faultproxy.AnySource)
			case cutOff:
				proxy.Drop(cut.ID())
			default:
				proxy.Heal(cut.ID())
			}
		}
	}
	cutOff(true)
	apply(t, leader, "x=2") // the cut-off voter falls behind
	done := make(chan error, 1)
	go func() { done <- leader.TransferLeadership(ctx, cut.ID()) }()
	// Three election timeouts: raft's first transfer attempt gives up after one.
	time.Sleep(3 * DefaultHeartbeatTimeout)
	select {
	case err := <-done:
		t.Fatalf("the transfer to a cut-off voter ended while it was cut off: %v", err)
	default:
	}
	cutOff(false)
	if err := <-done; err != nil {
		t.Fatalf("transfer once the voter is back: %v", err)
	}
	if got := waitForLeader(t, nodes...); got != cut {
		t.Fatalf("leader after the transfer is %s, want %s", got.ID(), cut.ID())
	}
}

// proxiedGroup starts a three-voter group whose nodes n1..n3 bind to ipPrefix+"1".."3" and
// are reached through a fault proxy each (the proxies keyed by node ID, telling the sources
// apart by those addresses), applies one command and returns the nodes, the proxies, the
// leader and a follower that knows the leader.
func proxiedGroup(t *testing.T, ipPrefix string) (nodes []*Node, proxies map[string]*faultproxy.Proxy, leader, follower *Node) {
	t.Helper()
	sources := map[string]string{ipPrefix + "1": "n1", ipPrefix + "2": "n2", ipPrefix + "3": "n3"}
	proxies = map[string]*faultproxy.Proxy{}
	for i := 1; i <= 3; i++ {
		id, ip := "n"+strconv.Itoa(i), ipPrefix+strconv.Itoa(i)
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		bind := ln.Addr().String()
		ln.Close()
		proxy, err := faultproxy.Start(faultproxy.Config{Listen: "127.0.0.1:0", Target: bind, Sources: sources})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		proxies[id] = proxy
		dir := t.TempDir()
		cfg := testConfig(t, id, dir, openKVFSM(t, filepath.Join(dir, "fsm.db"), false))
		cfg.RaftBind, cfg.RaftAdvertise, cfg.Bootstrap = bind, proxy.Addr(), i == 1
		nodes = append(nodes, openNode(t, cfg))
	}
	n1 := nodes[0]
	ctx := ctxFor(t)
	if err := n1.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if err := n1.AddVoter(ctx, n.ID(), n.Addr()); err != nil {
			t.Fatalf("add voter %s: %v", n.ID(), err)
		}
	}
	apply(t, n1, "x=1")
	leader = waitForLeader(t, nodes...)
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	if err := waitForLeaderKnown(follower, leader); err != nil {
		t.Fatal(err)
	}
	return nodes, proxies, leader, follower
}

// timedOutTransfer is a leadership transfer as raft reports it when the target did not win
// within one election timeout; after, if set, runs first (a real transfer whose success
// raft reported too late).
type timedOutTransfer struct{ after func() }

func (f timedOutTransfer) Error() error {
	if f.after != nil {
		f.after()
	}
	return errors.New("leadership transfer timeout")
}

// TestHandOverLeadershipRetries: the hand-over before a shutdown asks raft again after a
// transfer that timed out while this node still leads, and counts a target that won just
// after raft gave up on it as handed over. The timeouts are put in front of raft's real
// transfers: a loaded machine makes them, but not on demand.
func TestHandOverLeadershipRetries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string                  // the group's addresses (proxiedGroup)
		first  func(*Node) raft.Future // the first transfer
		asked  int                     // transfers asked of raft in all
	}{
		{"timed out, still leader", "127.0.0.7", func(*Node) raft.Future { return timedOutTransfer{} }, 2},
		{"won after the timeout", "127.0.0.8", func(n *Node) raft.Future {
			f := n.raft.LeadershipTransfer()
			return timedOutTransfer{after: func() { _ = f.Error() }}
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, _, leader, _ := proxiedGroup(t, tc.prefix)
			asked := 0
			leader.handOver = func() raft.Future {
				asked++
				if asked == 1 {
					return tc.first(leader)
				}
				return leader.raft.LeadershipTransfer()
			}
			if err := leader.HandOverLeadership(); err != nil {
				t.Fatalf("hand over: %v", err)
			}
			if got := waitForLeader(t, nodes...); got == leader {
				t.Fatalf("%s still leads after the hand-over", leader.ID())
			}
			if asked != tc.asked {
				t.Fatalf("asked raft for %d transfers, want %d", asked, tc.asked)
			}
		})
	}
}
