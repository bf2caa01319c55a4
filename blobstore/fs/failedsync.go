package fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// Failed-sync markers (package comment, "Failed fsyncs"): a file whose fsync failed may
// hold bytes in the page cache that never reach the disk, and neither a later fsync nor
// the syncfs at the next open can tell (Linux reports a writeback error once, and may
// keep the pages readable after it). So the failure is written down, durably, before the
// caller learns of it:
//
//   - a segment gets root/seg/<seq>.failed: the length of the segment durable before the
//     failure (uint64) and its CRC-32C (uint32). An open trusts the segment's records up
//     to that length only; the others are left out of the index as if torn. It is
//     removed with the segment (compaction).
//   - a body file gets <its path>.failed, empty. A dedup hit does not take a body file
//     that has one: the Put writes the body again, and removes the marker once that is
//     durable; Check reports such a body as not whole.
//
// A marker is written through a temporary file renamed into place, and its directory
// synced, so that it is whole or absent.
const failedSuffix = ".failed"

func (p *packs) failedPath(seq uint64) string {
	return filepath.Join(p.dir, fmt.Sprintf("%016x%s", seq, failedSuffix))
}

// writeFailedMarker writes the failed-sync marker of a segment, durable before the
// fsync of the first synced bytes failed.
func writeFailedMarker(fsys fileSystem, path string, synced int64) error {
	b := binary.LittleEndian.AppendUint64(nil, uint64(synced))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return writeMarker(fsys, path, b)
}

// readFailedMarker returns the length of the segment that its marker at path says was
// durable before its fsync failed.
func readFailedMarker(fsys fileSystem, path string) (int64, error) {
	b, err := fsys.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read failed-sync marker: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		// Not one this package wrote whole: which records are on disk is not known, and
		// trusting none would hide acknowledged ones. An operator decides.
		return 0, fmt.Errorf("failed-sync marker %s is damaged", path)
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// writeMarker writes a failed-sync marker, durably (writeDurably).
func writeMarker(fsys fileSystem, path string, content []byte) error {
	if err := writeDurably(fsys, path, content); err != nil {
		return fmt.Errorf("write failed-sync marker: %w", err)
	}
	return nil
}

// writeDurably writes content to path durably and atomically: a temporary file beside
// it, synced, renamed into place, and the directory synced.
func writeDurably(fsys fileSystem, path string, content []byte) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		fsys.Remove(tmp)
		return err
	}
	return nil
}

// objectFailed reports whether the body file at path has a failed-sync marker (or may
// have: a marker that cannot be looked up counts).
func objectFailed(fsys fileSystem, path string) bool {
	_, err := fsys.Lstat(path + failedSuffix)
	return !errors.Is(err, os.ErrNotExist)
}
