package blobstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/fs"
	"github.com/strata-mail/strata/blobstore/storetest"
)

func TestKey(t *testing.T) {
	sum := sha256.Sum256([]byte("hello"))
	const want = "t/acme/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if got := blobstore.Key("acme", sum); got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	tenant, parsed, ok := blobstore.ParseKey(want)
	if !ok || tenant != "acme" || parsed != sum {
		t.Fatalf("ParseKey(%q) = %q, %x, %v", want, tenant, parsed, ok)
	}
}

func TestValidKey(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	for _, tenant := range []string{"a", "acme", "example.com", "a_b-c.d", "0", "...", ".a", strings.Repeat("z", 64)} {
		if key := blobstore.Key(tenant, sum); !blobstore.ValidKey(key) {
			t.Errorf("ValidKey(%q) = false, want true", key)
		}
	}
	for _, key := range storetest.InvalidKeys() {
		if blobstore.ValidKey(key) {
			t.Errorf("ValidKey(%q) = true, want false", key)
		}
		if tenant, _, ok := blobstore.ParseKey(key); ok {
			t.Errorf("ParseKey(%q) = %q, ok", key, tenant)
		}
	}
}

// TestReachable: a store that answers is reachable, whether or not the probe's key holds
// a body; one that fails is not, with its error.
func TestReachable(t *testing.T) {
	dir := t.TempDir()
	store, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobstore.Reachable(context.Background(), store); err != nil {
		t.Fatalf("fs store: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := blobstore.Reachable(ctx, store); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v, want %v", err, context.Canceled)
	}
}
