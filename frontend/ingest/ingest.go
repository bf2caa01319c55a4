// Package ingest is what every intake of mail shares (IMAP APPEND in frontend/imap, LMTP
// in frontend/lmtp, migration and import in frontend/importer): a message already spooled
// (blobstore.Spool) is parsed once for the metadata form (frontend/message), its body is
// stored in the blob store under its content key, and only then is it appended in metadata
// (Append, or ImportMessages for an import that keeps UIDs).
//
// Invariants:
//
//   - A body is durable in the blob store before any metadata that references it is
//     appended (DESIGN.md: bodies); or, with a blobstore.Stager (the fs store of the
//     embedded mode), readable before the Append is sent and durable before the Append is
//     reported done: Store stages every body and starts their syncs, which run beside the
//     Append, and Stored.Append returns success only once they are over. What a caller
//     acknowledges is durable in both places either way, and staging saves one fsync
//     round in series per message. A machine crash can leave a committed Append whose
//     body was lost, never acknowledged; the embedded server's staging recovery expunges
//     it (embedded/staging.go).
//   - An Append carries the blob epoch known before its bodies were stored, so the
//     metadata service can refuse it when the blob collector may have deleted one of them
//     since; the bodies are then stored again and the Append retried (Stored.Append). So
//     when an Append commits, every body it references is present.
//   - A body is stored once however many appends reference it (Committer.Store, then
//     Stored.Append per target): blob keys are content hashes under a tenant prefix, so one
//     Put serves every message of that tenant with the same bytes.
//   - Nothing here talks to a client: failures come back as errors (ErrBlobStore,
//     ErrBusy, or the metadata call's gRPC status) that the protocol maps to its own
//     replies.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/internal/inproc"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// ErrBlobStore is returned (wrapped) when a body could not be stored in the blob store: the
// client may retry later. The cause stays in the log.
var ErrBlobStore = errors.New("ingest: could not store the message body")

// ErrBusy is returned when the blob collector kept refusing an Append until its deadline.
var ErrBusy = errors.New("ingest: message storage is busy")

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

// NewMessage parses a spooled message once for its structure and returns what the metadata
// Append needs for it, keyed in tenant's part of the blob store; its body is not stored yet.
func NewMessage(tenant string, spool *blobstore.Spool, date time.Time, flags []string) (*metadatapb.NewMessage, error) {
	structure, err := message.Parse(spool.Reader())
	if err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	var thread *metadatapb.ThreadKeys
	// RFC 5256 SORT and THREAD; RFC 8474 5.2 THREADID.
	structure.SortKeys, thread = message.Keys(structure)
	return &metadatapb.NewMessage{
		BlobKey:          blobstore.Key(tenant, spool.Sum()),
		Size:             uint64(spool.Size()),
		InternalDateUnix: date.Unix(),
		Flags:            flags,
		Structure:        structure,
		Thread:           thread,
	}, nil
}

// RecentBodies keeps bodies just stored, by blob key, for a consumer in the same process;
// Keep copies what it keeps (the spool is closed after the append) and may refuse any.
// KeepAppended keeps the records an append committed (the UIDs of resp for msgs, in
// account's mailbox), which the consumer then need not read back; it may refuse them
// too, and keeps the structures without copying them: nothing changes them after the
// append.
type RecentBodies interface {
	Keep(key string, body io.ReaderAt, size int64)
	KeepAppended(account string, mailbox uint64, resp *metadatapb.AppendResponse, msgs []*metadatapb.NewMessage)
}

// keepRecent hands the stored bodies of s to c.Recent.
func (s *Stored) keepRecent() {
	if s.c.Recent == nil {
		return
	}
	for _, b := range s.bodies {
		s.c.Recent.Keep(b.Key, b.Spool, b.Spool.Size())
	}
}

// Body is one spooled body and the blob key it is stored under.
type Body struct {
	Key   string
	Spool *blobstore.Spool
}

// RetryFunc runs a metadata call, retrying it while it fails in a way a retry may cure, each
// time with a fresh deadline; the request ID in the call's closure makes a retry apply once.
type RetryFunc func(call func(ctx context.Context) error) error

// Committer stores bodies and appends their messages for one frontend; it remembers the
// highest blob epoch seen, which all its connections share.
type Committer struct {
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	// Stage lets a Blobs that is a blobstore.Stager stage bodies (package comment): set
	// only where a staging recovery runs after a machine crash.
	Stage bool
	// Timeout bounds each body's Put and the whole of one Append's refusal retries.
	Timeout time.Duration
	// NewRequestID makes the request ID of a retried Append.
	NewRequestID func() string
	// Recent, when set, is given every body once it is stored (or staged): a search
	// indexer in this process takes it from memory instead of reading the blob back
	// (searchindex.RecentBodies).
	Recent RecentBodies

	epoch atomic.Uint64
}

// Stored is a set of bodies stored in the blob store, with the blob epoch known before they
// were stored: what Append passes to the metadata service. Appends of one Stored may run
// concurrently.
type Stored struct {
	c      *Committer
	bodies []Body
	epoch  uint64
	log    *slog.Logger
	// synced is closed when the staged bodies' syncs are over, with syncErr their
	// outcome; nil when the bodies were stored durable (Put).
	synced  chan struct{}
	syncErr error
}

// Store writes bodies to the blob store, before any metadata that references them. With a
// blobstore.Stager it stages them and starts their syncs; Append waits for those.
func (c *Committer) Store(ctx context.Context, bodies []Body, log *slog.Logger) (*Stored, error) {
	s := &Stored{c: c, bodies: bodies, epoch: c.epoch.Load(), log: log}
	if stager, ok := c.Blobs.(blobstore.Stager); ok && c.Stage {
		if err := s.stage(ctx, stager); err != nil {
			return nil, err
		}
		s.keepRecent()
		return s, nil
	}
	if err := s.put(ctx); err != nil {
		return nil, err
	}
	s.keepRecent()
	return s, nil
}

// stage stages every body of s and starts their syncs in the background: they run beside
// the Append that references them, and Append waits for them before it reports success.
// A body whose staging fails is synced all the same (its Staged is released) before the
// error returns.
func (s *Stored) stage(ctx context.Context, stager blobstore.Stager) error {
	staged := make([]blobstore.Staged, 0, len(s.bodies))
	syncAll := func() error {
		var errs []error
		for _, st := range staged {
			errs = append(errs, st.Sync())
		}
		return errors.Join(errs...)
	}
	for _, b := range s.bodies {
		putCtx, cancel := context.WithTimeout(ctx, s.c.Timeout)
		st, err := stager.Stage(putCtx, b.Key, b.Spool.HashedReader(), b.Spool.Size())
		cancel()
		if err != nil {
			syncAll()
			s.log.Warn("store message body", "key", b.Key, "err", err)
			return fmt.Errorf("%w: %w", ErrBlobStore, err)
		}
		staged = append(staged, st)
	}
	s.synced = make(chan struct{})
	go func() {
		defer close(s.synced)
		s.syncErr = syncAll()
	}()
	return nil
}

// durable waits until the bodies of s are durable: at once when they were stored with
// Put, otherwise when their syncs are over.
func (s *Stored) durable(ctx context.Context) error {
	if s.synced == nil {
		return nil
	}
	select {
	case <-s.synced:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.syncErr != nil {
		s.log.Warn("sync message body", "err", s.syncErr)
		return fmt.Errorf("%w: %w", ErrBlobStore, s.syncErr)
	}
	return nil
}

// put stores every body of s. The reader carries the spool's SHA-256, so the store checks
// the key against it instead of hashing the body a second time (blobstore.Prehashed).
func (s *Stored) put(ctx context.Context) error {
	for _, b := range s.bodies {
		putCtx, cancel := context.WithTimeout(ctx, s.c.Timeout)
		err := s.c.Blobs.Put(putCtx, b.Key, b.Spool.HashedReader(), b.Spool.Size())
		cancel()
		if err != nil {
			s.log.Warn("store message body", "key", b.Key, "err", err)
			return fmt.Errorf("%w: %w", ErrBlobStore, err)
		}
	}
	return nil
}

// StoreAndAppend stores bodies and then appends req, whose messages they are, in metadata:
// the body first, the metadata second.
func (c *Committer) StoreAndAppend(ctx context.Context, bodies []Body, req *metadatapb.AppendRequest, retry RetryFunc, log *slog.Logger) (*metadatapb.AppendResponse, error) {
	deadline := time.Now().Add(c.Timeout)
	s, err := c.Store(ctx, bodies, log)
	if err != nil {
		return nil, err
	}
	return s.appendBy(ctx, req, retry, deadline)
}

// Append appends req, whose messages' bodies are among s's, in metadata.
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
func (s *Stored) Append(ctx context.Context, req *metadatapb.AppendRequest, retry RetryFunc) (*metadatapb.AppendResponse, error) {
	return s.appendBy(ctx, req, retry, time.Now().Add(s.c.Timeout))
}

// Import is Append for ImportMessages (`strata migrate`, `strata import`): the same
// refusals and retries, for an append that may carry its UIDs and UIDVALIDITY.
func (s *Stored) Import(ctx context.Context, req *metadatapb.ImportMessagesRequest, retry RetryFunc) (*metadatapb.AppendResponse, error) {
	return s.commit(ctx, retry, time.Now().Add(s.c.Timeout), func(ctx context.Context, epoch uint64, requestID string) (*metadatapb.AppendResponse, error) {
		if requestID != "" {
			req.RequestId = requestID
		}
		req.BlobEpoch = epoch
		return s.c.Metadata.ImportMessages(ctx, req)
	})
}

func (s *Stored) appendBy(ctx context.Context, req *metadatapb.AppendRequest, retry RetryFunc, deadline time.Time) (*metadatapb.AppendResponse, error) {
	resp, err := s.commit(ctx, retry, deadline, func(ctx context.Context, epoch uint64, requestID string) (*metadatapb.AppendResponse, error) {
		if requestID != "" {
			req.RequestId = requestID
		}
		req.BlobEpoch = epoch
		// Each send hands the metadata service a request of its own, which nothing here
		// touches after (inproc.HandOver: in the embedded server the service then takes
		// it uncopied); req stays the caller's, whose messages the service only reads.
		return s.c.Metadata.Append(ctx, attempt(req), inproc.HandOver())
	})
	if err == nil && s.c.Recent != nil {
		s.c.Recent.KeepAppended(req.GetAccount(), req.GetMailboxId(), resp, req.GetMessages())
	}
	return resp, err
}

// attempt is a message of req's type with req's fields, for one send that hands it over
// (inproc.HandOver): the fields that hold messages or lists share req's, which the
// receiver does not change.
func attempt[M proto.Message](req M) M {
	out := req.ProtoReflect().New()
	req.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out.Set(fd, v)
		return true
	})
	return out.Interface().(M)
}

// sendFunc makes one append call with the blob epoch; a requestID other than "" replaces
// the request's (after a refusal, whose result the old one recorded).
type sendFunc func(ctx context.Context, epoch uint64, requestID string) (*metadatapb.AppendResponse, error)

// commit runs send until it commits or is refused for a reason other than the blob
// collector (Append).
func (s *Stored) commit(ctx context.Context, retry RetryFunc, deadline time.Time, send sendFunc) (*metadatapb.AppendResponse, error) {
	// The epoch is this call's: a concurrent Append that stores the bodies again must not
	// hand it an epoch newer than this call's own last storing.
	epoch := s.epoch
	requestID := ""
	for attempt := 0; ; attempt++ {
		var resp *metadatapb.AppendResponse
		err := retry(func(ctx context.Context) error {
			var err error
			resp, err = send(ctx, epoch, requestID)
			return err
		})
		if err == nil {
			raiseEpoch(&s.c.epoch, resp.GetBlobEpoch())
			// Committed; acknowledged only once the bodies are durable as well.
			if err := s.durable(ctx); err != nil {
				return nil, err
			}
			return resp, nil
		}
		reason, current, isBlobRefusal := blobRefusal(err)
		if !isBlobRefusal {
			return nil, err
		}
		raiseEpoch(&s.c.epoch, current)
		if time.Now().After(deadline) {
			return nil, ErrBusy
		}
		s.log.Debug("append refused while blobs are collected; storing the bodies again", "reason", reason, "epoch", current, "attempt", attempt)
		epoch = current
		requestID = s.c.NewRequestID()
		if reason == reasonBlobDeleting {
			// The collector is deleting the body; storing it again is useful once it is gone.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, maxDeletingWait)):
			}
		}
		if err := s.put(ctx); err != nil {
			return nil, err
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
