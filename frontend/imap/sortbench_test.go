package imap_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkSortMailbox measures SORT and THREAD on a large INBOX (100,000 messages, or
// STRATA_SORT_BENCH_MESSAGES) over a socket. The mailbox is filled as fillMailbox does,
// through the metadata Append, each message with sort keys as ingest extracts them: 5,000
// distinct base subjects (or STRATA_SORT_BENCH_SUBJECTS drawn from), 2,000 senders, dates over two years, a unique Message-ID and, for
// two messages in three, references to earlier ones.
//
//   - First/...: what the first SORT of a mailbox costs: bob, whom the owner granted lr,
//     orders it (another owner's mailbox is never cached, so each of his SORTs reads every
//     message's keys): Column reads the sort-key column (ReadSortColumn), Records the
//     stored records (FetchMessages, how the first SORT read them before the column).
//
//   - Repeated/...: the owner's SORTs, ordered from the frontend's sort-key cache.
//
// Each reports cpu-ns/op besides the wall time: the process's CPU time per command (the
// server's and the client's, and any background work of the store such as a compaction
// after the fill), a figure a loaded machine does not inflate as it does the wall time.
//
//	STRATA_SORT_BENCH_MESSAGES=1000000 go test ./frontend/imap -run '^$' -bench BenchmarkSortMailbox -benchtime 3x -timeout 60m
func BenchmarkSortMailbox(b *testing.B) {
	srv, _ := sortBenchServer(b)
	shareInboxWithBob(b, srv, "lr")
	owner := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
	shared := dialBench(b, srv, bob, testPassword, `"Other Users/demo@example.com/INBOX"`)
	commands := []struct{ name, command string }{
		{"SortDate", "UID SORT (DATE) UTF-8 ALL"},
		{"SortSubject", "UID SORT (SUBJECT) UTF-8 ALL"},
		{"ThreadReferences", "UID THREAD REFERENCES UTF-8 ALL"},
	}
	for _, path := range []struct {
		name  string
		least int64
	}{{"Column", 1}, {"Records", math.MaxInt64}} {
		for _, c := range commands {
			b.Run("First/"+path.name+"/"+c.name, func(b *testing.B) {
				imap.SetSortColumnMin(b, path.least)
				defer imap.MeasureCPU(b)()
				shared.bench(b, c.command)
			})
		}
	}
	owner.run(commands[1].command) // fills the cache with every field (a SORT (DATE) would fill only dates and sizes)
	for _, c := range commands {
		b.Run("Repeated/"+c.name, func(b *testing.B) {
			defer imap.MeasureCPU(b)()
			owner.bench(b, c.command)
		})
	}
}

// sortBenchServer starts a server whose INBOX holds 100,000 messages, or
// STRATA_SORT_BENCH_MESSAGES (fillSortMailbox), once the store's compactions are done, and
// returns it with the number of messages.
func sortBenchServer(b *testing.B) (*embedded.Server, int) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("STRATA_SORT_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	srv := startServerWith(b, func(cfg *embedded.Config) {
		cfg.MaxMessageSize = 1 << 20
		cfg.DisableSearchIndex = true
		cfg.IMAPLimits.SortCacheMessages = max(n, 1_000_000)
	})
	start := time.Now()
	fillSortMailbox(b, srv, n)
	b.Logf("filled %d messages in %v", n, time.Since(start).Round(time.Second))
	waitIdle(b)
	return srv, n
}

// fillSortMailbox appends one message over IMAP, then n-1 records that share its body
// through the metadata Append, each with its own sort keys (BenchmarkSortMailbox).
func fillSortMailbox(b testing.TB, srv *embedded.Server, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	md := srv.Metadata()
	mbox, rec := benchSeed(ctx, b, srv)
	rng := rand.New(rand.NewPCG(1, 17))
	subjects := 5000 // drawn from, or STRATA_SORT_BENCH_SUBJECTS (a million: some 632,000 distinct)
	if v, err := strconv.Atoi(os.Getenv("STRATA_SORT_BENCH_SUBJECTS")); err == nil && v > 0 {
		subjects = v
	}
	const batch = 1000
	for start := 1; start < n; start += batch {
		req := &metadatapb.AppendRequest{RequestId: randomID(), Account: embedded.DemoAccount, MailboxId: mbox.GetId()}
		for i := start; i < min(start+batch, n); i++ {
			name := fmt.Sprintf("bench-%06d", i)
			st := proto.Clone(rec.GetStructure()).(*metadatapb.MessageStructure)
			st.Header = bytes.ReplaceAll(st.GetHeader(), []byte("bench-000000"), []byte(name))
			st.Envelope.MessageId = "<" + name + "@example.org>"
			sender := rng.IntN(2000)
			keys := &metadatapb.SortKeys{
				SentUnix: proto.Int64(1_700_000_000 + rng.Int64N(2*365*86400)),
				Subject:  fmt.Sprintf("project status %04d", rng.IntN(subjects)),
				From:     fmt.Sprintf("user%04d@example.org", sender), DisplayFrom: fmt.Sprintf("user %04d", sender),
				To: "demo@example.com", DisplayTo: "demo", MessageId: name + "@example.org",
			}
			if i > 1 && rng.IntN(3) > 0 {
				parent := rng.IntN(i)
				keys.References = []string{fmt.Sprintf("bench-%06d@example.org", parent/7), fmt.Sprintf("bench-%06d@example.org", parent)}
				keys.Reply = true
			}
			st.SortKeys = keys
			req.Messages = append(req.Messages, &metadatapb.NewMessage{
				BlobKey: rec.GetBlobKey(), Size: rec.GetSize() + uint64(rng.IntN(1000)), InternalDateUnix: rec.GetInternalDateUnix() + int64(i),
				Structure: st,
			})
		}
		if _, err := md.Append(ctx, req); err != nil {
			b.Fatalf("append batch at %d: %v", start, err)
		}
	}
}

// waitIdle waits, up to 15 minutes, until no goroutine of the process is in a Pebble
// flush or compaction (twice, 2 s apart): the store's compactions after the fill are
// done, so they do not count in the first command's CPU time. (The process's CPU time
// over a few seconds would not tell on a loaded machine where it gets a small share.)
func waitIdle(b *testing.B) {
	b.Helper()
	waitQuiet(b, "(*DB).compact", "(*DB).flush")
}

// waitQuiet waits, up to 15 minutes, until no goroutine of the process is in a function
// of busy (twice, 2 s apart), and logs how long it waited.
func waitQuiet(b *testing.B, busyIn ...string) {
	b.Helper()
	busy := func() bool {
		var buf bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
			b.Fatal(err)
		}
		s := buf.String()
		for _, f := range busyIn {
			if strings.Contains(s, f) {
				return true
			}
		}
		return false
	}
	start := time.Now()
	for quiet := 0; quiet < 2 && time.Since(start) < 15*time.Minute; time.Sleep(2 * time.Second) {
		if busy() {
			quiet = 0
		} else {
			quiet++
		}
	}
	b.Logf("waited %v for %v", time.Since(start).Round(time.Second), busyIn)
}

// BenchmarkFirstSortDates measures the first SORT (DATE) of a large INBOX (100,000
// messages, or STRATA_SORT_BENCH_MESSAGES) in process, without IMAP: the metadata
// service's ReadSortColumn over the in-process connection, the frontend's decoding into a
// sort cache, and the order (imap.FirstSort). The mailbox is filled as for
// BenchmarkSortMailbox. Paths, back to back on the same store:
//
//   - Column/Owner: the whole column into a cache that keeps every field, as the owner's
//     first SORT (DATE) read it before the dates projection (and any first SORT SUBJECT
//     or THREAD still does);
//   - Column/DatesOnly: the whole column into a cache that keeps dates and sizes only,
//     as another owner's first SORT (DATE) read it before;
//   - Dates: the column's dates projection (dates_only), as both read it now.
//
// Besides the wall time: cpu-ns/op (the process's CPU time per SORT) and column-B/op (the
// bytes of column received).
//
//	STRATA_SORT_BENCH_MESSAGES=1000000 go test ./frontend/imap -run '^$' -bench BenchmarkFirstSortDates -benchtime 3x -timeout 60m
func BenchmarkFirstSortDates(b *testing.B) {
	srv, box, uids := sharedSortBench(b)
	n := len(uids)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	byDate := []sortthread.Criterion{{Key: sortthread.Date}}
	var want []int32
	for _, path := range []struct {
		name                 string
		datesOnly, allFields bool
	}{{"Column/Owner", false, true}, {"Column/DatesOnly", false, false}, {"Dates", true, false}} {
		b.Run(path.name, func(b *testing.B) {
			req := &metadatapb.ReadSortColumnRequest{Account: embedded.DemoAccount, User: embedded.DemoAccount,
				MailboxId: box, Records: true, DatesOnly: path.datesOnly}
			var read int64
			stop := imap.MeasureCPU(b)
			for b.Loop() {
				order, bytes, err := imap.FirstSort(ctx, srv.Metadata(), req, path.allFields, uids, byDate)
				if err != nil {
					b.Fatal(err)
				}
				if len(order) != n {
					b.Fatalf("ordered %d of %d messages", len(order), n)
				}
				if want == nil {
					want = order
				} else if !slices.Equal(order, want) {
					b.Fatal("the order differs from the whole column's")
				}
				read += bytes
			}
			stop()
			b.ReportMetric(float64(read)/float64(b.N), "column-B/op")
		})
	}
}

// BenchmarkColdSortDate measures issue 17's first SORT (DATE) after a server start, the
// whole path in one process: each iteration starts the server anew on the same data
// directory (Pebble reopened, a new frontend and so an empty sort-key cache), logs in,
// selects INBOX (not timed), then times `UID SORT (DATE) UTF-8 ALL` over a socket, the
// client reading every byte of the answer. The mailbox (100,000 messages, or
// STRATA_SORT_BENCH_MESSAGES) is filled as for BenchmarkSortMailbox.
//
// STRATA_SORT_BENCH_DIR keeps the data directory there: a run finds the mailbox filled by
// an earlier one and skips the fill, so that builds before and after a change of the
// read path order the same store. Besides the wall time, cpu-ns/op is the process's CPU
// time during the SORTs alone; STRATA_COLDSORT_CPU names a file for a CPU profile of the
// whole loop (restarts included: focus on cmdSort and ReadSortColumn). With
// STRATA_COLDSORT_SETTLE set, each SORT waits until the started server has applied its
// raft log again and Pebble is idle (waitQuiet): the SORT alone, not beside the start's
// background work. STRATA_COLDSORT_QUERY times another command instead (as `UID SORT
// (SUBJECT) UTF-8 ALL`).
//
//	STRATA_SORT_BENCH_MESSAGES=1000000 STRATA_SORT_BENCH_DIR=/tmp/cs1m go test ./frontend/imap -run '^$' -bench BenchmarkColdSortDate -benchtime 5x -timeout 60m
func BenchmarkColdSortDate(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("STRATA_SORT_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	dir := os.Getenv("STRATA_SORT_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	// Started and closed here, each in turn: startServerWith would close each at the end.
	start := func() *embedded.Server {
		return startKept(b, embedded.Config{
			DataDir: dir, IMAPListen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Demo: true,
			AllowPlaintextAuth: true, MaxMessageSize: 1 << 20, DisableSearchIndex: true,
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			IMAPLimits: imap.Limits{SortCacheMessages: max(n, 1_000_000)},
		})
	}
	srv := start()
	if held := int(mailboxOf(b, srv, embedded.DemoAccount, "INBOX").GetUidNext()) - 1; held < n {
		if held > 0 {
			b.Fatalf("%s holds %d messages of %d: remove it", dir, held, n)
		}
		begin := time.Now()
		fillSortMailbox(b, srv, n)
		b.Logf("filled %d messages in %v", n, time.Since(begin).Round(time.Second))
		waitIdle(b)
	}
	if err := srv.Close(); err != nil {
		b.Fatal(err)
	}
	defer profileCPU(b, os.Getenv("STRATA_COLDSORT_CPU"))()
	settle := os.Getenv("STRATA_COLDSORT_SETTLE") != ""
	query := "UID SORT (DATE) UTF-8 ALL"
	if q := os.Getenv("STRATA_COLDSORT_QUERY"); q != "" {
		query = q
	}
	var cpu time.Duration
	var answer int
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		srv := start()
		if settle {
			// The raft log's entries since the last snapshot are applied again after a
			// start (the fill's Append batches: a store whose fill never reached
			// SnapshotThreshold replays all of it), in the background: with settle, the
			// SORT runs after that and the store's compactions, alone.
			waitQuiet(b, "(*Raft).processLogs", "(*logStore).GetLog", "(*DB).compact", "(*DB).flush")
		}
		bc := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
		before := cpuTime()
		b.StartTimer()
		answer = bc.run(query)
		b.StopTimer()
		cpu += cpuTime() - before
		bc.conn.Close()
		if err := srv.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(answer), "resp-bytes")
}

// startKept starts a server on a data directory an earlier server (or run) filled, up to
// three times: on a loaded machine the demo tenant's first apply after a restart of a
// large store can time out ("outcome unknown"), and a new start retries it.
func startKept(b *testing.B, cfg embedded.Config) *embedded.Server {
	b.Helper()
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var srv *embedded.Server
		srv, err = embedded.Start(ctx, cfg)
		cancel()
		if err == nil {
			return srv
		}
		b.Logf("start embedded server: %v (retrying)", err)
	}
	b.Fatalf("start embedded server: %v", err)
	return nil
}

// profileCPU starts a CPU profile into the file at path (none for "") and returns what
// stops it: defer profileCPU(b, path)().
func profileCPU(b *testing.B, path string) func() {
	b.Helper()
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// firstOrderPath is one way the first SORT SUBJECT or THREAD of a mailbox reads its keys
// (BenchmarkFirstSortSubject, BenchmarkFirstThread).
type firstOrderPath struct {
	name string
	// every: into a cache that keeps every field (the owner's); else only the command's.
	every bool
	req   func(*metadatapb.ReadSortColumnRequest)
}

// firstOrderPaths are the paths BenchmarkFirstSortSubject and BenchmarkFirstThread compare:
// the whole column into the owner's cache (what the owner's first SORT SUBJECT or THREAD
// read before the thread-keys projection), the whole column into a command's cache that
// keeps only what the command orders by (another owner's), and the thread-keys projection
// (thread_keys), as both read it now (into a box that keeps what the projection holds).
var firstOrderPaths = []firstOrderPath{
	{"Column/Owner", true, func(*metadatapb.ReadSortColumnRequest) {}},
	{"Column/Command", false, func(*metadatapb.ReadSortColumnRequest) {}},
	{"ThreadKeys", true, func(req *metadatapb.ReadSortColumnRequest) { req.ThreadKeys = true }},
}

// subjectOrderPaths are firstOrderPaths and, for a SORT by SUBJECT alone, the subject
// projection (subject_records, metadata/subjectrecords.go) as the frontend reads it now
// (with thread_keys, which a service without the projection answers instead); ThreadKeys
// is what the first SORT (SUBJECT) read before it.
var subjectOrderPaths = append(firstOrderPaths[:len(firstOrderPaths):len(firstOrderPaths)],
	firstOrderPath{"SubjectRecords", true, func(req *metadatapb.ReadSortColumnRequest) { req.SubjectRecords, req.ThreadKeys = true, true }})

// benchFirstOrder runs answer, the first SORT or THREAD of the shared mailbox from the
// keys read one way, for each of firstOrderPaths, checking that each path answers what
// the first did, and reports cpu-ns/op and column-B/op (the bytes of column received).
// STRATA_SORT_BENCH_PATHS, a regular expression, runs only the paths whose names match.
func benchFirstOrder(b *testing.B, paths []firstOrderPath, keys []sortthread.Criterion, thread bool, answer func(*sortthread.Columns) []byte) {
	srv, box, uids := sharedSortBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var want []byte
	only := regexp.MustCompile(os.Getenv("STRATA_SORT_BENCH_PATHS"))
	for _, path := range paths {
		if !only.MatchString(path.name) {
			continue
		}
		b.Run(path.name, func(b *testing.B) {
			req := &metadatapb.ReadSortColumnRequest{Account: embedded.DemoAccount, User: embedded.DemoAccount, MailboxId: box, Records: true}
			path.req(req)
			var read int64
			stop := imap.MeasureCPU(b)
			for b.Loop() {
				cols, bytes, err := imap.FirstColumns(ctx, srv.Metadata(), req, path.every, keys, thread, uids)
				if err != nil {
					b.Fatal(err)
				}
				got := answer(cols)
				if want == nil {
					want = got
				} else if !slices.Equal(got, want) {
					b.Fatalf("the answer differs from the whole column's (%d bytes, want %d)", len(got), len(want))
				}
				read += bytes
			}
			stop()
			b.ReportMetric(float64(read)/float64(b.N), "column-B/op")
		})
	}
}

// BenchmarkFirstSortSubject measures the first SORT (SUBJECT) of a large INBOX (the
// shared mailbox of sharedSortBench) in process, without IMAP, as BenchmarkFirstSortDates
// does SORT (DATE), by each of subjectOrderPaths.
//
//	STRATA_SORT_BENCH_MESSAGES=1000000 go test ./frontend/imap -run '^$' -bench 'BenchmarkFirst(SortSubject|Thread|SortDates)' -benchtime 3x -timeout 60m
func BenchmarkFirstSortSubject(b *testing.B) {
	bySubject := []sortthread.Criterion{{Key: sortthread.Subject}}
	benchFirstOrder(b, subjectOrderPaths, bySubject, false, func(cols *sortthread.Columns) []byte {
		order := cols.Order(bySubject)
		out := make([]byte, 0, 4*len(order))
		for _, p := range order {
			out = binary.LittleEndian.AppendUint32(out, uint32(p))
		}
		return out
	})
}

// BenchmarkFirstThread measures the first THREAD REFERENCES of a large INBOX as
// BenchmarkFirstSortSubject does SORT (SUBJECT).
func BenchmarkFirstThread(b *testing.B) {
	benchFirstOrder(b, firstOrderPaths, nil, true, func(cols *sortthread.Columns) []byte {
		roots := cols.Thread(sortthread.References)
		return sortthread.AppendThreads(nil, roots, func(p int32) uint32 { return uint32(p) + 1 })
	})
}

// sortBenchShared is the server of the First benchmarks, started and filled once per
// benchmark binary (a 1,000,000-message fill takes 15 minutes): sharedSortBench.
var sortBenchShared struct {
	once sync.Once
	srv  *embedded.Server
	dir  string // removed at exit unless STRATA_SORT_BENCH_DIR named it
	box  uint64
	uids []uint32
}

// sharedSortBench returns the server of the First benchmarks, its INBOX's id and the
// UIDs 1 to n of its messages (n: 100,000 or STRATA_SORT_BENCH_MESSAGES), filled as
// fillSortMailbox does. With STRATA_SORT_BENCH_DIR the store is kept in that directory and
// a later binary reuses it (a file "filled-N" says it holds N messages); the background
// fills of projections stored after it (metadata NumberMessagesCommand) are then run to
// their end first, at full speed, and their time logged. The server stops at exit
// (stopSortBench).
func sharedSortBench(b *testing.B) (*embedded.Server, uint64, []uint32) {
	b.Helper()
	sh := &sortBenchShared
	sh.once.Do(func() {
		n := 100_000
		if v, err := strconv.Atoi(os.Getenv("STRATA_SORT_BENCH_MESSAGES")); err == nil && v > 0 {
			n = v
		}
		dir := os.Getenv("STRATA_SORT_BENCH_DIR")
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "strata-sortbench-"); err != nil {
				b.Fatal(err)
			}
			sh.dir = dir
		}
		marker := filepath.Join(dir, fmt.Sprintf("filled-%d", n))
		_, statErr := os.Stat(marker)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
		defer cancel()
		srv, err := embedded.Start(ctx, embedded.Config{
			DataDir: dir, IMAPListen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Demo: statErr != nil, // a reused store has the account
			AllowPlaintextAuth: true, MaxMessageSize: 1 << 20, DisableSearchIndex: true,
			IMAPLimits: imap.Limits{SortCacheMessages: max(n, 1_000_000)},
		})
		if err != nil {
			b.Fatalf("start the benchmark server: %v", err)
		}
		sh.srv = srv
		if statErr != nil {
			start := time.Now()
			fillSortMailbox(b, srv, n)
			b.Logf("filled %d messages in %v", n, time.Since(start).Round(time.Second))
			if err := os.WriteFile(marker, nil, 0o600); err != nil {
				b.Fatal(err)
			}
		} else {
			start := time.Now()
			for {
				resp, err := srv.Metadata().NumberAccountMessages(ctx, &metadatapb.NumberAccountMessagesRequest{Account: embedded.DemoAccount})
				if err != nil {
					b.Fatalf("fill the projections: %v", err)
				}
				if resp.GetDone() {
					break
				}
			}
			b.Logf("reused %d messages in %s; projections filled in %v", n, dir, time.Since(start).Round(time.Millisecond))
		}
		box, err := srv.Metadata().GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: "INBOX"})
		if err != nil {
			b.Fatal(err)
		}
		sh.box = box.GetId()
		sh.uids = make([]uint32, n)
		for i := range sh.uids {
			sh.uids[i] = uint32(i + 1)
		}
		waitIdle(b)
	})
	if sh.uids == nil {
		b.Fatal("the benchmark server did not start")
	}
	return sh.srv, sh.box, sh.uids
}

// stopSortBench stops the server of the First benchmarks, if one started, and removes its
// store unless STRATA_SORT_BENCH_DIR named it (TestMain).
func stopSortBench() {
	sh := &sortBenchShared
	if sh.srv != nil {
		sh.srv.Close()
	}
	if sh.dir != "" {
		_ = os.RemoveAll(sh.dir)
	}
}
