package fs

import (
	"context"
	"crypto/sha256"
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

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/internal/fsync"
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
	f    *os.File
	// size is the length written (records are whole up to it in the page cache); it is
	// changed under packs.mu and read without it by syncTo.
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
	del     *os.File
	delSize int64 // length of del, a whole number of tombstones

	// Group commit of the segment's fsyncs (syncTo), under syncMu.
	syncMu    sync.Mutex
	syncDone  *sync.Cond
	synced    int64 // bytes durable
	syncingTo int64 // the most that a running fsync covers
	inFlight  int   // fsyncs running
	dirSynced bool  // the segment file's entry in packs.dir is durable
	failed    error
	// failGen counts the segment's failed fsyncs; running holds the tickets of the fsyncs
	// in flight (nextTicket the next one): a successful fsync counts only if none that
	// overlapped it failed (syncTo).
	failGen    uint64
	nextTicket uint64
	running    map[uint64]bool
	// syncHook is packs.syncHook.
	syncHook *atomic.Pointer[func(*os.File) error]
}

func (p *packs) newSegment(seq uint64, path string, f *os.File) *segment {
	seg := &segment{seq: seq, path: path, f: f, running: map[uint64]bool{}, syncHook: &p.syncHook}
	seg.syncDone = sync.NewCond(&seg.syncMu)
	return seg
}

// maxSyncsInFlight bounds the fsyncs of one segment running at once. Two let a Put that
// arrives during an fsync start its own at once, as a file per body would, instead of
// waiting for the running one to end first; more would only split the batches.
const maxSyncsInFlight = 2

// syncTo returns once the first end bytes of the segment are durable. It takes syncMu and
// never packs.mu (which may be held while syncMu is taken). Concurrent callers share
// fsyncs (group commit): an fsync covers everything written when it starts, a caller
// whose bytes a running fsync covers waits for it, and one whose bytes none covers starts
// its own if fewer than maxSyncsInFlight run, else waits for the next to end.
func (seg *segment) syncTo(end int64) error {
	seg.syncMu.Lock()
	defer seg.syncMu.Unlock()
	for {
		// Bytes durable before a failure stay durable: checked first.
		if seg.synced >= end {
			return nil
		}
		if seg.failed != nil {
			return seg.failed
		}
		if seg.inFlight < maxSyncsInFlight && seg.syncingTo < end {
			break
		}
		seg.syncDone.Wait()
	}
	seg.inFlight++
	ticket := seg.nextTicket
	seg.nextTicket++
	seg.running[ticket] = true
	gen := seg.failGen
	target := seg.size.Load()
	seg.syncingTo = max(seg.syncingTo, target)
	needDir := !seg.dirSynced
	seg.syncMu.Unlock()
	var err error
	if hook := seg.syncHook.Load(); hook != nil {
		err = (*hook)(seg.f)
	} else {
		err = seg.f.Sync()
	}
	if err == nil && needDir {
		err = fsync.Dir(filepath.Dir(seg.path))
	}
	seg.syncMu.Lock()
	seg.inFlight--
	delete(seg.running, ticket)
	seg.syncDone.Broadcast()
	if err != nil {
		// What the failed fsync covered may never reach the disk, and Linux may have
		// dropped the error for a retry: the segment takes no more fsyncs.
		seg.failGen++
		seg.failed = fmt.Errorf("sync segment %s: %w", seg.path, err)
		return seg.failed
	}
	// Linux reports a writeback error to one fsync of the file only: another fsync in
	// flight meanwhile may fail for pages this one covered while this one returns nil.
	// This one counts once every fsync that overlapped it has ended without failing.
	var overlapping []uint64
	for t := range seg.running {
		overlapping = append(overlapping, t)
	}
	for {
		waiting := false
		for _, t := range overlapping {
			waiting = waiting || seg.running[t]
		}
		if !waiting {
			break
		}
		seg.syncDone.Wait()
	}
	if seg.failGen != gen {
		return seg.failed
	}
	if needDir {
		seg.dirSynced = true
	}
	seg.synced = max(seg.synced, target)
	seg.syncDone.Broadcast()
	if seg.synced < end {
		return fmt.Errorf("sync segment %s: %d bytes written, %d to sync", seg.path, target, end)
	}
	return nil
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

	// compactMu serializes compaction passes; kick wakes the background one.
	compactMu sync.Mutex
	kick      chan struct{}
	// compactErr is the last background pass's error (tests read it).
	compactErr atomic.Pointer[error]
	// refreshMu serializes refreshes.
	refreshMu sync.Mutex
	// syncHook, if set, fsyncs the segment files instead of File.Sync (tests make fsyncs
	// fail with it).
	syncHook atomic.Pointer[func(*os.File) error]
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x.seg", seq) }

// openPacks opens the segment files under dir, creating dir if needed: it scans every
// segment and tombstone file to rebuild the index (package comment, "Packing").
func openPacks(dir string, own bool, segmentSize int64, compactBelow float64) (*packs, error) {
	p := &packs{dir: dir, own: own, segmentSize: segmentSize, compactBelow: compactBelow,
		index: map[packKey]recordLoc{}, tenants: map[string]string{}, segments: map[uint64]*segment{},
		nextSeq: 1, kick: make(chan struct{}, 1)}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if !own {
			return p, nil // nothing packed; refresh looks again on a miss
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		if err := fsync.Dir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if err := p.load(); err != nil {
		return nil, err
	}
	if !own {
		return p, nil
	}
	go p.compactLoop()
	p.maybeKick()
	return p, nil
}

// load rebuilds the index from the files in p.dir.
func (p *packs) load() error {
	seqs, dels, err := listSegments(p.dir)
	if err != nil {
		return err
	}
	// offsets[seq] maps the offset of each valid record of a segment to its key.
	offsets := map[uint64]map[int64]packKey{}
	type recordAt struct {
		seg *segment
		off int64
	}
	var superseded []recordAt
	for _, seq := range seqs {
		path := filepath.Join(p.dir, segmentName(seq))
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read segment: %w", err)
		}
		f, err := os.OpenFile(path, p.openFlag(), 0)
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		seg := p.newSegment(seq, path, f)
		seg.size.Store(int64(len(data)))
		// Nothing read here is known durable: a record may have been written and never
		// fsynced (its Put never acknowledged), so a dedup hit on it fsyncs the segment
		// and the directory first (synced 0, dirSynced false).
		seg.sealed = true
		p.segments[seq] = seg
		p.nextSeq = max(p.nextSeq, seq+1)
		offs := map[int64]packKey{}
		offsets[seq] = offs
		seg.scanned = scanSegment(data, func(off int64, rec decodedRecord) {
			pk, _ := p.keyOf(rec.key)
			loc := recordLoc{seg: seg, off: off, keyLen: uint16(rec.keyLen), bodyLen: uint32(rec.bodyLen), bodyCRC: rec.bodyCRC}
			if old, ok := p.index[pk]; ok {
				old.seg.live -= old.size()
				superseded = append(superseded, recordAt{old.seg, old.off})
			}
			p.index[pk] = loc
			seg.live += loc.size()
			offs[off] = pk
		})
	}
	// Tombstones; those of a segment that is gone (a compaction removed the segment and
	// crashed before its tombstone file) are removed.
	tombstoned := map[recordAt]bool{}
	removedDels := false
	for seq := range dels {
		// A segment number is never used again, not even that of a segment compacted
		// away whose tombstone file is left: a new segment of that number would take
		// those tombstones for its own.
		p.nextSeq = max(p.nextSeq, seq+1)
		seg := p.segments[seq]
		if seg == nil && !p.own {
			continue
		}
		if seg == nil {
			path := filepath.Join(p.dir, fmt.Sprintf("%016x.del", seq))
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove tombstones of a removed segment: %w", err)
			}
			removedDels = true
			continue
		}
		data, err := os.ReadFile(seg.delPath())
		if err != nil {
			return fmt.Errorf("read tombstones: %w", err)
		}
		// A partial tombstone (a crash or ENOSPC during its write) is cut off, else every
		// later one would be off the tombstoneSize grid and fail its checksum.
		data = data[:len(data)/tombstoneSize*tombstoneSize]
		if p.own {
			if err := truncateTombstones(seg.delPath(), int64(len(data))); err != nil {
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
	if removedDels {
		// Durably gone before a segment of a lower number could be created again.
		if err := fsync.Dir(p.dir); err != nil {
			return err
		}
	}
	// A record that a newer one of its key superseded (a compaction's copy whose old
	// segment was not yet removed) gets a tombstone before anything else happens: else a
	// later tombstone of the newer record, removed with its segment by a compaction, would
	// leave the old one live at the next open.
	touched := map[*segment]bool{}
	for _, r := range superseded {
		if !p.own {
			break
		}
		if tombstoned[r] {
			continue
		}
		if err := p.writeTombstone(r.seg, r.off); err != nil {
			return err
		}
		touched[r.seg] = true
	}
	for seg := range touched {
		if err := seg.del.Sync(); err != nil {
			return fmt.Errorf("sync tombstones: %w", err)
		}
	}
	return nil
}

// scanSegment calls fn with every whole record of a segment's bytes in order. A stretch
// that is not a whole record (the torn tail a crash left, or damage) is skipped: the scan
// resumes at the next offset where a whole record begins. It returns where the first such
// stretch begins, len(data) if there is none.
func scanSegment(data []byte, fn func(off int64, rec decodedRecord)) (firstBad int64) {
	firstBad = -1
	off := 0
	for off+headerSize <= len(data) {
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
	if firstBad < 0 && off < len(data) {
		firstBad = int64(off)
	}
	if firstBad < 0 {
		firstBad = int64(len(data))
	}
	return firstBad
}

// listSegments returns the sequence numbers of the segment files in dir in order, and
// those of its tombstone files.
func listSegments(dir string) (seqs []uint64, dels map[uint64]bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	dels = map[uint64]bool{}
	for _, e := range entries {
		base, ext, _ := strings.Cut(e.Name(), ".")
		seq, err := strconv.ParseUint(base, 16, 64)
		if err != nil || len(base) != 16 {
			continue
		}
		switch ext {
		case "seg":
			seqs = append(seqs, seq)
		case "del":
			dels[seq] = true
		}
	}
	slices.Sort(seqs)
	return seqs, dels, nil
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
	seqs, _, err := listSegments(p.dir)
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
			f, err := os.Open(path)
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
		bad := scanSegment(data, func(off int64, rec decodedRecord) {
			if seg.dead[from+off] {
				return
			}
			pk, _ := p.keyOf(rec.key)
			p.index[pk] = recordLoc{seg: seg, off: from + off, keyLen: uint16(rec.keyLen), bodyLen: uint32(rec.bodyLen), bodyCRC: rec.bodyCRC}
		})
		seg.size.Store(info.Size())
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
	data, err := os.ReadFile(seg.delPath())
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
// creating it (and syncing its directory) on first use. The caller syncs the file.
func (p *packs) writeTombstone(seg *segment, off int64) error {
	if seg.del == nil {
		f, err := os.OpenFile(seg.delPath(), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open tombstones: %w", err)
		}
		info, err := f.Stat()
		if err == nil && info.Size()%tombstoneSize != 0 {
			err = f.Truncate(info.Size() / tombstoneSize * tombstoneSize)
		}
		if err == nil {
			err = fsync.Dir(p.dir)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("open tombstones: %w", err)
		}
		seg.del, seg.delSize = f, info.Size()/tombstoneSize*tombstoneSize
	}
	if _, err := seg.del.Write(encodeTombstone(off)); err != nil {
		// Cut a partial tombstone off, so that the next ones are on the grid; if that
		// fails too, the file is opened (and cut) again on the next tombstone.
		if seg.del.Truncate(seg.delSize) != nil {
			seg.del.Close()
			seg.del = nil
		}
		return fmt.Errorf("write tombstone: %w", err)
	}
	seg.delSize += tombstoneSize
	return nil
}

// truncateTombstones cuts the tombstone file at path to size bytes if it is longer.
func truncateTombstones(path string, size int64) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("tombstones: %w", err)
	}
	if info.Size() == size {
		return nil
	}
	if err := os.Truncate(path, size); err != nil {
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
	return p.durableLocked(pk)
}

// durableLocked returns pk's live record unless an fsync of its segment failed before
// covering it: such a record may never reach the disk, so a new Put of its key writes it
// again rather than take it for a dedup hit. The caller holds p.mu.
func (p *packs) durableLocked(pk packKey) (recordLoc, bool) {
	loc, ok := p.index[pk]
	if !ok {
		return loc, false
	}
	seg := loc.seg
	seg.syncMu.Lock()
	lost := seg.failed != nil && seg.synced < loc.end()
	seg.syncMu.Unlock()
	return loc, !lost
}

// packedStaged is the Staged of a packed body: the segment it is in, synced up to the
// record's end.
type packedStaged struct {
	seg  *segment
	end  int64
	once sync.Once
	err  error
}

func (st *packedStaged) Sync() error {
	st.once.Do(func() { st.err = st.seg.syncTo(st.end) })
	return st.err
}

// staged returns the Staged of key's live record, if it has one (a dedup hit). A process
// that does not own the segments never takes one: what it indexed may since have been
// deleted, or moved by a compaction and the copy deleted, with no tombstone it can see
// (the blob collector's epoch fence has an APPEND store its body again after a deletion,
// and that Put must store it), so it stores the body as a file.
func (p *packs) staged(key string) (blobstore.Staged, bool) {
	if !p.own {
		return nil, false
	}
	loc, ok := p.lookup(key)
	if !ok {
		return nil, false
	}
	return &packedStaged{seg: loc.seg, end: loc.end()}, true
}

// append writes the record rec of key to the active segment and indexes it: it is
// readable when append returns, and durable once the returned Staged's Sync returns. If
// key has a live record already, nothing is written and that one's Staged is returned.
func (p *packs) append(key string, rec []byte, bodyLen int, bodyCRC uint32) (blobstore.Staged, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pk, _ := p.keyOf(key)
	if loc, ok := p.durableLocked(pk); ok {
		return &packedStaged{seg: loc.seg, end: loc.end()}, nil
	}
	if old, ok := p.index[pk]; ok {
		old.seg.live -= old.size() // superseded by the record written below
	}
	loc, err := p.appendLocked(rec)
	if err != nil {
		return nil, err
	}
	loc.keyLen, loc.bodyLen, loc.bodyCRC = uint16(len(key)), uint32(bodyLen), bodyCRC
	p.index[pk] = loc
	loc.seg.live += loc.size()
	return &packedStaged{seg: loc.seg, end: loc.end()}, nil
}

// appendLocked writes rec at the end of the active segment, beginning a new one when the
// active one is full or failed. The caller holds p.mu.
func (p *packs) appendLocked(rec []byte) (recordLoc, error) {
	seg := p.active
	if seg != nil && (seg.size.Load()+int64(len(rec)) > p.segmentSize && seg.size.Load() > 0 || seg.hasFailed()) {
		seg.sealed = true
		p.active, seg = nil, nil
		p.maybeKickLocked()
	}
	if seg == nil {
		seq := p.nextSeq
		path := filepath.Join(p.dir, segmentName(seq))
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
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
			seg.sealed = true
			p.active = nil
		}
		return recordLoc{}, fmt.Errorf("write segment: %w", err)
	}
	seg.size.Store(off + int64(len(rec)))
	return recordLoc{seg: seg, off: off}, nil
}

func (seg *segment) hasFailed() bool {
	seg.syncMu.Lock()
	defer seg.syncMu.Unlock()
	return seg.failed != nil
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
// returns. A key without one is no error. The record itself is synced first: a
// compaction may have just copied it to a segment not yet synced, and a tombstone that
// outlives its record in a crash would leave the old copy live at the next open.
func (p *packs) remove(key string) error {
	for {
		p.mu.Lock()
		pk, ok := p.keyOf(key)
		loc, found := p.index[pk]
		if !ok || !found {
			p.mu.Unlock()
			return nil
		}
		if !p.own {
			p.mu.Unlock()
			return fmt.Errorf("the body is packed in %s, which another process owns (strata serve): only that one deletes it", p.dir)
		}
		seg := loc.seg
		seg.refs++
		p.mu.Unlock()
		err := seg.syncTo(loc.end())
		if err != nil {
			p.unpin(seg)
			return err
		}
		p.mu.Lock()
		if now, ok := p.index[pk]; !ok || now != loc {
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
		del := seg.del
		p.maybeKickSegLocked(seg)
		p.mu.Unlock()
		defer p.unpin(seg)
		// Once the segment is removed (a compaction ran meanwhile, and removed the segment
		// file durably before its tombstone file), the record is gone anyway.
		if err := del.Sync(); err != nil {
			return fmt.Errorf("sync tombstones: %w", err)
		}
		return nil
	}
}

// syncAll makes every record written so far durable.
func (p *packs) syncAll() error {
	p.mu.Lock()
	var segs []*segment
	var ends []int64
	for _, seg := range p.segments {
		segs = append(segs, seg)
		ends = append(ends, seg.size.Load())
	}
	p.mu.Unlock()
	var errs []error
	for i, seg := range segs {
		if err := seg.syncTo(ends[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maybeKickSegLocked wakes the compactor if seg is sealed and mostly dead.
func (p *packs) maybeKickSegLocked(seg *segment) {
	if p.compactable(seg) {
		p.maybeKickLocked()
	}
}

func (p *packs) compactable(seg *segment) bool {
	return seg.sealed && !seg.removed && (seg.live == 0 || float64(seg.live) < p.compactBelow*float64(seg.size.Load()))
}

func (p *packs) maybeKick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, seg := range p.segments {
		if p.compactable(seg) {
			p.maybeKickLocked()
			return
		}
	}
}

func (p *packs) maybeKickLocked() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// compactLoop runs a compaction pass whenever it is kicked.
func (p *packs) compactLoop() {
	for range p.kick {
		if err := p.compact(); err != nil {
			p.compactErr.Store(&err)
		}
	}
}

// compact compacts every sealed segment whose live bytes are under the threshold: it
// copies the segment's live records to the active segment, syncs them, and then removes
// the segment file, durably, before its tombstone file (package comment, "Packing").
func (p *packs) compact() error {
	p.compactMu.Lock()
	defer p.compactMu.Unlock()
	p.mu.Lock()
	var victims []*segment
	for _, seg := range p.segments {
		// A segment whose fsync failed keeps its records where they are: what the failed
		// fsync covered may not be on disk, and copying it would not make it so.
		if p.compactable(seg) && !seg.hasFailed() {
			victims = append(victims, seg)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(victims, func(a, b *segment) int { return int(a.seq - b.seq) })
	// One segment that cannot be compacted does not stop the others.
	var errs []error
	for _, seg := range victims {
		if err := p.compactSegment(seg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *packs) compactSegment(seg *segment) error {
	// Every record of the segment is durable before any is copied: a dedup hit's Staged
	// may still sync it.
	if err := seg.syncTo(seg.size.Load()); err != nil {
		return err
	}
	data, err := os.ReadFile(seg.path)
	if err != nil {
		return fmt.Errorf("compact segment: %w", err)
	}
	copied := map[*segment]int64{} // segment written to -> end to sync
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
		copied[moved.seg] = moved.end()
	})
	if copyErr != nil {
		return fmt.Errorf("compact segment %s: %w", seg.path, copyErr)
	}
	for to, end := range copied {
		if err := to.syncTo(end); err != nil {
			return fmt.Errorf("compact segment %s: %w", seg.path, err)
		}
	}
	p.mu.Lock()
	if seg.live != 0 {
		// Only a record that was not whole on disk could be left: keep the segment.
		p.mu.Unlock()
		return fmt.Errorf("compact segment %s: %d live bytes not copied", seg.path, seg.live)
	}
	seg.removed = true
	delete(p.segments, seg.seq)
	p.closeIfUnusedLocked(seg)
	p.mu.Unlock()
	if err := os.Remove(seg.path); err != nil {
		return fmt.Errorf("compact segment: %w", err)
	}
	if err := fsync.Dir(p.dir); err != nil {
		return fmt.Errorf("compact segment: %w", err)
	}
	if err := os.Remove(seg.delPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact segment: %w", err)
	}
	return nil
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
