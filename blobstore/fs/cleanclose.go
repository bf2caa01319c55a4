package fs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// The clean-close marker (package comment, "What Open trusts"): what an owner's Close
// leaves once everything it wrote is durable, so that the next owner's Open may skip its
// sync of the filesystem. The marker is not a bare flag: it holds the identity of the
// segment directory as the Close left it (segmentState), and Open skips the sync only
// if the directory is still exactly that. A marker that outlived a later run proves
// nothing: a version of Strata from before the marker takes no notice of it, so a
// downgrade, a kill of the older version and an upgrade would find the marker of the
// last clean close under segments and tombstones that the killed run wrote to the page
// cache only; and a copy of the directory (cp, rsync, a restore) carries the marker
// along to files that nothing made durable. Both change what the marker names: a write
// changes a file's size and times, a new file adds a line, and a copy has other inodes
// (or another device). A random instance id in the marker would prove nothing here: it
// would be copied along with the marker.

// cleanCloseName is the file under the segment directory that an owner's Close leaves
// once everything it wrote is durable, and the next owner's Open removes: found there
// and matching the directory (segmentState), it tells Open that no sync of the
// filesystem is needed (load). A killed process leaves none.
const cleanCloseName = "clean-close"

// cleanCloseHeader is the first line of the marker; a marker of an earlier format (an
// empty file, from before the marker held the directory's identity) never matches.
const cleanCloseHeader = "strata clean-close 1"

// segmentState is the identity of the segment directory as it is: the directory's
// device and inode, then for every file in it but the marker and the owner's lock (whose
// open does not change it) its name, inode, size, and modification and change times in
// nanoseconds, one line each in name order. ok is false when the file system reports no
// inode (its stat is not a Unix one): nothing then proves the files are the same.
func (p *packs) segmentState() (state []byte, ok bool, err error) {
	dir, err := p.fsys.Stat(p.dir)
	if err != nil {
		return nil, false, err
	}
	dst, ok := dir.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, false, nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\ndir %d %d\n", cleanCloseHeader, dst.Dev, dst.Ino)
	entries, err := p.fsys.ReadDir(p.dir)
	if err != nil {
		return nil, false, err
	}
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if name == cleanCloseName || name == ownerLockName {
			continue
		}
		info, err := p.fsys.Lstat(filepath.Join(p.dir, name))
		if err != nil {
			return nil, false, err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil, false, nil
		}
		fmt.Fprintf(&b, "file %q %d %d %d %d\n", name, st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
	}
	return b.Bytes(), true, nil
}

// markClean syncs every segment and writes the clean-close marker, durably, if the store
// is owned (its lock still held) and every fsync so far held and every tombstone is
// durable; otherwise it writes none and the next owner's Open syncs the filesystem. The
// marker holds segmentState as it is once the segments are synced: nothing writes to
// the directory after that but the marker itself.
func (p *packs) markClean() error {
	p.lockMu.Lock()
	owned := p.lock != nil
	p.lockMu.Unlock()
	p.mu.Lock()
	segs := slices.Collect(maps.Values(p.segments))
	pending := len(p.deleting) > 0
	p.mu.Unlock()
	if !owned || pending {
		return nil
	}
	for _, seg := range segs {
		if seg.data.hasFailed() || seg.tombs.hasFailed() || seg.tombs.syncedBytes() < seg.delWritten.Load() {
			return nil
		}
		if err := seg.data.syncTo(seg.size.Load()); err != nil {
			return fmt.Errorf("sync segments at close: %w", err)
		}
	}
	state, ok, err := p.segmentState()
	if err != nil || !ok {
		// No identity to write (or the directory could not be read for it): no marker,
		// and the next open syncs; the close itself did everything it must.
		return nil
	}
	path := filepath.Join(p.dir, cleanCloseName)
	f, err := p.fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("mark a clean close: %w", err)
	}
	_, werr := f.Write(state)
	serr := p.fsyncFile(f)
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		p.fsys.Remove(path)
		return fmt.Errorf("mark a clean close: %w", err)
	}
	if err := p.fsys.SyncDir(p.dir); err != nil {
		return fmt.Errorf("mark a clean close: %w", err)
	}
	return nil
}

// takeCleanMark reports whether the last owner closed cleanly (markClean) and left the
// directory as its marker says, and removes the marker, durably, so that this owner, if
// killed, leaves none. It runs before this owner writes anything under the directory. A
// marker that does not match (another format, a later run, a copy), or a directory whose
// identity cannot be read, reports false: the caller syncs.
func (p *packs) takeCleanMark() (bool, error) {
	path := filepath.Join(p.dir, cleanCloseName)
	f, err := p.fsys.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("read the clean-close marker: %w", err)
	}
	state, ok, stateErr := p.segmentState()
	proven := false
	if stateErr == nil && ok {
		// One byte more than the state: a longer marker does not match either, and a
		// marker of any size costs no more memory than the state.
		marker, err := io.ReadAll(io.LimitReader(f, int64(len(state))+1))
		proven = err == nil && bytes.Equal(marker, state)
	}
	f.Close()
	if err := p.fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("remove the clean-close marker: %w", err)
	}
	if err := p.fsys.SyncDir(p.dir); err != nil {
		return false, fmt.Errorf("remove the clean-close marker: %w", err)
	}
	return proven, nil
}
