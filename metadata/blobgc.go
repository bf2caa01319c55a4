package metadata

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Blob garbage collection (DESIGN.md: bodies).
//
// A blob's record (BlobRef) goes through these states:
//
//	referenced (refs > 0) -> orphan (refs 0, in the 'O' index since orphaned_unix_nano)
//	orphan -> referenced                  (an append or copy of the same body revives it)
//	orphan -> deleting (deleting, in 'G') (MarkBlobsDeleting, once the grace period passed)
//	deleting -> no record                 (ForgetBlobs, after the collector deleted the body)
//
// Invariant: the body of every record that is not deleting is in the blob store. A body
// is deleted only between the mark and the forget of its record, and a deleting record
// never gains a reference: Append refuses it and Copy needs a referenced source.
//
// The blob epoch counts ForgetBlobs commands that dropped a record. It fences an append
// against a body deleted behind its back: the frontend reads the epoch E (from an earlier
// answer), then stores the body (Put; a dedup hit if the object exists), then appends with
// E. An append of a body whose record is absent is accepted only if the epoch is still E.
// Why that is enough: if the body had been deleted after the Put, its record was deleting
// at that deletion and is absent at the append, so a ForgetBlobs dropped it in between,
// after the Put and so after E was read, and the epoch would have moved on. A record that
// exists and is not deleting has its body by the invariant; one that is deleting refuses.
// Either refusal carries the current epoch, with which the frontend stores the body again
// (a real upload once the collector deleted it) and retries.
//
// An append does not revive a deleting blob (un-mark it): the collector may already have
// deleted the body, or be about to, and the FSM cannot know which; only a Put after the
// forget is known to have stored it.

// Reasons of the refusals an Append caller acts on (ErrorInfo, domain errorDomain).
const (
	ReasonBlobDeleting   = "BLOB_DELETING"
	ReasonBlobEpochStale = "BLOB_EPOCH_STALE"
	// ErrorInfoBlobEpoch is the ErrorInfo metadata key of the current blob epoch.
	ErrorInfoBlobEpoch = "blob_epoch"
)

// defaultMarkLimit bounds one MarkBlobsDeleting when the request gives no limit.
const defaultMarkLimit = 1000

// prefixDeleting is the table of deleting blobs: 'G' blob key -> empty.
const prefixDeleting = 'G'

// keyBlobEpoch holds the blob epoch: the number of ForgetBlobs commands that dropped a
// record.
var keyBlobEpoch = []byte("0blob-epoch")

func deletingKey(blob string) []byte { return strKey(prefixDeleting, blob) }

// blobEpoch returns the current blob epoch.
func (c *cmdCtx) blobEpoch() (uint64, error) {
	v, _, err := c.tx.get(keyBlobEpoch)
	if err != nil {
		return 0, err
	}
	return decodeUint64(v), nil
}

// checkAppendBlob refuses an append of a body that may be missing from the blob store: its
// record is deleting, or absent while a record was forgotten since epoch (see above).
func (c *cmdCtx) checkAppendBlob(key string, epoch uint64) error {
	ref := &metadatapb.BlobRef{}
	c.tx.keyBuf = appendStrKey(c.tx.keyBuf[:0], prefixBlob, key)
	found, err := getProto(c.tx, c.tx.keyBuf, ref)
	if err != nil {
		return err
	}
	current, err := c.blobEpoch()
	if err != nil {
		return err
	}
	switch {
	case found && ref.GetDeleting():
		return &cmdError{code: codes.FailedPrecondition, reason: ReasonBlobDeleting, blobEpoch: current,
			msg: fmt.Sprintf("blob %s is being deleted; store it again and retry", key)}
	case !found && epoch != current:
		return &cmdError{code: codes.FailedPrecondition, reason: ReasonBlobEpochStale, blobEpoch: current,
			msg: fmt.Sprintf("blob %s: blobs were deleted since epoch %d (now %d); store it again and retry", key, epoch, current)}
	}
	return nil
}

// markBlobsDeleting marks the blobs orphaned at or before now - grace as deleting, up to the
// limit, and returns all deleting blobs up to the limit: those of earlier passes whose
// deletion did not finish come first.
func (c *cmdCtx) markBlobsDeleting(req *metadatapb.MarkBlobsDeletingRequest) (*metadatapb.CommandResult, error) {
	if req.GetGraceNanos() < 0 {
		return nil, errInvalid("negative grace period %d", req.GetGraceNanos())
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = defaultMarkLimit
	}
	var keys []string
	err := scan(c.tx, []byte{prefixDeleting}, []byte{prefixDeleting + 1}, func(k, _ []byte) (bool, error) {
		keys = append(keys, string(k[1:]))
		return len(keys) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deleting blobs: %w", err)
	}
	type orphan struct {
		indexKey []byte
		blob     string
	}
	var orphans []orphan
	// Holds (backup.go) keep what was orphaned since they began.
	cutoff, err := c.holdCutoff(c.now - req.GetGraceNanos())
	if err != nil {
		return nil, fmt.Errorf("read blob holds: %w", err)
	}
	if len(keys) < limit && cutoff >= 0 {
		err = scan(c.tx, []byte{prefixOrphan}, orphanKey(cutoff+1, ""), func(k, _ []byte) (bool, error) {
			orphans = append(orphans, orphan{indexKey: append([]byte(nil), k...), blob: string(k[9:])})
			return len(keys)+len(orphans) < limit, nil
		})
		if err != nil {
			return nil, fmt.Errorf("list orphaned blobs: %w", err)
		}
	}
	for _, o := range orphans {
		ref := &metadatapb.BlobRef{}
		found, err := getProto(c.tx, blobKey(o.blob), ref)
		if err != nil {
			return nil, err
		}
		c.tx.mustDelete(o.indexKey)
		if !found || ref.GetRefs() != 0 {
			return nil, newCmdError(codes.Internal, "orphan index lists blob %q with %d references", o.blob, ref.GetRefs())
		}
		ref.Deleting = true
		ref.OrphanedUnixNano = 0
		c.tx.setProto(blobKey(o.blob), ref)
		c.tx.mustSet(deletingKey(o.blob), nil)
		keys = append(keys, o.blob)
	}
	epoch, err := c.blobEpoch()
	if err != nil {
		return nil, err
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Blobs{Blobs: &metadatapb.BlobBatch{Keys: keys, BlobEpoch: epoch}}}, nil
}

// forgetBlobs drops the records of the given deleting blobs, whose bodies the collector has
// deleted, and advances the blob epoch if it dropped any. Keys that are not deleting are
// skipped.
func (c *cmdCtx) forgetBlobs(req *metadatapb.ForgetBlobsRequest) (*metadatapb.CommandResult, error) {
	var forgotten []string
	for _, key := range req.GetKeys() {
		ref := &metadatapb.BlobRef{}
		found, err := getProto(c.tx, blobKey(key), ref)
		if err != nil {
			return nil, err
		}
		if !found || !ref.GetDeleting() {
			continue
		}
		c.tx.mustDelete(blobKey(key))
		c.tx.mustDelete(deletingKey(key))
		forgotten = append(forgotten, key)
	}
	epoch, err := c.blobEpoch()
	if err != nil {
		return nil, err
	}
	if len(forgotten) > 0 {
		if epoch, err = c.nextCounter(keyBlobEpoch); err != nil {
			return nil, err
		}
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_Blobs{Blobs: &metadatapb.BlobBatch{Keys: forgotten, BlobEpoch: epoch}}}, nil
}

// commandStatus is the gRPC status of a refused command, with an ErrorInfo when the
// refusal has a reason the caller acts on.
func commandStatus(res *metadatapb.CommandResult) error {
	st := status.New(codes.Code(res.GetCode()), res.GetMessage())
	if res.GetReason() == "" {
		return st.Err()
	}
	info := &errdetails.ErrorInfo{Reason: res.GetReason(), Domain: errorDomain}
	switch res.GetReason() {
	case ReasonBlobDeleting, ReasonBlobEpochStale:
		info.Metadata = map[string]string{ErrorInfoBlobEpoch: strconv.FormatUint(res.GetBlobEpoch(), 10)}
	case ReasonMetadataMaxSize:
		info.Metadata = map[string]string{ErrorInfoMaxSize: strconv.FormatUint(res.GetMetadataMaxSize(), 10)}
	}
	detailed, err := st.WithDetails(info)
	if err != nil {
		return st.Err()
	}
	return detailed.Err()
}

// MarkBlobsDeleting implements the Metadata service.
func (s *Service) MarkBlobsDeleting(ctx context.Context, req *metadatapb.MarkBlobsDeletingRequest) (*metadatapb.BlobBatch, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_MarkBlobsDeleting{MarkBlobsDeleting: req}}, (*metadatapb.CommandResult).GetBlobs)
}

// ForgetBlobs implements the Metadata service.
func (s *Service) ForgetBlobs(ctx context.Context, req *metadatapb.ForgetBlobsRequest) (*metadatapb.BlobBatch, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_ForgetBlobs{ForgetBlobs: req}}, (*metadatapb.CommandResult).GetBlobs)
}
