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
//
// One collector at a time. Two passes that overlap are unsafe even though each step is:
// pass P forgets blob k after deleting it, an APPEND then stores k again (a real upload,
// with the epoch that forget produced, so the fence lets it through), and a late deletion
// of k by pass Q, which had k from an earlier mark, removes the body of a referenced
// message; no forget follows that deletion, so no epoch moves to refuse anything. The
// epoch fence makes safe every deletion that some later forget of the key covers; it does
// not cover a deletion that lands after the last forget. Hence:
//
//   - In one process, passes are serialized (Collector.mu): the periodic pass and `strata
//     blob gc` never overlap.
//   - In a cluster (lease.go), the collector runs only on the Raft leader, stops at once on
//     losing leadership, starts every deletion within VerifyWindow of a quorum's
//     confirmation that it still leads, and bounds each deletion by DeleteTimeout; a new
//     leader waits out Handover (VerifyWindow + DeleteTimeout + slack) before its first
//     mark. A deposed leader's last confirmation began before the new leader's election
//     (the quorum that confirmed it and the quorum that elected its successor share a
//     voter, which, once it voted in the new term, refuses the old one), so every deletion
//     of the stale collector has ended before the new one forgets anything. What the
//     stale collector deleted before that is covered by the epoch fence: its keys were
//     deleting (committed marks), an APPEND that dedup-hit one of them is refused by
//     BLOB_DELETING until the forget and by BLOB_EPOCH_STALE after it.
//
// What the lease argument assumes: the clocks of the nodes run at nearly the same rate
// (not that they agree), and the S3 service carries out a DELETE within DeleteTimeout of
// its sending or not at all (a request that sits for longer in a proxy queue and is then
// executed is outside it).
package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
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

// Collector runs garbage collection passes, one at a time.
type Collector struct {
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	Logger   *slog.Logger
	// Lease, when set, confines passes to the Raft leader (cluster mode, lease.go).
	Lease *Lease
	// Metrics, when set, counts what passes deleted.
	Metrics *Metrics

	mu sync.Mutex // held by a running pass
}

// Result says what a pass did.
type Result struct {
	Deleted int // bodies deleted from the store (and records forgotten)
}

// Run runs one pass: it repeats mark, delete, forget until a mark returns a partial batch.
// With a Lease it runs only on the leader, past the handover (NOT_LEADER otherwise), and
// stops when leadership ends.
func (c *Collector) Run(ctx context.Context, grace time.Duration) (res Result, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Lease != nil {
		var stop context.CancelFunc
		if ctx, stop, err = c.Lease.hold(ctx); err != nil {
			return res, err
		}
		defer stop()
	}
	defer func() { c.Metrics.pass(err) }()
	for {
		keys, err := c.mark(ctx, grace)
		if err != nil {
			return res, err
		}
		for _, key := range keys {
			if err := c.delete(ctx, key); err != nil {
				// The blob stays deleting; the next pass deletes and forgets it.
				return res, err
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

// delete removes one body of a deleting blob, counting its size.
func (c *Collector) delete(ctx context.Context, key string) error {
	timeout := callTimeout
	if c.Lease != nil {
		if err := c.Lease.confirm(ctx); err != nil {
			return fmt.Errorf("blob gc: before deleting %s: %w", key, err)
		}
		timeout = c.Lease.deleteTimeout()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var size int64
	if info, err := c.Blobs.Stat(ctx, key); err == nil {
		size = info.Size
	}
	if err := c.Blobs.Delete(ctx, key); err != nil {
		return fmt.Errorf("blob gc: delete %s: %w", key, err)
	}
	c.Metrics.deleted(size)
	return nil
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
		c.runLogged(ctx, grace)
	}
}

// runLogged runs a pass and logs its result.
func (c *Collector) runLogged(ctx context.Context, grace time.Duration) {
	start := time.Now()
	res, err := c.Run(ctx, grace)
	if err != nil {
		c.Logger.Warn("blob gc pass failed", "deleted", res.Deleted, "err", err)
		return
	}
	c.Logger.Info("blob gc pass", "deleted", res.Deleted, "duration", time.Since(start))
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
