package fs

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/strata-mail/strata/blobstore"
)

// failSyncFS is a crashFS whose next fsync of a body's temporary file (".put-*") fails
// once (EIO), when fail is set.
type failSyncFS struct {
	*crashFS
	fail atomic.Bool
}

func (f *failSyncFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	fl, err := f.crashFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &failSyncFile{file: fl, fs: f}, nil
}

type failSyncFile struct {
	file
	fs *failSyncFS
}

func (f *failSyncFile) Sync() error {
	if strings.HasPrefix(filepath.Base(f.Name()), tempMark) && f.fs.fail.CompareAndSwap(true, false) {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.EIO}
	}
	return f.file.Sync()
}

// TestFailedMarkerGoneDurablyAfterRetry (review fs19 R1): a body file whose first fsync
// failed (<path>.failed written, durably) and whose retried Put succeeded has lost its
// marker for good: after a power loss Check (the staging recovery's test) reports the
// acknowledged body whole, with or without a clean Close before.
func TestFailedMarkerGoneDurablyAfterRetry(t *testing.T) {
	for _, closeFirst := range []bool{false, true} {
		dir := t.TempDir()
		root := filepath.Join(dir, "r0")
		if err := os.Mkdir(root, 0o750); err != nil {
			t.Fatal(err)
		}
		ffs := &failSyncFS{crashFS: newCrashFS(t, root)}
		s, err := Open(root, Options{Own: true, PackSmall: true, fsys: ffs})
		if err != nil {
			t.Fatal(err)
		}
		body := seededBody(7, PackMax+100) // a file of its own
		key := blobstore.Key("acme", sha256.Sum256(body))
		ffs.fail.Store(true)
		if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err == nil {
			t.Fatal("the Put whose fsync failed returned nil")
		}
		// The client retries; this one is acknowledged.
		if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(t.Context(), key); err != nil {
			t.Fatalf("Check before the power loss: %v", err)
		}
		if closeFirst {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		next := filepath.Join(dir, "r1")
		ffs.crash(t, next, func() {})
		s.Close()
		s2, err := Open(next, Options{Own: true, PackSmall: true})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := getAll(t, s2, key); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("acknowledged body after the power loss: %v", err)
		}
		if err := s2.Check(t.Context(), key); err != nil {
			t.Errorf("closeFirst=%v: acknowledged body reported not whole after the power loss (staging recovery would expunge its message): %v", closeFirst, err)
		}
		s2.Close()
	}
}
