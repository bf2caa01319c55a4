package imap

import (
	"testing"
	"time"
)

// SetTestHook makes the engine call hook at its test points (testHook in server.go) until
// the test ends. Set it before the test's server starts, so that the server's goroutines
// see it.
func SetTestHook(t testing.TB, hook func(point string)) {
	t.Helper()
	testHook.Store(&hook)
	t.Cleanup(func() { testHook.Store(nil) })
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

// MeasureCPU is measureCPU for the external benchmarks.
func MeasureCPU(b *testing.B) func() { return measureCPU(b) }

// SetPipelineHold sets how long a response may wait for the responses of the commands
// pipelined after it (connWriter.hold) until the test ends.
func SetPipelineHold(t testing.TB, d time.Duration) {
	t.Helper()
	old := pipelineHold.Swap(int64(d))
	t.Cleanup(func() { pipelineHold.Store(old) })
}
