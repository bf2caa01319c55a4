package fs

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// maxSyncsInFlight bounds the fsyncs of one file running at once. Two let a Put that
// arrives during an fsync start its own at once, as a file per body would, instead of
// waiting for the running one to end first; more would only split the batches.
const maxSyncsInFlight = 2

// fileSyncer group-commits the fsyncs of one append-only file: a segment file or its
// tombstone file. A failed fsync is sticky: what it covered may never reach the disk, and
// Linux may have dropped both the dirty pages and the error, so a later fsync that
// returns nil proves nothing about them.
type fileSyncer struct {
	name string
	// size is the length written (whole records or tombstones up to it in the page cache).
	size *atomic.Int64
	// doSync fsyncs the file.
	doSync func() error
	// onFail runs (without any lock held) when an fsync fails.
	onFail func()
	// recordFailure, if set, records the failure durably (a segment's failed-sync marker)
	// with the bytes durable before it. It runs under mu, so no caller learns of the
	// failure before it is recorded; its error joins the failure's.
	recordFailure func(synced int64) error

	mu        sync.Mutex
	done      *sync.Cond
	synced    int64 // bytes durable
	syncingTo int64 // the most that a running fsync covers
	inFlight  int   // fsyncs running
	failed    error
	// failGen counts the failed fsyncs; running holds the tickets of the fsyncs in flight
	// (nextTicket the next one): a successful fsync counts only if none that overlapped
	// it failed (syncTo).
	failGen    uint64
	nextTicket uint64
	running    map[uint64]bool
}

func newFileSyncer(name string, size *atomic.Int64, doSync func() error, onFail func()) *fileSyncer {
	fs := &fileSyncer{name: name, size: size, doSync: doSync, onFail: onFail, running: map[uint64]bool{}}
	fs.done = sync.NewCond(&fs.mu)
	return fs
}

// syncTo returns once the first end bytes of the file are durable. It takes fs.mu and
// never packs.mu (which may be held while fs.mu is taken). Concurrent callers share
// fsyncs (group commit): an fsync covers everything written when it starts, a caller
// whose bytes a running fsync covers waits for it, and one whose bytes none covers starts
// its own if fewer than maxSyncsInFlight run, else waits for the next to end.
func (fs *fileSyncer) syncTo(end int64) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for {
		// Bytes durable before a failure stay durable: checked first.
		if fs.synced >= end {
			return nil
		}
		if fs.failed != nil {
			return fs.failed
		}
		if fs.inFlight < maxSyncsInFlight && fs.syncingTo < end {
			break
		}
		fs.done.Wait()
	}
	fs.inFlight++
	ticket := fs.nextTicket
	fs.nextTicket++
	fs.running[ticket] = true
	gen := fs.failGen
	target := fs.size.Load()
	fs.syncingTo = max(fs.syncingTo, target)
	fs.mu.Unlock()
	err := fs.doSync()
	fs.mu.Lock()
	fs.inFlight--
	delete(fs.running, ticket)
	fs.done.Broadcast()
	if err != nil {
		fs.failGen++
		fs.failed = fmt.Errorf("sync %s: %w", fs.name, err)
		if fs.recordFailure != nil {
			if rerr := fs.recordFailure(fs.synced); rerr != nil {
				fs.failed = errors.Join(fs.failed, rerr)
			}
		}
		if fs.onFail != nil {
			go fs.onFail()
		}
		return fs.failed
	}
	// Linux reports a writeback error to one fsync of the file only: another fsync in
	// flight meanwhile may fail for pages this one covered while this one returns nil.
	// This one counts once every fsync that overlapped it has ended without failing.
	var overlapping []uint64
	for t := range fs.running {
		overlapping = append(overlapping, t)
	}
	for {
		waiting := false
		for _, t := range overlapping {
			waiting = waiting || fs.running[t]
		}
		if !waiting {
			break
		}
		fs.done.Wait()
	}
	if fs.failGen != gen {
		return fs.failed
	}
	fs.synced = max(fs.synced, target)
	fs.done.Broadcast()
	if fs.synced < end {
		return fmt.Errorf("sync %s: %d bytes written, %d to sync", fs.name, target, end)
	}
	return nil
}

// fail makes the file fail from now on (a write that could not be undone).
func (fs *fileSyncer) fail(err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.failed == nil {
		fs.failGen++
		fs.failed = fmt.Errorf("%s: %w", fs.name, err)
	}
}

// failure returns the error of the failed fsync, nil if none failed.
func (fs *fileSyncer) failure() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.failed
}

// hasFailed reports whether an fsync of the file failed.
func (fs *fileSyncer) hasFailed() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.failed != nil
}

// lostBefore reports whether the bytes up to end may be lost: an fsync failed before
// covering them.
func (fs *fileSyncer) lostBefore(end int64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.failed != nil && fs.synced < end
}

// markSynced notes the first n bytes durable (an fsync of the whole filesystem covered
// them).
func (fs *fileSyncer) markSynced(n int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.synced = max(fs.synced, n)
}

// syncedBytes returns how much of the file is known durable.
func (fs *fileSyncer) syncedBytes() int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.synced
}
