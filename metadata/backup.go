package metadata

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Backup (`strata backup`, issue 16).
//
// A backup is the FSM snapshot stream (snapshot.go) of a Pebble snapshot taken at a
// linearizable read point on the leader, plus the keys of the bodies it references. Taking
// it costs a ReadBarrier (one quorum round) and a Pebble snapshot handle: writes go on
// while it streams. Every write acknowledged before the Snapshot call began is in it.
//
// Holds keep those bodies in the blob store while `strata backup` copies them. The
// collector marks only blobs orphaned before now - grace; while a hold is in force it also
// marks only blobs orphaned before the hold was first set (markBlobsDeleting). The backup
// sets its hold before it calls Snapshot, so a body its snapshot references was still
// referenced at the hold's log time and can only have been orphaned by a later command,
// whose log time is not earlier (the FSM clock never goes back: advanceClock): it stays
// until the hold is released or expires. The hold has a TTL, renewed while the copy runs,
// so a backup that dies does not stop collection for good. Without holds (an older
// client), the grace period alone protects the copy: it must finish within it.

// keyBlobHoldPrefix prefixes the holds: "0blob-hold/<id>" -> BlobHoldRecord.
var keyBlobHoldPrefix = []byte("0blob-hold/")

// maxHoldIDLen bounds a hold's ID.
const maxHoldIDLen = 128

func blobHoldKey(id string) []byte { return append(append([]byte(nil), keyBlobHoldPrefix...), id...) }

// holdBlobs sets, renews or (ttl 0) releases a hold.
func (c *cmdCtx) holdBlobs(req *metadatapb.HoldBlobsRequest) (*metadatapb.CommandResult, error) {
	id := req.GetHoldId()
	if id == "" || len(id) > maxHoldIDLen {
		return nil, errInvalid("hold_id must have 1 to %d bytes", maxHoldIDLen)
	}
	if req.GetTtlNanos() < 0 {
		return nil, errInvalid("negative hold ttl %d", req.GetTtlNanos())
	}
	key := blobHoldKey(id)
	if req.GetTtlNanos() == 0 {
		c.tx.mustDelete(key)
		return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_BlobHold{BlobHold: &metadatapb.HoldBlobsResponse{}}}, nil
	}
	rec := &metadatapb.BlobHoldRecord{}
	found, err := getProto(c.tx, key, rec)
	if err != nil {
		return nil, err
	}
	if !found || rec.GetExpiresUnixNano() <= c.now {
		rec.SinceUnixNano = c.now
	}
	rec.ExpiresUnixNano = c.now + req.GetTtlNanos()
	c.tx.setProto(key, rec)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_BlobHold{BlobHold: &metadatapb.HoldBlobsResponse{SinceUnixNano: rec.GetSinceUnixNano()}}}, nil
}

// holdCutoff lowers cutoff (the last orphan time the collector may mark) below the start of
// every hold in force, and drops the holds that expired.
func (c *cmdCtx) holdCutoff(cutoff int64) (int64, error) {
	var expired [][]byte
	upper := append(append([]byte(nil), keyBlobHoldPrefix[:len(keyBlobHoldPrefix)-1]...), '/'+1)
	err := scan(c.tx, keyBlobHoldPrefix, upper, func(k, v []byte) (bool, error) {
		rec := &metadatapb.BlobHoldRecord{}
		if err := proto.Unmarshal(v, rec); err != nil {
			return false, fmt.Errorf("decode blob hold %q: %w", k, err)
		}
		if rec.GetExpiresUnixNano() <= c.now {
			expired = append(expired, append([]byte(nil), k...))
			return true, nil
		}
		cutoff = min(cutoff, rec.GetSinceUnixNano()-1)
		return true, nil
	})
	for _, k := range expired {
		c.tx.mustDelete(k)
	}
	return cutoff, err
}

// HoldBlobs implements the Backup service.
func (s *Service) HoldBlobs(ctx context.Context, req *metadatapb.HoldBlobsRequest) (*metadatapb.HoldBlobsResponse, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_HoldBlobs{HoldBlobs: req}}, (*metadatapb.CommandResult).GetBlobHold)
}

// backupChunkBytes is the size of the snapshot pieces a Snapshot stream sends.
const backupChunkBytes = 1 << 20

// backupKeysPerMessage bounds the blob keys of one BackupChunk (~80 bytes each).
const backupKeysPerMessage = 10000

// BackupServer serves the Backup service over a Service.
type BackupServer struct {
	metadatapb.UnimplementedBackupServer
	*Service
}

// HoldBlobs implements the Backup service.
func (b BackupServer) HoldBlobs(ctx context.Context, req *metadatapb.HoldBlobsRequest) (*metadatapb.HoldBlobsResponse, error) {
	return b.Service.HoldBlobs(ctx, req)
}

// Snapshot implements the Backup service: a linearizable read point, a Pebble snapshot at
// it, streamed, then the referenced blob keys and the summary.
func (b BackupServer) Snapshot(_ *metadatapb.BackupSnapshotRequest, stream metadatapb.Backup_SnapshotServer) error {
	ctx := stream.Context()
	barrierCtx, cancel := withDefaultDeadline(ctx)
	err := b.node.ReadBarrier(barrierCtx)
	cancel()
	if err != nil {
		return replicationStatus("backup read point", err)
	}
	v := b.fsm.view()
	defer v.close()
	taken := time.Now()
	applied, _, err := getRaw(v.r, keyAppliedIndex)
	if err != nil {
		return storageStatus(err)
	}
	out := &chunkSender{stream: stream, sum: sha256.New()}
	sum := &metadatapb.BackupSummary{AppliedIndex: decodeUint64(applied), TakenUnixNano: taken.UnixNano()}
	count := func(k, _ []byte) error {
		switch k[0] {
		case prefixMessage:
			sum.Messages++
		case prefixAccount:
			sum.Accounts++
		case prefixMailbox:
			sum.Mailboxes++
		}
		return nil
	}
	if err := writeSnapshotVisit(out, v.r, sum.AppliedIndex, count); err != nil {
		return status.Errorf(codes.Unavailable, "backup: %v", err)
	}
	if err := out.flush(); err != nil {
		return err
	}
	sum.SnapshotBytes, sum.SnapshotSha256 = out.n, out.sum.Sum(nil)
	// The referenced blob keys, from a second scan of the same Pebble snapshot, sent as
	// they are read (in key order, which the client checks): at 1,000,000 messages a list
	// gathered first would hold ~100 MiB on the leader.
	keys := make([]string, 0, backupKeysPerMessage)
	send := func() error {
		if len(keys) == 0 {
			return nil
		}
		sum.Blobs += uint64(len(keys))
		err := stream.Send(&metadatapb.BackupChunk{Part: &metadatapb.BackupChunk_Blobs{Blobs: &metadatapb.BackupBlobKeys{Keys: keys}}})
		keys = keys[:0]
		return err
	}
	err = scan(v.r, []byte{prefixBlob}, []byte{prefixBlob + 1}, func(k, val []byte) (bool, error) {
		ref := &metadatapb.BlobRef{}
		if err := proto.Unmarshal(val, ref); err != nil {
			return false, fmt.Errorf("decode blob record %q: %w", k, err)
		}
		if ref.GetRefs() == 0 {
			return true, nil
		}
		keys = append(keys, string(k[1:]))
		if len(keys) == backupKeysPerMessage {
			return true, send()
		}
		return true, nil
	})
	if err == nil {
		err = send()
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "backup: blob keys: %v", err)
	}
	b.logger.Info("backup snapshot streamed", "applied_index", sum.AppliedIndex, "bytes", sum.SnapshotBytes,
		"blobs", sum.Blobs, "messages", sum.Messages, "duration", time.Since(taken))
	return stream.Send(&metadatapb.BackupChunk{Part: &metadatapb.BackupChunk_Summary{Summary: sum}})
}

// chunkSender sends what is written to it as snapshot chunks of backupChunkBytes.
type chunkSender struct {
	stream metadatapb.Backup_SnapshotServer
	buf    bytes.Buffer
	sum    hash.Hash
	n      uint64
}

func (c *chunkSender) Write(p []byte) (int, error) {
	c.buf.Write(p)
	c.sum.Write(p)
	c.n += uint64(len(p))
	for c.buf.Len() >= backupChunkBytes {
		if err := c.send(c.buf.Next(backupChunkBytes)); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *chunkSender) send(b []byte) error {
	if err := c.stream.Send(&metadatapb.BackupChunk{Part: &metadatapb.BackupChunk_Snapshot{Snapshot: b}}); err != nil {
		return fmt.Errorf("send snapshot chunk: %w", err)
	}
	return nil
}

func (c *chunkSender) flush() error {
	if c.buf.Len() == 0 {
		return nil
	}
	return c.send(c.buf.Next(c.buf.Len()))
}
