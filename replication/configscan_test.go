package replication

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/strata-mail/strata/internal/testnet"
)

// The scan answers plain entries below the last index with stubs, reads configuration
// entries and the last entry for real, and ends at its read of the last entry.
func TestConfigScanStubs(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	if err := s.trackConfigurations(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		l := testLog(i, 1, fmt.Sprintf("cmd%d", i))
		if i == 4 {
			l.Type, l.Data = raft.LogConfiguration, []byte("conf")
		}
		storeLogs(t, s, l)
	}
	get := func(index uint64) raft.Log {
		t.Helper()
		var l raft.Log
		if err := s.GetLog(index, &l); err != nil {
			t.Fatalf("get %d: %v", index, err)
		}
		return l
	}
	if err := s.beginConfigScan(9); err != nil {
		t.Fatal(err)
	}
	if l := get(10); string(l.Data) != "cmd10" {
		t.Fatalf("last entry %+v, want it read", l)
	}
	for i := uint64(1); i <= 10; i++ {
		l := get(i)
		switch {
		case l.Index != i:
			t.Fatalf("entry %d came back as %d", i, l.Index)
		case i == 4 && (l.Type != raft.LogConfiguration || string(l.Data) != "conf"):
			t.Fatalf("configuration entry %+v, want it read", l)
		case i != 4 && i < 10 && (l.Type != raft.LogCommand || l.Data != nil):
			t.Fatalf("plain entry %d: %+v, want a stub", i, l)
		}
	}
	if l := get(5); string(l.Data) != "cmd5" {
		t.Fatalf("after the scan's last read, entry 5 is %+v, want it read", l)
	}
	if got := s.endConfigScan(); got != 8 {
		t.Fatalf("scan skipped %d entries, want 8", got)
	}
	// Above the state machine's applied index: read for real.
	if err := s.beginConfigScan(3); err != nil {
		t.Fatal(err)
	}
	if l := get(7); string(l.Data) != "cmd7" {
		t.Fatalf("entry 7 above the applied index: %+v, want it read", l)
	}
	s.endConfigScan()

	// A build without side records appends a configuration entry: on the next open the
	// mark moves past it, and it and everything before it are read for real.
	conf := testLog(11, 2, "conf11")
	conf.Type = raft.LogConfiguration
	if err := s.db.Set(logKey(11), encodeLog(nil, conf), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(logKey(12), encodeLog(nil, testLog(12, 2, "cmd12")), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	if err := s.trackConfigurations(); err != nil {
		t.Fatal(err)
	}
	if err := s.beginConfigScan(12); err != nil {
		t.Fatal(err)
	}
	if l := get(11); l.Type != raft.LogConfiguration || string(l.Data) != "conf11" {
		t.Fatalf("configuration entry of an older build: %+v, want it read", l)
	}
	if l := get(5); string(l.Data) != "cmd5" {
		t.Fatalf("entry 5 below the moved mark: %+v, want it read", l)
	}
	s.endConfigScan()
	// DeleteRange drops the side records with the entries.
	if err := s.DeleteRange(1, 5); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.getMeta(configKey(4)); err != nil || ok {
		t.Fatalf("side record of a deleted entry: present %v, %v", ok, err)
	}
}

// serverIDs lists the configuration's servers as "id:suffrage".
func serverIDs(t *testing.T, n *Node) []string {
	t.Helper()
	servers, err := n.Servers(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range servers {
		ids = append(ids, fmt.Sprintf("%s:%s", s.ID, s.Suffrage))
	}
	slices.Sort(ids)
	return ids
}

// Configuration changes after the snapshot survive a restart whose scan skips the plain
// entries, and a store without side records (an older build's) opens with them too.
func TestConfigChangesAfterSnapshotSurviveRestart(t *testing.T) {
	s := startSoleNode(t, func(cfg *Config) {
		cfg.TrailingLogs = 5
		cfg.SnapshotThreshold = 1 << 20
	})
	for i := range 20 {
		apply(t, s.n, fmt.Sprintf("k%d=v%d", i, i))
	}
	if err := s.n.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	replicas := make([]*Node, 2)
	for i := range replicas {
		dir := t.TempDir()
		replicas[i] = openNode(t, testConfig(t, fmt.Sprintf("r%d", i+1), dir, openKVFSM(t, filepath.Join(dir, "fsm.db"), false)))
	}
	ctx := ctxFor(t)
	if err := s.n.AddNonvoter(ctx, "r1", replicas[0].Addr()); err != nil {
		t.Fatal(err)
	}
	for i := 20; i < 40; i++ {
		apply(t, s.n, fmt.Sprintf("k%d=v%d", i, i))
	}
	if err := s.n.AddNonvoter(ctx, "r2", replicas[1].Addr()); err != nil {
		t.Fatal(err)
	}
	if err := s.n.RemoveServer(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	for i := 40; i < 60; i++ {
		apply(t, s.n, fmt.Sprintf("k%d=v%d", i, i))
	}
	want := serverIDs(t, s.n)
	if !slices.Equal(want, []string{"n1:Voter", "r2:Nonvoter"}) {
		t.Fatalf("servers before the restart: %v", want)
	}
	s.stop()
	s.start()
	if got := serverIDs(t, s.n); !slices.Equal(got, want) {
		t.Fatalf("servers after a restart: %v, want %v", got, want)
	}
	if s.n.configScanSkipped < 39 {
		t.Fatalf("the scan skipped %d entries, want the 39 commands after the snapshot before the last at least", s.n.configScanSkipped)
	}
	s.stop()

	// An older build's store: no side records, no mark.
	store := openTestLogStore(t, filepath.Join(s.cfg.DataDir, "raft", logStoreDir))
	for _, r := range [][2][]byte{
		{configKey(0), prefixUpperBound(configKeyPrefix)},
		{configTrackedFromKey, configTrackedThroughKey},
		{configTrackedThroughKey, append(configTrackedThroughKey, 0)},
	} {
		if err := store.db.DeleteRange(r[0], r[1], pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s.start()
		if i == 0 && s.n.configScanSkipped != 0 {
			t.Fatalf("the scan skipped %d entries of an older build's store, want none", s.n.configScanSkipped)
		}
		if got := serverIDs(t, s.n); !slices.Equal(got, want) {
			t.Fatalf("servers after a restart on an older store: %v, want %v", got, want)
		}
		s.stop()
	}
	for i := range 60 {
		s.fsm = openKVFSM(t, s.fsmPath, false)
		wantValue(t, s.fsm, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
		s.fsm.close()
	}
}

// A follower that was down while the others restarted (their scans skipping plain entries)
// still receives the full entries it missed.
func TestLaggingFollowerGetsFullEntriesAfterRestarts(t *testing.T) {
	type member struct {
		id, dir, addr string
		fsm           *kvFSM
		node          *Node
	}
	members := make([]*member, 3)
	start := func(m *member, bootstrap bool) {
		m.fsm = openKVFSM(t, filepath.Join(m.dir, "fsm.db"), false)
		cfg := testConfig(t, m.id, m.dir, m.fsm)
		cfg.RaftBind, cfg.Bootstrap = m.addr, bootstrap
		m.node = openNode(t, cfg)
	}
	stop := func(m *member) {
		if err := m.node.Close(); err != nil {
			t.Fatal(err)
		}
		m.fsm.close()
	}
	for i := range members {
		members[i] = &member{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), addr: testnet.Addr(t, "127.0.0.1")}
		start(members[i], i == 0)
	}
	ctx := ctxFor(t)
	n1 := members[0].node
	if err := n1.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range members[1:] {
		if err := n1.AddVoter(ctx, m.id, m.node.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, n1, "k0=v0")
	if err := members[2].node.WaitApplied(ctx, n1.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	stop(members[2])
	for i := 1; i < 30; i++ {
		apply(t, n1, fmt.Sprintf("k%d=v%d", i, i))
	}
	if err := members[1].node.WaitApplied(ctx, n1.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	stop(members[0])
	stop(members[1])
	start(members[0], false)
	start(members[1], false)
	for _, m := range members[:2] {
		if m.node.configScanSkipped < 29 {
			t.Fatalf("%s's scan skipped %d entries, want the 29 commands at least", m.id, m.node.configScanSkipped)
		}
	}
	leader := waitForLeader(t, members[0].node, members[1].node)
	apply(t, leader, "k30=v30")
	start(members[2], false)
	if err := members[2].node.WaitApplied(ctx, leader.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	for i := range 31 {
		wantValue(t, members[2].fsm, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
}
