package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/internal/childproc"
)

// newPackedStore opens the store at root packing small bodies, with segments sealed past
// segmentSize bytes (DefaultSegmentSize if 0).
// The store at root that newPackedStore opened last is closed before it opens the next:
// one owner at a time.
func newPackedStore(t testing.TB, root string, segmentSize int64) *Store {
	t.Helper()
	openOwnersMu.Lock()
	if old := openOwners[root]; old != nil {
		old.Close()
	}
	openOwnersMu.Unlock()
	s, err := Open(root, Options{Own: true, PackSmall: true, SegmentSize: segmentSize})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	openOwnersMu.Lock()
	openOwners[root] = s
	openOwnersMu.Unlock()
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	openOwnersMu sync.Mutex
	openOwners   = map[string]*Store{}
)

// seededBody is a body of size bytes drawn from seed.
func seededBody(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func getAll(t *testing.T, s *Store, key string) ([]byte, error) {
	t.Helper()
	rc, err := s.Get(t.Context(), key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// segmentBytes returns the number and total size of the segment files under root.
func segmentBytes(t *testing.T, root string) (n int, size int64) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(root, packDirName, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		info, err := os.Stat(m)
		if errors.Is(err, os.ErrNotExist) {
			continue // compacted away since the Glob by a store still open
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		size += info.Size()
	}
	return n, size
}

func TestPackedLayout(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	small := put(t, s, "acme", []byte("Subject: hi\r\n\r\nhello\r\n"))
	big := put(t, s, "acme", seededBody(1, PackMax+1))
	var objects []string
	for _, f := range files(t, root) {
		if strings.HasPrefix(f, "t/") {
			objects = append(objects, f)
		}
	}
	_, _, bigSum, _ := s.objectPath(big)
	if len(objects) != 1 || !strings.HasSuffix(objects[0], fmt.Sprintf("%x", bigSum)) {
		t.Fatalf("files under t/: %v, want only the large body's", objects)
	}
	if n, size := segmentBytes(t, root); n != 1 || size == 0 {
		t.Fatalf("%d segment files of %d bytes, want 1 holding the small body", n, size)
	}
	if err := s.Check(t.Context(), small); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// TestPackedReadsFileLayout opens a store written a file per body with packing on: the
// old bodies are read, deduplicated and deleted where they are, new ones are packed.
func TestPackedReadsFileLayout(t *testing.T) {
	root := t.TempDir()
	old, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	oldBody := []byte("Subject: old\r\n\r\nfrom before packing\r\n")
	oldKey := put(t, old, "acme", oldBody)

	s := newPackedStore(t, root, 0)
	if got, err := getAll(t, s, oldKey); err != nil || !bytes.Equal(got, oldBody) {
		t.Fatalf("Get of a file-layout body: %q, %v", got, err)
	}
	put(t, s, "acme", oldBody) // dedup hit on the file
	if _, size := segmentBytes(t, root); size != 0 {
		t.Fatalf("a dedup hit on a file-layout body wrote %d bytes to segments", size)
	}
	newKey := put(t, s, "acme", []byte("Subject: new\r\n\r\npacked\r\n"))
	if _, size := segmentBytes(t, root); size == 0 {
		t.Fatal("a new small body was not packed")
	}
	if err := s.Delete(t.Context(), oldKey); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), oldKey); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v", err)
	}
	// And back: a store without packing still reads the packed body.
	back, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := back.Stat(t.Context(), newKey); err != nil {
		t.Fatalf("Stat of a packed body with packing off: %v", err)
	}
}

// TestPackedTornTail cuts the last record of a segment short, as a crash during its write
// does: at the next open the records before it are read, the torn one is gone, and the
// store goes on writing.
func TestPackedTornTail(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	var keys []string
	for i := range 5 {
		keys = append(keys, put(t, s, "acme", seededBody(uint64(i), 1000)))
	}
	seg := filepath.Join(root, packDirName, segmentName(1))
	info, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, info.Size()-10); err != nil {
		t.Fatal(err)
	}
	s = newPackedStore(t, root, 0)
	for i, key := range keys[:4] {
		if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, seededBody(uint64(i), 1000)) {
			t.Fatalf("body %d after the torn tail: %v", i, err)
		}
	}
	if _, err := s.Stat(t.Context(), keys[4]); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("the torn record: Stat gave %v, want ErrNotFound", err)
	}
	again := put(t, s, "acme", seededBody(4, 1000))
	if got, err := getAll(t, s, again); err != nil || !bytes.Equal(got, seededBody(4, 1000)) {
		t.Fatalf("the torn body stored again: %v", err)
	}
}

// TestPackedCorruptionReported flips a byte of a packed body: Get and Check report it.
func TestPackedCorruptionReported(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	key := put(t, s, "acme", seededBody(7, 5000))
	seg := filepath.Join(root, packDirName, segmentName(1))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), key, 0, -1); !errors.Is(err, blobstore.ErrCorrupt) {
		t.Fatalf("Get of a corrupt body: %v, want ErrCorrupt", err)
	}
	if err := s.Check(t.Context(), key); err == nil {
		t.Fatal("Check of a corrupt body passed")
	}
}

// TestCompactionWithConcurrentReads deletes most bodies of sealed segments while readers
// read the rest: compaction gives the space back, no reader sees a wrong byte or a
// missing body, and a reopened store holds exactly the bodies not deleted.
func TestCompactionWithConcurrentReads(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 64<<10)
	const bodies = 300
	keys := make([]string, bodies)
	for i := range keys {
		keys[i] = put(t, s, "acme", seededBody(uint64(i), 1000+i*7))
	}
	kept := func(i int) bool { return i%4 == 0 }
	_, before := segmentBytes(t, root)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	var errOnce sync.Once
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(bodies/4) * 4
				want := seededBody(uint64(i), 1000+i*7)
				off := int64(rng.IntN(len(want)))
				rc, err := s.Get(t.Context(), keys[i], off, 100)
				if err == nil {
					var got []byte
					got, err = io.ReadAll(rc)
					rc.Close()
					if err == nil && !bytes.Equal(got, want[off:min(off+100, int64(len(want)))]) {
						err = fmt.Errorf("body %d at %d: wrong bytes", i, off)
					}
				}
				if err != nil {
					errOnce.Do(func() { readErr = err })
					return
				}
			}
		})
	}
	for i, key := range keys {
		if !kept(i) {
			if err := s.Delete(t.Context(), key); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Seal the active segment (a reopen does the same) and compact everything.
	s.packs.mu.Lock()
	if s.packs.active != nil {
		s.packs.active.sealed = true
		s.packs.active = nil
	}
	s.packs.mu.Unlock()
	if err := s.packs.compact(); err != nil {
		t.Fatalf("compact: %v", err)
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("a reader during compaction: %v", readErr)
	}
	if errp := s.packs.compactErr.Load(); errp != nil {
		t.Fatalf("background compaction: %v", *errp)
	}
	_, after := segmentBytes(t, root)
	if after > before/2 {
		t.Fatalf("segments hold %d bytes after deleting 3/4 of %d and compacting", after, before)
	}
	reopened := newPackedStore(t, root, 64<<10)
	for i, key := range keys {
		got, err := getAll(t, reopened, key)
		if kept(i) {
			if err != nil || !bytes.Equal(got, seededBody(uint64(i), 1000+i*7)) {
				t.Fatalf("kept body %d after reopen: %v", i, err)
			}
		} else if !errors.Is(err, blobstore.ErrNotFound) {
			t.Fatalf("deleted body %d after reopen: %v, want ErrNotFound", i, err)
		}
	}
}

// TestPackedSupersededRecordStaysDead is a compaction that crashed after copying a record
// and before removing its old segment: the key then has two records. The newer is
// deleted and its segment compacted away; the old copy must not come back. The old
// copy's segment holds other live bodies, so that it stays.
func TestPackedSupersededRecordStaysDead(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	body := seededBody(3, 2000)
	key := put(t, s, "acme", body)
	var others []string
	for i := range 4 {
		others = append(others, put(t, s, "acme", seededBody(uint64(500+i), 2000)))
	}
	// The copy: segment 2 holds the record of key only, segment 1 is still there.
	if err := os.WriteFile(filepath.Join(root, packDirName, segmentName(2)), encodeRecord(key, body), 0o600); err != nil {
		t.Fatal(err)
	}
	s = newPackedStore(t, root, 0)
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	others = append(others, put(t, s, "acme", seededBody(504, 2000))) // segment 3: 2 is not the highest
	if err := s.packs.compact(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, packDirName, segmentName(2))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("setup: segment 2 not compacted away: %v", err)
	}
	s = newPackedStore(t, root, 0)
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("a deleted body came back: Stat gave %v", err)
	}
	for _, k := range others {
		if _, err := s.Stat(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
}

// The crash test: a child process stages, syncs and deletes bodies from several
// goroutines and prints each acknowledged step; the parent SIGKILLs it mid-write, reopens
// the store and checks that every acknowledged body is whole and every acknowledged
// deletion holds. Segments are small, so that compactions run, and may be killed, too.
const crashChildEnv = "STRATA_FS_CRASH_CHILD"

func TestPackedCrashChild(t *testing.T) {
	root := os.Getenv(crashChildEnv)
	if root == "" {
		t.Skip("the child of TestPackedCrashKeepsAcknowledged")
	}
	base, _ := strconv.ParseUint(os.Getenv(crashChildEnv+"_SEED"), 10, 64)
	s := newPackedStore(t, root, 256<<10)
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			var mine []string
			for i := uint64(0); ; i++ {
				seed := base + uint64(w)<<32 + i
				size := 1 + int(seed*2654435761%16384)
				if i%50 == 49 {
					size = PackMax + 1 // a file of its own
				}
				body := seededBody(seed, size)
				key := blobstore.Key("acme", sha256.Sum256(body))
				st, err := s.Stage(t.Context(), key, bytes.NewReader(body), int64(size))
				if err == nil {
					err = st.Sync()
				}
				if err != nil {
					say("error %v", err)
					return
				}
				say("put %s %d %d", key, seed, size)
				mine = append(mine, key)
				if i%3 != 0 && len(mine) > 1 {
					victim := mine[0]
					mine = mine[1:]
					say("deleting %s", victim)
					if err := s.Delete(t.Context(), victim); err != nil {
						say("error %v", err)
						return
					}
					say("del %s", victim)
				}
			}
		})
	}
	wg.Wait()
}

func TestPackedCrashKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	root := t.TempDir()
	type acked struct {
		seed uint64
		size int
	}
	live := map[string]acked{}
	deleted := map[string]bool{}
	for round := range 4 {
		steps := 0
		env := []string{crashChildEnv + "=" + root, fmt.Sprintf("%s_SEED=%d", crashChildEnv, uint64(round+1)<<48)}
		childproc.Run(t, "TestPackedCrashChild", env, func(line string) bool {
			f := strings.Fields(line)
			switch {
			case len(f) == 4 && f[0] == "put":
				seed, _ := strconv.ParseUint(f[2], 10, 64)
				size, _ := strconv.Atoi(f[3])
				live[f[1]] = acked{seed, size}
			case len(f) == 2 && f[0] == "deleting":
				delete(live, f[1]) // either way until "del"
			case len(f) == 2 && f[0] == "del":
				delete(live, f[1])
				deleted[f[1]] = true
			case len(f) > 0 && f[0] == "error":
				t.Fatalf("child: %s", line)
			default:
				return false
			}
			steps++
			return steps == 1500
		})
		if steps < 1500 {
			t.Fatalf("round %d: the child stopped after %d steps", round, steps)
		}
		s := newPackedStore(t, root, 256<<10)
		for key, a := range live {
			got, err := getAll(t, s, key)
			if err != nil || !bytes.Equal(got, seededBody(a.seed, a.size)) {
				t.Fatalf("round %d: acknowledged body %s (%d bytes): %v", round, key, a.size, err)
			}
		}
		for key := range deleted {
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, blobstore.ErrNotFound) {
				t.Fatalf("round %d: acknowledged deletion of %s undone: Stat gave %v", round, key, err)
			}
		}
		s.Close() // the next child owns the segments
		n, size := segmentBytes(t, root)
		t.Logf("round %d: %d bodies live, %d deleted, %d segments of %d bytes", round, len(live), len(deleted), n, size)
	}
}

func FuzzSegmentScan(f *testing.F) {
	key := blobstore.Key("acme", sha256.Sum256([]byte("hello")))
	one := encodeRecord(key, []byte("hello"))
	f.Add(one)
	f.Add(append(append([]byte{}, one...), one[:len(one)-3]...))
	f.Add(append([]byte("garbage"), one...))
	f.Add(encodeTombstone(42))
	f.Fuzz(func(t *testing.T, data []byte) {
		last := int64(-1)
		scanSegment(data, func(off int64, rec decodedRecord) {
			if off <= last {
				t.Fatalf("record at %d after one at %d", off, last)
			}
			last = off + int64(rec.size()) - 1
			got, body, ok := decodeRecord(data[off:])
			if !ok || got != rec {
				t.Fatalf("record at %d does not decode again", off)
			}
			if again := encodeRecord(rec.key, body); !bytes.Equal(again, data[off:off+int64(rec.size())]) {
				t.Fatalf("record at %d does not encode to its bytes", off)
			}
		})
		for _, off := range decodeTombstones(data) {
			_ = encodeTombstone(off)
		}
	})
}

// TestSharedReaderSeesNewRecords: a store opened without Own on the directory of one that
// packs (strata backup or import beside strata serve) reads the bodies packed after it
// opened, in the active segment and in new ones, and refuses to delete them.
func TestSharedReaderSeesNewRecords(t *testing.T) {
	root := t.TempDir()
	reader, err := New(root) // before anything is packed
	if err != nil {
		t.Fatal(err)
	}
	owner := newPackedStore(t, root, 8<<10)
	var keys []string
	for i := range 6 {
		keys = append(keys, put(t, owner, "acme", seededBody(uint64(i), 3000)))
		if i == 2 {
			if got, err := getAll(t, reader, keys[0]); err != nil || !bytes.Equal(got, seededBody(0, 3000)) {
				t.Fatalf("reader, body 0 after three Puts: %v", err)
			}
		}
	}
	for i, key := range keys {
		if got, err := getAll(t, reader, key); err != nil || !bytes.Equal(got, seededBody(uint64(i), 3000)) {
			t.Fatalf("reader, body %d: %v", i, err)
		}
		if err := reader.Check(t.Context(), key); err != nil {
			t.Fatalf("reader, Check of body %d: %v", i, err)
		}
	}
	if n, _ := segmentBytes(t, root); n < 2 {
		t.Fatalf("%d segments, want the bodies spread over several", n)
	}
	if err := reader.Delete(t.Context(), keys[0]); err == nil {
		t.Fatal("a store that does not own the segments deleted a packed body")
	}
	// A body the owner deletes before the reader first looks for it is not found.
	late := put(t, owner, "acme", seededBody(99, 3000))
	if err := owner.Delete(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Stat(t.Context(), late); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("reader, Stat of a body deleted by the owner: %v", err)
	}
	// A body the reader has indexed and the owner then deletes is stored again by the
	// reader's Put, not taken for a dedup hit.
	if err := owner.Delete(t.Context(), keys[1]); err != nil {
		t.Fatal(err)
	}
	put(t, reader, "acme", seededBody(1, 3000))
	if got, err := getAll(t, owner, keys[1]); err != nil || !bytes.Equal(got, seededBody(1, 3000)) {
		t.Fatalf("owner, a body deleted and stored again by the reader: %v", err)
	}
	fileKey := put(t, reader, "acme", []byte("Subject: from the reader\r\n\r\n"))
	if got, err := getAll(t, owner, fileKey); err != nil || string(got) != "Subject: from the reader\r\n\r\n" {
		t.Fatalf("owner reading the reader's body: %v", err)
	}
}

// TestPackedOpenSyncsSegments: the open makes every segment durable before it relies on
// one (a killed process leaves records in the page cache only), so that a failed fsync
// later does not make the bodies acknowledged in an earlier run look lost: Stat finds
// them, Delete deletes them, SyncStaged has nothing to sync.
func TestPackedOpenSyncsSegments(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	key := put(t, s, "acme", seededBody(700, 1000))
	s = newPackedStore(t, root, 0)
	s.packs.mu.Lock()
	seg := s.packs.segments[1]
	s.packs.mu.Unlock()
	if synced := seg.data.syncedBytes(); synced < seg.size.Load() || !seg.dirSynced.Load() {
		t.Fatalf("segment loaded at open: %d of %d bytes known durable", synced, seg.size.Load())
	}
	var mu sync.Mutex
	failing := true
	failSyncs(s, func(f file) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return syscall.EIO
		}
		return f.Sync()
	})
	if err := s.SyncStaged(t.Context()); err != nil {
		t.Fatalf("SyncStaged with nothing written since the open: %v", err)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if _, err := s.Stat(t.Context(), key); err != nil {
		t.Fatalf("Stat of a body acknowledged in an earlier run: %v", err)
	}
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete of a body acknowledged in an earlier run: %v", err)
	}
}

// TestPackedSupersededTombstonedAfterCopySynced: at open, the older of two records of a
// key (a compaction killed between its copy and the removal of the old segment) is
// tombstoned only once the newer one is durable, else a crash of the machine could keep
// the tombstone and lose the copy.
func TestPackedSupersededTombstonedAfterCopySynced(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	body := seededBody(3, 2000)
	key := put(t, s, "acme", body)
	for i := range 4 { // live bodies, so that no compaction removes segment 1
		put(t, s, "acme", seededBody(uint64(510+i), 2000))
	}
	if err := os.WriteFile(filepath.Join(root, packDirName, segmentName(2)), encodeRecord(key, body), 0o600); err != nil {
		t.Fatal(err)
	}
	s = newPackedStore(t, root, 0)
	del, _ := os.ReadFile(filepath.Join(root, packDirName, "0000000000000001.del"))
	s.packs.mu.Lock()
	seg2 := s.packs.segments[2]
	s.packs.mu.Unlock()
	if len(del) == 0 {
		t.Fatal("the superseded record got no tombstone")
	}
	if synced := seg2.data.syncedBytes(); synced < seg2.size.Load() {
		t.Fatalf("old copy tombstoned while the newer copy is not known durable (synced %d of %d)", synced, seg2.size.Load())
	}
}

// failSyncs makes the fsyncs of s's segment files call fn instead.
func failSyncs(s *Store, fn func(f file) error) {
	s.packs.syncHook.Store(&fn)
}

// TestPackedDurableHitAfterFailedSync: once an fsync of a segment fails, a dedup hit on a
// record an earlier fsync made durable still succeeds.
func TestPackedDurableHitAfterFailedSync(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	body := seededBody(12, 1000)
	key := put(t, s, "acme", body)
	failSyncs(s, func(file) error { return syscall.EIO })
	putFails(t, s, seededBody(13, 1000))
	if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("dedup hit on a durable record after a failed fsync: %v", err)
	}
}

// TestPackedOverlappingSyncFailure runs two fsyncs of a segment at once; the second fails
// while the first returns nil afterwards (Linux reports a writeback error once): the
// first's caller is not told its record is durable.
func TestPackedOverlappingSyncFailure(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	started, release := make(chan struct{}), make(chan struct{})
	var calls int
	var mu sync.Mutex
	failSyncs(s, func(file) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			close(started)
			<-release
			return nil
		}
		return syscall.EIO
	})
	stage := func(seed uint64) blobstore.Staged {
		body := seededBody(seed, 1000)
		st, err := s.Stage(t.Context(), blobstore.Key("acme", sha256.Sum256(body)), bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatalf("Stage: %v", err)
		}
		return st
	}
	first := stage(14)
	firstErr := make(chan error, 1)
	go func() { firstErr <- first.Sync() }()
	<-started
	if err := stage(15).Sync(); err == nil {
		t.Fatal("the failing fsync reported success")
	}
	close(release)
	if err := <-firstErr; err == nil {
		t.Fatal("an fsync that overlapped a failed one acknowledged its record")
	}
}

// TestPackedPartialTombstone leaves a partial tombstone at the end of a tombstone file (a
// crash during its write): a tombstone written after the next open is on the grid, and
// the body it deletes stays deleted at the open after.
func TestPackedPartialTombstone(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	var keys []string
	for i := range 3 {
		keys = append(keys, put(t, s, "acme", seededBody(uint64(20+i), 1000)))
	}
	if err := s.Delete(t.Context(), keys[0]); err != nil {
		t.Fatal(err)
	}
	del := filepath.Join(root, packDirName, "0000000000000001.del")
	f, err := os.OpenFile(del, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(encodeTombstone(0)[:5]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s = newPackedStore(t, root, 0)
	if err := s.Delete(t.Context(), keys[1]); err != nil {
		t.Fatal(err)
	}
	s = newPackedStore(t, root, 0)
	for i, key := range keys {
		_, err := s.Stat(t.Context(), key)
		if deleted := errors.Is(err, blobstore.ErrNotFound); deleted != (i < 2) {
			t.Fatalf("body %d: Stat gave %v", i, err)
		}
	}
}

// TestPackedIndexChecksDigest puts a record in a segment whose checksums match but whose
// body is not the one its key names (bytes inside a body that look like a record): the
// store does not index it, and indexes the whole records around it.
func TestPackedIndexChecksDigest(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, packDirName), 0o750); err != nil {
		t.Fatal(err)
	}
	good := seededBody(30, 500)
	goodKey := blobstore.Key("acme", sha256.Sum256(good))
	liar := blobstore.Key("acme", sha256.Sum256([]byte("another body")))
	var seg []byte
	seg = append(seg, encodeRecord(liar, seededBody(31, 500))...)
	seg = append(seg, encodeRecord(goodKey, good)...)
	if err := os.WriteFile(filepath.Join(root, packDirName, segmentName(1)), seg, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, own := range []bool{true, false} {
		s, err := Open(root, Options{Own: own, PackSmall: own})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(t.Context(), liar); !errors.Is(err, blobstore.ErrNotFound) {
			t.Fatalf("own %v: a record whose body is not its key's: Stat gave %v", own, err)
		}
		if got, err := getAll(t, s, goodKey); err != nil || !bytes.Equal(got, good) {
			t.Fatalf("own %v: the whole record after it: %v", own, err)
		}
		// Closed before the directory's removal: the owner's background work writes the
		// scanned segment's index file.
		s.Close()
	}
}

// TestSharedReaderNeverDedupsPacked: a store that does not own the segments stores a body
// as a file even when it has indexed a packed record of it (the owner may have moved and
// deleted it without a tombstone the reader sees).
func TestSharedReaderNeverDedupsPacked(t *testing.T) {
	root := t.TempDir()
	owner := newPackedStore(t, root, 0)
	body := seededBody(40, 2000)
	key := put(t, owner, "acme", body)
	reader, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := getAll(t, reader, key); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("reader: %v", err)
	}
	put(t, reader, "acme", body)
	_, path, _, _ := reader.objectPath(key)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the reader's Put of a packed body stored no file: %v", err)
	}
}

// TestPackedDeleteSyncsRecordFirst deletes a record that is not yet synced (as a
// compaction's fresh copy is): Delete fsyncs the record's segment before its tombstone,
// so that no crash leaves the tombstone without the record it names.
func TestPackedDeleteSyncsRecordFirst(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	body := seededBody(50, 1000)
	key := blobstore.Key("acme", sha256.Sum256(body))
	if _, err := s.Stage(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	var synced []string
	failSyncs(s, func(f file) error {
		synced = append(synced, filepath.Base(f.Name()))
		return f.Sync()
	})
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(synced, segmentName(1)) {
		t.Fatalf("Delete of an unsynced record synced %v, not its segment", synced)
	}
}

// TestCompactionHealsFailedSegment: a record whose segment's fsync failed (its Put
// failed, but the metadata that staged it may reference it) is copied by the next
// compaction to a sound segment and made durable there; the failed segment is removed,
// and Delete and SyncStaged work again.
func TestCompactionHealsFailedSegment(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	var failing bool
	var mu sync.Mutex
	failSyncs(s, func(f file) error {
		mu.Lock()
		defer mu.Unlock()
		if failing && filepath.Base(f.Name()) == segmentName(1) {
			return syscall.EIO
		}
		return f.Sync()
	})
	kept := put(t, s, "acme", seededBody(60, 1000))
	mu.Lock()
	failing = true
	mu.Unlock()
	lostKey := putFails(t, s, seededBody(61, 1000))
	if err := s.SyncStaged(t.Context()); err != nil {
		t.Fatalf("SyncStaged after a failed fsync: %v", err)
	}
	_ = s.packs.compact()
	if _, err := os.Stat(filepath.Join(root, packDirName, segmentName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed segment after compaction: %v, want it removed", err)
	}
	for _, key := range []string{kept, lostKey} {
		loc, ok := s.packs.lookup(key)
		if !ok || loc.seg.seq == 1 || loc.seg.data.syncedBytes() < loc.end() {
			t.Fatalf("%s after compaction: in segment %v, want durable in a sound one", key, loc.seg)
		}
	}
	if err := s.Delete(t.Context(), lostKey); err != nil {
		t.Fatalf("Delete after the compaction: %v", err)
	}
	s = newPackedStore(t, root, 0)
	if got, err := getAll(t, s, kept); err != nil || !bytes.Equal(got, seededBody(60, 1000)) {
		t.Fatalf("the body acknowledged before the failure, after reopening: %v", err)
	}
	if _, err := s.Stat(t.Context(), lostKey); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("the deleted body after reopening: Stat gave %v", err)
	}
}

// TestPackedSegmentNumbersNotReused opens a store whose only file is the tombstone file
// of a segment compacted away (a crash before its removal): the next segment does not
// take that segment's number, whose tombstones it would inherit.
func TestPackedSegmentNumbersNotReused(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, packDirName)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0000000000000001.del"), encodeTombstone(0), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newPackedStore(t, root, 0)
	key := put(t, s, "acme", seededBody(70, 1000))
	loc, ok := s.packs.lookup(key)
	if !ok {
		t.Fatal("not indexed")
	}
	if loc.seg.seq <= 1 {
		t.Fatalf("new segment %d reuses the number of a compacted one", loc.seg.seq)
	}
}
