package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
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
