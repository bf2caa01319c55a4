package fs

import (
	"testing"
	"time"
)

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
