package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/strata-mail/strata/blobstore"
)

// smallFilesystem mounts a tmpfs of size bytes, a real file system that fills up, and
// returns its directory; the test is skipped where mounting is not permitted (not root).
func smallFilesystem(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file under dir until the file system is full, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

// TestOpenOnFullDisk: an open that finds a record superseded by a newer copy (a
// compaction that crashed between its copy and its tombstones) on a full file system
// serves anyway, reads work, and the tombstone is written once there is room again.
func TestOpenOnFullDisk(t *testing.T) {
	mnt := smallFilesystem(t, "1m")
	root := filepath.Join(mnt, "blobs")
	body := seededBody(1200, 2000)
	key := blobstore.Key("acme", sha256.Sum256(body))
	s, err := Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The copy a compaction made, in a segment of its own, left without its tombstones
	// by a crash, which leaves no clean-close marker (whose page the open would free for
	// the tombstone).
	seg := filepath.Join(root, packDirName)
	if err := os.Remove(filepath.Join(seg, cleanCloseName)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seg, segmentName(2)), encodeRecord(key, body), 0o600); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, mnt)
	s, err = Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	defer s.Close()
	if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Get on a full disk: %v", err)
	}
	s.packs.mu.Lock()
	pending := len(s.packs.pendingTombs)
	s.packs.mu.Unlock()
	if pending != 1 {
		t.Fatalf("%d tombstones pending on a full disk, want 1", pending)
	}
	if err := s.packs.compact(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(seg, segmentName(2))); err != nil {
		t.Fatalf("the newer record's segment went while its older copy's tombstone is pending: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.packs.compact(); err != nil {
		t.Fatal(err)
	}
	s.packs.mu.Lock()
	pending = len(s.packs.pendingTombs)
	s.packs.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d tombstones still pending once there is room", pending)
	}
	// Segment 1 holds nothing live: tombstoned, or compacted away.
	if _, err := os.Stat(filepath.Join(seg, segmentName(1))); err == nil {
		data, err := os.ReadFile(filepath.Join(seg, "0000000000000001.del"))
		if err != nil || !slices.Equal(decodeTombstones(data), []int64{0}) {
			t.Fatalf("segment 1's tombstones after the retry: %v %v", decodeTombstones(data), err)
		}
	}
	s.Close()
	s, err = Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Get after reopening: %v", err)
	}
}
