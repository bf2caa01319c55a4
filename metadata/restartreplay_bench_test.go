package metadata

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

// countingFSM counts the log entries raft hands the FSM, and those of them at or below
// the FSM's applied index (replayed and skipped).
type countingFSM struct {
	*FSM
	handed, skipped atomic.Int64
}

func (c *countingFSM) ApplyBatch(logs []*raft.Log) []any {
	applied := c.FSM.AppliedIndex()
	for _, l := range logs {
		c.handed.Add(1)
		if l.Index <= applied {
			c.skipped.Add(1)
		}
	}
	return c.FSM.ApplyBatch(logs)
}

// openReplayNode opens the FSM in dir/fsm and a single-voter node on it.
func openReplayNode(tb testing.TB, dir string, tune func(*replication.Config)) (*countingFSM, *replication.Node) {
	tb.Helper()
	f, err := OpenFSM(filepath.Join(dir, "fsm"), testLogger(tb))
	if err != nil {
		tb.Fatalf("open fsm: %v", err)
	}
	fsm := &countingFSM{FSM: f}
	cfg := replication.Config{
		NodeID:    "meta-1",
		DataDir:   dir,
		RaftBind:  "127.0.0.1:0",
		Bootstrap: true,
		FSM:       fsm,
		Logger:    testLogger(tb),
	}
	if tune != nil {
		tune(&cfg)
	}
	node, err := replication.Open(cfg)
	if err != nil {
		f.Close()
		tb.Fatalf("open raft node: %v", err)
	}
	return fsm, node
}

func closeReplayNode(tb testing.TB, fsm *countingFSM, node *replication.Node) {
	tb.Helper()
	if err := node.Close(); err != nil {
		tb.Fatalf("close node: %v", err)
	}
	if err := fsm.Close(); err != nil {
		tb.Fatalf("close fsm: %v", err)
	}
}

// applyCommand replicates cmd through node as the service does, and fails on a rejection.
func applyCommand(tb testing.TB, node *replication.Node, cmd *metadatapb.Command, id string) *metadatapb.CommandResult {
	tb.Helper()
	cmd.RequestId = id
	cmd.TimestampUnixNano = time.Now().UnixNano()
	level := FeatureLevel
	cmd.FeatureLevel = &level
	data, err := proto.Marshal(cmd)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := node.Apply(ctx, data)
	if err != nil {
		tb.Fatalf("apply %s: %v", id, err)
	}
	res := resp.(*metadatapb.CommandResult)
	if codes.Code(res.GetCode()) != codes.OK {
		tb.Fatalf("apply %s: %s", id, res.GetMessage())
	}
	return res
}

// fillAppends appends messages to alice's INBOX in Append commands of perCommand
// messages each, as `strata import maildir` does (--batch 64), from 4 writers.
func fillAppends(tb testing.TB, node *replication.Node, fsm *FSM, messages, perCommand int) {
	tb.Helper()
	applyCommand(tb, node, cmdTenant("example", "example.org"), "fill-tenant")
	applyCommand(tb, node, cmdAccount(alice), "fill-account")
	v := fsm.view()
	box, found, err := v.mailboxByName(alice, "INBOX")
	v.close()
	if err != nil || !found {
		tb.Fatalf("INBOX: %v", err)
	}
	commands := (messages + perCommand - 1) / perCommand
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				c := int(next.Add(1)) - 1
				if c >= commands {
					return
				}
				cmd := cmdAppend(alice, box.GetId())
				req := cmd.GetAppend()
				for i := range perCommand {
					req.Messages = append(req.Messages, importedMessage(c*perCommand+i))
				}
				applyCommand(tb, node, cmd, fmt.Sprintf("fill-%d", c))
			}
		})
	}
	wg.Wait()
}

// importedMessage is message n's metadata with a header block of about 1.2 KB that
// compresses as real header fields do (2 to 3 times), not as a repeated line does.
func importedMessage(n int) *metadatapb.NewMessage {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	var header []byte
	for range 12 {
		header = fmt.Appendf(header, "Received: from mx%d.example.org (mx%d [10.%d.%d.%d]) by mail.example.com id %016x; %d\r\n",
			rng.IntN(100), rng.IntN(100), rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.Uint64(), rng.Uint32())
	}
	blob := fmt.Sprintf("sha256-%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
	structure := testStructure(fmt.Sprintf("subject %d %x", n, rng.Uint64()))
	structure.Header = header
	return &metadatapb.NewMessage{BlobKey: blob, Size: 4400, InternalDateUnix: 1793534400 + int64(n), Structure: structure}
}

func dirBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		tb.Fatalf("size of %s: %v", dir, err)
	}
	return total
}

// BenchmarkRestartReplay fills a store with STRATA_REPLAY_MESSAGES messages (default
// 20,000) in Append commands of 64 through a real single-voter node, closes it, and then
// measures each restart: from Open until the first write after it is applied (raft hands
// the FSM the log after the last snapshot before that write), with the process's CPU
// time over that span and the entries raft handed the FSM again; and the size of the
// raft log and snapshot directories after the fill.
//
// At the end it times one snapshot of the store (snapshot-ms). STRATA_REPLAY_SNAPSHOT_BYTES
// sets the node's SnapshotBytes (1099511627776: none, as before it existed).
//
// STRATA_REPLAY_DIR keeps the store there: a run that finds no store there fills it and
// stops; a run that finds one measures its restarts only (no fill, no snapshot), so that
// builds can be compared on copies of one store.
//
//	STRATA_REPLAY_MESSAGES=200000 go test ./metadata -run '^$' -bench RestartReplay -benchtime 3x -timeout 1h
func BenchmarkRestartReplay(b *testing.B) {
	messages := envInt(b, "STRATA_REPLAY_MESSAGES", 20000)
	tune := func(cfg *replication.Config) {
		cfg.SnapshotBytes = uint64(envInt(b, "STRATA_REPLAY_SNAPSHOT_BYTES", 0))
	}
	dir, keep := os.Getenv("STRATA_REPLAY_DIR"), true
	if dir == "" {
		dir, keep = b.TempDir(), false
	}
	var fillTime time.Duration
	if _, err := os.Stat(filepath.Join(dir, "fsm")); err != nil || !keep {
		fsm, node := openReplayNode(b, dir, tune)
		if err := node.WaitLeader(context.Background()); err != nil {
			b.Fatal(err)
		}
		fillStart := time.Now()
		fillAppends(b, node, fsm.FSM, messages, 64)
		fillTime = time.Since(fillStart)
		b.Logf("filled %d messages in %v; applied index %d, last snapshot at %s", messages, fillTime.Round(time.Millisecond),
			node.AppliedIndex(), node.Stats()["last_snapshot_index"])
		closeReplayNode(b, fsm, node)
		if keep {
			b.Logf("filled %s; the next run with STRATA_REPLAY_DIR=%s measures its restarts", dir, dir)
			return
		}
	}
	logBytes := dirBytes(b, filepath.Join(dir, "raft", "log"))
	snapshotBytes := dirBytes(b, filepath.Join(dir, "raft", "snapshots"))

	if path := os.Getenv("STRATA_REPLAY_CPUPROFILE"); path != "" {
		// The restarts alone, without the fill that -cpuprofile would hold.
		out, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = out.Close()
		}()
	}
	var cpu time.Duration
	var handed int64
	b.ResetTimer()
	for i := range b.N {
		cpu0 := cpuTime()
		start := time.Now()
		fsm, node := openReplayNode(b, dir, tune)
		applyCommand(b, node, cmdCreateMailbox(alice, fmt.Sprintf("after-%d", i)), fmt.Sprintf("after-%d", i))
		elapsed := time.Since(start)
		cpu += cpuTime() - cpu0
		handed += fsm.handed.Load()
		b.Logf("restart %d: first write applied after %v, %d entries handed to the fsm (%d skipped)",
			i, elapsed.Round(time.Millisecond), fsm.handed.Load(), fsm.skipped.Load())
		b.StopTimer()
		closeReplayNode(b, fsm, node)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/restart")
	b.ReportMetric(float64(handed)/float64(b.N), "entries-handed/restart")
	b.ReportMetric(float64(logBytes)/(1<<20), "log-MiB")
	b.ReportMetric(float64(snapshotBytes)/(1<<20), "snapshots-MiB")
	if keep {
		return
	}
	b.ReportMetric(fillTime.Seconds(), "fill-s")

	fsm, node := openReplayNode(b, dir, tune)
	applyCommand(b, node, cmdCreateMailbox(alice, "before-snapshot"), "before-snapshot")
	start := time.Now()
	if err := node.Raft().Snapshot().Error(); err != nil {
		b.Fatalf("snapshot: %v", err)
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "snapshot-ms")
	closeReplayNode(b, fsm, node)
}

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return v
}
