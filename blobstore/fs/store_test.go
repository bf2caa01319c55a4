package fs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/storetest"
)

// newStore opens a store in a new directory that keeps a file per body (the tests of the
// file layout); pack_test.go's newPackedStore packs small bodies.
func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Run("files", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) blobstore.Store { return newStore(t) })
	})
	t.Run("packed", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) blobstore.Store { return newPackedStore(t, t.TempDir(), 0) })
	})
}

// files lists the regular files under root, relative to it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(root, func(path string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func put(t *testing.T, s *Store, tenant string, body []byte) string {
	t.Helper()
	key := blobstore.Key(tenant, sha256.Sum256(body))
	if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return key
}

func TestLayout(t *testing.T) {
	s := newStore(t)
	body := []byte("Subject: hi\r\n\r\nhello\r\n")
	put(t, s, "acme", body)
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	want := []string{"t/acme/" + digest[0:2] + "/" + digest[2:4] + "/" + digest}
	if got := files(t, s.root); !slices.Equal(got, want) {
		t.Fatalf("files after Put = %q, want %q", got, want)
	}
	got, err := os.ReadFile(filepath.Join(s.root, filepath.FromSlash(want[0])))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("object file = %q, %v; want %q", got, err, body)
	}
}

// failingReader fails the test if anything reads it.
type failingReader struct{ t *testing.T }

func (f failingReader) Read([]byte) (int, error) {
	f.t.Error("a dedup Put read its body")
	return 0, io.ErrUnexpectedEOF
}

func TestDedupReadsNothing(t *testing.T) {
	s := newStore(t)
	body := []byte("the same body twice")
	key := put(t, s, "acme", body)
	if err := s.Put(t.Context(), key, failingReader{t}, int64(len(body))); err != nil {
		t.Fatalf("dedup Put: %v", err)
	}
}

func TestFailedPutsLeaveNoFiles(t *testing.T) {
	s := newStore(t)
	body := bytes.Repeat([]byte("x"), 300<<10)
	key := blobstore.Key("acme", sha256.Sum256(body))
	if err := s.Put(t.Context(), key, bytes.NewReader(body[1:]), int64(len(body))); err == nil {
		t.Fatal("short Put succeeded")
	}
	wrong := bytes.Repeat([]byte("y"), len(body))
	if err := s.Put(t.Context(), key, bytes.NewReader(wrong), int64(len(wrong))); err == nil {
		t.Fatal("Put of mismatching bytes succeeded")
	}
	for _, key := range storetest.InvalidKeys() {
		if err := s.Put(t.Context(), key, strings.NewReader("x"), 1); err == nil {
			t.Fatalf("Put(%q) succeeded", key)
		}
	}
	if got := files(t, s.root); len(got) != 0 {
		t.Fatalf("files after failed Puts = %q, want none", got)
	}
	if entries, err := os.ReadDir(filepath.Dir(s.root)); err != nil || len(entries) != 1 {
		t.Fatalf("the store's parent directory holds %d entries (%v), want only the root", len(entries), err)
	}
}

// TestDeleteRemovesOnlyItsObject puts two bodies whose digests share a shard directory and
// checks that deleting one keeps the other and the directories.
func TestDeleteRemovesOnlyItsObject(t *testing.T) {
	s := newStore(t)
	seen := map[string][]byte{}
	var first, second []byte
	for i := 0; second == nil; i++ {
		body := []byte(strings.Repeat("m", i))
		sum := sha256.Sum256(body)
		shard := hex.EncodeToString(sum[:2])
		if other, ok := seen[shard]; ok {
			first, second = other, body
		}
		seen[shard] = body
	}
	firstKey, secondKey := put(t, s, "acme", first), put(t, s, "acme", second)
	otherTenantKey := put(t, s, "globex", first)
	if err := s.Delete(t.Context(), firstKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, key := range []string{secondKey, otherTenantKey} {
		if _, err := s.Stat(t.Context(), key); err != nil {
			t.Errorf("Stat(%s) after deleting %s: %v", key, firstKey, err)
		}
	}
	dirs, _, _, _ := s.objectPath(firstKey)
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			t.Errorf("directory %s after Delete: %v", dir, err)
		}
	}
	if got := len(files(t, s.root)); got != 2 {
		t.Errorf("%d files after Delete, want 2", got)
	}
}

// sweptWithBody opens a store in a new directory, its sweep of stale temporary files run
// at once and waited for, and stores a body in it; it returns the store, its root, and the
// body's shard directory and path.
func sweptWithBody(t *testing.T) (s *Store, root, shard, path string) {
	t.Helper()
	root = t.TempDir()
	now := time.Duration(0)
	s, err := Open(root, Options{sweepAfter: &now})
	if err != nil {
		t.Fatal(err)
	}
	<-s.swept
	dirs, path, _, _ := s.objectPath(put(t, s, "acme", []byte("a body")))
	return s, root, dirs[len(dirs)-1], path
}

// leaveTemps writes the partial body a crashed Put leaves to each of fresh and stale, and
// dates stale and each of old twice staleTempAge back.
func leaveTemps(t *testing.T, fresh, stale, old []string) {
	t.Helper()
	for _, name := range slices.Concat(fresh, stale) {
		if err := os.WriteFile(name, []byte("partial body"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-2 * staleTempAge)
	for _, name := range slices.Concat(stale, old) {
		if err := os.Chtimes(name, then, then); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewRemovesStaleTemps(t *testing.T) {
	// Leftovers of crashed Puts: in root/tmp (stores written before temporary files went
	// beside their objects) and in a shard directory.
	s, root, shard, path := sweptWithBody(t)
	if err := os.MkdirAll(s.tmpDir, 0o750); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(s.tmpDir, "put-stale"), filepath.Join(s.tmpDir, "put-fresh")
	staleBeside, freshBeside := filepath.Join(shard, ".put-stale"), filepath.Join(shard, ".put-fresh")
	leaveTemps(t, []string{fresh, freshBeside}, []string{stale, staleBeside}, []string{path})
	now := time.Duration(0)
	reopened, err := Open(root, Options{sweepAfter: &now})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file in root/tmp after reopen: %v", err)
	}
	<-reopened.swept
	for _, name := range []string{stale, staleBeside} {
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale temporary file %s after the sweep: %v", name, err)
		}
	}
	for _, name := range []string{fresh, freshBeside, path} {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("%s after the sweep: %v", name, err)
		}
	}
}

func TestReopenKeepsBodies(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("kept across restarts")
	key := put(t, s, "acme", body)
	s, err = Open(root, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	rc, err := s.Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Get after reopen = %q, %v", got, err)
	}
}

// TestPutSkipsLeftoverTempName puts a body while a file of an earlier process holds the next
// temporary name: the Put takes another name and leaves the file alone.
func TestPutSkipsLeftoverTempName(t *testing.T) {
	s := newStore(t)
	body := []byte("stored beside a leftover")
	dirs, _, _, _ := s.objectPath(blobstore.Key("acme", sha256.Sum256(body)))
	if err := os.MkdirAll(dirs[len(dirs)-1], 0o750); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dirs[len(dirs)-1], tempMark+s.tmpPrefix+strconv.FormatUint(s.tmpSeq.Load()+1, 36))
	if err := os.WriteFile(leftover, []byte("partial body"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := put(t, s, "acme", body)
	if got, err := os.ReadFile(leftover); err != nil || string(got) != "partial body" {
		t.Fatalf("leftover after Put = %q, %v", got, err)
	}
	if info, err := s.Stat(t.Context(), key); err != nil || info.Size != int64(len(body)) {
		t.Fatalf("Stat after Put = %+v, %v", info, err)
	}
}

// TestPutNotesDirectoriesDurable checks the bookkeeping that lets a Put skip fsyncs: after
// a Put every directory on its path is noted durable, the object settled and no rename
// counted, and a reopened store (a new process) starts with none of it, so its first dedup
// hit checks and fsyncs the object.
func TestPutNotesDirectoriesDurable(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("noted durable")
	key := put(t, s, "acme", body)
	dirs, path, _, _ := s.objectPath(key)
	isSettled := func() bool {
		_, ok := s.settled[path]
		return ok
	}
	if missing := s.notDurable(dirs); len(missing) != 0 {
		t.Fatalf("directories not noted durable after Put: %q", missing)
	}
	if !isSettled() || len(s.renaming) != 0 {
		t.Fatalf("object not settled after Put (renaming %v)", s.renaming)
	}
	s, err = Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if isSettled() || len(s.notDurable(dirs)) != len(dirs) {
		t.Fatal("a reopened store takes an object or a directory for durable without an fsync")
	}
	if err := s.Put(t.Context(), key, failingReader{t}, int64(len(body))); err != nil {
		t.Fatalf("dedup Put after reopen: %v", err)
	}
	if !isSettled() || len(s.notDurable(dirs)) != 0 {
		t.Fatal("dedup Put in a reopened store did not note the object and its path durable")
	}
}

// TestPutReplacesTornObject reopens a store over an object file that is not whole, as a
// crash during a Put can leave it (its name durable, its bytes not): a Put of its key
// stores the body anew instead of taking the file for a dedup hit.
func TestPutReplacesTornObject(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("whole body "), 1000)
	key := put(t, s, "acme", body)
	_, path, _, _ := s.objectPath(key)
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	s, err = Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "acme", body)
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("object after Put over a torn one: %d bytes, %v; want %d", len(got), err, len(body))
	}
}

// TestStageReadableBeforeSync: a staged object is readable at once, counts as renaming (a
// dedup hit fsyncs it itself) until its Sync, and SyncStaged syncs what is still staged.
func TestStageReadableBeforeSync(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	bodies := [][]byte{[]byte("staged one"), []byte("staged two")}
	var staged []blobstore.Staged
	var paths []string
	for _, body := range bodies {
		key := blobstore.Key("acme", sha256.Sum256(body))
		st, err := s.Stage(ctx, key, bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatalf("Stage: %v", err)
		}
		staged = append(staged, st)
		_, path, _, _ := s.objectPath(key)
		paths = append(paths, path)
		rc, err := s.Get(ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("Get of a staged object: %v", err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, body) {
			t.Fatalf("staged object reads %q, want %q", got, body)
		}
		if _, settled := s.settled[path]; settled || s.renaming[path] != 1 {
			t.Fatalf("staged object: settled %v, renaming %d; want not settled, renaming 1", settled, s.renaming[path])
		}
	}
	if len(s.staged) != 2 {
		t.Fatalf("%d objects staged, want 2", len(s.staged))
	}
	// A dedup hit on a staged object is durable when it returns: it fsyncs the object.
	if err := s.Put(ctx, blobstore.Key("acme", sha256.Sum256(bodies[0])), failingReader{t}, int64(len(bodies[0]))); err != nil {
		t.Fatalf("dedup Put of a staged object: %v", err)
	}
	if err := staged[0].Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := staged[0].Sync(); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if err := s.SyncStaged(ctx); err != nil {
		t.Fatalf("SyncStaged: %v", err)
	}
	if len(s.staged) != 0 || len(s.renaming) != 0 {
		t.Fatalf("after SyncStaged: staged %d, renaming %v; want none", len(s.staged), s.renaming)
	}
	for _, path := range paths {
		if _, settled := s.settled[path]; !settled {
			t.Fatalf("%s not settled after SyncStaged", path)
		}
	}
	if err := staged[1].Sync(); err != nil {
		t.Fatalf("Sync after SyncStaged: %v", err)
	}
}

// TestSweepWaitsAndStopsAtClose: the sweep of the shard directories waits sweepDelay
// after Open (a started server's first commands come first), and a store closed before
// that gives it up: swept is closed, the leftover stays for the next Open.
func TestSweepWaitsAndStopsAtClose(t *testing.T) {
	s, root, shard, _ := sweptWithBody(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	staleBeside := filepath.Join(shard, ".put-stale")
	leaveTemps(t, nil, []string{staleBeside}, nil)
	reopened, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := reopened.Close(); err != nil {
		t.Fatal(err)
	}
	<-reopened.swept
	if _, err := os.Stat(staleBeside); err != nil {
		t.Errorf("leftover after a store closed before its sweep began: %v (want it kept for the next Open)", err)
	}
}

// TestObjectPath: the path objectPath builds by concatenation is filepath.Join's of the
// layout (root/t/<tenant>/<h[0:2]>/<h[2:4]>/<h>), its directories those above it, for
// roots that Join cleans (a trailing separator, a relative root, "/"); invalid keys are
// refused.
func TestObjectPath(t *testing.T) {
	sum := sha256.Sum256([]byte("a body"))
	digest := hex.EncodeToString(sum[:])
	for _, root := range []string{t.TempDir(), t.TempDir() + "/", "store", "./store/../other", "/"} {
		for _, tenant := range []string{"acme", "a", "x.y_z-0"} {
			s := &Store{objects: filepath.Join(root, "t")}
			dirs, path, gotSum, ok := s.objectPath(blobstore.Key(tenant, sum))
			top := filepath.Join(root, "t")
			wantDirs := []string{top, filepath.Join(top, tenant), filepath.Join(top, tenant, digest[0:2]), filepath.Join(top, tenant, digest[0:2], digest[2:4])}
			wantPath := filepath.Join(wantDirs[3], digest)
			if !ok || path != wantPath || !slices.Equal(dirs, wantDirs) || gotSum != sum {
				t.Errorf("root %q tenant %q: objectPath = %q, %q, %x, %v; want %q, %q, %x", root, tenant, dirs, path, gotSum, ok, wantDirs, wantPath, sum)
			}
		}
	}
	s := &Store{objects: "t"}
	for _, key := range []string{"", "t/acme/" + digest[1:], "t/../" + digest, "t/acme/" + strings.ToUpper(digest), "x/acme/" + digest} {
		if _, _, _, ok := s.objectPath(key); ok {
			t.Errorf("objectPath(%q) accepted an invalid key", key)
		}
	}
}
