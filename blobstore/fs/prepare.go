package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Prepared segments: the owner of a packing store keeps the next segment file ready
// before it is needed, as etcd's WAL (filePipeline) and Pebble's WAL recycling do. A
// background goroutine (prepareLoop) creates root/seg/prepared.tmp, writes zeros over
// the whole segment size, syncs it and root/seg; a rotation (appendLocked) renames it to
// the new segment's name. A record written into it then lands in blocks that are
// allocated and written already, so its fdatasync writes the data and nothing else: no
// size change, no extent to allocate or convert, hence no ext4 journal commit (which a
// segment that grows pays on every fsync, and which the Raft log's WAL shares). On the
// lead's disk that is ~170-200 µs per sync instead of ~280-310 (2026-12-07).
//
// What it changes on disk:
//
//   - A segment's logical end is not its file size: the records are followed by zeros.
//     A scan (scanSegment) ends cleanly where only zeros are left (no record begins
//     with a zero header: its magic is not zero); a stretch that is not a whole record
//     before that is skipped as before (a torn record, also one torn into the zeros).
//   - Once sealed and synced whole, a segment is cut to its logical end (trimTail,
//     before its index file is written): sealed segments stay exact-size, so their
//     index files describe their file length as before, compaction and readers of a
//     sealed segment see nothing new, and the zeros do not take disk space for good. A
//     segment that was active when its owner stopped (closed or killed) is scanned at
//     the next open like any segment without an index file, and cut then.
//   - Disk bandwidth: every segment is written twice, once as zeros (in the background,
//     at most DefaultSegmentSize per segment used) and once as records.
//   - A prepared file left over (a stop before it was used) is removed at the next
//     open, after the clean-close check; it never holds a record.
//   - No segment is prepared while the file system has less than prepareReserve
//     segment sizes free: a nearly full disk keeps the growing segments of before
//     rather than lose room to zeros.
//
// A process that does not own the segments prepares nothing; it reads an active
// segment up to its file size, zeros included, on a refresh (a miss), and its scan ends
// at the zeros as the owner's does.
const (
	preparedName = "prepared.tmp"
	// prepareChunk is the size of each write of zeros, and prepareSyncEvery how many
	// bytes of them are written between fdatasyncs, so that no single journal commit
	// (shared with the Raft log) carries a whole segment's blocks.
	prepareChunk     = 1 << 20
	prepareSyncEvery = 8 << 20
	prepareReserve   = 4
)

// preparedSegment is a segment file made ready ahead (prepareSegment).
type preparedSegment struct {
	f    file
	path string
}

// datasync makes f's data durable with fdatasync(2) where f is an operating-system
// file: the data and what reading it back needs (its size, its blocks), not its times,
// whose change alone would cost an fsync a journal commit. Other files (tests' models)
// are synced with their Sync.
func datasync(f file) error {
	of, ok := f.(*os.File)
	if !ok {
		return f.Sync()
	}
	conn, err := of.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := conn.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: of.Name(), Err: serr}
	}
	return nil
}

// startPreparing starts the goroutine that keeps the next segment prepared (owner and
// packing only); close ends it.
func (p *packs) startPreparing() {
	p.prepDone = make(chan struct{})
	go p.prepareLoop()
	p.kickPrepare()
}

// kickPrepare wakes the preparer, if one runs; it takes no lock.
func (p *packs) kickPrepare() {
	select {
	case p.prepKick <- struct{}{}:
	default:
	}
}

// prepareLoop prepares a segment whenever none is ready, until close.
func (p *packs) prepareLoop() {
	defer close(p.prepDone)
	for {
		select {
		case <-p.stop:
			return
		case <-p.prepKick:
		}
		p.mu.Lock()
		need := p.prepared == nil && !p.closed
		p.mu.Unlock()
		if !need || !p.roomToPrepare() {
			continue
		}
		ps, err := p.prepareSegment()
		if err != nil {
			p.prepErr.Store(&err)
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			ps.f.Close()
			return
		}
		p.prepared = ps
		p.mu.Unlock()
	}
}

// roomToPrepare reports whether the file system has room for prepareReserve segments.
func (p *packs) roomToPrepare() bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(p.dir, &st); err != nil {
		return false
	}
	return int64(st.Bavail)*st.Bsize >= prepareReserve*p.segmentSize
}

// prepareSegment writes root/seg/prepared.tmp: zeros over the segment size, synced, its
// name synced. A failure (or a close meanwhile) removes the file.
func (p *packs) prepareSegment() (*preparedSegment, error) {
	path := filepath.Join(p.dir, preparedName)
	f, err := p.fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("prepare segment: %w", err)
	}
	fail := func(err error) (*preparedSegment, error) {
		f.Close()
		p.fsys.Remove(path)
		return nil, fmt.Errorf("prepare segment: %w", err)
	}
	zeros := make([]byte, min(prepareChunk, p.segmentSize))
	for off := int64(0); off < p.segmentSize; {
		select {
		case <-p.stop:
			return fail(ErrClosed)
		default:
		}
		n := min(int64(len(zeros)), p.segmentSize-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fail(err)
		}
		off += n
		if off%prepareSyncEvery == 0 && off < p.segmentSize {
			if err := datasync(f); err != nil {
				return fail(err)
			}
		}
	}
	// A full fsync: the size and every block, so that no later fdatasync of a record
	// has metadata to write.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := p.fsys.SyncDir(p.dir); err != nil {
		return fail(err)
	}
	return &preparedSegment{f: f, path: path}, nil
}

// takePreparedLocked renames the prepared segment, if one is ready, to the segment file
// of number seq or the next free one after it, and returns it with its number; ok is
// false if none is ready or the rename failed (the caller creates a segment as before).
// The caller holds p.mu.
func (p *packs) takePreparedLocked() (f file, seq uint64, path string, ok bool) {
	ps := p.prepared
	if ps == nil {
		return nil, 0, "", false
	}
	p.prepared = nil
	defer p.kickPrepare()
	seq = p.nextSeq
	path = filepath.Join(p.dir, segmentName(seq))
	for tries := 0; tries < 1000; tries++ {
		// A number whose file exists is skipped (appendLocked): a rename would replace it.
		if _, err := p.fsys.Lstat(path); errors.Is(err, os.ErrNotExist) {
			if err := p.fsys.Rename(ps.path, path); err != nil {
				break
			}
			// Opened again under its name, which error messages and tests' fault
			// models see (File.Name); a failure leaves an empty segment of that number.
			f, err := p.fsys.OpenFile(path, os.O_RDWR, 0)
			ps.f.Close()
			if err != nil {
				return nil, 0, "", false
			}
			return f, seq, path, true
		}
		p.nextSeq++
		seq = p.nextSeq
		path = filepath.Join(p.dir, segmentName(seq))
	}
	ps.f.Close()
	return nil, 0, "", false
}

// trimTail cuts a sealed segment that was prepared to its logical end, size, and syncs
// the new length: sealed segments stay exact-size (see above). The segment is synced
// up to size already.
func (p *packs) trimTail(seg *segment, size int64) error {
	info, err := seg.f.Stat()
	if err != nil {
		return fmt.Errorf("trim segment %s: %w", seg.path, err)
	}
	if info.Size() <= size {
		return nil
	}
	if err := seg.f.Truncate(size); err != nil {
		return fmt.Errorf("trim segment %s: %w", seg.path, err)
	}
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("trim segment %s: %w", seg.path, err)
	}
	return nil
}
