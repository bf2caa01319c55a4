package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
)

// waitPrepared waits until s has a prepared segment ready (prepare.go).
func waitPrepared(t *testing.T, s *Store) {
	t.Helper()
	for range 60_000 {
		s.packs.mu.Lock()
		ready := s.packs.prepared != nil
		s.packs.mu.Unlock()
		if ready {
			return
		}
		if err := s.packs.prepErr.Load(); err != nil {
			t.Fatalf("prepare a segment: %v", *err)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no segment prepared")
}

// activeSegment returns the active segment of s.
func activeSegment(t *testing.T, s *Store) *segment {
	t.Helper()
	s.packs.mu.Lock()
	defer s.packs.mu.Unlock()
	if s.packs.active == nil {
		t.Fatal("no active segment")
	}
	return s.packs.active
}

const preparedTestSize = 256 << 10

// putPrepared opens a packing store at root on fsys (the operating system's if nil),
// waits for its prepared segment and puts n bodies into it; it returns the store and the
// keys, after checking that the segment file is the prepared one (zeros past its records).
func putPrepared(t *testing.T, root string, fsys fileSystem, n int) (*Store, []string) {
	t.Helper()
	s, err := Open(root, Options{Own: true, PackSmall: true, SegmentSize: preparedTestSize, fsys: fsys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitPrepared(t, s)
	var keys []string
	for i := range n {
		keys = append(keys, put(t, s, "acme", seededBody(uint64(i), 3000+i)))
	}
	seg := activeSegment(t, s)
	info, err := os.Stat(seg.path)
	if err != nil {
		t.Fatal(err)
	}
	if !seg.prepared || info.Size() != preparedTestSize || seg.size.Load() >= info.Size() {
		t.Fatalf("segment %s: prepared %v, file %d bytes, records %d bytes: want a prepared file with zeros past its records",
			seg.path, seg.prepared, info.Size(), seg.size.Load())
	}
	return s, keys
}

// checkBodies checks that s holds the bodies putPrepared stored under keys.
func checkBodies(t *testing.T, s *Store, keys []string) {
	t.Helper()
	for i, key := range keys {
		if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, seededBody(uint64(i), 3000+i)) {
			t.Fatalf("body %d: %d bytes, %v", i, len(got), err)
		}
	}
}

// TestPreparedSegmentSurvivesPowerLoss: records synced into a prepared segment are all
// there after a power loss (crashFS keeps each file as of its last fsync: the zeros,
// then the records each Put synced), and the store opened on what survived writes on.
func TestPreparedSegmentSurvivesPowerLoss(t *testing.T) {
	root := filepath.Join(t.TempDir(), "r0")
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	cfs := newCrashFS(t, root)
	s, keys := putPrepared(t, root, cfs, 20)
	next := filepath.Join(filepath.Dir(root), "r1")
	cfs.crash(t, next, func() {})
	s.Close()
	info, err := os.Stat(filepath.Join(next, packDirName, segmentName(1)))
	if err != nil || info.Size() != preparedTestSize {
		t.Fatalf("the segment after the power loss: %v, %v; want the prepared file, zeros included", info, err)
	}
	s2 := reopenPrepared(t, next)
	checkBodies(t, s2, keys)
	put(t, s2, "acme", seededBody(99, 2000))
}

// TestPreparedSegmentReopen: a store that stops with a prepared segment active (killed:
// a second owner opens a copy of its directory, as the page cache holds it; or closed)
// finds every record, ends the segment cleanly at the zeros (the scan reports no
// damage), and cuts the zeros off once it has indexed the segment, so that the sealed
// segment is exact-size and its index file describes it.
func TestPreparedSegmentReopen(t *testing.T) {
	for _, stop := range []string{"killed", "closed"} {
		t.Run(stop, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "r0")
			s, keys := putPrepared(t, root, nil, 20)
			logical := activeSegment(t, s).size.Load()
			if stop == "killed" {
				copyTree(t, root, root+"-copy")
				root += "-copy"
				os.Remove(filepath.Join(root, packDirName, ownerLockName))
			}
			s.Close()
			s2 := reopenPrepared(t, root)
			checkBodies(t, s2, keys)
			s2.packs.mu.Lock()
			seg := s2.packs.segments[1]
			s2.packs.mu.Unlock()
			if seg == nil {
				t.Fatal("segment 1 not loaded")
			}
			if seg.size.Load() != logical || seg.scanned != logical {
				t.Fatalf("segment 1 loaded with size %d, scanned to %d: want both %d, its records (the zeros are no damage)",
					seg.size.Load(), seg.scanned, logical)
			}
			waitIndexed(t, s2, seg)
			info, err := os.Stat(seg.path)
			if err != nil || info.Size() != logical {
				t.Fatalf("segment 1 once indexed: %v, %v; want %d bytes", info, err, logical)
			}
			if _, ok := readSegmentIndex(osFS{}, s2.packs.indexPath(1), logical); !ok {
				t.Fatal("no sound index file for the trimmed segment")
			}
			s2.Close()
			s3 := reopenPrepared(t, root)
			checkBodies(t, s3, keys)
		})
	}
}

// reopenPrepared opens the packing store at root as the tests above wrote it, closed at
// the test's end.
func reopenPrepared(t *testing.T, root string) *Store {
	t.Helper()
	s, err := Open(root, Options{Own: true, PackSmall: true, SegmentSize: preparedTestSize})
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitIndexed waits until seg has its index file written (writeIndexes).
func waitIndexed(t *testing.T, s *Store, seg *segment) {
	t.Helper()
	for range 60_000 {
		s.packs.mu.Lock()
		done := seg.indexed
		s.packs.mu.Unlock()
		if done {
			if err := s.packs.compactErr.Load(); err != nil {
				t.Fatalf("background pass: %v", *err)
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("segment never indexed")
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPreparedSegmentTornRecord: a record torn inside the zeros of a prepared segment
// (its header and part of its body on disk, the rest still zeros) is skipped as a torn
// tail always was: the records before it are read, it is not, the scan says where the
// damage begins, and the body can be stored again.
func TestPreparedSegmentTornRecord(t *testing.T) {
	root := filepath.Join(t.TempDir(), "r0")
	s, keys := putPrepared(t, root, nil, 10)
	logical := activeSegment(t, s).size.Load()
	s.Close()
	torn := seededBody(50, 4000)
	tornKey := blobstore.Key("acme", sha256.Sum256(torn))
	rec := encodeRecord(tornKey, torn)
	path := filepath.Join(root, packDirName, segmentName(1))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(rec[:len(rec)/2], logical); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// No clean close any more: the next open scans.
	os.Remove(filepath.Join(root, packDirName, cleanCloseName))
	os.Remove(filepath.Join(root, packDirName, "0000000000000001.idx"))
	s2 := reopenPrepared(t, root)
	checkBodies(t, s2, keys)
	if _, err := s2.Stat(t.Context(), tornKey); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("the torn record: Stat gave %v, want ErrNotFound", err)
	}
	s2.packs.mu.Lock()
	seg := s2.packs.segments[1]
	s2.packs.mu.Unlock()
	if seg.scanned != logical {
		t.Fatalf("damage found at %d, want %d (the torn record)", seg.scanned, logical)
	}
	if seg.size.Load() <= logical {
		t.Fatalf("segment ends at %d: want past the torn bytes at %d", seg.size.Load(), logical)
	}
	again := put(t, s2, "acme", torn)
	if got, err := getAll(t, s2, again); err != nil || !bytes.Equal(got, torn) {
		t.Fatalf("the torn body stored again: %v", err)
	}
}

// TestScanSegmentZeroTail: scanSegment ends cleanly where only zeros are left, also
// after a record whose body ends in zeros, reports a torn record before the zeros as
// damage, and finds a whole record after a stretch of zeros that is not the end.
func TestScanSegmentZeroTail(t *testing.T) {
	one := seededBody(1, 1000)
	zeroEnded := append(seededBody(2, 500), make([]byte, 300)...)
	r1 := encodeRecord(blobstore.Key("acme", sha256.Sum256(one)), one)
	r2 := encodeRecord(blobstore.Key("acme", sha256.Sum256(zeroEnded)), zeroEnded)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	zeros := make([]byte, 5000)
	n1, n12 := int64(len(r1)), int64(len(r1)+len(r2))
	for _, c := range []struct {
		name          string
		data          []byte
		records       int
		firstBad, end int64
	}{
		{"records then zeros", cat(r1, r2, zeros), 2, n12, n12},
		{"only zeros", zeros, 0, 0, 0},
		{"no zeros", cat(r1, r2), 2, n12, n12},
		{"torn into the zeros", cat(r1, r2[:len(r2)/2], zeros), 1, n1, n1 + int64(len(r2)/2)},
		{"zeros, then a record", cat(r1, zeros, r2, zeros), 2, n1, n1 + int64(len(zeros)+len(r2))},
	} {
		got := 0
		firstBad, end := scanSegment(c.data, func(int64, decodedRecord) { got++ })
		if got != c.records || firstBad != c.firstBad || end != c.end {
			t.Errorf("%s: %d records, first bad %d, end %d; want %d, %d, %d", c.name, got, firstBad, end, c.records, c.firstBad, c.end)
		}
	}
}
