// Package storetest is the conformance suite that every blobstore.Store engine passes. An
// engine's tests call Run with a constructor of fresh, empty stores.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
)

// opTimeout bounds each test's store calls, so a hung engine fails instead of stalling.
const opTimeout = 2 * time.Minute

// LargeBodySize is the size of the body that the LargeBody test streams through a store.
const LargeBodySize = 20 << 20

// Run runs the conformance suite against stores made by newStore. Each call of newStore
// must return a new, empty store and arrange its cleanup with t.Cleanup. Subtests run in
// parallel.
func Run(t *testing.T, newStore func(t *testing.T) blobstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blobstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyBody", testEmptyBody},
		{"Ranges", testRanges},
		{"NegativeOffset", testNegativeOffset},
		{"NotFound", testNotFound},
		{"DedupPut", testDedupPut},
		{"ReadsExactlySize", testReadsExactlySize},
		{"TenantsApart", testTenantsApart},
		{"ShortBody", testShortBody},
		{"NegativeSize", testNegativeSize},
		{"DigestMismatch", testDigestMismatch},
		{"SpooledBody", testSpooledBody},
		{"ConcurrentPutsSameKey", testConcurrentPutsSameKey},
		{"ConcurrentPutsManyKeys", testConcurrentPutsManyKeys},
		{"InvalidKeys", testInvalidKeys},
		{"CancelledContext", testCancelledContext},
		{"CancelDuringPut", testCancelDuringPut},
		{"CancelDuringGet", testCancelDuringGet},
		{"LargeBody", testLargeBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// body returns n pseudo-random bytes determined by seed.
func body(n int, seed uint64) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(generated(int64(n), seed), b); err != nil {
		panic(err) // a ChaCha8 stream never ends early
	}
	return b
}

func keyOf(tenant string, b []byte) string {
	return blobstore.Key(tenant, sha256.Sum256(b))
}

func mustPut(t *testing.T, s blobstore.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(testContext(t), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", key, len(b), err)
	}
}

func mustGet(t *testing.T, s blobstore.Store, key string, offset, length int64) []byte {
	t.Helper()
	rc, err := s.Get(testContext(t), key, offset, length)
	if err != nil {
		t.Fatalf("Get(%s, %d, %d): %v", key, offset, length, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s, %d, %d): read: %v", key, offset, length, err)
	}
	return got
}

func checkAbsent(t *testing.T, s blobstore.Store, key string) {
	t.Helper()
	if info, err := s.Stat(testContext(t), key); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat(%s) = %+v, %v; want ErrNotFound", key, info, err)
	}
}

func checkBody(t *testing.T, s blobstore.Store, key string, want []byte) {
	t.Helper()
	info, err := s.Stat(testContext(t), key)
	if err != nil {
		t.Fatalf("Stat(%s): %v", key, err)
	}
	if info.Size != int64(len(want)) {
		t.Fatalf("Stat(%s).Size = %d, want %d", key, info.Size, len(want))
	}
	if got := mustGet(t, s, key, 0, -1); !bytes.Equal(got, want) {
		t.Fatalf("Get(%s) returned %d bytes that differ from the %d put", key, len(got), len(want))
	}
}

func testRoundTrip(t *testing.T, s blobstore.Store) {
	ctx := testContext(t)
	b := body(100<<10, 1)
	key := keyOf("acme", b)
	checkAbsent(t, s, key)
	mustPut(t, s, key, b)
	checkBody(t, s, key, b)
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkAbsent(t, s, key)
	if _, err := s.Get(ctx, key, 0, -1); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	mustPut(t, s, key, b)
	checkBody(t, s, key, b)
}

func testEmptyBody(t *testing.T, s blobstore.Store) {
	key := keyOf("acme", nil)
	mustPut(t, s, key, nil)
	checkBody(t, s, key, nil)
	if got := mustGet(t, s, key, 5, 10); len(got) != 0 {
		t.Fatalf("Get(empty, 5, 10) = %d bytes, want 0", len(got))
	}
}

func testRanges(t *testing.T, s blobstore.Store) {
	const size = 300 << 10
	b := body(size, 2)
	key := keyOf("acme", b)
	mustPut(t, s, key, b)
	for _, r := range []struct{ offset, length, wantFrom, wantTo int64 }{
		{0, -1, 0, size},
		{0, 0, 0, 0},
		{0, 1, 0, 1},
		{0, 4096, 0, 4096},
		{0, size, 0, size},
		{0, size + 1, 0, size},
		{1, -1, 1, size},
		{150 << 10, 4096, 150 << 10, 150<<10 + 4096},
		{150 << 10, -1, 150 << 10, size},
		{150 << 10, 0, 150 << 10, 150 << 10},
		{size - 10, 100, size - 10, size},
		{size - 1, -1, size - 1, size},
		{size, -1, size, size},
		{size, 10, size, size},
		{size + 100, 10, size, size},
		{size + 100, -1, size, size},
	} {
		got := mustGet(t, s, key, r.offset, r.length)
		if want := b[r.wantFrom:r.wantTo]; !bytes.Equal(got, want) {
			t.Errorf("Get(offset %d, length %d) = %d bytes, want bytes %d to %d", r.offset, r.length, len(got), r.wantFrom, r.wantTo)
		}
	}
}

func testNegativeOffset(t *testing.T, s blobstore.Store) {
	b := body(1000, 3)
	key := keyOf("acme", b)
	mustPut(t, s, key, b)
	if rc, err := s.Get(testContext(t), key, -1, 10); err == nil {
		rc.Close()
		t.Fatal("Get with offset -1 succeeded")
	}
}

func testNotFound(t *testing.T, s blobstore.Store) {
	ctx := testContext(t)
	key := keyOf("acme", []byte("never stored"))
	if _, err := s.Get(ctx, key, 0, -1); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, key, 10, 10); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Get(missing, 10, 10) = %v, want ErrNotFound", err)
	}
	checkAbsent(t, s, key)
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

func testDedupPut(t *testing.T, s blobstore.Store) {
	b := body(64<<10, 4)
	key := keyOf("acme", b)
	mustPut(t, s, key, b)
	for range 3 {
		mustPut(t, s, key, b)
	}
	checkBody(t, s, key, b)
}

// testReadsExactlySize checks that Put leaves whatever follows the body in its reader, as it
// must when the reader is a client connection, both on a first Put and on a dedup hit.
func testReadsExactlySize(t *testing.T, s blobstore.Store) {
	b := body(200<<10, 5)
	trailer := []byte("a000 NOOP\r\n")
	key := keyOf("acme", b)
	for i := range 2 {
		r := bytes.NewReader(append(append([]byte(nil), b...), trailer...))
		if err := s.Put(testContext(t), key, r, int64(len(b))); err != nil {
			t.Fatalf("Put #%d: %v", i+1, err)
		}
		if r.Len() < len(trailer) {
			t.Fatalf("Put #%d read %d bytes past the body", i+1, len(trailer)-r.Len())
		}
	}
	checkBody(t, s, key, b)
}

// testSpooledBody puts bodies from a spool's HashedReader, whose sum the store may trust
// instead of hashing again, and checks that only a whole unread one under its own key is
// taken on trust: under another key it fails with ErrDigestMismatch, and one read partly
// is hashed like any reader.
func testSpooledBody(t *testing.T, s blobstore.Store) {
	ctx := testContext(t)
	b := body(100<<10, 11)
	spool, err := blobstore.NewSpool(t.TempDir(), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	if _, err := spool.Write(b); err != nil {
		t.Fatal(err)
	}
	key := keyOf("acme", b)
	if err := s.Put(ctx, key, spool.HashedReader(), spool.Size()); err != nil {
		t.Fatalf("Put from the spool: %v", err)
	}
	checkBody(t, s, key, b)

	other := keyOf("acme", body(100<<10, 12))
	if err := s.Put(ctx, other, spool.HashedReader(), spool.Size()); !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Errorf("Put from the spool under another body's key = %v, want ErrDigestMismatch", err)
	}
	checkAbsent(t, s, other)

	r := spool.HashedReader()
	if _, err := io.CopyN(io.Discard, r, 1000); err != nil {
		t.Fatal(err)
	}
	rest := keyOf("acme", b[1000:])
	if err := s.Put(ctx, rest, r, int64(len(b)-1000)); err != nil {
		t.Fatalf("Put of the rest of a spool's reader: %v", err)
	}
	checkBody(t, s, rest, b[1000:])
}

func testTenantsApart(t *testing.T, s blobstore.Store) {
	ctx := testContext(t)
	b := body(10<<10, 6)
	acme, globex := keyOf("acme", b), keyOf("globex", b)
	mustPut(t, s, acme, b)
	checkAbsent(t, s, globex)
	mustPut(t, s, globex, b)
	if err := s.Delete(ctx, acme); err != nil {
		t.Fatalf("Delete(%s): %v", acme, err)
	}
	checkAbsent(t, s, acme)
	checkBody(t, s, globex, b)
}

func testShortBody(t *testing.T, s blobstore.Store) {
	b := body(100<<10, 7)
	key := keyOf("acme", b)
	err := s.Put(testContext(t), key, bytes.NewReader(b[:len(b)-1]), int64(len(b)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Put of a body one byte short = %v, want io.ErrUnexpectedEOF", err)
	}
	checkAbsent(t, s, key)
	mustPut(t, s, key, b)
	checkBody(t, s, key, b)
}

func testNegativeSize(t *testing.T, s blobstore.Store) {
	key := keyOf("acme", nil)
	if err := s.Put(testContext(t), key, bytes.NewReader(nil), -1); err == nil {
		t.Fatal("Put with size -1 succeeded")
	}
	checkAbsent(t, s, key)
}

func testDigestMismatch(t *testing.T, s blobstore.Store) {
	b, other := body(50<<10, 8), body(50<<10, 9)
	key := keyOf("acme", b)
	err := s.Put(testContext(t), key, bytes.NewReader(other), int64(len(other)))
	if !errors.Is(err, blobstore.ErrDigestMismatch) {
		t.Fatalf("Put of other bytes under a key = %v, want ErrDigestMismatch", err)
	}
	checkAbsent(t, s, key)
}

func testConcurrentPutsSameKey(t *testing.T, s blobstore.Store) {
	const writers = 8
	b := body(1<<20, 10)
	key := keyOf("acme", b)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			errs <- s.Put(testContext(t), key, bytes.NewReader(b), int64(len(b)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Put: %v", err)
		}
	}
	checkBody(t, s, key, b)
}

func testConcurrentPutsManyKeys(t *testing.T, s blobstore.Store) {
	const writers = 16
	bodies := make([][]byte, writers)
	for i := range bodies {
		bodies[i] = body(8<<10+i, uint64(100+i))
	}
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for i, b := range bodies {
		tenant := []string{"acme", "globex"}[i%2]
		wg.Go(func() {
			errs <- s.Put(testContext(t), keyOf(tenant, b), bytes.NewReader(b), int64(len(b)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Put: %v", err)
		}
	}
	for i, b := range bodies {
		checkBody(t, s, keyOf([]string{"acme", "globex"}[i%2], b), b)
	}
}

// InvalidKeys are keys that every store rejects with blobstore.ErrInvalidKey.
func InvalidKeys() []string {
	digest := fmt.Sprintf("%x", sha256.Sum256([]byte("x")))
	return []string{
		"",
		"t/",
		"t/acme",
		"t/acme/",
		"acme/" + digest,
		"x/acme/" + digest,
		"/t/acme/" + digest,
		"t//" + digest,
		"t/./" + digest,
		"t/../" + digest,
		"t/../../" + digest,
		"t/acme/../" + digest,
		"t/acme/" + digest + "/",
		"t/acme/" + digest + "/x",
		"t/acme/" + digest[:63],
		"t/acme/" + digest + "0",
		"t/acme/" + strings.ToUpper(digest),
		"t/acme/" + digest[:62] + "zz",
		"t/ACME/" + digest,
		"t/ac me/" + digest,
		"t/ac\x00me/" + digest,
		"t/a/b/" + digest,
		"t/a\\b/" + digest,
		"t/" + strings.Repeat("a", 65) + "/" + digest,
	}
}

func testInvalidKeys(t *testing.T, s blobstore.Store) {
	ctx := testContext(t)
	for _, key := range InvalidKeys() {
		if err := s.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, blobstore.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if rc, err := s.Get(ctx, key, 0, -1); !errors.Is(err, blobstore.ErrInvalidKey) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, blobstore.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, blobstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

func testCancelledContext(t *testing.T, s blobstore.Store) {
	stored := body(10<<10, 11)
	storedKey := keyOf("acme", stored)
	mustPut(t, s, storedKey, stored)
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()

	b := body(10<<10, 12)
	key := keyOf("acme", b)
	if err := s.Put(ctx, key, bytes.NewReader(b), int64(len(b))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v, want context.Canceled", err)
	}
	checkAbsent(t, s, key)
	if rc, err := s.Get(ctx, storedKey, 0, -1); err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("reading a Get with a cancelled context = %v, want context.Canceled", err)
		}
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, storedKey); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, storedKey); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled context = %v, want context.Canceled", err)
	}
	checkBody(t, s, storedKey, stored)
}

// cancellingReader cancels a context once it has handed out after bytes.
type cancellingReader struct {
	r      io.Reader
	after  int
	read   int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.after {
		c.cancel()
	}
	return n, err
}

func testCancelDuringPut(t *testing.T, s blobstore.Store) {
	b := body(8<<20, 13)
	key := keyOf("acme", b)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	r := &cancellingReader{r: bytes.NewReader(b), after: 1 << 20, cancel: cancel}
	if err := s.Put(ctx, key, r, int64(len(b))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put cancelled after %d bytes = %v, want context.Canceled", r.read, err)
	}
	if r.read == len(b) {
		t.Errorf("Put read the whole body after its context was cancelled")
	}
	checkAbsent(t, s, key)
	mustPut(t, s, key, b)
	checkBody(t, s, key, b)
}

func testCancelDuringGet(t *testing.T, s blobstore.Store) {
	b := body(8<<20, 14)
	key := keyOf("acme", b)
	mustPut(t, s, key, b)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 4096)); err != nil {
		t.Fatalf("reading the first bytes: %v", err)
	}
	cancel()
	n, err := io.Copy(io.Discard, rc)
	if err == nil {
		t.Fatalf("reading after cancel returned all %d remaining bytes without error", n)
	}
}

// generated returns a reader of n deterministic pseudo-random bytes that never holds them all.
func generated(n int64, seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

func testLargeBody(t *testing.T, s blobstore.Store) {
	const seed = 15
	h := sha256.New()
	if _, err := io.Copy(h, generated(LargeBodySize, seed)); err != nil {
		t.Fatal(err)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	key := blobstore.Key("acme", sum)
	if err := s.Put(testContext(t), key, generated(LargeBodySize, seed), LargeBodySize); err != nil {
		t.Fatalf("Put of %d bytes: %v", LargeBodySize, err)
	}
	info, err := s.Stat(testContext(t), key)
	if err != nil || info.Size != LargeBodySize {
		t.Fatalf("Stat = %+v, %v; want size %d", info, err, LargeBodySize)
	}
	rc, err := s.Get(testContext(t), key, 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	h.Reset()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != LargeBodySize {
		t.Fatalf("reading the body: %d bytes, %v", n, err)
	}
	var got [sha256.Size]byte
	h.Sum(got[:0])
	if got != sum {
		t.Fatal("the body read back hashes differently")
	}

	const offset, length = LargeBodySize - 5000, 4096
	want := make([]byte, length)
	tail := generated(LargeBodySize, seed)
	if _, err := io.CopyN(io.Discard, tail, offset); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tail, want); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, key, offset, length); !bytes.Equal(got, want) {
		t.Fatalf("Get(%d, %d) returned %d bytes that differ from the body", offset, length, len(got))
	}
}
