package imap

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mail/strata/frontend/imap/sortthread"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// ColumnReader is the metadata service's ReadSortColumn.
type ColumnReader interface {
	ReadSortColumn(ctx context.Context, in *metadatapb.ReadSortColumnRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[metadatapb.SortColumnChunk], error)
}

// FirstSort is what the first SORT of a mailbox does past the search, without a session:
// it reads the mailbox's sort-key column as req asks (the whole column, or its dates
// projection with dates_only) into a new cache that keeps fields (allFields: as the
// owner's cache; 0: dates and sizes only), then orders uids (ascending) by keys. It
// returns the order (positions in uids) and the bytes of column read.
func FirstSort(ctx context.Context, md ColumnReader, req *metadatapb.ReadSortColumnRequest, everyField bool, uids []uint32, keys []sortthread.Criterion) ([]int32, int64, error) {
	cols, read, err := FirstColumns(ctx, md, req, everyField, keys, false, uids)
	if err != nil {
		return nil, read, err
	}
	return cols.Order(keys), read, nil
}

// FirstColumns is what the first SORT or THREAD of a mailbox does past the search, without
// a session, up to the order: it reads the mailbox's sort-key column as req asks into a
// new cache that keeps every field (everyField: as the owner's cache) or those keys and,
// with thread, THREAD's, and returns the columns of uids (ascending) and the bytes of
// column read.
func FirstColumns(ctx context.Context, md ColumnReader, req *metadatapb.ReadSortColumnRequest, everyField bool, keys []sortthread.Criterion, thread bool, uids []uint32) (*sortthread.Columns, int64, error) {
	fields := sortNeed(keys)
	if thread {
		fields |= fieldThread | fieldDates
	}
	if everyField {
		fields = allFields
	}
	cache := newCommandSortCache(fields, false)
	box := sortBoxKey{owner: req.GetAccount(), mailboxID: req.GetMailboxId()}
	stream, err := md.ReadSortColumn(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	var filling *sortBox
	var read int64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, read, err
		}
		read += int64(chunkBytes(chunk))
		last, _ := chunkLastUID(chunk)
		if filling, err = cache.appendChunk(box, filling, last, len(uids), chunk); err != nil {
			return nil, read, err
		}
	}
	snap, rows := cache.snapshot(box, uids)
	if snap.subjectNumbers() && fields&textField(sortthread.Subject) != 0 {
		// Ranked by the subject dictionary's order (rankSubjects), read after the column.
		order, n, err := readSubjectOrder(ctx, md, req)
		read += n
		if err != nil {
			return nil, read, err
		}
		snap.subjectRank = subjectRanks(order)
		if !snap.subjectRanked() {
			return nil, read, errors.New("the subject order does not rank every subject number")
		}
	}
	return snap.columns(rows, allFields), read, nil
}

// readSubjectOrder reads the subject order of req's mailbox, and its bytes (4 a number).
func readSubjectOrder(ctx context.Context, md ColumnReader, req *metadatapb.ReadSortColumnRequest) ([]uint32, int64, error) {
	stream, err := md.ReadSortColumn(ctx, &metadatapb.ReadSortColumnRequest{Account: req.GetAccount(), User: req.GetUser(), MailboxId: req.GetMailboxId(), SubjectOrder: true})
	if err != nil {
		return nil, 0, err
	}
	var order []uint32
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return order, 4 * int64(len(order)), nil
		}
		if err != nil {
			return nil, 0, err
		}
		order = append(order, chunk.GetSubjectOrder()...)
	}
}

// SubjectOrdersRead is how many subject orders the sessions read (rankSubjects).
func SubjectOrdersRead() int64 { return subjectOrderReads.Load() }

// SetTestHook makes the engine call hook at its test points (testHook in server.go) until
// the test ends. Set it before the test's server starts, so that the server's goroutines
// see it.
func SetTestHook(t testing.TB, hook func(point string)) {
	t.Helper()
	testHook.Store(&hook)
	t.Cleanup(func() { testHook.Store(nil) })
}

// OnRejoin calls fn, until the test ends, after each attempt of a session to share its
// view's messages again (selected.rejoin), with the session (to tell sessions apart), how
// many of the view's chunks its list shares, the view's chunks and messages, and how many
// messages the attempt compared one by one. fn runs on the session's goroutine.
func OnRejoin(t testing.TB, fn func(session any, shared, chunks, messages, compared int)) {
	t.Helper()
	rejoinHook.Store(&fn)
	t.Cleanup(func() { rejoinHook.Store(nil) })
}

// SetMailViewLinger sets how long a shared mailbox view outlives its last session
// (mailview.go) until the test ends.
func SetMailViewLinger(t testing.TB, d time.Duration) {
	t.Helper()
	old := mailViewLinger.Swap(int64(d))
	t.Cleanup(func() { mailViewLinger.Store(old) })
}

// SetViewPageSize sets how many messages a page of a shared view's load holds
// (mailview.go) until the test ends.
func SetViewPageSize(t testing.TB, n uint32) {
	t.Helper()
	old := viewPageSize.Swap(n)
	t.Cleanup(func() { viewPageSize.Store(old) })
}

// SetAppendSyncWait sets how long APPEND, COPY and MOVE to the selected mailbox wait for the
// feed to deliver their messages, and a UID command after them waits for those it did not
// (append.go), until the test ends.
func SetAppendSyncWait(t testing.TB, d time.Duration) {
	t.Helper()
	old := appendSyncWait.Swap(int64(d))
	t.Cleanup(func() { appendSyncWait.Store(old) })
}

// SetSortColumnMin sets how many messages' keys a SORT must lack before it reads the
// mailbox's sort-key column (sortcolumn.go) until the test ends.
func SetSortColumnMin(t testing.TB, n int64) {
	t.Helper()
	old := columnMinMissing.Swap(n)
	t.Cleanup(func() { columnMinMissing.Store(old) })
}

// DateRecordsRead is how many messages SORTs have read from the column's dates projection
// since the process started (sortcolumn.go).
func DateRecordsRead() int64 { return dateRecordsRead.Load() }

// ThreadKeyChunksRead is how many chunks of the column's thread-keys projection the
// frontend read so far.
func ThreadKeyChunksRead() int64 { return threadKeyRecordsRead.Load() }

// SubjectRecordsRead is how many messages were read from the column's subject projection.
func SubjectRecordsRead() int64 { return subjectRecordsRead.Load() }

// MeasureCPU is measureCPU for the external benchmarks.
func MeasureCPU(b *testing.B) func() { return measureCPU(b) }

// SetPipelineHold sets how long a response may wait for the responses of the commands
// pipelined after it (connWriter.hold) until the test ends.
func SetPipelineHold(t testing.TB, d time.Duration) {
	t.Helper()
	old := pipelineHold.Swap(int64(d))
	t.Cleanup(func() { pipelineHold.Store(old) })
}
