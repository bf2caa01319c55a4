package imap

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// The refusals of an Append whose body the blob garbage collector may have deleted, and the
// ErrorInfo metadata key of the blob epoch they carry (metadata/blobgc.go, whose constants
// these mirror: the frontend reaches metadata only through gRPC).
const (
	reasonBlobDeleting   = "BLOB_DELETING"
	reasonBlobEpochStale = "BLOB_EPOCH_STALE"
	infoBlobEpoch        = "blob_epoch"
)

// maxDeletingWait bounds the pause between two attempts while a body's blob is being
// deleted by the collector.
const maxDeletingWait = time.Second

// storeAndAppend stores the bodies of msgs and then appends req, whose messages they are, in
// metadata: the body first, the metadata second (DESIGN.md: bodies).
//
// The garbage collector deletes a body only after marking its blob deleting and before
// forgetting its record, which advances the blob epoch. So the append carries the blob
// epoch known before the bodies were stored, and the metadata service accepts it only if
// no body it references can have been deleted since: a blob that is deleting is refused,
// and so is a blob without a record if a record was forgotten since that epoch (the body
// may have been a dedup hit on an object the collector deleted right after). A refusal
// carries the current epoch; the bodies are then stored again, which uploads any body the
// collector deleted (Put of a missing object is a real upload), and the append is retried
// with that epoch and a new request ID (the refused one's result is recorded). When the
// append commits, every body it references was stored after the last deletion that could
// have touched it, so it is present.
func (c *conn) storeAndAppend(msgs []*spooledMessage, req *metadatapb.AppendRequest) (*metadatapb.AppendResponse, error) {
	deadline := time.Now().Add(writeTimeout)
	epoch := c.srv.blobEpoch.Load()
	for attempt := 0; ; attempt++ {
		req.BlobEpoch = epoch
		for i, m := range msgs {
			if err := c.storeBlob(m, req.Messages[i].GetBlobKey()); err != nil {
				return nil, err
			}
		}
		var resp *metadatapb.AppendResponse
		err := c.withRetry(func(ctx context.Context) error {
			var err error
			resp, err = c.srv.cfg.Metadata.Append(ctx, req)
			return err
		})
		if err == nil {
			raiseEpoch(&c.srv.blobEpoch, resp.GetBlobEpoch())
			return resp, nil
		}
		reason, current, isBlobRefusal := blobRefusal(err)
		if !isBlobRefusal {
			return nil, err
		}
		raiseEpoch(&c.srv.blobEpoch, current)
		if time.Now().After(deadline) {
			return nil, no(imapresp.CodeUnavailable, "APPEND: message storage is busy, try again later")
		}
		c.log.Debug("append refused while blobs are collected; storing the bodies again", "reason", reason, "epoch", current, "attempt", attempt)
		epoch = current
		req.RequestId = newRequestID()
		if reason == reasonBlobDeleting {
			// The collector is deleting the body; storing it again is useful once it is gone.
			select {
			case <-c.ctx.Done():
				return nil, c.ctx.Err()
			case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, maxDeletingWait)):
			}
		}
	}
}

// blobRefusal returns the reason and current blob epoch of an Append refused because a body
// may be missing from the blob store.
func blobRefusal(err error) (reason string, epoch uint64, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus || st.Code() != codes.FailedPrecondition {
		return "", 0, false
	}
	for _, d := range st.Details() {
		info, isInfo := d.(*errdetails.ErrorInfo)
		if !isInfo || (info.GetReason() != reasonBlobDeleting && info.GetReason() != reasonBlobEpochStale) {
			continue
		}
		epoch, perr := strconv.ParseUint(info.GetMetadata()[infoBlobEpoch], 10, 64)
		if perr != nil {
			return "", 0, false
		}
		return info.GetReason(), epoch, true
	}
	return "", 0, false
}

// raiseEpoch sets *known to epoch if that is higher: epochs only grow, and the highest one
// seen is the one least likely to be refused.
func raiseEpoch(known *atomic.Uint64, epoch uint64) {
	for {
		old := known.Load()
		if epoch <= old || known.CompareAndSwap(old, epoch) {
			return
		}
	}
}
