package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/replication"
)

// Layouts of the data directory a restore builds.
const (
	// ForServe is a `strata serve --data DIR` directory: DIR/fsm, DIR/raft/raft, and the
	// bodies in DIR/blobs unless they go to S3.
	ForServe = "serve"
	// ForMetadata is the first node of a new cluster (`strata metadata --data DIR`):
	// DIR/fsm and DIR/raft; the other nodes join it.
	ForMetadata = "metadata"
)

// embeddedNodeID is the Raft ID of `strata serve`'s node (embedded.Start).
const embeddedNodeID = "embedded"

// maxBlobListLine bounds a line of blobs.txt.
const maxBlobListLine = 1024

// RestoreConfig configures a restore.
type RestoreConfig struct {
	Source Target
	ID     string // the backup; "" for the one LATEST names
	// DataDir is the new data directory; it must not hold metadata or Raft state.
	DataDir string
	Layout  string // ForServe or ForMetadata
	// NodeID and RaftAddr name the restored node in its Raft configuration (ForMetadata:
	// its --node-id and --raft-advertise; ForServe uses the embedded node's).
	NodeID   string
	RaftAddr string
	// Blobs is where the bodies go: the new installation's blob store.
	Blobs       blobstore.Store
	TempDir     string // where the list of body keys is spooled; os.TempDir() if ""
	Concurrency int
	Logger      *slog.Logger
	Progress    io.Writer
}

// Restore builds a data directory from a backup and copies its bodies to cfg.Blobs.
func Restore(ctx context.Context, cfg RestoreConfig) (*Manifest, error) {
	withDefaults(&cfg.Concurrency, &cfg.Logger, &cfg.Progress)
	raftData := cfg.DataDir
	switch cfg.Layout {
	case ForServe:
		raftData = filepath.Join(cfg.DataDir, "raft")
		cfg.NodeID = embeddedNodeID
		if cfg.RaftAddr == "" {
			cfg.RaftAddr = "127.0.0.1:0"
		}
	case ForMetadata:
		if cfg.NodeID == "" || cfg.RaftAddr == "" {
			return nil, errors.New("restore for a metadata node needs its node ID and Raft address")
		}
	default:
		return nil, fmt.Errorf("restore layout %q: want %q or %q", cfg.Layout, ForServe, ForMetadata)
	}
	// The search index too (DataDir/searchindex, searchindex/fsmfeed): one kept from a
	// later state would trust postings and UIDs the restored mailboxes went back before,
	// and miss the new messages that take those UIDs again (found in review).
	for _, dir := range []string{filepath.Join(cfg.DataDir, "fsm"), filepath.Join(raftData, "raft"), filepath.Join(cfg.DataDir, "searchindex")} {
		if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("restore into %s: %s is not empty; restore builds a new data directory", cfg.DataDir, dir)
		}
	}
	m, err := readManifest(ctx, cfg.Source, cfg.ID)
	if err != nil {
		return nil, err
	}
	keys, err := readBlobList(ctx, cfg.Source, m, cfg.TempDir)
	if err != nil {
		return nil, err
	}
	defer keys.close()
	if err := restoreMetadata(ctx, cfg, m, raftData); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "metadata of backup %s restored into %s (raft index %d, %d messages)\n", m.ID, cfg.DataDir, m.AppliedIndex, m.Messages)
	if _, err := copyBlobs(ctx, keys, cfg.Source.Blobs(), cfg.Blobs, cfg.Concurrency, cfg.Progress); err != nil {
		return nil, err
	}
	return m, nil
}

// readManifest reads backup id's manifest (LATEST's when id is "").
func readManifest(ctx context.Context, source Target, id string) (*Manifest, error) {
	if id == "" {
		rc, err := source.ReadFile(ctx, latestName)
		if err != nil {
			return nil, fmt.Errorf("no complete backup in %s: %w", source, err)
		}
		line, err := io.ReadAll(io.LimitReader(rc, 64))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s in %s: %w", latestName, source, err)
		}
		id = strings.TrimSpace(string(line))
	}
	if !ValidID(id) {
		return nil, fmt.Errorf("invalid backup id %q", id)
	}
	rc, err := source.ReadFile(ctx, id+"/"+manifestName)
	if err != nil {
		return nil, fmt.Errorf("backup %s in %s has no manifest (incomplete?): %w", id, source, err)
	}
	defer rc.Close()
	m, err := ParseManifest(rc)
	if err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, fmt.Errorf("backup %s: its manifest names %s", id, m.ID)
	}
	return m, nil
}

// readBlobList spools and checks the backup's list of body keys.
func readBlobList(ctx context.Context, source Target, m *Manifest, tempDir string) (*keyList, error) {
	rc, err := source.ReadFile(ctx, m.ID+"/"+blobListName)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	defer rc.Close()
	keys, err := spoolKeyList(rc, tempDir)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %s: %w", m.ID, blobListName, err)
	}
	sum, err := keys.finish()
	if err == nil && (sum != m.BlobListSHA256 || keys.n != m.Blobs) {
		err = fmt.Errorf("backup %s: %s does not match the manifest's checksum and count", m.ID, blobListName)
	}
	if err != nil {
		keys.close()
		return nil, err
	}
	return keys, nil
}

// restoreMetadata restores the snapshot into DataDir/fsm, checking it against the
// manifest, and seeds the Raft state in raftData from it.
func restoreMetadata(ctx context.Context, cfg RestoreConfig, m *Manifest, raftData string) (err error) {
	rc, err := cfg.Source.ReadFile(ctx, m.ID+"/"+snapshotName)
	if err != nil {
		return fmt.Errorf("backup %s: %w", m.ID, err)
	}
	defer rc.Close()
	fsmDir := filepath.Join(cfg.DataDir, "fsm")
	if err := os.MkdirAll(fsmDir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer func() {
		if err != nil { // no half-built data directory: both were empty or absent
			os.RemoveAll(fsmDir)
			os.RemoveAll(filepath.Join(raftData, "raft"))
		}
	}()
	fsm, err := metadata.OpenFSM(fsmDir, cfg.Logger)
	if err != nil {
		return fmt.Errorf("restore: open metadata state: %w", err)
	}
	defer func() {
		if cerr := fsm.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("restore: close metadata state: %w", cerr)
		}
	}()
	// FSM.Restore checks the stream's own trailer; the manifest's size and checksum are
	// checked once the stream is read to its end.
	sum := sha256.New()
	checked := &checkedReader{r: io.TeeReader(rc, sum), sum: sum, want: m.SnapshotSHA256, size: m.SnapshotBytes}
	if err := fsm.Restore(io.NopCloser(checked)); err != nil {
		return fmt.Errorf("restore backup %s: %w", m.ID, err)
	}
	if _, err := io.Copy(io.Discard, checked); err != nil {
		return fmt.Errorf("restore backup %s: %w", m.ID, err)
	}
	if got := fsm.AppliedIndex(); got != m.AppliedIndex {
		return fmt.Errorf("restore backup %s: the snapshot holds raft index %d, the manifest says %d", m.ID, got, m.AppliedIndex)
	}
	if err := replication.Seed(raftData, cfg.NodeID, cfg.RaftAddr, fsm); err != nil {
		return fmt.Errorf("restore backup %s: %w", m.ID, err)
	}
	return nil
}

// checkedReader fails the read that reaches the end of a stream whose size or SHA-256 is
// not the expected one.
type checkedReader struct {
	r    io.Reader
	sum  interface{ Sum([]byte) []byte }
	want string
	size uint64
	n    uint64
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	if errors.Is(err, io.EOF) && (c.n != c.size || hex.EncodeToString(c.sum.Sum(nil)) != c.want) {
		return n, fmt.Errorf("the snapshot does not match the manifest (%d bytes read, %d expected, or checksum differs)", c.n, c.size)
	}
	return n, err
}
