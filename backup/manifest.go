// Package backup takes and restores backups of a Strata installation: `strata backup`
// and `strata restore` (docs/backup.md).
//
// A backup target (a directory, or s3://bucket/prefix) holds:
//
//	LATEST                  the ID of the newest complete backup
//	<id>/manifest.json      Manifest: version, time, counts, checksums
//	<id>/metadata.snap      the metadata: an FSM snapshot stream (metadata/snapshot.go)
//	<id>/blobs.txt          the keys of the bodies it references, sorted, one a line
//	blobs/t/<tenant>/<hex>  the bodies, shared by every backup in the target
//
// Invariants:
//
//   - The metadata is one consistent snapshot, taken online on the Raft leader at a
//     linearizable read point (metadata/backup.go): every write acknowledged before the
//     backup began is in it.
//   - Every body the snapshot references is in blobs/ before the manifest is written, and
//     the manifest is written before LATEST names it: a backup without a manifest is
//     incomplete and restore refuses it.
//   - Bodies are content-addressed: a body already in blobs/ (from an earlier backup) is
//     not copied again, and a body is stored only if its bytes hash to its key (Put checks
//     the digest), so blobs/ never holds a wrong body under a key.
//   - While the bodies are copied, a hold in the metadata (HoldBlobs) keeps the collector
//     from deleting any body orphaned since the backup began; the hold expires by itself
//     if the backup dies (HoldTTL), and is released when it ends.
//   - Restore verifies the snapshot's SHA-256 against the manifest and the stream's own
//     trailer before anything is written outside a new, empty data directory.
package backup

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"
)

// ManifestVersion is the version of the backup layout this package writes and reads.
const ManifestVersion = 1

// Names in a backup target.
const (
	latestName   = "LATEST"
	manifestName = "manifest.json"
	snapshotName = "metadata.snap"
	blobListName = "blobs.txt"
	blobsDir     = "blobs/"
)

// maxManifestBytes bounds a manifest read back.
const maxManifestBytes = 1 << 20

// Manifest describes one backup.
type Manifest struct {
	Version  int       `json:"version"`
	ID       string    `json:"id"`
	Started  time.Time `json:"started"`  // when `strata backup` began
	Taken    time.Time `json:"taken"`    // the leader's clock at the snapshot
	Finished time.Time `json:"finished"` // when the last body was copied

	AppliedIndex   uint64 `json:"applied_index"` // the Raft index the snapshot holds
	SnapshotBytes  uint64 `json:"snapshot_bytes"`
	SnapshotSHA256 string `json:"snapshot_sha256"`
	BlobListSHA256 string `json:"blob_list_sha256"`

	Accounts  uint64 `json:"accounts"`
	Mailboxes uint64 `json:"mailboxes"`
	Messages  uint64 `json:"messages"`
	Blobs     uint64 `json:"blobs"`      // bodies the snapshot references
	BlobBytes uint64 `json:"blob_bytes"` // their total size
	// Copied and CopiedBytes are the bodies this backup uploaded; the others were in the
	// target already.
	Copied      uint64 `json:"copied"`
	CopiedBytes uint64 `json:"copied_bytes"`
}

// idPattern is the shape of a backup ID: the UTC start time, and a suffix when two
// backups start in the same second.
var idPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9]{1,4})?$`)

// ValidID reports whether id can name a backup (and so a path in its target).
func ValidID(id string) bool { return idPattern.MatchString(id) }

func validSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

// ParseManifest reads and checks a manifest.
func ParseManifest(r io.Reader) (*Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("manifest is over %d bytes", maxManifestBytes)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	switch {
	case m.Version != ManifestVersion:
		return nil, fmt.Errorf("manifest version %d: this strata reads version %d", m.Version, ManifestVersion)
	case !ValidID(m.ID):
		return nil, fmt.Errorf("manifest: invalid backup id %q", m.ID)
	case m.AppliedIndex == 0:
		return nil, fmt.Errorf("manifest %s: no applied index", m.ID)
	case !validSHA256(m.SnapshotSHA256) || !validSHA256(m.BlobListSHA256):
		return nil, fmt.Errorf("manifest %s: invalid checksum", m.ID)
	}
	return &m, nil
}
