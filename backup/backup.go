package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Defaults of Config.
const (
	DefaultHoldTTL     = 10 * time.Minute
	DefaultConcurrency = 16
	// callTimeout bounds each hold call and each body's copy.
	callTimeout = 5 * time.Minute
)

// Config configures a backup.
type Config struct {
	// Conn reaches the Backup service on the metadata leader (a metaclient, which follows
	// NOT_LEADER, or `strata serve`'s admin endpoint).
	Conn grpc.ClientConnInterface
	// Source is the blob store the installation keeps its bodies in.
	Source blobstore.Store
	Target Target
	// HoldTTL is how long the hold lasts without renewal (renewed every third of it).
	HoldTTL     time.Duration
	Concurrency int    // bodies copied at once
	TempDir     string // where the snapshot and its blob keys are spooled before they are stored; os.TempDir() if ""
	Logger      *slog.Logger
	// Progress, when set, gets a line per phase and every 10,000 bodies.
	Progress io.Writer
}

// Run takes a backup into cfg.Target and returns its manifest.
func Run(ctx context.Context, cfg Config) (*Manifest, error) {
	if cfg.HoldTTL <= 0 {
		cfg.HoldTTL = DefaultHoldTTL
	}
	withDefaults(&cfg.Concurrency, &cfg.Logger, &cfg.Progress)
	started := time.Now().UTC()
	m := &Manifest{Version: ManifestVersion, ID: started.Format("20060102T150405Z"), Started: started}
	if err := pickFreeID(ctx, cfg.Target, m); err != nil {
		return nil, err
	}
	client := metadatapb.NewBackupClient(cfg.Conn)

	// The hold first: the snapshot's bodies must not be collected while they are copied.
	holdID := "backup-" + m.ID + "-" + randomHex(4)
	if err := hold(ctx, client, holdID, cfg.HoldTTL); err != nil {
		return nil, fmt.Errorf("set the backup's hold on blob collection: %w", err)
	}
	holdCtx, stopHold := context.WithCancel(ctx)
	renewErr := make(chan error, 1)
	go func() { renewErr <- renewHold(holdCtx, client, holdID, cfg.HoldTTL) }()
	defer func() {
		stopHold()
		<-renewErr
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		if err := hold(rctx, client, holdID, 0); err != nil {
			cfg.Logger.Warn("release the backup's hold on blob collection; it expires by itself", "hold", holdID, "ttl", cfg.HoldTTL, "err", err)
		}
	}()

	spool, keys, err := fetchSnapshot(ctx, client, cfg.TempDir, m)
	if err != nil {
		return nil, err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	defer keys.close()
	fmt.Fprintf(cfg.Progress, "snapshot at raft index %d: %d accounts, %d mailboxes, %d messages, %d bodies, %d bytes (%v)\n",
		m.AppliedIndex, m.Accounts, m.Mailboxes, m.Messages, m.Blobs, m.SnapshotBytes, time.Since(started).Round(time.Millisecond))
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind snapshot spool: %w", err)
	}
	if err := cfg.Target.WriteFile(ctx, m.ID+"/"+snapshotName, spool, int64(m.SnapshotBytes)); err != nil {
		return nil, fmt.Errorf("store the snapshot: %w", err)
	}
	if m.BlobListSHA256, err = keys.finish(); err != nil {
		return nil, err
	}
	listSize, err := keys.size()
	if err != nil {
		return nil, fmt.Errorf("spool the blob keys: %w", err)
	}
	if err := cfg.Target.WriteFile(ctx, m.ID+"/"+blobListName, keys.f, listSize); err != nil {
		return nil, fmt.Errorf("store the blob list: %w", err)
	}

	stats, err := copyBlobs(ctx, keys, cfg.Source, cfg.Target.Blobs(), cfg.Concurrency, cfg.Progress)
	if err != nil {
		return nil, err
	}
	select {
	case err := <-renewErr:
		// The hold lapsed while bodies were copied: one may have been collected first.
		renewErr <- err
		return nil, fmt.Errorf("the backup's hold on blob collection lapsed: %w", err)
	default:
	}
	m.BlobBytes, m.Copied, m.CopiedBytes = stats.bytes.Load(), stats.copied.Load(), stats.copiedBytes.Load()
	m.Finished = time.Now().UTC()
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := cfg.Target.WriteFile(ctx, m.ID+"/"+manifestName, bytes.NewReader(manifest), int64(len(manifest))); err != nil {
		return nil, fmt.Errorf("store the manifest: %w", err)
	}
	if err := cfg.Target.WriteFile(ctx, latestName, strings.NewReader(m.ID+"\n"), int64(len(m.ID)+1)); err != nil {
		return nil, fmt.Errorf("store %s: %w", latestName, err)
	}
	return m, nil
}

// pickFreeID suffixes m.ID when a backup with its ID exists in the target.
func pickFreeID(ctx context.Context, target Target, m *Manifest) error {
	base := m.ID
	for i := 1; i < 10000; i++ {
		rc, err := target.ReadFile(ctx, m.ID+"/"+manifestName)
		if errors.Is(err, blobstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("look for backup %s in %s: %w", m.ID, target, err)
		}
		rc.Close()
		m.ID = fmt.Sprintf("%s-%d", base, i)
	}
	return fmt.Errorf("too many backups named %s in %s", base, target)
}

func hold(ctx context.Context, client metadatapb.BackupClient, id string, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := client.HoldBlobs(ctx, &metadatapb.HoldBlobsRequest{RequestId: randomHex(16), HoldId: id, TtlNanos: int64(ttl)})
	return err
}

// renewHold renews the hold every third of its TTL until ctx ends; it returns the error
// of a renewal that failed until the hold would have expired.
func renewHold(ctx context.Context, client metadatapb.BackupClient, id string, ttl time.Duration) error {
	ticker := time.NewTicker(ttl / 3)
	defer ticker.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		err := hold(ctx, client, id, ttl)
		switch {
		case err == nil:
			lastOK = time.Now()
		case ctx.Err() != nil:
			return nil
		case time.Since(lastOK) > ttl*2/3:
			return err
		}
	}
}

// fetchSnapshot streams the snapshot into a spool file and the blob keys into a spooled
// list, filling m from the summary.
func fetchSnapshot(ctx context.Context, client metadatapb.BackupClient, tempDir string, m *Manifest) (*os.File, *keyList, error) {
	spool, err := os.CreateTemp(tempDir, "strata-backup-*.snap")
	if err != nil {
		return nil, nil, fmt.Errorf("spool the snapshot: %w", err)
	}
	keys, err := newKeyList(tempDir)
	if err != nil {
		spool.Close()
		os.Remove(spool.Name())
		return nil, nil, err
	}
	fail := func(err error) (*os.File, *keyList, error) {
		spool.Close()
		os.Remove(spool.Name())
		keys.close()
		return nil, nil, err
	}
	stream, err := client.Snapshot(ctx, &metadatapb.BackupSnapshotRequest{})
	if err != nil {
		return fail(fmt.Errorf("take the metadata snapshot: %w", err))
	}
	sum := sha256.New()
	w := io.MultiWriter(spool, sum)
	var n uint64
	var summary *metadatapb.BackupSummary
	for summary == nil {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return fail(errors.New("the metadata snapshot stream ended without its summary"))
		}
		if err != nil {
			return fail(fmt.Errorf("receive the metadata snapshot: %w", err))
		}
		switch part := chunk.GetPart().(type) {
		case *metadatapb.BackupChunk_Snapshot:
			if keys.n > 0 {
				return fail(errKeysAfterSummary)
			}
			if _, err := w.Write(part.Snapshot); err != nil {
				return fail(fmt.Errorf("spool the snapshot: %w", err))
			}
			n += uint64(len(part.Snapshot))
		case *metadatapb.BackupChunk_Blobs:
			for _, k := range part.Blobs.GetKeys() {
				if err := keys.add(k); err != nil {
					return fail(fmt.Errorf("the snapshot's blob keys: %w", err))
				}
			}
		case *metadatapb.BackupChunk_Summary:
			summary = part.Summary
		}
	}
	got := sum.Sum(nil)
	switch {
	case summary.GetSnapshotBytes() != n:
		return fail(fmt.Errorf("received %d snapshot bytes, the leader sent %d", n, summary.GetSnapshotBytes()))
	case !bytes.Equal(got, summary.GetSnapshotSha256()):
		return fail(errors.New("the snapshot received does not match the leader's checksum"))
	case summary.GetBlobs() != keys.n:
		return fail(fmt.Errorf("received %d blob keys, the leader sent %d", keys.n, summary.GetBlobs()))
	}
	if err := spool.Sync(); err != nil {
		return fail(fmt.Errorf("spool the snapshot: %w", err))
	}
	m.AppliedIndex, m.SnapshotBytes, m.SnapshotSHA256 = summary.GetAppliedIndex(), n, hex.EncodeToString(got)
	m.Accounts, m.Mailboxes, m.Messages, m.Blobs = summary.GetAccounts(), summary.GetMailboxes(), summary.GetMessages(), keys.n
	m.Taken = time.Unix(0, summary.GetTakenUnixNano()).UTC()
	return spool, keys, nil
}

type copyStats struct {
	bytes, copied, copiedBytes, done atomic.Uint64
}

// copyBlobs copies to dst every key that dst lacks, concurrency at a time. A key missing
// from src fails the copy, after every other key was tried.
func copyBlobs(ctx context.Context, keys *keyList, src, dst blobstore.Store, concurrency int, progress io.Writer) (*copyStats, error) {
	stats := &copyStats{}
	work := make(chan string)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				if err := copyBlob(ctx, key, src, dst, stats); err != nil {
					mu.Lock()
					if len(errs) < 10 {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
				if d := stats.done.Add(1); d%10000 == 0 {
					fmt.Fprintf(progress, "bodies: %d of %d (%d copied, %d bytes) in %v\n", d, keys.n, stats.copied.Load(), stats.copiedBytes.Load(), time.Since(start).Round(time.Millisecond))
				}
			}
		}()
	}
	readErr := keys.each(func(k string) bool {
		select {
		case work <- k:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if readErr != nil {
		return nil, readErr
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("copy bodies: %w", errors.Join(errs...))
	}
	fmt.Fprintf(progress, "bodies: %d referenced, %d copied (%d bytes), the others already in the target (%v)\n",
		keys.n, stats.copied.Load(), stats.copiedBytes.Load(), time.Since(start).Round(time.Millisecond))
	return stats, nil
}

func copyBlob(ctx context.Context, key string, src, dst blobstore.Store, stats *copyStats) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if info, err := dst.Stat(ctx, key); err == nil {
		stats.bytes.Add(uint64(info.Size))
		return nil
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return fmt.Errorf("body %s in the target: %w", key, err)
	}
	info, err := src.Stat(ctx, key)
	if err != nil {
		return fmt.Errorf("body %s, referenced by the snapshot: %w", key, err)
	}
	r, err := src.Get(ctx, key, 0, -1)
	if err != nil {
		return fmt.Errorf("body %s, referenced by the snapshot: %w", key, err)
	}
	defer r.Close()
	// Put checks that the bytes hash to the key: a corrupt source body fails here.
	if err := dst.Put(ctx, key, r, info.Size); err != nil {
		return fmt.Errorf("copy body %s: %w", key, err)
	}
	stats.bytes.Add(uint64(info.Size))
	stats.copied.Add(1)
	stats.copiedBytes.Add(uint64(info.Size))
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// withDefaults fills the settings Config and RestoreConfig share.
func withDefaults(concurrency *int, logger **slog.Logger, progress *io.Writer) {
	if *concurrency <= 0 {
		*concurrency = DefaultConcurrency
	}
	if *logger == nil {
		*logger = slog.Default()
	}
	if *progress == nil {
		*progress = io.Discard
	}
}
