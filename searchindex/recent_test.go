package searchindex

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"strings"
	"testing"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
)

// storeBody puts body in store and returns its key.
func storeBody(t *testing.T, store blobstore.Store, body []byte) string {
	t.Helper()
	key := blobstore.Key("t", sha256.Sum256(body))
	if err := store.Put(context.Background(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	return key
}

func readAll(t *testing.T, blobs Blobs, key string, offset, length int64) string {
	t.Helper()
	r, err := blobs.Get(context.Background(), key, offset, length)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRecentBodies: a kept body is served from memory once, with the store's range
// semantics, then read from the store; the bounds refuse what does not fit.
func TestRecentBodies(t *testing.T) {
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recent := NewRecentBodies(100, 40)
	blobs := recent.Over(store)
	body := []byte("Subject: x\r\n\r\nhello world, hello index")
	key := storeBody(t, store, body)
	recent.Keep(key, bytes.NewReader(body), int64(len(body)))
	if held := recent.Held(); held != int64(len(body)) {
		t.Fatalf("held %d bytes, want %d", held, len(body))
	}
	for _, rg := range []struct{ offset, length int64 }{{14, 5}, {0, -1}, {30, 100}, {100, 3}} {
		want := readAll(t, store, key, rg.offset, rg.length)
		recent.Keep(key, bytes.NewReader(body), int64(len(body)))
		if got := readAll(t, blobs, key, rg.offset, rg.length); got != want {
			t.Errorf("range %d+%d from memory: %q, the store's %q", rg.offset, rg.length, got, want)
		}
	}
	if kept, taken := recent.Counts(); kept != 4 || taken != 4 || recent.Held() != 0 {
		t.Errorf("kept %d, taken %d, held %d; want 4, 4, 0", kept, taken, recent.Held())
	}
	// Taken once: the next read is the store's.
	if got := readAll(t, blobs, key, 0, -1); got != string(body) {
		t.Errorf("read after the take: %q", got)
	}
	if _, taken := recent.Counts(); taken != 4 {
		t.Errorf("a body taken twice")
	}

	big := []byte(strings.Repeat("x", 41))
	recent.Keep(storeBody(t, store, big), bytes.NewReader(big), int64(len(big)))
	if recent.Held() != 0 {
		t.Errorf("a body above the per-body cap was kept")
	}
	var keys []string
	for i := range 3 {
		b := []byte(strings.Repeat(string(rune('a'+i)), 40))
		keys = append(keys, storeBody(t, store, b))
		recent.Keep(keys[i], bytes.NewReader(b), int64(len(b)))
	}
	// The third does not fit the budget; the first two stay (the indexer takes the
	// oldest first).
	if recent.Held() != 80 {
		t.Fatalf("held %d bytes, want 80", recent.Held())
	}
	if got := readAll(t, blobs, keys[2], 0, -1); got != strings.Repeat("c", 40) {
		t.Errorf("refused body read back %q", got)
	}
	// Once stale, old bodies make room.
	recent.mu.Lock()
	for i := range recent.order.entries {
		recent.order.entries[i].at = recent.order.entries[i].at.Add(-2 * staleAfter)
	}
	recent.mu.Unlock()
	b := []byte(strings.Repeat("d", 40))
	recent.Keep(storeBody(t, store, b), bytes.NewReader(b), int64(len(b)))
	if recent.Held() != 80 {
		t.Errorf("held %d bytes after a stale body made room, want 80", recent.Held())
	}
	if got := readAll(t, blobs, keys[0], 0, -1); got != strings.Repeat("a", 40) {
		t.Errorf("dropped body read back %q", got)
	}
	if _, taken := recent.Counts(); taken != 4 {
		t.Errorf("the stale body was served from memory after it was dropped")
	}
}
