package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/strata-mail/strata/backup"
	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/s3"
)

// backupTimeout bounds a whole backup or restore unless --timeout says otherwise.
const backupTimeout = 24 * time.Hour

// addBackupBlobFlags are the blob store flags of backup and restore: the installation's
// store (the frontends' --blob and --s3-* flags, or --blob-dir), whose S3 endpoint and
// credentials also serve an s3:// backup location.
func addBackupBlobFlags(f *pflag.FlagSet, what string) {
	f.String("blob-dir", "", "directory of the message bodies with --blob fs (strata serve: DATA/blobs)")
	addBlobStoreFlags(f, what)
	f.Int("concurrency", backup.DefaultConcurrency, "bodies copied at once")
}

// backupLocation opens the location flag names, with the S3 flags' endpoint.
func backupLocation(ctx context.Context, f *pflag.FlagSet, flag string) (backup.Target, error) {
	spec, _ := f.GetString(flag)
	if spec == "" {
		return nil, fmt.Errorf("--%s is required", flag)
	}
	loc, err := backup.ParseLocation(spec)
	if err != nil {
		return nil, err
	}
	conn, err := s3ConnFromFlags(f)
	if err != nil {
		return nil, err
	}
	return backup.Open(ctx, loc, conn)
}

// s3ConnFromFlags is the S3 connection of the --s3-* flags, whatever --blob says; nil
// without --s3-endpoint.
func s3ConnFromFlags(f *pflag.FlagSet) (*s3.Config, error) {
	c := s3ConnectionFromFlags(f)
	if c.Endpoint == "" {
		return nil, nil
	}
	return &c, nil
}

// backupBlobStore opens the installation's blob store; --blob fs needs --blob-dir.
func backupBlobStore(ctx context.Context, f *pflag.FlagSet, logger *slog.Logger) (blobstore.Store, error) {
	dir, _ := f.GetString("blob-dir")
	if blob, _ := f.GetString("blob"); blob == "fs" && dir == "" {
		return nil, errors.New("--blob fs needs --blob-dir (strata serve keeps bodies in DATA/blobs), or give --blob s3 and the --s3-* flags")
	}
	if !f.Changed("blob-cache-size") {
		// Each body is read once: a cache would only hold copies.
		if err := f.Set("blob-cache-size", "-1"); err != nil {
			return nil, err
		}
	}
	return openBlobStoreFromFlags(ctx, f, dir, logger)
}

var backupVerb = adminVerb{
	use:   "backup --to DIR|s3://BUCKET/PREFIX",
	short: "Back up the metadata (online, through Raft) and the bodies it references",
	long: `backup takes a consistent snapshot of the metadata on the leader of the metadata group
(--etcd, or --server naming strata serve's admin endpoint or any metadata node), online,
and copies the bodies it references from the installation's blob store (--blob s3 and the
--s3-* flags of the frontends, or --blob fs --blob-dir DATA/blobs) to the backup location:
a directory, or s3://BUCKET/PREFIX on the same S3 service. Bodies are content-addressed
and shared by all backups in a location, so each backup copies only the new ones. While
they are copied a hold keeps blob collection from deleting them (docs/backup.md).`,
	deadline: backupTimeout,
	args:     cobra.NoArgs,
	flags: func(f *pflag.FlagSet) {
		f.String("to", "", "backup location: a directory or s3://BUCKET/PREFIX")
		f.Duration("hold-ttl", backup.DefaultHoldTTL, "how long the hold on blob collection outlives a backup that dies")
		f.String("temp-dir", "", "where the snapshot and its list of body keys are spooled before they are stored (default: the system's)")
		addBackupBlobFlags(f, "the directory --blob-dir")
	},
	service: func(ctx context.Context, conn grpc.ClientConnInterface, cmd *cobra.Command, _ []string) error {
		f := cmd.Flags()
		logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		target, err := backupLocation(ctx, f, "to")
		if err != nil {
			return err
		}
		source, err := backupBlobStore(ctx, f, logger)
		if err != nil {
			return err
		}
		ttl, _ := f.GetDuration("hold-ttl")
		concurrency, _ := f.GetInt("concurrency")
		tempDir, _ := f.GetString("temp-dir")
		start := time.Now()
		m, err := backup.Run(ctx, backup.Config{
			Conn: conn, Source: source, Target: target, HoldTTL: ttl, Concurrency: concurrency,
			TempDir: tempDir, Logger: logger, Progress: cmd.OutOrStdout(),
		})
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "backup %s in %s: %d messages, %d bodies (%d bytes, %d new), snapshot %d bytes, in %v\n",
			m.ID, target, m.Messages, m.Blobs, m.BlobBytes, m.Copied, m.SnapshotBytes, time.Since(start).Round(time.Millisecond))
		return nil
	},
}

var restoreVerb = adminVerb{
	use:   "restore --from DIR|s3://BUCKET/PREFIX --data DIR",
	short: "Build a new strata serve data directory, or a new cluster's first metadata node, from a backup",
	long: `restore reads a backup (the latest in --from, or --backup ID), checks it against its
manifest, and builds a new data directory from it: for 'strata serve --data DIR' (--for
serve, the default), or for the first metadata node of a new cluster (--for metadata with
--node-id and --raft-advertise as that node will be started with; start it first, then the
other nodes, which join it). It copies the backup's bodies into the new installation's
blob store: DIR/blobs with --blob fs and --for serve, else the --blob/--s3-* flags.`,
	args: cobra.NoArgs,
	flags: func(f *pflag.FlagSet) {
		f.String("from", "", "backup location: a directory or s3://BUCKET/PREFIX")
		f.String("backup", "", "backup ID (default: the latest complete one)")
		f.String("data", "", "the new data directory (must not hold metadata yet)")
		f.String("for", backup.ForServe, `what the data directory is for: "serve" or "metadata"`)
		f.String("node-id", "", "--for metadata: the node's --node-id")
		f.String("raft-advertise", "", "--for metadata: the Raft address the node advertises (its --raft-advertise, or --raft-listen)")
		addBackupBlobFlags(f, "--for serve: DATA/blobs; else --blob-dir")
		f.Duration("timeout", backupTimeout, "give up after this long")
	},
	local: func(cmd *cobra.Command, _ []string) error {
		f := cmd.Flags()
		timeout, _ := f.GetDuration("timeout")
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		dataDir, _ := f.GetString("data")
		layout, _ := f.GetString("for")
		if dataDir == "" {
			return errors.New("--data is required")
		}
		source, err := backupLocation(ctx, f, "from")
		if err != nil {
			return err
		}
		blobDir, _ := f.GetString("blob-dir")
		if blob, _ := f.GetString("blob"); blob == "fs" && blobDir == "" && layout == backup.ForServe {
			if err := f.Set("blob-dir", filepath.Join(dataDir, "blobs")); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dataDir, err)
		}
		blobs, err := backupBlobStore(ctx, f, logger)
		if err != nil {
			return err
		}
		id, _ := f.GetString("backup")
		nodeID, _ := f.GetString("node-id")
		raftAddr, _ := f.GetString("raft-advertise")
		concurrency, _ := f.GetInt("concurrency")
		start := time.Now()
		m, err := backup.Restore(ctx, backup.RestoreConfig{
			Source: source, ID: id, DataDir: dataDir, Layout: layout, NodeID: nodeID, RaftAddr: raftAddr,
			Blobs: blobs, TempDir: dataDir, Concurrency: concurrency, Logger: logger, Progress: cmd.OutOrStdout(),
		})
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "restored backup %s (taken %s) into %s: %d messages, %d bodies, in %v\n",
			m.ID, m.Taken.Format(time.RFC3339), dataDir, m.Messages, m.Blobs, time.Since(start).Round(time.Millisecond))
		return nil
	},
}

func newBackupCommand() *cobra.Command {
	cmd := backupVerb.command()
	addServerFlag(cmd)
	return cmd
}

func newRestoreCommand() *cobra.Command { return restoreVerb.command() }
