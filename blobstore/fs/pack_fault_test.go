package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/strata-mail/strata/blobstore"
)

// sealActive seals the active segment as a reopen would.
func sealActive(s *Store) {
	s.packs.mu.Lock()
	if s.packs.active != nil {
		s.packs.sealLocked(s.packs.active)
	}
	s.packs.mu.Unlock()
}

// failSyncsOf makes the fsyncs of s's files named in fail (under a mutex the test holds
// while it changes fail) return EIO.
func failSyncsOf(s *Store) (set func(names ...string)) { return failSyncsWith(s, false) }

// failSyncsDropping is failSyncsOf whose failing fsyncs also drop the file's pages, as
// the kernel may after a writeback error: the bytes written since the last good fsync
// read back as zeros (what the disk holds for a block never written).
func failSyncsDropping(s *Store) (set func(names ...string)) { return failSyncsWith(s, true) }

func failSyncsWith(s *Store, drop bool) (set func(names ...string)) {
	var mu sync.Mutex
	failing := map[string]bool{}
	synced := map[string]int64{}
	failSyncs(s, func(f file) error {
		name := filepath.Base(f.Name())
		info, err := f.Stat()
		if err != nil {
			return err
		}
		// What is written: a segment's records, not the zeros after them (prepare.go).
		size := info.Size()
		s.packs.mu.Lock()
		for _, seg := range s.packs.segments {
			if seg.f == f {
				size = seg.size.Load()
			}
		}
		s.packs.mu.Unlock()
		mu.Lock()
		fail, from := failing[name], synced[name]
		if !fail {
			synced[name] = size
		}
		mu.Unlock()
		if !fail {
			return f.Sync()
		}
		if n := size - from; drop && n > 0 {
			if _, err := f.WriteAt(make([]byte, n), from); err != nil {
				return err
			}
		}
		return syscall.EIO
	})
	return func(names ...string) {
		mu.Lock()
		defer mu.Unlock()
		clear(failing)
		for _, n := range names {
			failing[n] = true
		}
	}
}

// putFails puts body under tenant acme while its fsync fails, and returns its key.
func putFails(t *testing.T, s *Store, body []byte) string {
	t.Helper()
	key := blobstore.Key("acme", sha256.Sum256(body))
	if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err == nil {
		t.Fatal("Put with a failing fsync succeeded")
	}
	return key
}

// TestCompactionAfterFailedCopySync: a compaction whose copies fail to sync puts the
// records back where they were, so that no later pass removes the only durable copy of an
// acknowledged body; the copy, which may reach the disk after all, is tombstoned, so that
// a later deletion of the body holds across a reopen.
func TestCompactionAfterFailedCopySync(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 8<<10)
	fail := failSyncsOf(s)
	var keys []string
	for i := range 4 {
		keys = append(keys, put(t, s, "acme", seededBody(uint64(100+i), 1500)))
	}
	sealActive(s)
	s.packs.compactMu.Lock() // keep the background pass out while the test sets up
	held := true
	defer func() {
		if held {
			s.packs.compactMu.Unlock()
		}
	}()
	for _, k := range keys[1:] {
		if err := s.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	s.packs.mu.Lock()
	copySeg := segmentName(s.packs.nextSeq) // the segment the copy goes to
	seg1 := s.packs.segments[1]
	s.packs.mu.Unlock()
	fail(copySeg)
	if err := s.packs.compactSegment(seg1); err == nil {
		t.Fatal("setup: the compaction with a failing copy passed")
	}
	loc, ok := s.packs.lookup(keys[0])
	if !ok || loc.seg.seq != 1 {
		t.Fatalf("after the failed copy the body is indexed in segment %d, want back in 1", loc.seg.seq)
	}
	held = false
	s.packs.compactMu.Unlock()
	_ = s.packs.compact() // a later pass (any Delete kicks one), the copy's segment still failing
	if _, err := os.Stat(filepath.Join(root, packDirName, segmentName(1))); err != nil {
		if loc, ok := s.packs.lookup(keys[0]); !ok || loc.seg.data.syncedBytes() < loc.end() {
			t.Fatalf("segment 1 removed (%v) while the body's only copy is not durable", err)
		}
	}
	fail()
	_ = s.packs.compact()
	if loc, ok := s.packs.lookup(keys[0]); !ok || loc.seg.data.syncedBytes() < loc.end() {
		t.Fatal("the body is not durable after a compaction that worked")
	}
	if err := s.Delete(t.Context(), keys[0]); err != nil {
		t.Fatal(err)
	}
	sealActive(s)
	_ = s.packs.compact()
	s = newPackedStore(t, root, 8<<10)
	if _, err := s.Stat(t.Context(), keys[0]); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("a deleted body came back from a copy whose sync failed: Stat gave %v", err)
	}
}

// TestPackedDeleteAfterFailedTombstoneSync: a Delete whose tombstone fails to sync leaves
// the body indexed, and its retry fails too instead of returning nil for a deletion that
// may not hold. A dedup hit does not take the body either: its tombstone may be on disk.
func TestPackedDeleteAfterFailedTombstoneSync(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	fail := failSyncsOf(s)
	body := seededBody(200, 1000)
	k1 := put(t, s, "acme", body)
	fail("0000000000000001.del")
	// No compaction moves the body to a sound segment (where a Delete works) meanwhile.
	s.packs.compactMu.Lock()
	held := true
	defer func() {
		if held {
			s.packs.compactMu.Unlock()
		}
	}()
	if err := s.Delete(t.Context(), k1); err == nil {
		t.Fatal("Delete with a failing tombstone fsync succeeded")
	}
	if err := s.Delete(t.Context(), k1); err == nil {
		t.Fatal("the retry of a Delete whose tombstone fsync failed returned nil")
	}
	if _, ok := s.packs.staged(k1); ok {
		t.Fatal("a dedup hit on a body whose tombstone may be on disk")
	}
	held = false
	s.packs.compactMu.Unlock()
	fail()
	// The segment is compacted away (its tombstone file failed): the body lives on in a
	// sound segment, where it can be deleted.
	_ = s.packs.compact()
	if got, err := getAll(t, s, k1); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("the body after the compaction: %v", err)
	}
	if err := s.Delete(t.Context(), k1); err != nil {
		t.Fatalf("Delete after the compaction: %v", err)
	}
}

// TestPackedDeletedBodyStaysDeadAfterRewrite: a body written again after its first
// record's fsync failed, then deleted, does not come back at the next open once the newer
// record's segment is compacted away: the first record is tombstoned once the second is
// durable.
func TestPackedDeletedBodyStaysDeadAfterRewrite(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	fail := failSyncsOf(s)
	fail(segmentName(1))
	s.packs.compactMu.Lock() // no compaction removes segment 1 before the reopen
	body := seededBody(400, 1000)
	key := putFails(t, s, body)
	fail()
	put(t, s, "acme", body) // written again, to segment 2
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	sealActive(s)
	s.packs.mu.Lock()
	seg2 := s.packs.segments[2]
	s.packs.mu.Unlock()
	defer s.packs.compactMu.Unlock()
	if err := s.packs.compactSegment(seg2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, packDirName, segmentName(1))); err != nil {
		t.Fatalf("setup: segment 1 gone: %v", err)
	}
	// The next open, as after a crash: the first store's compaction stays blocked (it
	// would remove segment 1) and only its lock is let go.
	s.packs.unlockOwner()
	reopened, err := Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if _, err := reopened.Stat(t.Context(), key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("an acknowledged deletion was undone at reopen: Stat gave %v", err)
	}
}

// TestSyncStagedAfterFailedSegment: one failed fsync does not make every later SyncStaged
// (before each Raft snapshot) fail: the failed segment's records are copied to a sound
// one.
func TestSyncStagedAfterFailedSegment(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	fail := failSyncsOf(s)
	fail(segmentName(1))
	putFails(t, s, seededBody(300, 1000))
	put(t, s, "acme", seededBody(301, 1000)) // goes to a new segment, durable
	if err := s.SyncStaged(t.Context()); err != nil {
		t.Fatalf("SyncStaged after a failed fsync: %v", err)
	}
}

// The short tombstone write: a child process writes tombstones under a file size limit
// (RLIMIT_FSIZE) that cuts one short, a real partial write; the store cuts it off, so
// that the tombstone written after the limit is lifted is on the grid and holds at the
// next open.
const shortTombstoneEnv = "STRATA_FS_SHORT_TOMBSTONE"

func TestShortTombstoneChild(t *testing.T) {
	root := os.Getenv(shortTombstoneEnv)
	if root == "" {
		t.Skip("the child of TestPackedShortTombstoneWrite")
	}
	s := newPackedStore(t, root, 0)
	var keys []string
	for i := range 3 {
		keys = append(keys, put(t, s, "acme", seededBody(uint64(800+i), 100)))
	}
	if err := s.Delete(t.Context(), keys[0]); err != nil {
		t.Fatal(err)
	}
	// Past the limit a write fails with EFBIG (SIGXFSZ is ignored by the Go runtime);
	// the next tombstone is cut after 5 of its 12 bytes.
	limit := syscall.Rlimit{Cur: tombstoneSize + 5, Max: ^uint64(0)}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	err := s.Delete(t.Context(), keys[1])
	fmt.Printf("short delete: %v\n", err)
	limit.Cur = ^uint64(0)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("a Delete past the file size limit succeeded")
	}
	if err := s.Delete(t.Context(), keys[2]); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("keys %s %s %s\n", keys[0], keys[1], keys[2])
}

func TestPackedShortTombstoneWrite(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestShortTombstoneChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), shortTombstoneEnv+"="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var keys []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "keys" {
			keys = f[1:]
		}
	}
	if len(keys) != 3 || !strings.Contains(string(out), "file too large") {
		t.Fatalf("child output:\n%s", out)
	}
	info, err := os.Stat(filepath.Join(root, packDirName, "0000000000000001.del"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size()%tombstoneSize != 0 {
		t.Fatalf("tombstone file of %d bytes: the partial tombstone was not cut off", info.Size())
	}
	s := newPackedStore(t, root, 0)
	for i, key := range keys {
		_, err := s.Stat(t.Context(), key)
		if deleted := errors.Is(err, blobstore.ErrNotFound); deleted != (i != 1) {
			t.Fatalf("body %d after reopening: Stat gave %v", i, err)
		}
	}
}

// TestReaderOpenRacesCompaction: a store that does not own the segments (backup, import)
// opens while the owner compacts segments away between its listing and its reads.
func TestReaderOpenRacesCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a store a thousand times")
	}
	root := t.TempDir()
	s := newPackedStore(t, root, 4<<10)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := seededBody(10000+i, 1500)
			key := blobstore.Key("acme", sha256.Sum256(body))
			if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
				t.Error(err)
				return
			}
			if err := s.Delete(t.Context(), key); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 3000 {
		r, err := New(root)
		if err != nil {
			t.Fatalf("reader open #%d while the owner compacts: %v", i, err)
		}
		r.Close() // each open store holds files: 3,000 of them reach a 20,000 descriptor limit in 2 runs
	}
}

// TestPackedSegmentNumberNotReusedAfterCompaction: the highest-numbered segment is not
// compacted away while no higher one exists, so that the next open does not use its
// number again.
func TestPackedSegmentNumberNotReusedAfterCompaction(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	key := put(t, s, "acme", seededBody(800, 1000))
	s = newPackedStore(t, root, 0) // segment 1 sealed
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	_ = s.packs.compact()
	s = newPackedStore(t, root, 0)
	k2 := put(t, s, "acme", seededBody(801, 1000))
	if loc, _ := s.packs.lookup(k2); loc.seg.seq == 1 {
		t.Fatal("segment number 1 used again after it was compacted away")
	}
}

// TestTornFileRemovedWhenPacked: a torn object file (a crash after a Put's rename, before
// its fsync) is removed when the body is stored packed, so that a store that reads files
// before it has indexed the record (a reader) never returns the torn bytes.
func TestTornFileRemovedWhenPacked(t *testing.T) {
	root := t.TempDir()
	owner := newPackedStore(t, root, 0)
	put(t, owner, "acme", seededBody(900, 100)) // something packed, so the reader has segments
	reader, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	body := seededBody(901, 3000)
	key := blobstore.Key("acme", sha256.Sum256(body))
	dirs, path, _, _ := owner.objectPath(key)
	if err := os.MkdirAll(dirs[len(dirs)-1], 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body[:1000], 0o600); err != nil { // the torn leftover
		t.Fatal(err)
	}
	if err := owner.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("the torn object file is still there after the owner stored the body packed")
	}
	if got, err := getAll(t, reader, key); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("reader Get: %d bytes, %v", len(got), err)
	}
}

// TestSecondOwnerRefused: a second store that would own the segments of a directory (a
// second `strata serve` on the same data directory) is refused while the first is open,
// so that it cannot compact the first's active segment away; once the first is closed it
// opens.
func TestSecondOwnerRefused(t *testing.T) {
	root := t.TempDir()
	s1 := newPackedStore(t, root, 0)
	var keys []string
	for i := range 10 {
		keys = append(keys, put(t, s1, "acme", seededBody(uint64(600+i), 2000)))
	}
	for _, k := range keys[:8] {
		if err := s1.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	if s2, err := Open(root, Options{Own: true, PackSmall: true}); err == nil {
		s2.Close()
		t.Fatal("a second owner opened the segments of a directory while the first has them open")
	}
	if _, err := New(root); err != nil {
		t.Fatalf("a reader beside the owner: %v", err)
	}
	late := put(t, s1, "acme", seededBody(699, 2000))
	s1.Close()
	s2 := newPackedStore(t, root, 0)
	if got, err := getAll(t, s2, late); err != nil || !bytes.Equal(got, seededBody(699, 2000)) {
		t.Fatalf("the first owner's body after it closed: %v", err)
	}
}

// TestLostRecordDropped (review G2 of 2026-12-06): a Put whose fsync failed and whose
// bytes the kernel dropped does not wedge SyncStaged (every Raft snapshot) until a
// restart: the compaction of the failed segment drops the record, the older durable
// record it superseded is the key's body again, a key with no older record is absent,
// and a retried Put writes it again.
func TestLostRecordDropped(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	fail := failSyncsDropping(s)
	s.packs.compactMu.Lock() // the failures are handled by SyncStaged below
	held := true
	defer func() {
		if held {
			s.packs.compactMu.Unlock()
		}
	}()
	older := seededBody(1100, 1200)
	k := put(t, s, "acme", older) // durable in segment 1
	x := put(t, s, "acme", seededBody(1101, 1200))
	fail(segmentName(1)[:16] + ".del")
	if err := s.Delete(t.Context(), x); err == nil {
		t.Fatal("setup: Delete with a failing tombstone fsync succeeded")
	}
	// Segment 1's tombstones failed: no dedup hit takes k there, so a Put of k writes a
	// record in segment 2, superseding the durable one; its fsync fails, its bytes gone.
	fail(segmentName(2), segmentName(3)) // the next write seals a failed segment
	putFails(t, s, older)
	alone := seededBody(1102, 900)
	lone := putFails(t, s, alone) // a lost record that superseded nothing
	fail()
	held = false
	s.packs.compactMu.Unlock()
	for i := range 2 {
		if err := s.SyncStaged(t.Context()); err != nil {
			t.Fatalf("SyncStaged #%d after a lost record: %v", i, err)
		}
	}
	if got, err := getAll(t, s, k); err != nil || !bytes.Equal(got, older) {
		t.Fatalf("the body whose newer record was lost: %d bytes, %v", len(got), err)
	}
	if _, err := s.Stat(t.Context(), lone); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("a lost record with nothing older: Stat gave %v, want not found", err)
	}
	put(t, s, "acme", alone)
	if got, err := getAll(t, s, lone); err != nil || !bytes.Equal(got, alone) {
		t.Fatalf("the retried Put: %v", err)
	}
	s = newPackedStore(t, root, 0)
	for key, want := range map[string][]byte{k: older, lone: alone} {
		if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after reopening: %v", key, err)
		}
	}
}
