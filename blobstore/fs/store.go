// Package fs is the blobstore.Store of the embedded mode (strata serve): bodies are files
// under a root directory.
//
// Layout: root/t/<tenant>/<h[0:2]>/<h[2:4]>/<h> for the key "t/<tenant>/<h>", where h is the
// hex SHA-256 of the body. A body being written is a temporary file ".put-*" in the
// directory its object goes to, so that its create and rename lock only that directory: a
// rename across directories takes a lock of the whole filesystem on Linux, and a create in
// one directory that every Put shares locks that directory, which concurrent Puts would
// queue on. (Stores written before kept them in root/tmp.) Shard directories are never
// removed, so a Put never races a removal.
//
// Durability: a body is durable when Put returns. A Put writes the temporary file, checks
// its bytes against the key, renames it into place and then fsyncs, all at once, the file,
// the directory it landed in and the parent of every directory on its path that this
// process has not yet seen durable (Store.durable; Put creates missing directories before
// the rename). On most filesystems these fsyncs share one journal commit, where fsyncing
// the file before the rename would cost a commit of its own. Directory fsyncs are
// group-committed across concurrent Puts (dirSyncer): a Put joins the next fsync of each
// directory it needs synced, one that starts after its rename, so Puts waiting on one
// directory at once share one fsync, and a failed fsync fails them all.
//
// What that order allows after a crash is an object file that is not whole (its name became
// durable, its bytes did not) — but only an object whose Put had not returned, so no
// metadata references it (frontend/ingest appends only after Put returns). The one reader
// that could take it for a body is a later Put of the same key, which finds the file
// present: a dedup hit therefore trusts the file without reading it only if this process
// made it durable itself (Store.settled: it wrote or checked it, and no Put of it is between
// its rename and its fsyncs); any other present object is read and hashed, and replaced if
// it does not match its key, before it is fsynced like a new one.
//
// Staging: Stage is Put without the fsyncs, which the returned Staged's Sync runs (Put is
// Stage and Sync). Between the two the object is in place and readable, so the metadata
// commit that references it can run while it is made durable (frontend/ingest); the
// caller acknowledges nothing before Sync returns. Until then the object counts as
// renaming (a dedup hit fsyncs it itself) and is in Store.staged, which SyncStaged syncs:
// the embedded server calls it before every Raft snapshot and at shutdown. A crash of the
// process leaves a staged object whole in the page cache; a crash of the machine can lose
// it, or leave it not whole, under a committed message that was never acknowledged: the
// embedded server's staging recovery finds those after a reboot (embedded/staging.go).
//
// Packing (pack.go, record.go; Options.PackSmall, on in New): a new body of at most PackMax
// bytes is not a file of its own but a record appended to the active segment file
// root/seg/<seq>.seg, which is sealed once it passes Options.SegmentSize. A record carries
// its key, its length and CRC-32C checksums of its header and of its body (record.go).
// Stage writes the whole record with one pwrite under the store's lock, indexes it in
// memory (key -> segment, offset, length, checksum) and returns: the body is readable.
// Staged.Sync joins the segment's group commit: one fsync at a time per segment covers
// every record written before it began, so the Syncs of concurrent Puts share fsyncs
// instead of paying a create, a rename, a file fsync and a directory fsync each; a new
// segment's first fsync also syncs root/seg. The owner prepares the next segment ahead,
// zero-filled and synced, so that a record's fdatasync writes data only and no journal
// commit (prepare.go: a zero tail ends a segment cleanly, a sealed one is cut to size,
// every packed byte is written twice). Larger bodies keep the file layout above, and
// so do the bodies of a store written before packing: every read, Stat, Check and Delete
// looks in the index first and then at the file.
//
// The index is not a store of its own: the segments are self-describing, and Open
// rebuilds the in-memory index (about 100 bytes per packed body) from them. A sealed
// segment, and one that an open scanned, gets an index file root/seg/<seq>.idx
// (segindex.go), written in the background once the segment is synced whole: the records' places and keys, checksummed, so that
// Open reads it instead of every packed byte of the segment. Open scans a segment whose
// index file is missing, fails its checksum, or describes a segment of another length;
// a record loaded from an index file is read and checked against its key before a dedup
// hit takes it. That is simpler than a second store such as Pebble, whose own log would
// cost a second fsync per batch and a crash-ordering argument between two files; a
// record is its own index entry, durable with its body in one fsync. What Open trusts:
//
//   - A record counts only if its header checksum, its key, its body checksum and its
//     body's SHA-256 (the key's digest) hold; a stretch that fails is skipped (the scan
//     looks for the next whole record), so a torn tail, what a crash during a write
//     leaves, is discarded. Nothing acknowledged is in it: Sync returns only after an
//     fsync that covered the whole record.
//   - Nothing it read is relied on before it is durable: the owner's Open syncs the
//     filesystem (syncfs(2)) after loading, since a killed process leaves its writes in
//     the page cache only; a failure fails the Open. The same sync makes durable the body
//     files a killed process staged and never synced. An owner's Close syncs what it
//     staged and every segment and then writes root/seg/clean-close (synced), which
//     holds the identity of root/seg as the Close left it: its device and inode, and every
//     file's name, inode, size and times (cleanclose.go). The next owner's Open removes it
//     (durably) and, if root/seg is still exactly that, skips the sync: a clean restart
//     costs no sync of a shared filesystem. A marker that a later run left in place (a
//     version from before the marker, killed) or that a copy of the directory carries
//     along does not match, and the open syncs. A killed process leaves no marker, nor
//     does a Close after a failed fsync of a segment or tombstone file, or with a
//     tombstone not yet durable. (A body file's failed fsync does not keep the marker
//     away: its Put was not acknowledged, its <path>.failed is durable, and a sync at
//     the next open would not write the failed pages again.)
//   - A key's body is its last record in (segment, offset) order. New records go only to
//     the active segment, which has the highest sequence number. Only one process owns a
//     directory's segments: it holds a flock on root/seg/owner.lock until Close, and a
//     second owner's Open fails.
//   - Delete fsyncs the record's segment up to the record, then appends a tombstone
//     naming the record's offset to the segment's tombstone file root/seg/<seq>.del and
//     syncs it (group-committed like the segment) before returning; a tombstone removes
//     exactly that record, so a later Put of the same key (a new record) is not affected.
//     A partial tombstone (a crash, a short write) is cut off so that the next ones stay
//     on the 12-byte grid. If the tombstone's sync fails the record is indexed again (the
//     Delete's retry fails too instead of returning nil), the tombstone file takes no
//     more tombstones, no dedup hit takes a record of that segment (its tombstone may be
//     on disk after all), and the segment is compacted away. A Delete of a key whose
//     tombstone another Delete is syncing waits for that sync.
//   - Compaction (a background pass after a Delete leaves a sealed segment with less than
//     Options.CompactBelow of its bytes live, or at open) copies the segment's live
//     records to the active segment and fsyncs them; if that fails the records are put
//     back where they were and the copies tombstoned. Then the originals get tombstones
//     (synced), the segment file is removed, root/seg fsynced, and the tombstone and
//     index files removed: a removal that does not hold leaves no live original behind.
//     (The dead records of the active segment come back once it is sealed: when it is
//     full, or at the next open.) Readers hold the segment open while they read, so a
//     read during a compaction gets the old copy or the new one. A crash between the copy
//     and the tombstones leaves two records of a key; the next open keeps the newer and
//     tombstones the older (after the sync above) before serving. A tombstone or index
//     file whose segment is gone is removed at open. The highest-numbered segment is not
//     compacted away while no higher one exists, so no segment number is used again.
//   - A failed fsync fails every Sync it covered and every later one of that segment
//     (Linux may drop the error and the dirty pages); the next write seals it and starts a
//     new one. An fsync that returns nil while another one of the segment fails counts as
//     failed too (Linux reports the error once). A Put of a key whose record the failure
//     may have lost writes it again, and once the new record is durable the old one is
//     tombstoned. The next compaction copies the failed segment's live records, each
//     checked against its key, from the page cache to a sound segment and removes it:
//     what the failure may have lost becomes durable there, Delete works again, and
//     SyncStaged (which runs that compaction first) does not fail for good. A record that
//     the compaction does not find whole (the kernel dropped its pages after the failed
//     writeback) is dropped from the index: no Sync of it returned nil; the record it
//     superseded, if any and durable, is its key's body again (segment.supersedes), else
//     the key is absent and the caller's retry writes it again.
//   - A failed fsync is written down before any caller learns of it: a failed-sync marker
//     root/seg/<seq>.failed holds how much of the segment was durable before it
//     (failedsync.go). An open trusts the segment's records up to there only; the others
//     are left out as if torn, although they may read back whole: after a restart the
//     page cache may still hold bytes whose writeback failed, and syncfs does not write
//     them again, so reading them proves nothing about the disk. (What is safe is to copy
//     such bytes, checked against their key, to a new place and fsync that; the
//     compaction of a failed segment does so while the process that saw the failure
//     runs.) The file-per-body layout has the same rule: a body file whose fsync (or its
//     directory's) failed gets <path>.failed, no dedup hit takes it (in this process or
//     after a restart), Check reports it not whole, and the Put that writes it again
//     removes the marker just before its fsyncs, whose directory fsync makes the removal
//     durable with the new file (a failed one writes the marker again). If the marker
//     itself cannot be written, the caller's error says so, and a restart trusts the
//     bytes as before.
//   - A superseded record's tombstone that the open cannot write or sync (a full disk)
//     does not fail the open: it is pending, each compaction pass retries it, and until
//     it holds the segment of the newer record is not compacted away.
//   - Writes after Close (Put, Stage, Delete) fail with ErrClosed; Close waits for those
//     that began before it. No compaction runs once Close began (SyncStaged on a closed
//     store fails with ErrClosed), nor does a superseded record's tombstone get written:
//     the next owner may hold the directory. A segment number whose file exists is
//     skipped, not a failure of every packed write.
//   - A process that does not own the segments never takes a dedup hit on a packed body.
//     A torn object file is removed when its body is stored packed, so that such a
//     process, which looks at files before it has indexed a new record, never reads it.
//
// Staging is unchanged by packing: a killed process leaves every written record whole in
// the page cache, and after a crash of the machine the staging recovery's Check finds a
// record that did not survive (missing, or skipped by the scan) as it finds a lost file.
//
// Packing is on in `strata serve` (embedded.Config.BlobFilePerBody, `--blob-pack=false`,
// turns it off). It was off while the findings of two reviews of 2026-12-06 were fixed
// (branches packfix and pack18; the second review found: compaction after a failed copy,
// superseded tombstones before the copy was durable, tombstone sync failures, a failed
// segment wedging SyncStaged, a rewritten body coming back, a second owner, number reuse,
// a reader's open racing compaction, a torn file shadowing a packed body). A third review
// after the merge found one more loss, fixed (a segment is removed only once the records
// that superseded its records are durable: segment.supersededBy), and four items, each
// needing an fsync that failed first or a full disk, closed on branch pack19 (G2 a lost
// record wedging SyncStaged, G4 a failed record trusted after a restart, in both layouts,
// G3 a scanned segment never indexed, an open failing on a full disk) with writes after
// Close refused.
//
// Crash tests: TestPackedCrashKeepsAcknowledged SIGKILLs a child, what a killed process
// leaves; TestPowerLossKeepsAcknowledged runs the store on a model file system (every
// file operation goes through fileSystem, fsys.go) that keeps each file as of its last
// fsync and each directory's entries as of its last fsync, cuts the power mid-write and
// opens a store on what survives: it fails if any fsync on the acknowledged path (a
// segment's, its directory's, a body file's or its directory's, a tombstone file's) is
// left out.
//
// Also open:
//
//   - Open holds a map of every record's offset and one of every tombstone until it
//     returns (about twice the index's memory, transiently);
//   - a store that does not own the segments keeps the files of segments compacted away
//     open until it closes (admin commands are short-lived), and rereads a segment's
//     stretch after a torn record on every refresh;
//   - in the file-per-body layout, a dedup hit on a file whose first Put is between its
//     rename and its fsyncs fsyncs the file itself: if that fsync returns nil while the
//     first Put's fails (Linux reports a writeback error to one of them), the hit is
//     acknowledged although the marker comes after (two Puts of one body at once, and a
//     failing disk); a process that does not own the segments applies a segment's
//     failed-sync marker at its open only, not to the records its refresh finds later.
package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mail/strata/blobstore"
)

const (
	// chunkSize is how much of a body Put reads between two context checks.
	chunkSize = 128 << 10
	// staleTempAge is how old a temporary file must be for New to remove it as the
	// leftover of a Put interrupted by a crash.
	staleTempAge = time.Hour
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// maxDurableDirs bounds Store.durable and Store.settled; when one is full it is emptied,
// which costs at most an fsync per directory on the next Put into each (a tenant has up to
// 65,536 shard directories), or a read of an object on its next dedup hit.
const maxDurableDirs = 1 << 17

// Store is a blobstore.Store on a local filesystem. It is safe for concurrent use; one root
// belongs to one process.
type Store struct {
	root string
	// objects is root/t, the top of the objects' tree (objectPath).
	objects string
	// tmpDir is root/tmp, where stores written before kept their temporary files.
	tmpDir string
	// tmpPrefix and tmpSeq name temporary files: unique within the process by the
	// sequence, and across processes sharing nothing by the random prefix, so creating
	// one is a single open with O_EXCL (os.CreateTemp draws a random name per attempt).
	tmpPrefix string
	tmpSeq    atomic.Uint64

	mu sync.Mutex
	// durable holds the directories whose entry in their parent this process has seen
	// fsynced, and that were fsynced themselves (package comment).
	durable map[string]struct{}
	// settled holds the objects this process wrote or checked and fsynced whole.
	settled map[string]struct{}
	// renaming counts the Puts of each object between their rename and the end of their
	// fsyncs.
	renaming map[string]int
	// staged holds the objects staged and not yet synced (Stage).
	staged map[*stagedObject]struct{}

	// dirSyncs group-commits directory fsyncs across concurrent Puts.
	dirSyncs *dirSyncer
	// swept is closed once New's sweep of stale temporary files is over (or given up:
	// the store closed first).
	swept chan struct{}
	// closing is closed by Close: the sweep stops.
	closing   chan struct{}
	closeOnce sync.Once

	// packs holds the packed bodies (pack.go); packSmall says whether new bodies of at
	// most PackMax bytes go there. Packed bodies are read whether or not it is set.
	packs     *packs
	packSmall bool
	// fsys is the file system (fsys.go): the operating system's but in crash tests.
	fsys fileSystem
	// closed is set by Close: writes are refused from then on (ErrClosed).
	closed atomic.Bool
	// writing is read-held by a write (Stage, Delete) from its closed check to its end,
	// and taken by Close after setting closed: a write that passed the check ends (a
	// staged object registered in staged) before Close syncs and marks a clean close.
	writing sync.RWMutex
}

// ErrClosed is the error of a write (Put, Stage, Delete) to a store after its Close.
var ErrClosed = errors.New("blob store closed")

// Options are the settings of Open.
type Options struct {
	// Own says that this process alone writes the store's segment files (root/seg): it
	// deletes packed bodies and compacts segments. A process that does not own them (New:
	// a frontend or an admin command sharing a directory with strata serve) reads packed
	// bodies, looking for new records on a miss, and stores a file per body.
	Own bool
	// PackSmall stores new bodies of at most PackMax bytes in segment files instead of a
	// file each (package comment, "Packing"). It needs Own.
	PackSmall bool
	// SegmentSize is the size past which a segment is sealed (DefaultSegmentSize if 0).
	SegmentSize int64
	// CompactBelow is the share of live bytes under which a sealed segment is compacted
	// (DefaultCompactBelow if 0).
	CompactBelow float64

	// syncHook, if set, fsyncs the segment and tombstone files instead of File.Sync from
	// the open on (tests make fsyncs fail with it).
	syncHook func(file) error
	// fsys, if set, is the file system instead of the operating system's (crash tests).
	fsys fileSystem
	// sweepAfter, if set, replaces sweepDelay and sweepPace (tests sweep at once).
	sweepAfter *time.Duration
}

// The sweep of stale temporary files in the shard directories starts sweepDelay after
// Open and pauses sweepPace after each shard directory: it reads every directory of the
// store (1.7 s of CPU at a million bodies, read on every start), which would otherwise
// compete with a started server's first commands; spread out, it costs a few percent of
// a core for about a minute per 65,536 directories. Leftovers only take space until then.
const (
	sweepDelay = time.Minute
	sweepPace  = time.Millisecond
)

// DefaultOptions are the options New opens a store with: a file per body, packed bodies
// read but owned by another process.
var DefaultOptions = Options{}

var _ blobstore.Stager = (*Store)(nil)

// New opens the store under root, creating root if needed, and removes temporary files
// older than an hour that crashed Puts left behind: those in root/tmp before it returns,
// those in the shard directories in the background, a minute later and paced (Store.swept,
// sweepDelay).
func New(root string) (*Store, error) {
	return Open(root, DefaultOptions)
}

// Open opens the store under root like New, with opts.
func Open(root string, opts Options) (*Store, error) {
	var prefix [6]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", root, err)
	}
	s := &Store{root: root, objects: filepath.Join(root, "t"), tmpDir: filepath.Join(root, "tmp"), tmpPrefix: "put-" + hex.EncodeToString(prefix[:]) + "-",
		durable: map[string]struct{}{}, settled: map[string]struct{}{}, renaming: map[string]int{}, staged: map[*stagedObject]struct{}{},
		dirSyncs: newDirSyncer(), swept: make(chan struct{}), closing: make(chan struct{}), fsys: opts.fsys}
	if s.fsys == nil {
		s.fsys = osFS{}
	} else {
		s.dirSyncs.sync = s.fsys.SyncDir
	}
	if err := s.fsys.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", root, err)
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.CompactBelow <= 0 {
		opts.CompactBelow = DefaultCompactBelow
	}
	if opts.PackSmall && !opts.Own {
		return nil, fmt.Errorf("open blob store %s: packing needs Options.Own", root)
	}
	packs, err := openPacks(filepath.Join(root, packDirName), opts.Own, opts.SegmentSize, opts.CompactBelow, opts.syncHook, s.fsys)
	if err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", root, err)
	}
	s.packs, s.packSmall = packs, opts.PackSmall
	before := time.Now().Add(-staleTempAge)
	if err := s.removeStaleTemps(s.tmpDir, "", before); err != nil && !errors.Is(err, os.ErrNotExist) {
		// The owner's lock and the compaction goroutine go with the failed Open (review
		// fs19 R6); no clean-close marker.
		return nil, errors.Join(fmt.Errorf("open blob store %s: %w", root, err), packs.close(false))
	}
	if opts.PackSmall {
		// The next segment is made ready ahead (prepare.go).
		packs.startPreparing()
	}
	delay, pace := sweepDelay, sweepPace
	if opts.sweepAfter != nil {
		delay, pace = *opts.sweepAfter, 0
	}
	go func() {
		defer close(s.swept)
		select {
		case <-time.After(delay):
		case <-s.closing:
			return
		}
		s.sweepStaleTemps(before, pace)
	}()
	return s, nil
}

// Close ends the store's background work (the compaction of segments) and waits for it,
// and for the writes that began before it (a Stage reading its body).
// An owner syncs what it staged and every segment, and leaves a marker of the clean close
// so that the next owner's Open need not sync the filesystem (package comment, "Packing").
// The store is not used after Close.
func (s *Store) Close() error {
	s.closed.Store(true) // writes refused from here (ErrClosed)
	s.closeOnce.Do(func() { close(s.closing) })
	// Writes that passed the closed check end first (review fs19 R2).
	s.writing.Lock()
	//lint:ignore SA2001 a barrier: the writes end, no critical section
	s.writing.Unlock()
	staged := s.syncStagedObjects()
	return errors.Join(staged, s.packs.close(staged == nil))
}

// SyncedAtOpen reports whether Open synced the store's whole filesystem: the store is
// owned (Options.Own) and its last owner did not close cleanly (a killed process).
func (s *Store) SyncedAtOpen() bool { return s.packs.syncedAtOpen }

// sweepStaleTemps removes the temporary files older than before from every shard
// directory. It is best effort: a directory it cannot read keeps its leftovers, which
// take space and nothing else (no key names them).
// It pauses pace after each shard directory and stops when the store closes.
func (s *Store) sweepStaleTemps(before time.Time, pace time.Duration) {
	top := s.objects
	tenants, _ := s.fsys.ReadDir(top)
	for _, tenant := range tenants {
		shards1, _ := s.fsys.ReadDir(filepath.Join(top, tenant.Name()))
		for _, shard1 := range shards1 {
			dir1 := filepath.Join(top, tenant.Name(), shard1.Name())
			shards2, _ := s.fsys.ReadDir(dir1)
			for _, shard2 := range shards2 {
				_ = s.removeStaleTemps(filepath.Join(dir1, shard2.Name()), tempMark, before)
				if pace > 0 {
					select {
					case <-time.After(pace):
					case <-s.closing:
						return
					}
				} else if s.closed.Load() {
					return
				}
			}
		}
	}
}

// tempMark begins the name of a temporary file in a shard directory; object names are hex.
const tempMark = "."

// removeStaleTemps removes the regular files of dir whose names begin with prefix and
// that were last written before before.
func (s *Store) removeStaleTemps(dir, prefix string, before time.Time) error {
	entries, err := s.fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list temporary files: %w", err)
	}
	for _, entry := range entries {
		if !strings.HasPrefix(entry.Name(), prefix) {
			continue
		}
		info, err := entry.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat temporary file: %w", err)
		}
		if !info.Mode().IsRegular() || !info.ModTime().Before(before) {
			continue
		}
		if err := s.fsys.Remove(filepath.Join(dir, entry.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale temporary file: %w", err)
		}
	}
	return nil
}

// objectPath returns the directories from root/t down to the one that holds key's object,
// and the object's path. It reports false for an invalid key.
//
// Every Put and Stage asks, so the path is built in one allocation, as filepath.Join
// would build it (TestObjectPath): root/t is clean, and the tenant and the key's digest
// (its lowercase hex, ParseKey checked) are path segments that need no cleaning; the
// directories are prefixes of the path.
func (s *Store) objectPath(key string) (dirs []string, path string, sum [sha256.Size]byte, ok bool) {
	tenant, sum, ok := blobstore.ParseKey(key)
	if !ok {
		return nil, "", sum, false
	}
	digest := key[len(key)-2*sha256.Size:]
	const sep = string(filepath.Separator)
	path = s.objects + sep + tenant + sep + digest[0:2] + sep + digest[2:4] + sep + digest
	tenantEnd := len(s.objects) + len(sep) + len(tenant)
	shard1End := tenantEnd + len(sep) + 2
	shard2End := shard1End + len(sep) + 2
	return []string{path[:len(s.objects)], path[:tenantEnd], path[:shard1End], path[:shard2End]}, path, sum, true
}

// Put implements blobstore.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	st, err := s.Stage(ctx, key, r, size)
	if err != nil {
		return err
	}
	return st.Sync()
}

// Stage stores a body like Put but returns as soon as the object is in place, readable
// by Get and Stat, before its fsyncs; the returned Staged's Sync runs them (package
// comment, "Staging"). Until then a dedup hit on the object by another Put fsyncs it
// itself, as it does for any object between its rename and its fsyncs.
func (s *Store) Stage(ctx context.Context, key string, r io.Reader, size int64) (blobstore.Staged, error) {
	dirs, path, sum, ok := s.objectPath(key)
	if !ok {
		return nil, fmt.Errorf("put %q: %w", key, blobstore.ErrInvalidKey)
	}
	if size < 0 {
		return nil, fmt.Errorf("put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	s.writing.RLock()
	defer s.writing.RUnlock()
	if s.closed.Load() {
		return nil, fmt.Errorf("put %s: %w", key, ErrClosed)
	}
	if st, ok := s.packs.staged(key); ok {
		return st, nil // a dedup hit on a packed body
	}
	torn := false
	if _, err := s.fsys.Lstat(path); err == nil {
		whole, err := s.present(ctx, dirs, path, sum)
		if err != nil {
			return nil, fmt.Errorf("put %s: %w", key, err)
		}
		if whole {
			return durableObject{}, nil
		}
		torn = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	if s.packSmall && size <= PackMax {
		st, err := s.stagePacked(ctx, key, r, size, sum)
		if err != nil {
			return nil, fmt.Errorf("put %s: %w", key, err)
		}
		if torn {
			// A file that is not the body (a crash's leftover) would shadow the packed
			// record for a store that has not indexed it yet and reads the file.
			if err := s.fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("put %s: remove a torn object: %w", key, err)
			}
		}
		return st, nil
	}
	if err := s.makeDirs(dirs); err != nil {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := s.createTemp(dirs[len(dirs)-1])
	if err != nil {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	if err := writeBody(ctx, tmp, r, size, sum, !blobstore.Prehashed(r, size, sum)); err != nil {
		tmp.Close()
		s.fsys.Remove(tmp.Name())
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	// A cancelled Put must not leave a body that its caller will never reference.
	if err := ctx.Err(); err != nil {
		tmp.Close()
		s.fsys.Remove(tmp.Name())
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	s.startRenaming(path)
	// A concurrent Put of the same key may have renamed its copy into place already; the
	// bytes are the same (both were checked against the key), so replacing it is harmless.
	if err := s.fsys.Rename(tmp.Name(), path); err != nil {
		s.endRenaming(path)
		tmp.Close()
		s.fsys.Remove(tmp.Name())
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	st := &stagedObject{s: s, key: key, dirs: dirs, path: path, f: tmp, replaces: torn}
	s.mu.Lock()
	s.staged[st] = struct{}{}
	s.mu.Unlock()
	return st, nil
}

// durableObject is the Staged of a dedup hit, durable already.
type durableObject struct{}

func (durableObject) Sync() error { return nil }

// stagedObject is an object renamed into place and not yet fsynced; its file stays open
// until Sync.
type stagedObject struct {
	s    *Store
	key  string
	dirs []string
	path string
	once sync.Once
	f    file
	err  error
	// replaces says the object replaced a file that was not whole or whose fsync had
	// failed: once it is durable, that file's failed-sync marker, if any, goes.
	replaces bool
}

// Sync fsyncs the object (syncObject) once; later calls return the first one's result.
func (st *stagedObject) Sync() error {
	st.once.Do(func() {
		s := st.s
		// The failed-sync marker of the file this one replaced goes before the fsyncs,
		// so that the directory fsync of syncObject makes its removal durable with the
		// object: a marker back after a power loss would have Check report an
		// acknowledged body not whole, and the staging recovery expunge its messages
		// (review fs19 R1). If the fsyncs fail, syncObject writes it again.
		var err error
		if st.replaces {
			if rerr := s.fsys.Remove(st.path + failedSuffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = fmt.Errorf("remove failed-sync marker: %w", rerr)
			}
		}
		if err == nil {
			err = s.syncObject(st.dirs, st.path, st.f)
		}
		if err != nil {
			st.err = fmt.Errorf("put %s: %w", st.key, err)
		}
		st.f.Close()
		s.endRenaming(st.path)
		s.mu.Lock()
		delete(s.staged, st)
		s.mu.Unlock()
	})
	return st.err
}

// SyncStaged fsyncs every object staged and not yet synced (Stage): what is staged when
// it is called is durable when it returns nil.
func (s *Store) SyncStaged(ctx context.Context) error {
	if err := errors.Join(s.syncStagedObjects(), s.packs.syncAll()); err != nil {
		return err
	}
	return ctx.Err()
}

// syncStagedObjects fsyncs every body file staged and not yet synced (Stage).
func (s *Store) syncStagedObjects() error {
	s.mu.Lock()
	pending := make([]*stagedObject, 0, len(s.staged))
	for st := range s.staged {
		pending = append(pending, st)
	}
	s.mu.Unlock()
	errs := make([]error, len(pending))
	var wg sync.WaitGroup
	for i, st := range pending {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Sync()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// present makes a dedup hit durable: it reports whether the object at path, which exists,
// is whole and durable (package comment). It is false for an object that does not match
// its key, which the caller then writes anew.
func (s *Store) present(ctx context.Context, dirs []string, path string, sum [sha256.Size]byte) (bool, error) {
	s.mu.Lock()
	_, settled := s.settled[path]
	renaming := s.renaming[path] > 0
	s.mu.Unlock()
	if settled && !renaming {
		return true, nil
	}
	if objectFailed(s.fsys, path) {
		// Its fsync failed (failedsync.go): the bytes may be readable here and not on
		// disk, and a new fsync would not tell. Written again.
		return false, nil
	}
	f, err := open(s.fsys, path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // deleted since the Lstat
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if !renaming {
		// Not written by this process, or not yet fsynced: it may be a crashed Put's.
		if err := hashMatches(ctx, f, sum); err != nil {
			if errors.Is(err, blobstore.ErrDigestMismatch) {
				return false, nil
			}
			return false, err
		}
	}
	// A Put of it is renaming: its bytes were checked, and fsyncing them here as well
	// keeps this Put from returning before they are durable.
	if err := s.syncObject(dirs, path, f); err != nil {
		return false, err
	}
	return true, nil
}

// Check reports whether the object under key is whole: present and hashing to its key.
// It returns blobstore.ErrNotFound for a missing object and ErrDigestMismatch for one that
// is not whole (the staging recovery after a machine crash reads every body it may have
// lost this way).
func (s *Store) Check(ctx context.Context, key string) error {
	_, path, sum, ok := s.objectPath(key)
	if !ok {
		return fmt.Errorf("check %q: %w", key, blobstore.ErrInvalidKey)
	}
	s.refreshPacks() // a process that does not own the segments indexes what was written since
	if body, found, err := s.packs.get(key); found {
		if err == nil && sha256.Sum256(body) != sum {
			err = fmt.Errorf("%w: packed body hashes to %x", blobstore.ErrDigestMismatch, sha256.Sum256(body))
		}
		if err != nil {
			return fmt.Errorf("check %s: %w", key, err)
		}
		return nil
	}
	f, err := open(s.fsys, path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", key, blobstore.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", key, err)
	}
	defer f.Close()
	if objectFailed(s.fsys, path) {
		return fmt.Errorf("check %s: %w: its fsync failed", key, blobstore.ErrDigestMismatch)
	}
	if err := hashMatches(ctx, f, sum); err != nil {
		return fmt.Errorf("check %s: %w", key, err)
	}
	return nil
}

// hashMatches reads f and checks its content against sum.
func hashMatches(ctx context.Context, f io.Reader, sum [sha256.Size]byte) error {
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	digest := sha256.New()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.Read(*bufp)
		digest.Write((*bufp)[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read object: %w", err)
		}
	}
	var got [sha256.Size]byte
	digest.Sum(got[:0])
	if got != sum {
		return fmt.Errorf("%w: object hashes to %x", blobstore.ErrDigestMismatch, got)
	}
	return nil
}

func (s *Store) startRenaming(path string) {
	s.mu.Lock()
	s.renaming[path]++
	s.mu.Unlock()
}

func (s *Store) endRenaming(path string) {
	s.mu.Lock()
	if s.renaming[path]--; s.renaming[path] == 0 {
		delete(s.renaming, path)
	}
	s.mu.Unlock()
}

// createTemp creates a new temporary file in dir, the directory of its object.
func (s *Store) createTemp(dir string) (file, error) {
	for {
		name := filepath.Join(dir, tempMark+s.tmpPrefix+strconv.FormatUint(s.tmpSeq.Add(1), 36))
		f, err := s.fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue // a leftover of an earlier process that drew the same prefix
		}
		return f, err
	}
}

// makeDirs creates those of dirs (each the parent of the next) that this process has not
// seen durable and that do not exist yet. It looks them up from the deepest and creates
// only those below the deepest that exists: a lookup takes no lock, where a Mkdir of an
// existing directory locks its parent, which every concurrent Put into the same tenant
// would wait on.
func (s *Store) makeDirs(dirs []string) error {
	missing := s.notDurable(dirs)
	for i := len(missing) - 1; i >= 0; i-- {
		if info, err := s.fsys.Lstat(missing[i]); err == nil && info.IsDir() {
			missing = missing[i+1:]
			break
		}
	}
	for _, dir := range missing {
		if err := s.fsys.Mkdir(dir, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

// notDurable returns those of dirs not in s.durable.
func (s *Store) notDurable(dirs []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []string
	for _, dir := range dirs {
		if _, ok := s.durable[dir]; !ok {
			missing = append(missing, dir)
		}
	}
	return missing
}

// syncObject fsyncs the object file f at path, the last of dirs (which holds it) and the
// parent of each of dirs not yet seen durable, all at once, and then notes them durable
// and the object settled. The directories' fsyncs are group-committed with those of
// concurrent Puts (dirSyncer): each is one that started after the rename.
func (s *Store) syncObject(dirs []string, path string, f file) error {
	fresh := s.notDurable(dirs)
	toSync := []string{dirs[len(dirs)-1]}
	for _, dir := range fresh {
		toSync = append(toSync, filepath.Dir(dir))
	}
	waitDirs := s.dirSyncs.begin(toSync)
	var errs [2]error
	if err := f.Sync(); err != nil {
		errs[0] = fmt.Errorf("sync object: %w", err)
	}
	errs[1] = waitDirs()
	failed := errors.Join(errs[:]...)
	if failed != nil {
		// Durable before the caller learns of the failure (failedsync.go).
		failed = errors.Join(failed, writeMarker(s.fsys, path+failedSuffix, nil))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := failed; err != nil {
		// The directory may hold an entry that is not durable: the next Put of an
		// object in it fsyncs it again, and a dedup hit on this one checks it.
		delete(s.durable, dirs[len(dirs)-1])
		delete(s.settled, path)
		return err
	}
	if len(s.durable)+len(fresh) > maxDurableDirs {
		clear(s.durable)
	}
	for _, dir := range fresh {
		s.durable[dir] = struct{}{}
	}
	if len(s.settled) >= maxDurableDirs {
		clear(s.settled)
	}
	s.settled[path] = struct{}{}
	return nil
}

// writeBody copies exactly size bytes from r to tmp in chunks, checking ctx between them,
// and, if verify is set, checks them against sum (a body from a spool was hashed there:
// blobstore.Prehashed).
func writeBody(ctx context.Context, tmp io.Writer, r io.Reader, size int64, sum [sha256.Size]byte, verify bool) error {
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	buf := *bufp
	var digest hash.Hash
	if verify {
		digest = sha256.New()
	}
	for written := int64(0); written < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := buf[:min(int64(len(buf)), size-written)]
		n, err := io.ReadFull(r, chunk)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("body ended after %d of %d bytes: %w", written+int64(n), size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if digest != nil {
			digest.Write(chunk)
		}
		if _, err := tmp.Write(chunk); err != nil {
			return fmt.Errorf("write body: %w", err)
		}
		written += int64(n)
	}
	if digest == nil {
		return nil
	}
	var got [sha256.Size]byte
	digest.Sum(got[:0])
	if got != sum {
		return fmt.Errorf("%w: content hashes to %x", blobstore.ErrDigestMismatch, got)
	}
	return nil
}

// Get implements blobstore.Store.
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	_, path, _, ok := s.objectPath(key)
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, blobstore.ErrInvalidKey)
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if rc, found, err := s.getPacked(ctx, key, offset, length); found {
		return rc, err
	}
	file, err := open(s.fsys, path)
	if errors.Is(err, os.ErrNotExist) {
		if s.refreshPacks() {
			if rc, found, err := s.getPacked(ctx, key, offset, length); found {
				return rc, err
			}
		}
		return nil, fmt.Errorf("get %s: %w", key, blobstore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	offset = min(offset, info.Size())
	n := info.Size() - offset
	if length >= 0 {
		n = min(n, length)
	}
	return &bodyReader{ctx: ctx, file: file, section: io.NewSectionReader(file, offset, n)}, nil
}

// bodyReader reads a range of an object until its context is done.
type bodyReader struct {
	ctx     context.Context
	file    file
	section *io.SectionReader
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.section.Read(p)
}

func (b *bodyReader) Close() error {
	return b.file.Close()
}

// Stat implements blobstore.Store.
func (s *Store) Stat(ctx context.Context, key string) (blobstore.Info, error) {
	_, path, _, ok := s.objectPath(key)
	if !ok {
		return blobstore.Info{}, fmt.Errorf("stat %q: %w", key, blobstore.ErrInvalidKey)
	}
	if err := ctx.Err(); err != nil {
		return blobstore.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	if loc, ok := s.packs.lookup(key); ok {
		return blobstore.Info{Size: int64(loc.bodyLen)}, nil
	}
	info, err := s.fsys.Lstat(path)
	if errors.Is(err, os.ErrNotExist) && s.refreshPacks() {
		if loc, ok := s.packs.lookup(key); ok {
			return blobstore.Info{Size: int64(loc.bodyLen)}, nil
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return blobstore.Info{}, fmt.Errorf("stat %s: %w", key, blobstore.ErrNotFound)
	}
	if err != nil {
		return blobstore.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return blobstore.Info{Size: info.Size()}, nil
}

// Delete implements blobstore.Store. It removes the object's file and nothing else, and
// fsyncs its directory so that a deleted body stays deleted.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, path, _, ok := s.objectPath(key)
	if !ok {
		return fmt.Errorf("delete %q: %w", key, blobstore.ErrInvalidKey)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	s.writing.RLock()
	defer s.writing.RUnlock()
	if s.closed.Load() {
		return fmt.Errorf("delete %s: %w", key, ErrClosed)
	}
	if err := s.packs.remove(key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.settled, path)
	s.mu.Unlock()
	err := s.fsys.Remove(path)
	_ = s.fsys.Remove(path + failedSuffix) // best effort: it matters only while the file exists
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := s.dirSyncs.begin([]string{filepath.Dir(path)})(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// stagePacked stages a body of at most PackMax bytes as a record of the active segment
// (package comment, "Packing"): read whole, checked against its key unless a spool hashed
// it, written with one pwrite and indexed; the returned Staged's Sync joins the segment's
// next group-committed fsync.
func (s *Store) stagePacked(ctx context.Context, key string, r io.Reader, size int64, sum [sha256.Size]byte) (blobstore.Staged, error) {
	verify := !blobstore.Prehashed(r, size, sum)
	bufp := recordPool.Get().(*[]byte)
	defer recordPool.Put(bufp)
	rec := (*bufp)[:recordSize(len(key), int(size))]
	body := rec[headerSize+len(key):]
	if n, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("body ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	if verify {
		if got := sha256.Sum256(body); got != sum {
			return nil, fmt.Errorf("%w: content hashes to %x", blobstore.ErrDigestMismatch, got)
		}
	}
	// A cancelled Put must not leave a body that its caller will never reference.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	copy(rec[headerSize:], key)
	putHeader(rec, key, int(size))
	return s.packs.append(key, rec, int(size), binary.LittleEndian.Uint32(rec[12:]))
}

var recordPool = sync.Pool{New: func() any { b := make([]byte, maxRecordBytes); return &b }}

// getPacked reads key's packed body, if it has one, as Get does.
func (s *Store) getPacked(ctx context.Context, key string, offset, length int64) (io.ReadCloser, bool, error) {
	body, found, err := s.packs.get(key)
	if !found {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("get %s: %w", key, err)
	}
	body = body[min(offset, int64(len(body))):]
	if length >= 0 {
		body = body[:min(length, int64(len(body)))]
	}
	return &bytesReader{ctx: ctx, r: bytes.NewReader(body)}, true, nil
}

// refreshPacks, in a process that does not own the segments, indexes the records their
// owner wrote since this one last looked, and reports whether it did.
func (s *Store) refreshPacks() bool {
	return !s.packs.own && s.packs.refresh() == nil
}
