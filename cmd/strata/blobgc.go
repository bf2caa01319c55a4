package main

import (
	"context"
	"log/slog"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/blobstore/gc"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
)

// addBlobGCFlags registers the collector's schedule, shared by `strata serve` and `strata
// metadata`.
func addBlobGCFlags(f *pflag.FlagSet) {
	f.Duration("blob-gc-interval", gc.DefaultInterval, "how often bodies no message references are deleted (negative: never)")
	f.Duration("blob-gc-grace", gc.DefaultGrace, "how long a body stays unreferenced before it is deleted; longer than the longest `strata backup` copy (docs/backup.md)")
}

// openCollector opens the blob store a metadata node's flags name and returns the collector
// that runs while the node leads, or nil when the flags name no store (--blob fs without
// --blob-dir). Its Metadata client is set once the node's service exists.
func openCollector(ctx context.Context, f *pflag.FlagSet, node *replication.Node, logger *slog.Logger) (*gc.Collector, error) {
	blobDir, _ := f.GetString("blob-dir")
	if blob, _ := f.GetString("blob"); blob == "fs" && blobDir == "" {
		logger.Warn("no blob store (--blob s3 or --blob-dir): this node never deletes unreferenced bodies")
		return nil, nil
	}
	blobs, err := openBlobStoreFromFlags(ctx, f, blobDir, logger)
	if err != nil {
		return nil, err
	}
	return &gc.Collector{Blobs: blobs, Logger: logger.With("component", "blob-gc"), Lease: &gc.Lease{Node: node}, Metrics: gc.NewMetrics()}, nil
}

// runCollector runs the collector's passes while this node leads, until ctx ends.
func runCollector(ctx context.Context, f *pflag.FlagSet, collector *gc.Collector) {
	interval, _ := f.GetDuration("blob-gc-interval")
	grace, _ := f.GetDuration("blob-gc-grace")
	if collector == nil || interval <= 0 {
		return
	}
	collector.RunWhileLeader(ctx, interval, grace)
}

// blobAdminServer serves `strata blob gc` on a metadata node: a pass of the collector on
// the leader (a follower answers NOT_LEADER, which the command follows).
func blobAdminServer(f *pflag.FlagSet, collector *gc.Collector) metadatapb.BlobAdminServer {
	if collector == nil {
		return noBlobStore{}
	}
	grace, _ := f.GetDuration("blob-gc-grace")
	return &gc.AdminServer{Collector: collector, Grace: grace}
}

type noBlobStore struct {
	metadatapb.UnimplementedBlobAdminServer
}

func (noBlobStore) CollectBlobs(context.Context, *metadatapb.CollectBlobsRequest) (*metadatapb.CollectBlobsResponse, error) {
	return nil, status.Error(codes.FailedPrecondition, "this metadata node has no blob store: start it with the frontends' --blob and --s3-* flags")
}
