// Package gc is the blob garbage collector: it deletes from the blob store the bodies that no
// message has referenced for a grace period, in three steps that keep a racing dedup APPEND
// safe (metadata/blobgc.go states the argument):
//
//  1. MarkBlobsDeleting (a Raft command) marks the blobs orphaned for longer than the grace
//     period "deleting" and returns every deleting blob; from then on an Append that
//     references one is refused and its frontend stores the body again.
//  2. The collector deletes those bodies from the store.
//  3. ForgetBlobs (a Raft command) drops their records and advances the blob epoch, which
//     refuses appends whose body was stored before the deletion.
//
// A pass that fails between the steps is resumed by the next one: deleting blobs are
// returned by every mark until they are forgotten, and deleting a missing body is no error.
package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Defaults of `strata serve`.
const (
	DefaultGrace    = time.Hour
	DefaultInterval = time.Hour
	// batchSize bounds the blobs of one mark and forget.
	batchSize = 1000
	// callTimeout bounds each metadata call and each blob deletion.
	callTimeout = 30 * time.Second
)

// Collector runs garbage collection passes.
type Collector struct {
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	Logger   *slog.Logger
}

// Result says what a pass did.
type Result struct {
	Deleted int // bodies deleted from the store (and records forgotten)
}

// Run runs one pass: it repeats mark, delete, forget until a mark returns a partial batch.
func (c *Collector) Run(ctx context.Context, grace time.Duration) (Result, error) {
	var res Result
	for {
		keys, err := c.mark(ctx, grace)
		if err != nil {
			return res, err
		}
		for _, key := range keys {
			delCtx, cancel := context.WithTimeout(ctx, callTimeout)
			err := c.Blobs.Delete(delCtx, key)
			cancel()
			if err != nil {
				// The blob stays deleting; the next pass deletes and forgets it.
				return res, fmt.Errorf("blob gc: delete %s: %w", key, err)
			}
		}
		if len(keys) > 0 {
			if err := c.forget(ctx, keys); err != nil {
				return res, err
			}
		}
		res.Deleted += len(keys)
		if len(keys) < batchSize {
			return res, nil
		}
	}
}

func (c *Collector) mark(ctx context.Context, grace time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	batch, err := c.Metadata.MarkBlobsDeleting(ctx, &metadatapb.MarkBlobsDeletingRequest{
		RequestId: newRequestID(), GraceNanos: int64(grace), Limit: batchSize,
	})
	if err != nil {
		return nil, fmt.Errorf("blob gc: mark orphaned blobs: %w", err)
	}
	return batch.GetKeys(), nil
}

func (c *Collector) forget(ctx context.Context, keys []string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.Metadata.ForgetBlobs(ctx, &metadatapb.ForgetBlobsRequest{RequestId: newRequestID(), Keys: keys}); err != nil {
		return fmt.Errorf("blob gc: forget %d deleted blobs: %w", len(keys), err)
	}
	return nil
}

// RunEvery runs a pass every interval until ctx is done, logging each result.
func (c *Collector) RunEvery(ctx context.Context, interval, grace time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		start := time.Now()
		res, err := c.Run(ctx, grace)
		if err != nil {
			c.Logger.Warn("blob gc pass failed", "deleted", res.Deleted, "err", err)
			continue
		}
		c.Logger.Info("blob gc pass", "deleted", res.Deleted, "duration", time.Since(start))
	}
}

// AdminServer serves BlobAdmin.CollectBlobs with a Collector.
type AdminServer struct {
	metadatapb.UnimplementedBlobAdminServer
	Collector *Collector
	// Grace is the grace period of a request that gives none.
	Grace time.Duration
}

// CollectBlobs runs one pass.
func (a *AdminServer) CollectBlobs(ctx context.Context, req *metadatapb.CollectBlobsRequest) (*metadatapb.CollectBlobsResponse, error) {
	grace := time.Duration(req.GetGraceNanos())
	if grace <= 0 {
		grace = a.Grace
	}
	res, err := a.Collector.Run(ctx, grace)
	if err != nil {
		return nil, err
	}
	return &metadatapb.CollectBlobsResponse{Deleted: uint64(res.Deleted)}, nil
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
