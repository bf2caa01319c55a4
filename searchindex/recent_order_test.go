package searchindex

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestRecentOrderBounded (review idxmem20): one body nobody takes (its APPEND failed, or
// its message was expunged before the indexer got to it) must not make the order list
// grow by one entry for every later body kept and taken while the budget is not full.
func TestRecentOrderBounded(t *testing.T) {
	recent := NewRecentBodies(64<<20, 1<<20)
	blobs := recent.Over(nil) // every key below is kept: the store is never asked
	recent.Keep("t/never-taken", bytes.NewReader([]byte("abandoned body")), 14)
	body := []byte("Subject: x\r\n\r\nhello")
	for i := range 100_000 {
		key := fmt.Sprintf("t/%d", i)
		recent.Keep(key, bytes.NewReader(body), int64(len(body)))
		r, err := blobs.Get(context.Background(), key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	recent.mu.Lock()
	n, held := len(recent.order.entries), len(recent.bodies)
	recent.mu.Unlock()
	if n > 1024 {
		t.Errorf("order holds %d entries for %d bodies kept: it grows with every APPEND", n, held)
	}
}
