package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
)

// Store holds message bodies under content-addressed keys. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores size bytes read from r under key and returns only once they are durable.
	// It reads exactly size bytes and never past them, so r may be a stream that carries more
	// (an IMAP connection). Fewer bytes fail with io.ErrUnexpectedEOF; bytes that do not hash
	// to the key's digest fail with ErrDigestMismatch. A failed Put leaves no object behind.
	// If key already exists the call is a dedup hit: it drains nothing more than needed and
	// returns nil.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns length bytes starting at offset (length < 0: to the end). A range that
	// runs past the end is cut at the end; an offset at or past the end gives no bytes. The
	// reader fails once ctx is done. ErrNotFound if absent.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat returns the size of the body under key. ErrNotFound if absent.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the body under key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Stager is a Store that can make a body readable before it is durable, so that the write
// that makes it durable can run beside the metadata commit that references it
// (frontend/ingest). The fs store is one; a store whose bodies a crash of the machine
// could lose after Stage must be paired with a recovery that finds the metadata
// referencing them (embedded's staging recovery).
type Stager interface {
	Store
	// Stage stores size bytes read from r under key like Put, and returns once they can be
	// read (Get, Stat) by this process and any other, which may be before they are
	// durable: Staged.Sync makes them durable. A failed Stage leaves no object behind.
	Stage(ctx context.Context, key string, r io.Reader, size int64) (Staged, error)
	// SyncStaged makes every body staged before the call durable.
	SyncStaged(ctx context.Context) error
}

// Staged is a body stored by Stager.Stage.
type Staged interface {
	// Sync returns once the body is durable. It may be called more than once, and
	// concurrently; every call returns the first one's outcome.
	Sync() error
}

// Info describes a stored body.
type Info struct {
	Size int64
}

var (
	// ErrNotFound is returned (wrapped) by Get and Stat for a key that holds no body.
	ErrNotFound = errors.New("blobstore: body not found")
	// ErrInvalidKey is returned (wrapped) for a key that fails ValidKey.
	ErrInvalidKey = errors.New("blobstore: invalid key")
	// ErrDigestMismatch is returned (wrapped) by Put when the bytes do not hash to the key.
	ErrDigestMismatch = errors.New("blobstore: body does not match its key")
	// ErrCorrupt is returned (wrapped) by a reader from Get, at the end of the body, when the
	// stored bytes do not hash to the key's digest: corruption is reported, never served
	// silently.
	ErrCorrupt = errors.New("blobstore: stored body is corrupt")
	// ErrUnavailable is returned (wrapped) when the backing storage cannot be reached, does not
	// answer in time or fails on its side (an S3 5xx). The caller may retry later; IMAP answers
	// NO [UNAVAILABLE] (RFC 5530 3).
	ErrUnavailable = errors.New("blobstore: storage unavailable")
)

const (
	keyPrefix    = "t/"
	maxTenantLen = 64
)

// Key returns the content-addressed key of a body of tenant: "t/<tenant>/<sha256 hex>".
// The result is only valid (ValidKey) if tenant is a valid tenant name.
func Key(tenant string, sum [sha256.Size]byte) string {
	return keyPrefix + tenant + "/" + hex.EncodeToString(sum[:])
}

// ValidKey reports whether key has the shape Key produces: "t/<tenant>/<sha256 hex>" with a
// tenant of 1 to 64 characters from [a-z0-9._-], other than "." and "..", and 64 lowercase hex
// digits. Stores reject every other key, so no key escapes their root.
func ValidKey(key string) bool {
	_, _, ok := ParseKey(key)
	return ok
}

// ParseKey splits a valid key into its tenant and digest; ok is false if !ValidKey(key).
func ParseKey(key string) (tenant string, sum [sha256.Size]byte, ok bool) {
	rest, found := strings.CutPrefix(key, keyPrefix)
	if !found {
		return "", sum, false
	}
	tenant, digest, found := strings.Cut(rest, "/")
	if !found || !validTenant(tenant) || len(digest) != 2*sha256.Size {
		return "", sum, false
	}
	for i := 0; i < len(digest); i++ {
		c := digest[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", sum, false
		}
	}
	if _, err := hex.Decode(sum[:], []byte(digest)); err != nil {
		return "", sum, false
	}
	return tenant, sum, true
}

// validTenant reports whether tenant is usable as one path segment of a key.
func validTenant(tenant string) bool {
	if len(tenant) == 0 || len(tenant) > maxTenantLen || tenant == "." || tenant == ".." {
		return false
	}
	for i := 0; i < len(tenant); i++ {
		c := tenant[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// probeKey is the key Reachable asks for: the content hash of a fixed text under a tenant
// name that says what it is for. Found or not, the answer shows the store reachable.
var probeKey = Key("strata-readiness", sha256.Sum256([]byte("strata readiness probe")))

// Reachable reports whether s answers: it asks for the size of a body that is not stored
// (one small request, a HEAD to S3) and takes "not found" as the answer it expects. It
// returns the store's error otherwise (ErrUnavailable when it cannot be reached in time),
// or ctx's. Readiness probes call it (internal/health).
func Reachable(ctx context.Context, s Store) error {
	_, err := s.Stat(ctx, probeKey)
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
