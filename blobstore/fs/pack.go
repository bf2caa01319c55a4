package fs

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/strata-mail/strata/blobstore"
)

// Packed bodies (package comment, "Packing"): segment files under root/seg, their
// tombstone files beside them, and the in-memory index that a scan of both rebuilds at
// open.

const (
	// packDirName is the directory of the segment files under the store's root.
	packDirName = "seg"
	// DefaultSegmentSize is the size past which a segment is sealed and a new one begun.
	DefaultSegmentSize = 64 << 20
	// DefaultCompactBelow is the share of live bytes under which a sealed segment is
	// compacted.
	DefaultCompactBelow = 0.5
)

// packKey names a packed body: its tenant (interned) and digest.
type packKey struct {
	tenant string
	sum    [sha256.Size]byte
}

// recordLoc is where the live record of a body is.
type recordLoc struct {
	seg     *segment
	off     int64
	keyLen  uint16
	bodyLen uint32
	bodyCRC uint32
	// unverified is set for a record loaded from an index file whose body has not been
	// read since: a dedup hit reads it first (staged).
	unverified bool
}

func (l recordLoc) size() int64 { return int64(recordSize(int(l.keyLen), int(l.bodyLen))) }
func (l recordLoc) end() int64  { return l.off + l.size() }
func (l recordLoc) bodyOff() int64 {
	return l.off + headerSize + int64(l.keyLen)
}

// segment is one segment file and its tombstone file.
type segment struct {
	seq  uint64
	path string
	f    file
	// size is the length written (records are whole up to it in the page cache); it is
	// changed under packs.mu and read without it by the fsyncs (data).
	size atomic.Int64
	// scanned is where the scan of a process that does not own the segments stopped (the
	// first stretch that was not a whole record): a refresh goes on from there. delScanned
	// is how much of the tombstone file it has read, and dead the offsets tombstoned, so
	// that a record scanned after its tombstone is not indexed (refresh, under refreshMu).
	scanned    int64
	delScanned int64
	dead       map[int64]bool
	// Under packs.mu:
	live    int64 // bytes of live records
	sealed  bool  // no record is appended any more
	removed bool  // compacted away: files unlinked, closed once refs is 0
	refs    int   // readers and deleters using f or del
	del     file
	delSize int64 // length of del, a whole number of tombstones
	// entries are the records appended to the segment by this process, in order, for its
	// index file (segindex.go), written once it is sealed; indexed says the segment's
	// records need no index file (one was loaded, or it was scanned).
	entries []indexEntry
	indexed bool
	// movedOut holds the offsets of the records a compaction copied out of the segment:
	// they are tombstoned before the segment file is removed (compactSegment).
	movedOut []int64
	// supersededBy holds, per segment, the end of the last record written there (append)
	// that superseded a record of this segment. Such a record leaves this segment's live
	// bytes at once, before it is durable: the segment file is removed only once those
	// records are (compactSegment), else a power loss between the removal and their fsync
	// would lose a body whose only durable copy was here (review G1 of 2026-12-06).
	supersededBy map[*segment]int64
	// supersedes maps the offset of each record of this segment that superseded a live
	// record of its key to that record: if the newer one is lost (its fsync failed and
	// the page cache no longer holds it), the older one is the key's body again
	// (dropLostLocked). Rare (append supersedes only a record a dedup hit cannot take).
	supersedes map[int64]recordLoc

	// delWritten is delSize for the tombstone file's fsyncs (tombs), read without packs.mu.
	delWritten atomic.Int64
	// data and tombs group-commit the fsyncs of the segment file and the tombstone file.
	data, tombs *fileSyncer
	// dirSynced says the segment file's entry in packs.dir is durable.
	dirSynced atomic.Bool
	// prepared says the file may be longer than its records, zeros after them (a
	// prepared segment, prepare.go): it is cut to size once sealed and synced.
	prepared bool
}

func (p *packs) newSegment(seq uint64, path string, f file) *segment {
	seg := &segment{seq: seq, path: path, f: f}
	seg.data = newFileSyncer("segment "+path, &seg.size, func() error {
		if err := p.fsyncFile(seg.f); err != nil {
			return err
		}
		if !seg.dirSynced.Load() {
			if err := p.fsys.SyncDir(filepath.Dir(seg.path)); err != nil {
				return err
			}
			seg.dirSynced.Store(true)
		}
		return nil
	}, p.kickCompaction)
	if p.own {
		seg.data.recordFailure = func(synced int64) error { return writeFailedMarker(p.fsys, p.failedPath(seq), synced) }
	}
	seg.tombs = newFileSyncer("tombstones "+seg.delPath(), &seg.delWritten, func() error {
		return p.fsyncFile(seg.del)
	}, p.kickCompaction)
	return seg
}

// fsyncFile makes f's data durable (datasync), through the test seam if one is set.
func (p *packs) fsyncFile(f file) error {
	if hook := p.syncHook.Load(); hook != nil {
		return (*hook)(f)
	}
	return datasync(f)
}

// packs holds the packed bodies of a store.
type packs struct {
	dir string
	// own is set in the process that writes the segments (Options.Own); another process
	// only reads them, and looks for records written since on a miss (refresh).
	own          bool
	segmentSize  int64
	compactBelow float64

	mu       sync.Mutex
	index    map[packKey]recordLoc
	tenants  map[string]string // interned tenant names
	segments map[uint64]*segment
	active   *segment // nil until the first record after open or a rotation
	nextSeq  uint64
	// deleting holds the keys whose tombstone is written and not yet synced (remove): a
	// Delete of such a key waits for that sync instead of returning at once.
	deleting map[packKey]pendingTombstone
	// moving holds the records a compaction pass copied and whose copies it has not yet
	// synced, by key: a dedup hit takes the durable original instead (durableLocked).
	moving map[packKey]move
	// pendingTombs are the tombstones of superseded records that the open could not
	// write or sync (load); compaction passes retry them.
	pendingTombs []supersededRecord
	// closed is set by close: no record or tombstone is written after it (ErrClosed).
	closed bool

	// compactMu serializes compaction passes; kick wakes the background one, stop ends
	// it (close), and loopDone is closed once it has ended.
	compactMu sync.Mutex
	kick      chan struct{}
	stop      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
	// compactErr is the last background pass's error (tests read it).
	compactErr atomic.Pointer[error]
	// lock is the owner's lock file (lockOwner), under lockMu.
	lockMu sync.Mutex
	lock   *os.File
	// indexMu serializes writeIndexes.
	indexMu sync.Mutex
	// refreshMu serializes refreshes.
	refreshMu sync.Mutex
	// syncedAtOpen says that load synced the filesystem: the last owner did not close
	// cleanly (markClean).
	syncedAtOpen bool
	// syncHook, if set, fsyncs the segment and tombstone files instead of File.Sync
	// (tests make fsyncs fail with it).
	syncHook atomic.Pointer[func(file) error]
	// fsys is the store's file system (fsys.go).
	fsys fileSystem

	// prepared is the next segment, made ready ahead (prepare.go), nil if none is ready
	// (under mu); prepKick wakes the preparer, which closes prepDone once it has ended
	// (nil if none runs), and prepErr is its last error (tests read it).
	prepared *preparedSegment
	prepKick chan struct{}
	prepDone chan struct{}
	prepErr  atomic.Pointer[error]
}

// pendingTombstone is a tombstone written and not yet synced: its segment and the length
// of the tombstone file that covers it.
type pendingTombstone struct {
	seg *segment
	end int64
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x.seg", seq) }

// openPacks opens the segment files under dir, creating dir if needed, and rebuilds the
// index from them (package comment, "Packing"). syncHook, if not nil, is the test seam of
// the fsyncs (packs.syncHook), set before anything is synced.
func openPacks(dir string, own bool, segmentSize int64, compactBelow float64, syncHook func(file) error, fsys fileSystem) (*packs, error) {
	p := &packs{dir: dir, own: own, segmentSize: segmentSize, compactBelow: compactBelow,
		index: map[packKey]recordLoc{}, tenants: map[string]string{}, segments: map[uint64]*segment{},
		deleting: map[packKey]pendingTombstone{}, moving: map[packKey]move{}, nextSeq: 1, kick: make(chan struct{}, 1), prepKick: make(chan struct{}, 1),
		stop: make(chan struct{}), loopDone: make(chan struct{}), fsys: fsys}
	if syncHook != nil {
		p.syncHook.Store(&syncHook)
	}
	if _, err := p.fsys.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if !own {
			close(p.loopDone) // no compaction: close need not wait
			return p, nil     // nothing packed; refresh looks again on a miss
		}
		if err := p.fsys.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		if err := p.fsys.SyncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if own {
		if err := p.lockOwner(); err != nil {
			return nil, err
		}
	}
	if err := p.load(); err != nil {
		p.unlockOwner()
		return nil, err
	}
	if !own {
		close(p.loopDone)
		return p, nil
	}
	go p.compactLoop()
	p.maybeKick()
	return p, nil
}

// close ends the background compaction and waits for a pass that runs to end: no
// compaction runs once it returns; writes are refused from its start. An owner whose
// body files are durable (filesSynced) then leaves the clean-close marker (markClean)
// before it releases the owner's lock.
func (p *packs) close(filesSynced bool) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.closeOnce.Do(func() { close(p.stop) })
	<-p.loopDone
	if p.prepDone != nil {
		<-p.prepDone
	}
	p.mu.Lock()
	if ps := p.prepared; ps != nil {
		// Never used: no record in it. Removed before the clean-close marker takes the
		// directory's identity (a removal that fails leaves it to the next open).
		p.prepared = nil
		ps.f.Close()
		p.fsys.Remove(ps.path)
	}
	p.mu.Unlock()
	p.compactMu.Lock()
	defer p.compactMu.Unlock() // a pass started by SyncStaged has ended
	var err error
	if filesSynced {
		err = p.markClean()
	}
	p.unlockOwner()
	return err
}

// ownerLockName is the file under the segment directory that the owner holds an
// exclusive flock(2) on while it is open: a second owner (a second `strata serve` on the
// same data directory) would take the active segment for sealed and compact it away
// under the first, or create the segment the first is about to.
const ownerLockName = "owner.lock"

// lockOwner takes the owner's lock, or fails if another store holds it.
func (p *packs) lockOwner() error {
	f, err := os.OpenFile(filepath.Join(p.dir, ownerLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock segments: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock segments: %s is owned by another process (or another store of this one)", p.dir)
		}
		return fmt.Errorf("lock segments: %w", err)
	}
	p.lockMu.Lock()
	p.lock = f
	p.lockMu.Unlock()
	return nil
}

// unlockOwner releases the owner's lock if held.
func (p *packs) unlockOwner() {
	p.lockMu.Lock()
	defer p.lockMu.Unlock()
	if p.lock != nil {
		p.lock.Close() // releases the flock
		p.lock = nil
	}
}

// load rebuilds the index from the files in p.dir: each segment's index file if it has a
// sound one (segindex.go), else a scan of the segment.
func (p *packs) load() error {
	seqs, others, err := listSegments(p.fsys, p.dir)
	if err != nil {
		return err
	}
	// offsets[seq] maps the offset of each valid record of a segment to its key.
	offsets := map[uint64]map[int64]packKey{}
	var superseded []supersededRecord
	needIndex := false
	for _, seq := range seqs {
		path := filepath.Join(p.dir, segmentName(seq))
		f, err := p.fsys.OpenFile(path, p.openFlag(), 0)
		if errors.Is(err, os.ErrNotExist) && !p.own {
			continue // compacted away by the owner since the listing
		}
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		seg := p.newSegment(seq, path, f)
		// A segment whose fsync failed has its records trusted only up to the bytes
		// durable before the failure (failedsync.go).
		trustedEnd := int64(-1)
		if slices.Contains(others[seq], "failed") {
			if trustedEnd, err = readFailedMarker(p.fsys, p.failedPath(seq)); err != nil {
				return err
			}
		}
		// Every segment loaded is sealed: new records go to a new one.
		seg.sealed = true
		seg.indexed = true
		p.segments[seq] = seg
		p.nextSeq = max(p.nextSeq, seq+1)
		offs := map[int64]packKey{}
		offsets[seq] = offs
		add := func(off int64, key string, keyLen, bodyLen int, bodyCRC uint32, verified bool) {
			if trustedEnd >= 0 && off+int64(recordSize(keyLen, bodyLen)) > trustedEnd {
				return // its fsync failed: not trusted, as if torn
			}
			pk, _ := p.keyOf(key)
			loc := recordLoc{seg: seg, off: off, keyLen: uint16(keyLen), bodyLen: uint32(bodyLen), bodyCRC: bodyCRC, unverified: !verified}
			if old, ok := p.index[pk]; ok {
				old.seg.live -= old.size()
				superseded = append(superseded, supersededRecord{recordAt{old.seg, old.off}, seg})
			}
			p.index[pk] = loc
			seg.live += loc.size()
			offs[off] = pk
		}
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		if entries, ok := readSegmentIndex(p.fsys, p.indexPath(seq), info.Size()); ok {
			for _, e := range entries {
				add(e.off, e.key, len(e.key), int(e.bodyLen), e.bodyCRC, false)
			}
			seg.size.Store(info.Size())
			seg.scanned = info.Size()
			continue
		}
		// Read through the handle: the bytes are those of the file indexed, even if the
		// owner removes it meanwhile.
		data := make([]byte, info.Size())
		if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read segment: %w", err)
		}
		var entries []indexEntry
		firstBad, end := scanSegment(data, func(off int64, rec decodedRecord) {
			add(off, rec.key, rec.keyLen, rec.bodyLen, rec.bodyCRC, true)
			entries = append(entries, indexEntry{off: off, key: rec.key, bodyLen: uint32(rec.bodyLen), bodyCRC: rec.bodyCRC})
		})
		// The zeros after end are a prepared segment's unused tail (prepare.go): not
		// part of the segment, and cut off once it is indexed (writeIndexes).
		seg.size.Store(end)
		seg.scanned = firstBad
		seg.prepared = end < int64(len(data))
		if p.own {
			// What the scan found is the segment's index file, written in the background
			// once the sync below has made the segment durable (writeIndexes), so that the
			// next open reads it instead of scanning again.
			seg.indexed, seg.entries = false, entries
			needIndex = true
		}
	}
	if p.own {
		// What a killed process wrote is whole in the page cache and may not be on disk:
		// one sync of the filesystem makes every segment and tombstone file durable
		// before anything relies on it (a tombstone of a superseded record below, a dedup
		// hit, a Delete, a compaction), and every body file that process staged and never
		// synced as well (package comment, "Staging"). A failure fails the open: nothing
		// loaded could be trusted to survive a crash of the machine. After a clean close
		// (markClean) everything is durable already and the sync is skipped.
		clean, err := p.takeCleanMark()
		if err != nil {
			return err
		}
		if !clean {
			if err := p.fsys.SyncAll(p.dir); err != nil {
				return fmt.Errorf("sync segments: %w", err)
			}
			p.syncedAtOpen = true
		}
		// A prepared segment left over never holds a record (prepare.go).
		if err := p.fsys.Remove(filepath.Join(p.dir, preparedName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove a prepared segment: %w", err)
		}
		for _, seq := range seqs {
			seg := p.segments[seq]
			seg.data.markSynced(seg.size.Load())
			seg.dirSynced.Store(true)
		}
		if needIndex {
			p.kickCompaction() // its pass writes the index files first
		}
	}
	// Tombstones; those of a segment that is gone (a compaction removed the segment and
	// crashed before its tombstone file) are removed, and so are its index file.
	tombstoned := map[recordAt]bool{}
	removedOrphans := false
	for seq, exts := range others {
		// A segment number is never used again, not even that of a segment compacted
		// away whose tombstone file is left: a new segment of that number would take
		// those tombstones for its own.
		p.nextSeq = max(p.nextSeq, seq+1)
		seg := p.segments[seq]
		if seg == nil && !p.own {
			continue
		}
		if seg == nil {
			for _, ext := range exts {
				path := filepath.Join(p.dir, fmt.Sprintf("%016x.%s", seq, ext))
				if err := p.fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("remove the %s file of a removed segment: %w", ext, err)
				}
			}
			removedOrphans = true
			continue
		}
		if p.own && slices.Contains(exts, "idx.tmp") {
			// An index file a crash interrupted; a sound one is written again at no
			// cost to correctness (the segment was scanned instead).
			if err := p.fsys.Remove(p.indexPath(seq) + ".tmp"); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove a partial index file: %w", err)
			}
		}
		if !slices.Contains(exts, "del") {
			continue
		}
		data, err := p.fsys.ReadFile(seg.delPath())
		if errors.Is(err, os.ErrNotExist) && !p.own {
			continue // its segment compacted away by the owner since the listing
		}
		if err != nil {
			return fmt.Errorf("read tombstones: %w", err)
		}
		// A partial tombstone (a crash or ENOSPC during its write) is cut off, else every
		// later one would be off the tombstoneSize grid and fail its checksum.
		data = data[:len(data)/tombstoneSize*tombstoneSize]
		if p.own {
			if err := p.truncateTombstones(seg.delPath(), int64(len(data))); err != nil {
				return err
			}
		}
		seg.delScanned = int64(len(data))
		for _, off := range decodeTombstones(data) {
			tombstoned[recordAt{seg, off}] = true
			seg.markDead(p.own, off)
			pk, ok := offsets[seq][off]
			if !ok {
				continue // a record torn by the crash that came after its tombstone
			}
			if loc, ok := p.index[pk]; ok && loc.seg == seg && loc.off == off {
				delete(p.index, pk)
				seg.live -= loc.size()
			}
		}
	}
	if removedOrphans {
		// Durably gone before a segment of a lower number could be created again.
		if err := p.fsys.SyncDir(p.dir); err != nil {
			return err
		}
	}
	// A record that a newer one of its key superseded (a compaction's copy whose old
	// segment was not yet removed) gets a tombstone before anything else happens: else a
	// later tombstone of the newer record, removed with its segment by a compaction, would
	// leave the old one live at the next open. The newer record is durable (the sync
	// above), so the tombstone cannot outlive it.
	// If a tombstone cannot be written or synced (a full disk) the open goes on: the
	// tombstone is pending, retried by every compaction pass, and until it holds the
	// segment of the newer record is not compacted away (its removal is what would let
	// the old record come back). Reads and dedup hits on the newer record are unaffected.
	if !p.own {
		return nil
	}
	for _, r := range superseded {
		if !tombstoned[r.old] {
			p.pendingTombs = append(p.pendingTombs, r)
		}
	}
	if err := p.retryPendingTombstones(); err != nil {
		p.compactErr.Store(&err)
	}
	return nil
}

// recordAt is the place of a record.
type recordAt struct {
	seg *segment
	off int64
}

// supersededRecord is a record that a newer one of its key, in segment newer, superseded,
// found at open (a compaction's copy whose old segment was not yet removed).
type supersededRecord struct {
	old   recordAt
	newer *segment
}

// retryPendingTombstones writes and syncs the tombstones of the superseded records that
// are pending (load); those it cannot stay pending. A record whose segment was removed
// since needs none.
func (p *packs) retryPendingTombstones() error {
	p.mu.Lock()
	pending := p.pendingTombs
	p.pendingTombs = nil
	written := map[*segment][]supersededRecord{}
	var errs []error
	for _, r := range pending {
		if r.old.seg.removed {
			continue
		}
		if err := p.writeTombstone(r.old.seg, r.old.off); err != nil {
			p.pendingTombs = append(p.pendingTombs, r)
			errs = append(errs, err)
			continue
		}
		written[r.old.seg] = append(written[r.old.seg], r)
		r.old.seg.refs++
	}
	p.mu.Unlock()
	for seg, rs := range written {
		err := seg.tombs.syncTo(seg.delWritten.Load())
		p.mu.Lock()
		if err != nil {
			p.pendingTombs = append(p.pendingTombs, rs...)
			errs = append(errs, err)
		}
		seg.refs--
		p.closeIfUnusedLocked(seg)
		p.mu.Unlock()
	}
	if len(errs) > 0 {
		return fmt.Errorf("tombstones of superseded records, pending: %w", errors.Join(errs...))
	}
	return nil
}

// holdsPendingSuperseder reports whether seg holds a record newer than one whose
// tombstone is pending. The caller holds p.mu.
func (p *packs) holdsPendingSuperseder(seg *segment) bool {
	for _, r := range p.pendingTombs {
		if r.newer == seg {
			return true
		}
	}
	return false
}

// scanSegment calls fn with every whole record of a segment's bytes in order. A stretch
// that is not a whole record (the torn tail a crash left, or damage) is skipped: the scan
// resumes at the next offset where a whole record begins. Where nothing but zeros is
// left, at a place where no whole record begins, the segment ends cleanly: that is the
// unused tail of a prepared segment (prepare.go), not damage (no record begins with a
// zero byte: its magic). It returns where the first stretch that is not a whole record
// begins (the clean end if there is none) and end, the clean end (len(data) if the data
// does not end in such zeros).
func scanSegment(data []byte, fn func(off int64, rec decodedRecord)) (firstBad, end int64) {
	zerosFrom := len(bytes.TrimRight(data, "\x00"))
	firstBad = -1
	off := 0
	for off+headerSize <= len(data) && off < zerosFrom {
		rec, _, ok := decodeRecord(data[off:])
		if !ok {
			if firstBad < 0 {
				firstBad = int64(off)
			}
			off++
			continue
		}
		fn(int64(off), rec)
		off += rec.size()
	}
	end = int64(len(data))
	if off >= zerosFrom {
		end = int64(off)
	}
	if firstBad < 0 && int64(off) < end {
		firstBad = int64(off)
	}
	if firstBad < 0 {
		firstBad = end
	}
	return firstBad, end
}

// listSegments returns the sequence numbers of the segment files in dir in order, and
// the other files of each sequence number by their extension: "del" (its tombstone
// file), "idx" (its index file), "idx.tmp" (an index file being written) and "failed"
// (its failed-sync marker, failedsync.go).
func listSegments(fsys fileSystem, dir string) (seqs []uint64, others map[uint64][]string, err error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	others = map[uint64][]string{}
	for _, e := range entries {
		base, ext, _ := strings.Cut(e.Name(), ".")
		seq, err := strconv.ParseUint(base, 16, 64)
		if err != nil || len(base) != 16 {
			continue
		}
		switch ext {
		case "seg":
			seqs = append(seqs, seq)
		case "del", "idx", "idx.tmp", "failed":
			others[seq] = append(others[seq], ext)
		}
	}
	slices.Sort(seqs)
	return seqs, others, nil
}

func (p *packs) openFlag() int {
	if p.own {
		return os.O_RDWR
	}
	return os.O_RDONLY
}

// refresh, in a process that does not own the segments, indexes the records written
// since it last looked: the rest of each segment from where its scan stopped, and the
// segments created since, less the records tombstoned since. It runs on a miss only, so
// a body this process has read may still be found here after the owner deleted it: such
// a process reads bodies that metadata references (backup, import, export).
func (p *packs) refresh() error {
	if p.own {
		return nil
	}
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	seqs, _, err := listSegments(p.fsys, p.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		p.mu.Lock()
		seg := p.segments[seq]
		p.mu.Unlock()
		if seg == nil {
			path := filepath.Join(p.dir, segmentName(seq))
			f, err := open(p.fsys, path)
			if errors.Is(err, os.ErrNotExist) {
				continue // compacted away meanwhile
			}
			if err != nil {
				return fmt.Errorf("open segment: %w", err)
			}
			seg = p.newSegment(seq, path, f)
			p.mu.Lock()
			p.segments[seq] = seg
			p.mu.Unlock()
		}
		info, err := seg.f.Stat()
		if err != nil {
			return fmt.Errorf("refresh segment: %w", err)
		}
		if info.Size() <= seg.scanned {
			continue
		}
		data := make([]byte, info.Size()-seg.scanned)
		if _, err := seg.f.ReadAt(data, seg.scanned); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("refresh segment: %w", err)
		}
		from := seg.scanned
		p.mu.Lock()
		bad, end := scanSegment(data, func(off int64, rec decodedRecord) {
			if seg.dead[from+off] {
				return
			}
			pk, _ := p.keyOf(rec.key)
			p.index[pk] = recordLoc{seg: seg, off: from + off, keyLen: uint16(rec.keyLen), bodyLen: uint32(rec.bodyLen), bodyCRC: rec.bodyCRC}
		})
		seg.size.Store(from + end)
		p.mu.Unlock()
		seg.scanned = from + bad
		if err := p.refreshTombstones(seg); err != nil {
			return err
		}
	}
	return nil
}

// markDead notes, in a process that does not own the segments, that the record at off
// is tombstoned.
func (seg *segment) markDead(own bool, off int64) {
	if own {
		return
	}
	if seg.dead == nil {
		seg.dead = map[int64]bool{}
	}
	seg.dead[off] = true
}

// refreshTombstones applies the tombstones written to seg's tombstone file since the last
// refresh: the records they name leave the index, or are never indexed.
func (p *packs) refreshTombstones(seg *segment) error {
	data, err := p.fsys.ReadFile(seg.delPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("refresh tombstones: %w", err)
	}
	whole := int64(len(data)) / tombstoneSize * tombstoneSize
	if whole <= seg.delScanned {
		return nil
	}
	offs := decodeTombstones(data[seg.delScanned:whole])
	seg.delScanned = whole
	header := make([]byte, headerSize+maxKeyLen)
	for _, off := range offs {
		seg.markDead(false, off)
		n, _ := seg.f.ReadAt(header, off)
		rec, ok := decodeHeader(header[:n])
		if !ok {
			continue
		}
		p.mu.Lock()
		pk, _ := p.keyOf(rec.key)
		if loc, ok := p.index[pk]; ok && loc.seg == seg && loc.off == off {
			delete(p.index, pk)
		}
		p.mu.Unlock()
	}
	return nil
}

func (seg *segment) delPath() string { return strings.TrimSuffix(seg.path, ".seg") + ".del" }

// writeTombstone appends the tombstone of the record at off to seg's tombstone file,
// creating it (and syncing its directory) on first use. The caller holds p.mu and syncs
// the file (seg.tombs) up to seg.delWritten.
func (p *packs) writeTombstone(seg *segment, off int64) error {
	if err := seg.tombs.failure(); err != nil {
		return fmt.Errorf("write tombstone: %w", err)
	}
	if seg.del == nil {
		f, err := p.fsys.OpenFile(seg.delPath(), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open tombstones: %w", err)
		}
		info, err := f.Stat()
		if err == nil && info.Size()%tombstoneSize != 0 {
			err = f.Truncate(info.Size() / tombstoneSize * tombstoneSize)
		}
		if err == nil {
			err = p.fsys.SyncDir(p.dir)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("open tombstones: %w", err)
		}
		seg.del, seg.delSize = f, info.Size()/tombstoneSize*tombstoneSize
		seg.delWritten.Store(seg.delSize)
		// What the file held before is durable: the sync at open covered it.
		seg.tombs.markSynced(seg.delSize)
	}
	if _, err := seg.del.Write(encodeTombstone(off)); err != nil {
		// Cut a partial tombstone off, so that the next ones are on the grid; if that
		// fails too, the file takes no more tombstones (a compaction removes the segment).
		if terr := seg.del.Truncate(seg.delSize); terr != nil {
			seg.tombs.fail(fmt.Errorf("cut a partial tombstone: %w", terr))
			p.sealLocked(seg)
			p.kickCompaction()
		}
		return fmt.Errorf("write tombstone: %w", err)
	}
	seg.delSize += tombstoneSize
	seg.delWritten.Store(seg.delSize)
	return nil
}

// truncateTombstones cuts the tombstone file at path to size bytes if it is longer.
func (p *packs) truncateTombstones(path string, size int64) error {
	info, err := p.fsys.Stat(path)
	if err != nil {
		return fmt.Errorf("tombstones: %w", err)
	}
	if info.Size() == size {
		return nil
	}
	if err := p.fsys.Truncate(path, size); err != nil {
		return fmt.Errorf("truncate tombstones: %w", err)
	}
	return nil
}

// keyOf returns the index key of a blob key, interning its tenant; ok is false for an
// invalid key. The caller holds p.mu or owns p alone.
func (p *packs) keyOf(key string) (packKey, bool) {
	tenant, sum, ok := blobstore.ParseKey(key)
	if !ok {
		return packKey{}, false
	}
	if t, ok := p.tenants[tenant]; ok {
		tenant = t
	} else {
		p.tenants[tenant] = tenant
	}
	return packKey{tenant: tenant, sum: sum}, true
}

// lookup returns the location of key's live record.
func (p *packs) lookup(key string) (recordLoc, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pk, ok := p.keyOf(key)
	if !ok {
		return recordLoc{}, false
	}
	loc, ok := p.index[pk]
	return loc, ok
}

// durableLocked returns pk's live record if a dedup hit may take it: not if an fsync of
// its segment failed before covering it (it may never reach the disk), nor if its
// segment's tombstone file failed (a Delete of it that failed may have left a tombstone
// on disk after all), nor if it was loaded from an index file and its body not yet read
// (staged reads it first). A new Put of such a key writes it again. The caller holds p.mu.
func (p *packs) durableLocked(pk packKey) (recordLoc, bool) {
	loc, ok := p.index[pk]
	if !ok {
		return loc, false
	}
	if m, ok := p.moving[pk]; ok && m.to == loc && loc.seg.data.syncedBytes() < loc.end() {
		// A compaction's copy, not yet synced: its sync may fail where the original,
		// synced before it was copied, is durable (review fs19 R4). The original stays
		// until the copy is durable (compactSegment), or is the body again (undoMoves).
		loc = m.from
	}
	seg := loc.seg
	return loc, !loc.unverified && !seg.data.lostBefore(loc.end()) && !seg.tombs.hasFailed()
}

// packedStaged is the Staged of a packed body: the segment it is in, synced up to the
// record's end. superseded, if set, is an older record of the key that a failed fsync may
// have lost: once the new record is durable it is tombstoned, so that it cannot come back
// after the new one is deleted.
type packedStaged struct {
	p          *packs
	seg        *segment
	end        int64
	superseded *recordLoc
	once       sync.Once
	err        error
}

func (st *packedStaged) Sync() error {
	st.once.Do(func() {
		st.err = st.seg.data.syncTo(st.end)
		if st.err == nil && st.superseded != nil {
			st.p.tombstoneSuperseded(*st.superseded)
		}
	})
	return st.err
}

// tombstoneSuperseded tombstones old, a record superseded by a durable one, and syncs the
// tombstone. It is best effort: if it fails, old may come back after a crash once the
// newer record is deleted and compacted away (a body deleted coming back, never one lost).
func (p *packs) tombstoneSuperseded(old recordLoc) {
	p.mu.Lock()
	seg := old.seg
	if seg.removed || p.closed {
		p.mu.Unlock()
		return
	}
	err := p.writeTombstone(seg, old.off)
	end := seg.delWritten.Load()
	seg.refs++
	p.mu.Unlock()
	if err == nil {
		_ = seg.tombs.syncTo(end)
	}
	p.unpin(seg)
}

// staged returns the Staged of key's live record, if it has one (a dedup hit). A record
// loaded from an index file is read and checked against its key first. A process that
// does not own the segments never takes one: what it indexed may since have been
// deleted, or moved by a compaction and the copy deleted, with no tombstone it can see
// (the blob collector's epoch fence has an APPEND store its body again after a deletion,
// and that Put must store it), so it stores the body as a file.
func (p *packs) staged(key string) (blobstore.Staged, bool) {
	if !p.own {
		return nil, false
	}
	loc, ok := p.pin(key)
	if !ok {
		return nil, false
	}
	if loc.unverified {
		_, sum, _ := blobstore.ParseKey(key)
		_, err := readBody(loc, sum)
		p.mu.Lock()
		if pk, _ := p.keyOf(key); err == nil && p.index[pk] == loc {
			loc.unverified = false
			p.index[pk] = loc
		}
		p.mu.Unlock()
	}
	p.unpin(loc.seg)
	p.mu.Lock()
	defer p.mu.Unlock()
	pk, _ := p.keyOf(key)
	if loc, ok = p.durableLocked(pk); !ok {
		return nil, false
	}
	return &packedStaged{p: p, seg: loc.seg, end: loc.end()}, true
}

// append writes the record rec of key to the active segment and indexes it: it is
// readable when append returns, and durable once the returned Staged's Sync returns. If
// key has a live record already, nothing is written and that one's Staged is returned.
func (p *packs) append(key string, rec []byte, bodyLen int, bodyCRC uint32) (blobstore.Staged, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pk, _ := p.keyOf(key)
	if loc, ok := p.durableLocked(pk); ok {
		return &packedStaged{p: p, seg: loc.seg, end: loc.end()}, nil
	}
	if p.closed {
		return nil, ErrClosed
	}
	loc, err := p.appendLocked(rec)
	if err != nil {
		return nil, err
	}
	st := &packedStaged{p: p, seg: loc.seg, end: loc.end()}
	if old, ok := p.index[pk]; ok {
		old.seg.live -= old.size() // superseded by the record written above
		st.superseded = &old
		if loc.seg.supersedes == nil {
			loc.seg.supersedes = map[int64]recordLoc{}
		}
		loc.seg.supersedes[loc.off] = old
		if old.seg != loc.seg {
			if old.seg.supersededBy == nil {
				old.seg.supersededBy = map[*segment]int64{}
			}
			old.seg.supersededBy[loc.seg] = max(old.seg.supersededBy[loc.seg], loc.end())
		}
	}
	loc.keyLen, loc.bodyLen, loc.bodyCRC = uint16(len(key)), uint32(bodyLen), bodyCRC
	p.index[pk] = loc
	loc.seg.live += loc.size()
	return st, nil
}

// appendLocked writes rec at the end of the active segment, beginning a new one when the
// active one is full or failed. The caller holds p.mu.
func (p *packs) appendLocked(rec []byte) (recordLoc, error) {
	seg := p.active
	if seg != nil && (seg.size.Load()+int64(len(rec)) > p.segmentSize && seg.size.Load() > 0 || seg.data.hasFailed() || seg.tombs.hasFailed()) {
		p.sealLocked(seg)
		seg = nil
	}
	if p.closed {
		return recordLoc{}, ErrClosed
	}
	if seg == nil {
		if f, seq, path, ok := p.takePreparedLocked(); ok {
			p.nextSeq = seq + 1
			seg = p.newSegment(seq, path, f)
			seg.prepared = true
			p.segments[seq] = seg
			p.active = seg
		}
	}
	if seg == nil {
		// None prepared (yet): a segment that grows with its records.
		p.kickPrepare()
		seq := p.nextSeq
		path := filepath.Join(p.dir, segmentName(seq))
		f, err := p.fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		for tries := 0; errors.Is(err, os.ErrExist) && tries < 1000; tries++ {
			// A number this process did not load is taken (another writer, against the
			// owner's lock): skip it rather than fail every write (review fs19 R3).
			p.nextSeq++
			seq = p.nextSeq
			path = filepath.Join(p.dir, segmentName(seq))
			f, err = p.fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if err != nil {
			return recordLoc{}, fmt.Errorf("create segment: %w", err)
		}
		p.nextSeq++
		seg = p.newSegment(seq, path, f)
		p.segments[seq] = seg
		p.active = seg
	}
	off := seg.size.Load()
	if _, err := seg.f.WriteAt(rec, off); err != nil {
		// Nothing after off is indexed: truncate the partial record away, or leave it
		// to the scan at open (which skips it) and write elsewhere from now on.
		if seg.f.Truncate(off) != nil {
			p.sealLocked(seg)
		}
		return recordLoc{}, fmt.Errorf("write segment: %w", err)
	}
	seg.size.Store(off + int64(len(rec)))
	keyLen := int(binary.LittleEndian.Uint16(rec[4:]))
	seg.entries = append(seg.entries, indexEntry{off: off, key: string(rec[headerSize : headerSize+keyLen]),
		bodyLen: binary.LittleEndian.Uint32(rec[8:]), bodyCRC: binary.LittleEndian.Uint32(rec[12:])})
	return recordLoc{seg: seg, off: off}, nil
}

// sealLocked seals seg: no record is appended to it any more, and it gets an index file
// (segindex.go). The caller holds p.mu.
func (p *packs) sealLocked(seg *segment) {
	if seg.sealed {
		return
	}
	seg.sealed = true
	if p.active == seg {
		p.active = nil
	}
	p.kickCompaction()
}

// pin returns key's live record with its segment held open until unpin.
func (p *packs) pin(key string) (recordLoc, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pk, ok := p.keyOf(key)
	if !ok {
		return recordLoc{}, false
	}
	loc, ok := p.index[pk]
	if ok {
		loc.seg.refs++
	}
	return loc, ok
}

func (p *packs) unpin(seg *segment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seg.refs--
	p.closeIfUnusedLocked(seg)
}

func (p *packs) closeIfUnusedLocked(seg *segment) {
	if seg.removed && seg.refs == 0 && seg.f != nil {
		seg.f.Close()
		seg.f = nil
		if seg.del != nil {
			seg.del.Close()
			seg.del = nil
		}
	}
}

// readBody reads and checks the body of the record at loc, whose segment is pinned,
// against its checksum and sum, the digest of its key.
func readBody(loc recordLoc, sum [sha256.Size]byte) ([]byte, error) {
	body := make([]byte, loc.bodyLen)
	if _, err := loc.seg.f.ReadAt(body, loc.bodyOff()); err != nil {
		return nil, fmt.Errorf("read segment %s: %w", loc.seg.path, err)
	}
	if crc32.Checksum(body, castagnoli) != loc.bodyCRC || sha256.Sum256(body) != sum {
		return nil, fmt.Errorf("%w: segment %s at %d fails its checksum", blobstore.ErrCorrupt, loc.seg.path, loc.off)
	}
	return body, nil
}

// get returns the body of key's live record, checked against its checksum; found is false
// if key has none.
func (p *packs) get(key string) (body []byte, found bool, err error) {
	loc, ok := p.pin(key)
	if !ok {
		return nil, false, nil
	}
	defer p.unpin(loc.seg)
	_, sum, _ := blobstore.ParseKey(key) // valid: pin found it
	body, err = readBody(loc, sum)
	return body, true, err
}

// remove removes key's live record, durably: its tombstone is synced when remove
// returns. A key without one is no error, unless a Delete of it is syncing its tombstone:
// then remove waits for that sync. The record itself is synced first: a compaction may
// have just copied it to a segment not yet synced, and a tombstone that outlives its
// record in a crash would leave the old copy live at the next open. If the tombstone's
// sync fails the record is indexed again (the tombstone may not be on disk): a retry
// fails too rather than return nil for a deletion that may not hold.
func (p *packs) remove(key string) error {
	for {
		p.mu.Lock()
		pk, ok := p.keyOf(key)
		loc, found := p.index[pk]
		if !ok {
			p.mu.Unlock()
			return nil
		}
		if !found {
			pending, deleting := p.deleting[pk]
			if !deleting {
				p.mu.Unlock()
				return nil
			}
			pending.seg.refs++
			p.mu.Unlock()
			err := pending.seg.tombs.syncTo(pending.end)
			p.unpin(pending.seg)
			if err != nil {
				return fmt.Errorf("sync tombstones: %w", err)
			}
			return nil
		}
		if !p.own {
			p.mu.Unlock()
			return fmt.Errorf("the body is packed in %s, which another process owns (strata serve): only that one deletes it", p.dir)
		}
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		seg := loc.seg
		seg.refs++
		p.mu.Unlock()
		err := seg.data.syncTo(loc.end())
		if err != nil {
			p.unpin(seg)
			return err
		}
		p.mu.Lock()
		if now, ok := p.index[pk]; !ok || now.seg != loc.seg || now.off != loc.off {
			p.mu.Unlock()
			p.unpin(seg) // moved or removed meanwhile: look again
			continue
		}
		if err := p.writeTombstone(seg, loc.off); err != nil {
			p.mu.Unlock()
			p.unpin(seg)
			return err
		}
		delete(p.index, pk)
		seg.live -= loc.size()
		pending := pendingTombstone{seg: seg, end: seg.delWritten.Load()}
		p.deleting[pk] = pending
		p.maybeKickSegLocked(seg)
		p.mu.Unlock()
		err = seg.tombs.syncTo(pending.end)
		p.mu.Lock()
		if p.deleting[pk] == pending {
			delete(p.deleting, pk)
		}
		if _, ok := p.index[pk]; err != nil && !ok && !seg.removed {
			p.index[pk] = loc
			seg.live += loc.size()
		}
		p.mu.Unlock()
		p.unpin(seg)
		if err != nil {
			return fmt.Errorf("sync tombstones: %w", err)
		}
		return nil
	}
}

// syncAll makes every record written so far durable. A segment whose fsync failed has
// its records copied to a sound one first (compact).
func (p *packs) syncAll() error {
	p.mu.Lock()
	var segs []*segment
	failed := false
	for _, seg := range p.segments {
		segs = append(segs, seg)
		failed = failed || seg.data.hasFailed()
	}
	p.mu.Unlock()
	if failed {
		if err := p.compact(); err != nil {
			return err
		}
		p.mu.Lock()
		segs = segs[:0]
		for _, seg := range p.segments {
			segs = append(segs, seg)
		}
		p.mu.Unlock()
	}
	var errs []error
	for _, seg := range segs {
		p.mu.Lock()
		dead := seg.live == 0
		p.mu.Unlock()
		if dead && seg.data.hasFailed() {
			continue // failed, and nothing in it is live: nothing to sync
		}
		if err := seg.data.syncTo(seg.size.Load()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maybeKickSegLocked wakes the compactor if seg is sealed and mostly dead.
func (p *packs) maybeKickSegLocked(seg *segment) {
	if p.compactable(seg) {
		p.kickCompaction()
	}
}

// compactable reports whether a compaction pass takes seg: sealed, and mostly dead, or
// with a failed file (its records are copied to a sound segment, and it is removed).
func (p *packs) compactable(seg *segment) bool {
	if !seg.sealed || seg.removed {
		return false
	}
	if seg.seq == p.nextSeq-1 && seg.live == 0 {
		// The highest number used stays on disk until a higher one exists, so that the
		// next open does not use it again (a reader that still has the old file open
		// would take the new one for it); with no live record there is nothing to copy.
		return false
	}
	return seg.live == 0 || float64(seg.live) < p.compactBelow*float64(seg.size.Load()) ||
		seg.data.hasFailed() || seg.tombs.hasFailed()
}

func (p *packs) maybeKick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, seg := range p.segments {
		if p.compactable(seg) {
			p.kickCompaction()
			return
		}
	}
}

// kickCompaction wakes the background compaction pass; it takes no lock.
func (p *packs) kickCompaction() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// compactLoop runs a compaction pass, after writing the index files of the segments
// sealed since the last, whenever it is kicked.
func (p *packs) compactLoop() {
	defer close(p.loopDone)
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		err := errors.Join(p.writeIndexes(), p.compact())
		if err != nil {
			p.compactErr.Store(&err)
		}
	}
}

// compact compacts every sealed segment whose live bytes are under the threshold or
// whose segment or tombstone file failed: it copies the segment's live records to the
// active segment, syncs them, tombstones the originals, and then removes the segment
// file, durably, before its tombstone file (package comment, "Packing").
func (p *packs) compact() error {
	p.compactMu.Lock()
	defer p.compactMu.Unlock()
	// Nothing is compacted once close began: its owner's lock may be released, and a new
	// owner write the directory (review fs19 R3). close waits for a pass under way.
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// A pending tombstone that still cannot be written keeps its newer record's segment
	// out of the pass below and fails nothing else (SyncStaged runs passes).
	if err := p.retryPendingTombstones(); err != nil {
		p.compactErr.Store(&err)
	}
	p.mu.Lock()
	if a := p.active; a != nil && (a.data.hasFailed() || a.tombs.hasFailed()) {
		p.sealLocked(a)
	}
	var victims []*segment
	for _, seg := range p.segments {
		if p.compactable(seg) && !p.holdsPendingSuperseder(seg) {
			victims = append(victims, seg)
		}
	}
	p.mu.Unlock()
	// Failed segments first: a segment whose records were superseded by records in a
	// failed one waits for those to be copied to a sound one (syncSuperseders).
	slices.SortFunc(victims, func(a, b *segment) int {
		if fa, fb := a.data.hasFailed(), b.data.hasFailed(); fa != fb {
			if fa {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.seq, b.seq)
	})
	// One segment that cannot be compacted does not stop the others.
	var errs []error
	for _, seg := range victims {
		if err := p.compactSegment(seg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// move is a record a compaction copied: the key, where it was and where it went.
type move struct {
	pk       packKey
	from, to recordLoc
}

func (p *packs) compactSegment(seg *segment) error {
	// Every record of the segment is durable before any is copied: a dedup hit's Staged
	// may still sync it, and must find nothing left to sync once the segment is gone. A
	// segment whose fsync failed is copied from what the page cache holds, each record
	// checked against its key by the scan: the copies make durable what the failed fsync
	// may have lost (a Staged of its records fails without syncing).
	failed := seg.data.hasFailed()
	if !failed {
		if err := seg.data.syncTo(seg.size.Load()); err != nil {
			return err
		}
	}
	data, err := p.fsys.ReadFile(seg.path)
	if err != nil {
		return fmt.Errorf("compact segment: %w", err)
	}
	var moves []move
	defer func() {
		p.mu.Lock()
		for _, m := range moves {
			if p.moving[m.pk] == m {
				delete(p.moving, m.pk)
			}
		}
		p.mu.Unlock()
	}()
	var copyErr error
	scanSegment(data, func(off int64, rec decodedRecord) {
		if copyErr != nil {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		pk, _ := p.keyOf(rec.key)
		loc, ok := p.index[pk]
		if !ok || loc.seg != seg || loc.off != off {
			return // deleted or superseded
		}
		moved, err := p.appendLocked(data[off : off+int64(rec.size())])
		if err != nil {
			copyErr = err
			return
		}
		moved.keyLen, moved.bodyLen, moved.bodyCRC = loc.keyLen, loc.bodyLen, loc.bodyCRC
		p.index[pk] = moved
		seg.live -= loc.size()
		moved.seg.live += moved.size()
		seg.movedOut = append(seg.movedOut, off)
		moves = append(moves, move{pk: pk, from: loc, to: moved})
		p.moving[pk] = moves[len(moves)-1]
	})
	if copyErr != nil {
		return p.undoMoves(seg, moves, fmt.Errorf("compact segment %s: %w", seg.path, copyErr))
	}
	if failed {
		p.dropLost(seg)
	}
	ends := map[*segment]int64{}
	for _, m := range moves {
		ends[m.to.seg] = max(ends[m.to.seg], m.to.end())
	}
	for to, end := range ends {
		if err := to.data.syncTo(end); err != nil {
			return p.undoMoves(seg, moves, fmt.Errorf("compact segment %s: %w", seg.path, err))
		}
	}
	// The records that superseded ones of seg are durable before seg can go (segment
	// supersededBy): one may be the only other copy of a body acknowledged from seg. None
	// is added once the scan above is over: no record is indexed in seg any more.
	if err := p.syncSuperseders(seg); err != nil {
		return fmt.Errorf("compact segment %s: %w", seg.path, err)
	}
	// The copies are durable: the originals get tombstones before the segment file is
	// removed, so that if its removal does not hold (a failed unlink or directory fsync,
	// a crash) nothing moved out of it is live there at the next open.
	p.mu.Lock()
	if seg.live != 0 {
		// Only a record that was not whole on disk could be left: keep the segment.
		p.mu.Unlock()
		return fmt.Errorf("compact segment %s: %d live bytes not copied", seg.path, seg.live)
	}
	// A failed tombstone file takes none: the removal alone has to do (a segment kept
	// for good would come back all the same at the next open).
	tombsFailed := seg.tombs.hasFailed()
	for _, off := range seg.movedOut {
		if tombsFailed {
			break
		}
		if err := p.writeTombstone(seg, off); err != nil {
			p.mu.Unlock()
			return fmt.Errorf("compact segment %s: %w", seg.path, err)
		}
	}
	seg.movedOut = nil
	end := seg.delWritten.Load()
	p.mu.Unlock()
	if err := seg.tombs.syncTo(end); err != nil && !tombsFailed {
		return fmt.Errorf("compact segment %s: %w", seg.path, err)
	}
	if err := p.fsys.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact segment: %w", err)
	}
	p.mu.Lock()
	seg.removed = true
	seg.supersededBy = nil
	delete(p.segments, seg.seq)
	p.closeIfUnusedLocked(seg)
	p.mu.Unlock()
	if err := p.fsys.SyncDir(p.dir); err != nil {
		// The removal may not hold: the tombstone file stays with it (load removes it
		// once the segment file is gone).
		return fmt.Errorf("compact segment: %w", err)
	}
	for _, path := range []string{seg.delPath(), p.indexPath(seg.seq), p.failedPath(seg.seq)} {
		if err := p.fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("compact segment: %w", err)
		}
	}
	return nil
}

// dropLost drops from the index the records of seg, whose fsync failed, that the
// compaction's scan did not find whole: the failed fsync did not cover them and the page
// cache no longer holds them (review G2 of 2026-12-06). No Sync of theirs returned nil,
// so nothing acknowledged is lost with them; their keys get back the records they
// superseded, if any (dropLostLocked), or are absent, and a retried Put writes them again.
// A record the fsync did cover and the scan did not find stays indexed: the compaction
// then fails on it (the disk lost bytes it had made durable).
func (p *packs) dropLost(seg *segment) {
	synced := seg.data.syncedBytes()
	p.mu.Lock()
	defer p.mu.Unlock()
	for pk, loc := range p.index {
		if loc.seg == seg && loc.end() > synced {
			p.dropLostLocked(pk, loc)
		}
	}
}

// dropLostLocked drops loc, pk's live record, which is lost, from the index and makes
// the record it superseded pk's body again if that one is still whole on disk as far as
// this process knows (its segment not removed, and no failed fsync before it). The
// caller holds p.mu.
func (p *packs) dropLostLocked(pk packKey, loc recordLoc) {
	seg := loc.seg
	delete(p.index, pk)
	seg.live -= loc.size()
	old, ok := seg.supersedes[loc.off]
	delete(seg.supersedes, loc.off)
	if !ok || old.seg.removed || old.seg.data.lostBefore(old.end()) {
		return
	}
	p.index[pk] = old
	old.seg.live += old.size()
}

// syncSuperseders makes durable the records that superseded records of seg (segment
// supersededBy), in segments not removed since: a removed segment's live records were
// copied and synced before its removal, by this same rule.
func (p *packs) syncSuperseders(seg *segment) error {
	p.mu.Lock()
	ends := map[*segment]int64{}
	for to, end := range seg.supersededBy {
		if to != seg && !to.removed {
			ends[to] = end
			to.refs++
		}
	}
	p.mu.Unlock()
	var errs []error
	for to, end := range ends {
		if err := to.data.syncTo(end); err != nil {
			errs = append(errs, fmt.Errorf("a record that superseded one here is not durable: %w", err))
		}
		p.unpin(to)
	}
	return errors.Join(errs...)
}

// undoMoves puts the records a compaction of seg copied back where they were, after the
// copies failed to become durable: seg keeps them, and the copies, which may or may not
// reach the disk, get tombstones (else one would outlive a deletion of its original). It
// returns err, joined with any failure to tombstone a copy.
func (p *packs) undoMoves(seg *segment, moves []move, err error) error {
	p.mu.Lock()
	undone := map[int64]bool{}
	tombs := map[*segment]int64{}
	var errs []error
	for _, m := range moves {
		now, ok := p.index[m.pk]
		if !ok || now.seg != m.to.seg || now.off != m.to.off {
			continue // deleted or superseded meanwhile: the copy is dead already
		}
		p.index[m.pk] = m.from
		m.to.seg.live -= m.to.size()
		seg.live += m.from.size()
		undone[m.from.off] = true
		if terr := p.writeTombstone(m.to.seg, m.to.off); terr != nil {
			errs = append(errs, terr)
			continue
		}
		m.to.seg.refs++
		tombs[m.to.seg] = m.to.seg.delWritten.Load()
	}
	seg.movedOut = slices.DeleteFunc(seg.movedOut, func(off int64) bool { return undone[off] })
	p.mu.Unlock()
	for to, end := range tombs {
		if terr := to.tombs.syncTo(end); terr != nil {
			errs = append(errs, terr)
		}
		p.unpin(to)
	}
	return errors.Join(append([]error{err}, errs...)...)
}

// bytesReader reads a packed body until its context is done.
type bytesReader struct {
	ctx context.Context
	r   io.Reader
}

func (b *bytesReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}

func (b *bytesReader) Close() error { return nil }
