package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
)

// TestWritesAfterCloseRefused: a Put, Stage or Delete after Close fails with ErrClosed,
// packed or not, and writes nothing; reads still work.
func TestWritesAfterCloseRefused(t *testing.T) {
	for _, packed := range []bool{true, false} {
		root := t.TempDir()
		s, err := Open(root, Options{Own: true, PackSmall: packed})
		if err != nil {
			t.Fatal(err)
		}
		kept := put(t, s, "acme", seededBody(1, 500))
		s.Close()
		body := seededBody(2, 500)
		key := blobstore.Key("acme", sha256.Sum256(body))
		if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); !errors.Is(err, ErrClosed) {
			t.Errorf("packed=%v: Put after Close: %v, want ErrClosed", packed, err)
		}
		if _, err := s.Stage(t.Context(), key, bytes.NewReader(body), int64(len(body))); !errors.Is(err, ErrClosed) {
			t.Errorf("packed=%v: Stage after Close: %v, want ErrClosed", packed, err)
		}
		if err := s.Delete(t.Context(), kept); !errors.Is(err, ErrClosed) {
			t.Errorf("packed=%v: Delete after Close: %v, want ErrClosed", packed, err)
		}
		if got, err := getAll(t, s, kept); err != nil || !bytes.Equal(got, seededBody(1, 500)) {
			t.Errorf("packed=%v: Get after Close: %v", packed, err)
		}
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("packed=%v: the refused Put left a body: Stat gave %v", packed, err)
		}
	}
}

// TestCloseReaderWithoutSegments: Close of a store that does not own the segments, opened
// on a directory without any, returns (it waited for a compaction loop never started).
func TestCloseReaderWithoutSegments(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a reader store without segments did not return")
	}
}

// blockingReader hands out its body once release is closed, and signals started on its
// first Read.
type blockingReader struct {
	r       io.Reader
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return b.r.Read(p)
}

// TestCloseWaitsForStage (review fs19 R2): a Stage of a body file that passed the closed
// check before Close began ends before Close syncs and leaves the clean-close marker:
// Close syncs it, so the next owner, which skips the sync of the filesystem (the marker),
// finds it after a power loss.
func TestCloseWaitsForStage(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "r0")
	if err := os.Mkdir(root, 0o750); err != nil {
		t.Fatal(err)
	}
	cfs := newCrashFS(t, root)
	s, err := Open(root, Options{Own: true, PackSmall: true, fsys: cfs})
	if err != nil {
		t.Fatal(err)
	}
	body := seededBody(9, PackMax+100)
	key := blobstore.Key("acme", sha256.Sum256(body))
	br := &blockingReader{r: bytes.NewReader(body), started: make(chan struct{}), release: make(chan struct{})}
	staged := make(chan error, 1)
	go func() {
		_, err := s.Stage(context.Background(), key, br, int64(len(body)))
		staged <- err
	}()
	<-br.started
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		close(br.release)
		t.Fatalf("Close returned (%v) while a Stage that began before it was still writing (it returned %v)", err, <-staged)
	case <-time.After(100 * time.Millisecond):
	}
	close(br.release)
	if err := <-staged; err != nil {
		t.Fatalf("the Stage that began before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s2, err := Open(root, Options{Own: true, PackSmall: true, fsys: cfs})
	if err != nil {
		t.Fatal(err)
	}
	if s2.SyncedAtOpen() {
		t.Error("no clean-close marker")
	}
	cfs.crash(t, filepath.Join(dir, "r1"), func() {})
	s2.Close()
	s3, err := Open(filepath.Join(dir, "r1"), Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if err := s3.Check(t.Context(), key); err != nil {
		t.Errorf("the body staged before Close, after the next owner skipped the sync and a power loss: %v", err)
	}
}

// TestNoCompactionAfterClose (review fs19 R3): SyncStaged on a closed store with a
// failed segment does not compact it: the directory belongs to the next owner, whose
// packed Puts keep working.
func TestNoCompactionAfterClose(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "acme", seededBody(21, 1000))
	var failing atomic.Bool
	failing.Store(true)
	failSyncs(s, func(f file) error {
		if failing.Load() {
			return syscall.EIO
		}
		return f.Sync()
	})
	putFails(t, s, seededBody(22, 1000))
	_ = s.Close() // a failed segment: no clean close
	failing.Store(false)
	s2, err := Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatalf("second owner after Close: %v", err)
	}
	defer s2.Close()
	names := func() (n []string) {
		es, _ := os.ReadDir(filepath.Join(root, packDirName))
		for _, e := range es {
			// The new owner writes index files and prepares a segment (prepare.go).
			if !strings.Contains(e.Name(), ".idx") && e.Name() != preparedName {
				n = append(n, e.Name())
			}
		}
		return n
	}
	before := names()
	if err := s.SyncStaged(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("SyncStaged on a closed store with a failed segment: %v, want ErrClosed", err)
	}
	if after := names(); !slices.Equal(before, after) {
		t.Errorf("the closed store changed the segment directory after Close:\nbefore %v\nafter  %v", before, after)
	}
	body := seededBody(23, 1000)
	if err := s2.Put(t.Context(), blobstore.Key("acme", sha256.Sum256(body)), bytes.NewReader(body), int64(len(body))); err != nil {
		t.Errorf("the new owner cannot store a packed body: %v", err)
	}
}

// TestSegmentNumberTakenSkipped (review fs19 R3): a segment number whose file exists
// although the store did not load it is skipped, not a failure of every packed Put.
func TestSegmentNumberTakenSkipped(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	if err := os.WriteFile(filepath.Join(root, packDirName, segmentName(1)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	body := seededBody(24, 1000)
	key := put(t, s, "acme", body)
	if got, err := getAll(t, s, key); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("packed body after skipping a taken segment number: %v", err)
	}
}

// TestFailedOpenReleasesOwnerLock (review fs19 R6): an Open that fails after opening the
// segments releases the owner's lock, so that a retry in the same process can own them.
func TestFailedOpenReleasesOwnerLock(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil { // not a directory: its listing fails
		t.Fatal(err)
	}
	if s, err := Open(root, Options{Own: true, PackSmall: true}); err == nil {
		s.Close()
		t.Fatal("Open with root/tmp not a directory succeeded")
	}
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	s, err := Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatalf("Open after a failed one: %v", err)
	}
	s.Close()
}
