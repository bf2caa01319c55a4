package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/internal/fsync"
)

// readCounter counts the bytes read from r: a Put that reads its body writes it, a dedup
// hit reads nothing.
type readCounter struct {
	r io.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// putReads puts body under key and reports whether the Put read it (wrote it anew).
func putReads(t *testing.T, s *Store, key string, body []byte) bool {
	t.Helper()
	c := &readCounter{r: bytes.NewReader(body)}
	if err := s.Put(t.Context(), key, c, int64(len(body))); err != nil {
		t.Fatal(err)
	}
	return c.n > 0
}

// TestFailedSegmentSyncDistrustedAfterReopen (review G4 of 2026-12-06): a record whose
// segment fsync failed is not trusted by the next open, although its bytes are still
// readable (the page cache holds them, and the syncfs at open cannot write pages whose
// writeback failed): a Put of its key writes it again. Records durable before the failure
// stay.
func TestFailedSegmentSyncDistrustedAfterReopen(t *testing.T) {
	root := t.TempDir()
	s := newPackedStore(t, root, 0)
	fail := failSyncsOf(s)
	s.packs.compactMu.Lock() // no compaction copies the record to a sound segment
	defer s.packs.compactMu.Unlock()
	durable := seededBody(1300, 800)
	kd := put(t, s, "acme", durable)
	fail(segmentName(1))
	body := seededBody(1301, 800)
	key := putFails(t, s, body)
	if _, err := os.Stat(filepath.Join(root, packDirName, "0000000000000001"+failedSuffix)); err != nil {
		t.Fatalf("no failed-sync marker for the segment: %v", err)
	}
	// The next open, as after a restart: only the first store's lock is let go.
	s.packs.unlockOwner()
	reopened, err := Open(root, Options{Own: true, PackSmall: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if got, err := getAll(t, reopened, kd); err != nil || !bytes.Equal(got, durable) {
		t.Fatalf("a record durable before the failure: %v", err)
	}
	if !putReads(t, reopened, key, body) {
		t.Fatal("a Put after reopening took the record whose fsync failed as durable")
	}
	if loc, ok := reopened.packs.lookup(key); !ok || loc.seg.seq == 1 {
		t.Fatalf("the body is indexed in segment %d, want rewritten elsewhere", loc.seg.seq)
	}
	if putReads(t, reopened, kd, durable) {
		t.Fatal("a Put of a body durable before the failure wrote it again")
	}
}

// TestFailedFileSyncDistrusted (review G4 of 2026-12-06): in the file-per-body layout, a
// body file whose fsync failed is not taken by a dedup hit, neither in the same process
// (a second fsync would return nil for pages whose writeback failed) nor after reopening;
// Check reports it not whole; a Put writes it again and clears the mark.
func TestFailedFileSyncDistrusted(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, Options{Own: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.dirSyncs.sync = func(string) error { return syscall.EIO }
	body := seededBody(1400, 3000)
	key := blobstore.Key("acme", sha256.Sum256(body))
	if err := s.Put(t.Context(), key, bytes.NewReader(body), int64(len(body))); err == nil {
		t.Fatal("Put with a failing directory fsync succeeded")
	}
	s.dirSyncs.sync = fsync.Dir
	_, path, _, _ := s.objectPath(key)
	if _, err := os.Stat(path + failedSuffix); err != nil {
		t.Fatalf("no failed-sync marker: %v", err)
	}
	if !putReads(t, s, key, body) {
		t.Fatal("a dedup hit in the same process took a body file whose fsync failed")
	}
	if _, err := os.Stat(path + failedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the marker is left after the body was written again: %v", err)
	}
	if putReads(t, s, key, body) {
		t.Fatal("a Put of a durable body wrote it again")
	}

	// After a reopen.
	s.dirSyncs.sync = func(string) error { return syscall.EIO }
	body2 := seededBody(1401, 3000)
	key2 := blobstore.Key("acme", sha256.Sum256(body2))
	if err := s.Put(t.Context(), key2, bytes.NewReader(body2), int64(len(body2))); err == nil {
		t.Fatal("Put with a failing directory fsync succeeded")
	}
	s.Close()
	reopened, err := Open(root, Options{Own: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if err := reopened.Check(t.Context(), key2); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("Check of a body whose fsync failed: %v, want not whole", err)
	}
	if !putReads(t, reopened, key2, body2) {
		t.Fatal("a dedup hit after reopening took a body file whose fsync failed")
	}
	if err := reopened.Check(t.Context(), key2); err != nil {
		t.Fatalf("Check after the body was written again: %v", err)
	}
}
