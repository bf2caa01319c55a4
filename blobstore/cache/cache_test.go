package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/blobstore/storetest"
	"github.com/strata-mail/strata/internal/s3test"
)

func newCache(t *testing.T, cfg Config) *Cache {
	t.Helper()
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConformance runs the suite through a cache small enough to evict while it runs.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blobstore.Store {
		return newCache(t, Config{MaxBytes: 1 << 20, MaxEntryBytes: 400 << 10})
	})
}

func body(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) ^ seed
	}
	return b
}

func put(t *testing.T, s blobstore.Store, b []byte) string {
	t.Helper()
	key := blobstore.Key("acme", sha256.Sum256(b))
	if err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return key
}

func get(t *testing.T, s blobstore.Store, key string, offset, length int64) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key, offset, length)
	if err != nil {
		t.Fatalf("Get(%d, %d): %v", offset, length, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%d, %d): read: %v", offset, length, err)
	}
	return got
}

func checkStats(t *testing.T, c *Cache, hits, misses int64) {
	t.Helper()
	if st := c.Stats(); st.Hits != hits || st.Misses != misses {
		t.Fatalf("Stats = %+v, want %d hits and %d misses", st, hits, misses)
	}
}

func TestHitsAndRanges(t *testing.T) {
	c := newCache(t, Config{MaxBytes: 1 << 20})
	b := body(10<<10, 1)
	key := put(t, c, b)

	if got := get(t, c, key, 100, 50); !bytes.Equal(got, b[100:150]) {
		t.Fatal("range read on a miss differs")
	}
	checkStats(t, c, 0, 1)
	if got := get(t, c, key, 100, 50); !bytes.Equal(got, b[100:150]) {
		t.Fatal("range read on a hit differs")
	}
	checkStats(t, c, 1, 1)
	if got := get(t, c, key, 0, -1); !bytes.Equal(got, b) {
		t.Fatal("whole read differs")
	}
	checkStats(t, c, 1, 2)
	// Every range, and Stat, now come from the whole body.
	for _, r := range []struct{ offset, length, from, to int64 }{
		{0, -1, 0, 10 << 10}, {5000, 10, 5000, 5010}, {10<<10 - 5, 100, 10<<10 - 5, 10 << 10}, {20 << 10, 5, 10 << 10, 10 << 10},
	} {
		if got := get(t, c, key, r.offset, r.length); !bytes.Equal(got, b[r.from:r.to]) {
			t.Errorf("Get(%d, %d) from the cached body differs", r.offset, r.length)
		}
	}
	checkStats(t, c, 5, 2)
	if info, err := c.Stat(t.Context(), key); err != nil || info.Size != int64(len(b)) {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	if st := c.Stats(); st.Entries != 2 || st.Bytes != int64(len(b))+50 {
		t.Fatalf("Stats = %+v, want 2 entries of %d bytes", st, len(b)+50)
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	const entry = 10 << 10
	c := newCache(t, Config{MaxBytes: 4 * entry, MaxEntryBytes: entry})
	var keys []string
	for i := range 4 {
		keys = append(keys, put(t, c, body(entry, byte(i))))
		get(t, c, keys[i], 0, -1)
	}
	get(t, c, keys[0], 0, -1) // keys[0] is now the most recently used
	checkStats(t, c, 1, 4)
	keys = append(keys, put(t, c, body(entry, 4)))
	get(t, c, keys[4], 0, -1)
	st := c.Stats()
	if st.Evictions != 1 || st.Bytes > 4*entry || st.Entries != 4 {
		t.Fatalf("Stats after a fifth body = %+v, want one eviction and 4 entries", st)
	}
	get(t, c, keys[0], 0, -1)
	checkStats(t, c, 2, 5)
	get(t, c, keys[1], 0, -1) // the least recently used one was evicted
	checkStats(t, c, 2, 6)

	big := body(entry+1, 9)
	bigKey := put(t, c, big)
	if got := get(t, c, bigKey, 0, -1); !bytes.Equal(got, big) {
		t.Fatal("read of a body over the entry bound differs")
	}
	get(t, c, bigKey, 0, -1)
	if st := c.Stats(); st.Misses != 8 || st.Bytes > 4*entry {
		t.Fatalf("a body over the entry bound was cached: %+v", st)
	}
}

func TestDeleteDropsEntries(t *testing.T) {
	c := newCache(t, Config{MaxBytes: 1 << 20})
	b := body(1000, 2)
	key := put(t, c, b)
	get(t, c, key, 0, -1)
	get(t, c, key, 10, 10)

	// A read that a Delete overlaps caches nothing.
	rc, err := c.Get(t.Context(), key, 20, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after Delete = %+v, want no entries", st)
	}
	if _, err := c.Get(t.Context(), key, 0, -1); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if _, err := c.Stat(t.Context(), key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after Delete = %v, want ErrNotFound", err)
	}
}

func TestCancelledHit(t *testing.T) {
	c := newCache(t, Config{MaxBytes: 1 << 20})
	key := put(t, c, body(1000, 3))
	get(t, c, key, 0, -1)
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := c.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading a hit after cancel = %v, want context.Canceled", err)
	}
}

// TestCorruptBodyNotCached reads a corrupted object through the cache over S3 twice: both
// reads report ErrCorrupt, so the first did not cache the bad bytes.
func TestCorruptBodyNotCached(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	store, err := s3.New(ctx, s3.Config{
		Endpoint: srv.Endpoint, Bucket: "cache-test", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Insecure: true, Addressing: s3.AddressingPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(store, Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b := body(5000, 4)
	key := put(t, c, b)
	bad := bytes.Clone(b)
	bad[100] ^= 0xff
	if err := os.WriteFile(srv.ObjectPath(store.Bucket(), store.ObjectName(key)), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		rc, err := c.Get(ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("Get #%d: %v", i+1, err)
		}
		_, err = io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, blobstore.ErrCorrupt) {
			t.Fatalf("read #%d of a corrupt body = %v, want ErrCorrupt", i+1, err)
		}
	}
	checkStats(t, c, 0, 2)
}

func TestConfig(t *testing.T) {
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{{}, {MaxBytes: -1}, {MaxBytes: 100, MaxEntryBytes: 101}, {MaxBytes: 100, MaxEntryBytes: -1}} {
		if _, err := New(store, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
