package replication

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

var (
	_ raft.LogStore    = (*logStore)(nil)
	_ raft.StableStore = (*logStore)(nil)
)

func openTestLogStore(t testing.TB, dir string) *logStore {
	t.Helper()
	s, err := openLogStore(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testLog(index, term uint64, data string) *raft.Log {
	return &raft.Log{
		Index: index, Term: term, Type: raft.LogCommand, Data: []byte(data),
		Extensions: []byte("ext-" + data), AppendedAt: time.Unix(1700000000, int64(index)).UTC(),
	}
}

func storeLogs(t testing.TB, s raft.LogStore, logs ...*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("store logs: %v", err)
	}
}

func wantBounds(t testing.TB, s raft.LogStore, first, last uint64) {
	t.Helper()
	gotFirst, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	gotLast, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if gotFirst != first || gotLast != last {
		t.Fatalf("first, last = %d, %d; want %d, %d", gotFirst, gotLast, first, last)
	}
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && bytes.Equal(a.Data, b.Data) &&
		bytes.Equal(a.Extensions, b.Extensions) && a.AppendedAt.Equal(b.AppendedAt)
}

func wantLog(t testing.TB, s raft.LogStore, want *raft.Log) {
	t.Helper()
	var got raft.Log
	if err := s.GetLog(want.Index, &got); err != nil {
		t.Fatalf("get log %d: %v", want.Index, err)
	}
	if !sameLog(&got, want) {
		t.Fatalf("log %d = %+v, want %+v", want.Index, got, *want)
	}
}

func wantNoLog(t testing.TB, s raft.LogStore, index uint64) {
	t.Helper()
	if err := s.GetLog(index, new(raft.Log)); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("get log %d: %v, want ErrLogNotFound", index, err)
	}
}

// TestLogStoreLogs follows what raft-boltdb's tests and raft's InmemStore hold a LogStore to:
// an empty store has first and last index 0, a missing entry is ErrLogNotFound, entries come
// back field for field, and DeleteRange at the head, at the tail and over everything keeps the
// bounds right, in memory and after reopening.
func TestLogStoreLogs(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	wantBounds(t, s, 0, 0)
	wantNoLog(t, s, 1)
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatalf("delete range of an empty store: %v", err)
	}
	wantBounds(t, s, 0, 0)

	// One entry, with every field empty but the index.
	bare := &raft.Log{Index: 1}
	if err := s.StoreLog(bare); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(1, &got); err != nil {
		t.Fatal(err)
	}
	if got.Data != nil || got.Extensions != nil || !got.AppendedAt.IsZero() || got.Term != 0 {
		t.Fatalf("bare log came back as %+v", got)
	}
	wantBounds(t, s, 1, 1)

	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, testLog(i, 1+i/10, fmt.Sprintf("cmd%d", i)))
	}
	storeLogs(t, s, logs[:4]...) // overwrites the bare entry at 1
	storeLogs(t, s, logs[4:]...)
	wantBounds(t, s, 1, 20)
	for _, l := range logs {
		wantLog(t, s, l)
	}
	wantNoLog(t, s, 21)
	wantNoLog(t, s, 0)

	// Compaction after a snapshot deletes the head.
	if err := s.DeleteRange(1, 5); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 6, 20)
	wantNoLog(t, s, 5)
	wantLog(t, s, logs[5])
	// A conflicting tail is deleted from some index to the last.
	if err := s.DeleteRange(18, 20); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 6, 17)
	wantNoLog(t, s, 18)
	// A range wholly outside the log changes nothing.
	if err := s.DeleteRange(30, 40); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 6, 17)
	// A gap in the middle: the bounds stay, the entries around it stay.
	if err := s.DeleteRange(10, 12); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 6, 17)
	wantNoLog(t, s, 11)
	wantLog(t, s, logs[8])
	wantLog(t, s, logs[12])

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	wantBounds(t, s, 6, 17)
	wantLog(t, s, logs[16])
	wantNoLog(t, s, 18)

	// The tail rewritten with a new term, as after a leader change.
	storeLogs(t, s, testLog(17, 9, "new17"), testLog(18, 9, "new18"))
	wantBounds(t, s, 6, 18)
	wantLog(t, s, testLog(17, 9, "new17"))

	if err := s.DeleteRange(0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 0, 0)
	// After a snapshot install the log may restart far ahead.
	storeLogs(t, s, testLog(1000, 10, "after-install"))
	wantBounds(t, s, 1000, 1000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	wantBounds(t, s, 1000, 1000)
}

// TestLogStoreStable: stable keys persist, and an unset key is the "not found" error raft
// checks for by its text (raft.go, api.go).
func TestLogStoreStable(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("get of an unset key: %v, want \"not found\"", err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("get uint64 of an unset key: %v, want \"not found\"", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	// Stable keys and logs do not see each other.
	storeLogs(t, s, testLog(1, 1, "x"))
	if err := s.DeleteRange(0, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n2" {
		t.Fatalf("LastVoteCand = %q, %v; want n2", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("CurrentTerm = %d, %v; want 42", v, err)
	}
	if _, err := s.GetUint64([]byte("LastVoteCand")); err == nil {
		t.Fatal("GetUint64 of a two-byte value succeeded")
	}
	wantBounds(t, s, 0, 0)
}

func TestLogStoreRejectsCorruptEntry(t *testing.T) {
	s := openTestLogStore(t, t.TempDir())
	full := encodeLog(nil, testLog(1, 1, "data"))
	for _, value := range [][]byte{nil, {9}, full[:3], full[:len(full)-1]} {
		if err := s.db.Set(logKey(1), value, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.GetLog(1, new(raft.Log)); !errors.Is(err, errCorruptLog) {
			t.Fatalf("get of %x: %v, want errCorruptLog", value, err)
		}
	}
}

func TestLogStoreSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	openTestLogStore(t, dir)
	if s, err := openLogStore(dir, testLogger(t)); err == nil {
		_ = s.Close()
		t.Fatal("a second open of the same log store succeeded")
	}
}

const crashChildEnv = "STRATA_LOGSTORE_CRASH_DIR"

// TestLogStoreCrashChild is the child of TestLogStoreSurvivesKill: it appends batches of
// 1 to 16 logs and a term, and prints the last index of each StoreLogs that returned.
func TestLogStoreCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("run by TestLogStoreSurvivesKill")
	}
	s, err := openLogStore(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for batch := 0; ; batch++ {
		var logs []*raft.Log
		for range 1 + batch%16 {
			logs = append(logs, testLog(next, next, fmt.Sprintf("entry%d", next)))
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUint64([]byte("CurrentTerm"), next-1); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", next-1)
	}
}

// TestLogStoreSurvivesKill kills a process that is appending logs and checks that every
// StoreLogs and SetUint64 it saw return is in the reopened store.
func TestLogStoreSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogStoreCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	lines := bufio.NewScanner(out)
	for acked < 2000 && lines.Scan() {
		var index uint64
		if _, err := fmt.Sscanf(lines.Text(), "acked %d", &index); err == nil {
			acked = index
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 2000 {
		t.Fatalf("child stopped after acknowledging %d logs", acked)
	}

	s := openTestLogStore(t, dir)
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 1 || last < acked {
		t.Fatalf("after kill the log holds %d-%d, want 1 to at least %d", first, last, acked)
	}
	for i := uint64(1); i <= last; i++ {
		wantLog(t, s, testLog(i, i, fmt.Sprintf("entry%d", i)))
	}
	if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term < acked {
		t.Fatalf("CurrentTerm after kill = %d, %v; want at least %d", term, err, acked)
	}
}

// writeBoltRaftDir runs a single-node raft group on a raft-boltdb store in dir/raft/raft.db,
// opened as Node.Open opened it before the Pebble log store, applies cmds and stops.
func writeBoltRaftDir(t *testing.T, dir string, cmds []string) {
	t.Helper()
	raftDir := filepath.Join(dir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		t.Fatal(err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(raftDir, boltLogFile),
		BoltOptions: &bbolt.Options{Timeout: storeOpenTimeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	snaps, err := raft.NewFileSnapshotStore(raftDir, snapshotsRetained, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "n1", dir, nil)
	rc := cfg.raftConfig(newSlogHCLogger(testLogger(t), "raft"))
	addr, transport := raft.NewInmemTransport("")
	configuration := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: addr}}}
	if err := raft.BootstrapCluster(rc, store, store, snaps, transport, configuration); err != nil {
		t.Fatal(err)
	}
	fsm := openKVFSM(t, filepath.Join(t.TempDir(), "old-fsm.db"), false)
	r, err := raft.NewRaft(rc, newStateMachineAdapter(fsm, nil), store, store, snaps, transport)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testWait)
	for r.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("bolt-backed raft did not become leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range cmds {
		if err := r.Apply([]byte(c), testWait).Error(); err != nil {
			t.Fatalf("apply %q: %v", c, err)
		}
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
}

// boltContents reads every log and the term and vote of a raft-boltdb file.
func boltContents(t *testing.T, path string) (logs []*raft.Log, stable map[string][]byte) {
	t.Helper()
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	for i := first; first > 0 && i <= last; i++ {
		l := new(raft.Log)
		if err := store.GetLog(i, l); err != nil {
			t.Fatalf("bolt log %d: %v", i, err)
		}
		logs = append(logs, l)
	}
	stable = map[string][]byte{}
	for _, k := range []string{"CurrentTerm", "LastVoteTerm", "LastVoteCand"} {
		v, err := store.Get([]byte(k))
		if err != nil {
			t.Fatalf("bolt stable key %s: %v", k, err)
		}
		stable[k] = v
	}
	return logs, stable
}

func wantStoreHolds(t *testing.T, s *logStore, logs []*raft.Log, stable map[string][]byte) {
	t.Helper()
	wantBounds(t, s, logs[0].Index, logs[len(logs)-1].Index)
	for _, l := range logs {
		wantLog(t, s, l)
	}
	for k, want := range stable {
		if got, err := s.Get([]byte(k)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("stable %s = %x, %v; want %x", k, got, err, want)
		}
	}
}

// TestBoltDataDirMigrates starts a node on a data directory written with the raft-boltdb log
// store: it must copy the log and term/vote, set raft.db aside, and replay the old commands
// into a fresh state machine.
func TestBoltDataDirMigrates(t *testing.T) {
	dir := t.TempDir()
	var cmds []string
	for i := range 30 {
		cmds = append(cmds, fmt.Sprintf("k%d=v%d", i, i))
	}
	writeBoltRaftDir(t, dir, cmds)
	raftDir := filepath.Join(dir, "raft")
	logs, stable := boltContents(t, filepath.Join(raftDir, boltLogFile))
	if len(logs) < len(cmds) || len(stable["CurrentTerm"]) != 8 {
		t.Fatalf("the bolt store holds %d logs and term %x", len(logs), stable["CurrentTerm"])
	}

	fsm := openKVFSM(t, filepath.Join(t.TempDir(), "fsm.db"), false)
	cfg := testConfig(t, "n1", dir, fsm)
	cfg.Bootstrap = true // must not bootstrap over the migrated state
	n := openNode(t, cfg)
	if _, err := os.Stat(filepath.Join(raftDir, boltLogFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("raft.db is still there after migration: %v", err)
	}
	if _, err := os.Stat(filepath.Join(raftDir, boltMigratedFile)); err != nil {
		t.Fatalf("raft.db was not set aside: %v", err)
	}
	// Raft may already append after them (a new term's no-op), but never rewrites them.
	for _, l := range logs {
		wantLog(t, n.store, l)
	}
	if err := n.WaitLeader(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if err := n.ReadBarrier(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	for i := range cmds {
		wantValue(t, fsm, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	oldTerm := binary.BigEndian.Uint64(stable["CurrentTerm"])
	if term := n.Raft().CurrentTerm(); term < oldTerm {
		t.Fatalf("term after migration %d, below bolt's %d", term, oldTerm)
	}
	if resp := apply(t, n, "k0=again"); resp != "v0" {
		t.Fatalf("apply after migration responded %v, want v0", resp)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// A second start finds no raft.db and keeps the log it now writes.
	fsm.close()
	fsm = openKVFSM(t, filepath.Join(t.TempDir(), "fsm2.db"), false)
	cfg.FSM = fsm
	n = openNode(t, cfg)
	if err := n.WaitLeader(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if err := n.ReadBarrier(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	wantValue(t, fsm, "k0", "again")
	wantValue(t, fsm, "k29", "v29")
}

// TestBoltMigrationResumes: a migration interrupted before its copy was marked complete starts
// over (a partial copy is discarded), and one interrupted after it only sets raft.db aside.
func TestBoltMigrationResumes(t *testing.T) {
	dir := t.TempDir()
	writeBoltRaftDir(t, dir, []string{"a=1", "b=2", "c=3"})
	raftDir := filepath.Join(dir, "raft")
	logDir := filepath.Join(raftDir, logStoreDir)
	boltPath := filepath.Join(raftDir, boltLogFile)
	logs, stable := boltContents(t, boltPath)

	// Interrupted mid-copy: a partial store with an entry bolt does not have, no marker.
	partial, err := openLogStore(logDir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	storeLogs(t, partial, testLog(logs[0].Index, 99, "stale"), testLog(500, 99, "stray"))
	if err := partial.Close(); err != nil {
		t.Fatal(err)
	}
	if err := migrateBoltLogStore(raftDir, logDir, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	s := openTestLogStore(t, logDir)
	wantStoreHolds(t, s, logs, stable)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Interrupted after the copy was marked complete, before the rename: put raft.db back
	// with different content; the completed copy wins and raft.db is set aside again.
	if err := os.Rename(filepath.Join(raftDir, boltMigratedFile), boltPath); err != nil {
		t.Fatal(err)
	}
	if err := migrateBoltLogStore(raftDir, logDir, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(boltPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("raft.db is still there: %v", err)
	}
	s = openTestLogStore(t, logDir)
	wantStoreHolds(t, s, logs, stable)
}

// TestBoltMigrationCopiesManyLogs: a log longer than one copy batch, with a gap, comes over
// whole.
func TestBoltMigrationCopiesManyLogs(t *testing.T) {
	raftDir := t.TempDir()
	boltPath := filepath.Join(raftDir, boltLogFile)
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: boltPath})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(100); i < 100+2*boltMigrateBatch+500; i++ {
		if i == 1500 {
			continue
		}
		logs = append(logs, testLog(i, 3, fmt.Sprintf("cmd%d", i)))
	}
	storeLogs(t, bolt, logs...)
	if err := bolt.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := bolt.Set([]byte("LastVoteCand"), []byte("n1")); err != nil {
		t.Fatal(err)
	}
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(raftDir, logStoreDir)
	if err := migrateBoltLogStore(raftDir, logDir, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	s := openTestLogStore(t, logDir)
	wantStoreHolds(t, s, logs, map[string][]byte{"CurrentTerm": {0, 0, 0, 0, 0, 0, 0, 3}, "LastVoteCand": []byte("n1")})
	wantNoLog(t, s, 1500)
}

func BenchmarkStoreLogs(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) raft.LogStore
	}{
		{"bolt", func(b *testing.B) raft.LogStore {
			s, err := raftboltdb.New(raftboltdb.Options{
				Path:        filepath.Join(b.TempDir(), boltLogFile),
				BoltOptions: &bbolt.Options{Timeout: storeOpenTimeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"pebble", func(b *testing.B) raft.LogStore { return openTestLogStore(b, b.TempDir()) }},
	}
	data := bytes.Repeat([]byte("x"), 512) // about one metadata command
	for _, store := range stores {
		for _, perBatch := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/logs=%d", store.name, perBatch), func(b *testing.B) {
				s := store.open(b)
				next := uint64(1)
				logs := make([]*raft.Log, perBatch)
				for b.Loop() {
					for i := range logs {
						logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
						next++
					}
					if err := s.StoreLogs(logs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "logs/s")
			})
		}
	}
}

// TestLogStoreUseAfterClose: every operation after Close fails with an error instead of
// Pebble's panic, as a heartbeat answered by raft's transport during a node's shutdown
// did in a CI run (setCurrentTerm -> Set after the store closed).
func TestLogStoreUseAfterClose(t *testing.T) {
	s, err := openLogStore(t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	for name, err := range map[string]error{
		"Set":         s.SetUint64([]byte("CurrentTerm"), 2),
		"StoreLogs":   s.StoreLogs([]*raft.Log{{Index: 2, Term: 1}}),
		"DeleteRange": s.DeleteRange(1, 1),
		"GetLog":      s.GetLog(1, &l),
	} {
		if !errors.Is(err, errLogStoreClosed) {
			t.Errorf("%s after Close: %v, want errLogStoreClosed", name, err)
		}
	}
	if _, err := s.Get([]byte("CurrentTerm")); !errors.Is(err, errLogStoreClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The log store writes its tables without block compression: entries that compress well
// take their full size on disk once flushed.
func TestLogStoreTablesUncompressed(t *testing.T) {
	s := openTestLogStore(t, t.TempDir())
	var encoded uint64
	for i := uint64(1); i <= 200; i++ {
		l := testLog(i, 1, strings.Repeat("x", 4096))
		encoded += uint64(len(encodeLog(nil, l)))
		storeLogs(t, s, l)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	onDisk, err := s.db.EstimateDiskUsage(logKey(0), logKey(201))
	if err != nil {
		t.Fatal(err)
	}
	if onDisk < encoded {
		t.Fatalf("200 entries of %d bytes take %d bytes on disk: compressed", encoded, onDisk)
	}
}
