package fs

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/internal/childproc"
	"github.com/strata-mail/strata/internal/fsync"
)

// openCounting opens root as its owner, as newPackedStore does, and returns the store
// with the number of whole-filesystem syncs its Open made.
func openCounting(t *testing.T, root string) (*Store, int64) {
	t.Helper()
	before := fsync.FilesystemSyncs()
	s := newPackedStore(t, root, 0)
	return s, fsync.FilesystemSyncs() - before
}

// TestCleanCloseSkipsSyncAtOpen: an owner's Open after a clean Close syncs no filesystem
// (the clean-close marker), and removes the marker, so that the open after a Close that
// did not happen (a killed process, here the store simply not closed: its writes are in
// the page cache only) syncs again; a Close after a failed fsync leaves no marker.
func TestCleanCloseSkipsSyncAtOpen(t *testing.T) {
	root := t.TempDir()
	marker := filepath.Join(root, packDirName, cleanCloseName)
	s, syncs := openCounting(t, root)
	if syncs != 1 || !s.SyncedAtOpen() {
		t.Fatalf("the first open synced %d filesystems (SyncedAtOpen %v), want 1", syncs, s.SyncedAtOpen())
	}
	key := put(t, s, "acme", seededBody(1, 1000))
	staged, err := s.Stage(t.Context(), blobstore.Key("acme", sha256.Sum256(seededBody(2, PackMax+1))), bytes.NewReader(seededBody(2, PackMax+1)), PackMax+1)
	if err != nil {
		t.Fatal(err)
	}
	_ = staged // never synced by its caller: Close syncs it
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no clean-close marker after Close: %v", err)
	}

	s, syncs = openCounting(t, root)
	if syncs != 0 || s.SyncedAtOpen() {
		t.Fatalf("the open after a clean close synced %d filesystems (SyncedAtOpen %v), want none", syncs, s.SyncedAtOpen())
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the clean-close marker outlived the open: %v", err)
	}
	if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, seededBody(1, 1000)) {
		t.Fatalf("body after a clean restart: %v", err)
	}

	// A failed fsync: Close leaves no marker, the next open syncs.
	failSyncs(s, func(file) error { return syscall.EIO })
	putFails(t, s, seededBody(3, 1000))
	s.Close()
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("a clean-close marker after a failed fsync: %v", err)
	}
	if _, syncs = openCounting(t, root); syncs != 1 {
		t.Fatalf("the open after a failed fsync synced %d filesystems, want 1", syncs)
	}
}

// cleanCloseChildEnv names the directory the child of TestKilledOwnerSyncsAtOpen writes.
const cleanCloseChildEnv = "STRATA_FS_CLEAN_CLOSE_CHILD"

func TestKilledOwnerChild(t *testing.T) {
	root := os.Getenv(cleanCloseChildEnv)
	if root == "" {
		t.Skip("the child of TestKilledOwnerSyncsAtOpen")
	}
	s := newPackedStore(t, root, 0)
	put(t, s, "acme", seededBody(7, 1000))
	os.Stdout.WriteString("ready\n")
	select {} // until killed
}

// TestKilledOwnerSyncsAtOpen: a real owner process, SIGKILLed after its own clean start,
// leaves no clean-close marker, so the next owner's Open syncs the filesystem once.
func TestKilledOwnerSyncsAtOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	root := t.TempDir()
	s, _ := openCounting(t, root)
	if err := s.Close(); err != nil { // the child starts after a clean close
		t.Fatal(err)
	}
	childproc.KillWhenReady(t, "TestKilledOwnerChild", []string{cleanCloseChildEnv + "=" + root}, "ready")
	s, syncs := openCounting(t, root)
	if syncs != 1 || !s.SyncedAtOpen() {
		t.Fatalf("the open after a killed owner synced %d filesystems (SyncedAtOpen %v), want 1", syncs, s.SyncedAtOpen())
	}
	if got, err := getAll(t, s, blobstore.Key("acme", sha256.Sum256(seededBody(7, 1000)))); err != nil || !bytes.Equal(got, seededBody(7, 1000)) {
		t.Fatalf("the killed owner's body: %v", err)
	}
}

// TestCleanCloseMarkerProvesItsDirectory: a clean-close marker skips the open's sync only
// if the segment directory is still what the Close that wrote it left. A marker left
// behind by a later run (what a version from before the marker leaves: it takes no
// notice of the marker, writes and is killed), a copy of the directory (its times kept,
// as cp -a does), and a marker without the directory's identity (the earlier format)
// each make the open sync.
func TestCleanCloseMarkerProvesItsDirectory(t *testing.T) {
	root := t.TempDir()
	marker := filepath.Join(root, packDirName, cleanCloseName)
	s, _ := openCounting(t, root)
	put(t, s, "acme", seededBody(1, 1000))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}

	// A later run writes a segment and leaves the first close's marker in place.
	s, syncs := openCounting(t, root)
	if syncs != 0 {
		t.Fatalf("the open after a clean close synced %d filesystems, want none", syncs)
	}
	later := put(t, s, "acme", seededBody(2, 1000))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, first, 0o600); err != nil {
		t.Fatal(err)
	}
	s, syncs = openCounting(t, root)
	if syncs != 1 || !s.SyncedAtOpen() {
		t.Fatalf("the open under a stale marker synced %d filesystems (SyncedAtOpen %v), want 1", syncs, s.SyncedAtOpen())
	}

	// A copy of a cleanly closed directory, with its files' times kept.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(root)); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, packDirName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(copied, packDirName, e.Name()), info.ModTime(), info.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	c, syncs := openCounting(t, copied)
	if syncs != 1 || !c.SyncedAtOpen() {
		t.Fatalf("the open of a copy synced %d filesystems (SyncedAtOpen %v), want 1", syncs, c.SyncedAtOpen())
	}
	if got, err := getAll(t, c, later); err != nil || !bytes.Equal(got, seededBody(2, 1000)) {
		t.Fatalf("body in the copy: %v", err)
	}

	// The original directory's own marker still holds; an empty one (the earlier
	// format) does not.
	s, syncs = openCounting(t, root)
	if syncs != 0 {
		t.Fatalf("the open after a clean close synced %d filesystems, want none", syncs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, syncs = openCounting(t, root); syncs != 1 {
		t.Fatalf("the open under a marker without identity synced %d filesystems, want 1", syncs)
	}
}
